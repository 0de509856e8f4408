//! Money as JSON numbers in major units with at most two decimals, kept as integer minor units.
//! Read from the number's decimal text, never through a float.

use serde_json::Number;

/// The largest amount accepted, in minor units.
pub const MAX_MINOR: i64 = 100_000_000_000;

pub fn parse_minor(number: &Number) -> Result<i64, &'static str> {
    let text = number.to_string();
    if text.starts_with('-') {
        return Err("must be zero or more");
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction.trim_end_matches('0')),
        None => (text.as_str(), ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("must be a plain decimal number");
    }
    if fraction.len() > 2 {
        return Err("must have at most 2 decimals");
    }
    let whole: i64 = whole.parse().map_err(|_| "is too large")?;
    let cents: i64 = format!("{fraction:0<2}")
        .parse()
        .map_err(|_| "must be a plain decimal number")?;
    whole
        .checked_mul(100)
        .and_then(|m| m.checked_add(cents))
        .filter(|m| *m <= MAX_MINOR)
        .ok_or("is too large")
}

pub fn to_json(minor: i64) -> Number {
    if minor % 100 == 0 {
        return Number::from(minor / 100);
    }
    Number::from_f64(minor as f64 / 100.0).unwrap_or_else(|| Number::from(minor / 100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_through_minor_units() {
        for (text, minor) in [("500", 50_000), ("1000.5", 100_050), ("0.01", 1)] {
            let n: Number = serde_json::from_str(text).unwrap();
            assert_eq!(parse_minor(&n), Ok(minor));
            assert_eq!(parse_minor(&to_json(minor)), Ok(minor));
        }
        let bad: Number = serde_json::from_str("1.001").unwrap();
        assert!(parse_minor(&bad).is_err());
    }
}

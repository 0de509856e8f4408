//! Money: JSON numbers in major units with at most two decimals, kept as integer minor units.
//!
//! An amount is read from the number's decimal text, never through a float, so `0.1 + 0.2`
//! problems cannot creep into totals.

use serde_json::Number;

/// The largest amount accepted, in minor units (one billion in major units).
pub const MAX_MINOR: i64 = 100_000_000_000;

/// Minor units of a JSON number such as `500`, `499.9` or `499.99`.
pub fn parse_minor(number: &Number) -> Result<i64, &'static str> {
    let text = number.to_string();
    if text.starts_with('-') {
        return Err("must be zero or more");
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction.trim_end_matches('0')),
        None => (text.as_str(), ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
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

/// The JSON number for `minor` units: `49999` → `499.99`, `50000` → `500`.
pub fn to_json(minor: i64) -> Number {
    if minor % 100 == 0 {
        return Number::from(minor / 100);
    }
    // Exact: every amount up to MAX_MINOR is far below 2^53.
    Number::from_f64(minor as f64 / 100.0).unwrap_or_else(|| Number::from(minor / 100))
}

/// Whether `code` looks like an ISO 4217 currency code (three letters).
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn amounts_become_minor_units_without_floats() {
        assert_eq!(parse_minor(&number("500")), Ok(50_000));
        assert_eq!(parse_minor(&number("499.99")), Ok(49_999));
        assert_eq!(parse_minor(&number("0.1")), Ok(10));
        assert_eq!(parse_minor(&number("0")), Ok(0));
        assert_eq!(parse_minor(&number("12.50")), Ok(1_250));
    }

    #[test]
    fn bad_amounts_are_refused() {
        assert_eq!(parse_minor(&number("-1")), Err("must be zero or more"));
        assert_eq!(
            parse_minor(&number("1.005")),
            Err("must have at most 2 decimals")
        );
        assert_eq!(parse_minor(&number("1000000001")), Err("is too large"));
        assert!(parse_minor(&number("1e300")).is_err());
    }

    #[test]
    fn minor_units_print_as_major_numbers_and_round_trip() {
        assert_eq!(to_json(49_999).to_string(), "499.99");
        assert_eq!(to_json(50_000).to_string(), "500");
        assert_eq!(to_json(10).to_string(), "0.1");
        for minor in [1, 99, 100_050, MAX_MINOR] {
            assert_eq!(parse_minor(&to_json(minor)), Ok(minor));
        }
    }

    #[test]
    fn currency_codes_are_three_letters() {
        assert!(is_currency_code("INR") && is_currency_code("usd"));
        assert!(!is_currency_code("RUPEE") && !is_currency_code("U$D"));
    }
}

//! Event dates: ISO 8601 dates (`2026-12-01`, midnight UTC) or date-times with an offset
//! (`2026-12-01T19:30:00+05:30`, `…Z`), turned into milliseconds for sorting and filtering.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// Milliseconds since the Unix epoch of an ISO 8601 date or date-time.
pub fn parse_millis(raw: &str) -> Result<i64, &'static str> {
    let raw = raw.trim();
    let instant = if let Ok(dt) = OffsetDateTime::parse(raw, &Rfc3339) {
        dt
    } else if let Ok(date) = Date::parse(raw, format_description!("[year]-[month]-[day]")) {
        date.midnight().assume_utc()
    } else if let Ok(dt) = PrimitiveDateTime::parse(
        raw,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ) {
        // A date-time without an offset is taken as UTC.
        dt.assume_utc()
    } else {
        return Err("must be an ISO 8601 date or date-time");
    };
    i64::try_from(instant.unix_timestamp_nanos() / 1_000_000).map_err(|_| "is out of range")
}

/// RFC 3339 (UTC) of `millis`, as the demo data writes its dates.
pub fn format_millis(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|dt| dt.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_date_times_are_understood() {
        assert_eq!(parse_millis("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_millis("1970-01-01T01:00:00Z"), Ok(3_600_000));
        assert_eq!(parse_millis("1970-01-01T05:30:00+05:30"), Ok(0));
        assert_eq!(parse_millis("1970-01-01T00:00:01"), Ok(1_000));
        assert!(parse_millis("tomorrow").is_err());
        assert!(parse_millis("2026-13-01").is_err());
        assert!(parse_millis("").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        let ms = parse_millis("2026-12-01T19:30:00Z").unwrap();
        assert_eq!(format_millis(ms), "2026-12-01T19:30:00Z");
    }
}

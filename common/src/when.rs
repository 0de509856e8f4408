//! Dates and time zones, read the same way by every service.
//!
//! [`parse`] accepts RFC 3339 and the ISO 8601 forms browsers and people send: a date
//! (`2027-03-14`, the start of that day), a date-time to the hour, minute or second and optional
//! fractional seconds (`2027-03-14T19:30`, what `<input type="datetime-local">` sends;
//! `2027-03-14 19:30:05.250`), with an offset (`Z`, `+05:30`, `+0530`) or without one, and then
//! read in the given IANA time zone. Instants are answered as RFC 3339 UTC ([`format_millis`]).

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
pub use jiff::tz::TimeZone;

/// The zone offset-less dates are read in when nobody named one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

const NOT_A_DATE: &str = "must be an ISO 8601 date or date-time, e.g. 2027-03-14T19:30";
const NOT_A_ZONE: &str = "must be an IANA time zone name, e.g. Europe/Paris";
const OUT_OF_RANGE: &str = "must be between the years 1900 and 9999";

/// The IANA time zone `name` (any case) and its canonical spelling.
pub fn time_zone(name: &str) -> Result<(TimeZone, String), &'static str> {
    let name = name.trim();
    // Fixed offsets (`+05:00`) and POSIX rules are not places: only database names are.
    if name.is_empty() || name.len() > 64 || name.starts_with(['+', '-']) {
        return Err(NOT_A_ZONE);
    }
    let zone = TimeZone::get(name).map_err(|_| NOT_A_ZONE)?;
    let canonical = zone.iana_name().unwrap_or(name).to_string();
    Ok((zone, canonical))
}

/// Whether the time part of `raw` (after the date) names an offset.
fn has_offset(raw: &str) -> bool {
    raw.get(10..)
        .is_some_and(|time| time.contains(['Z', 'z', '+', '-']))
}

/// The instant `raw` names; without an offset, read in `zone`.
pub fn parse(raw: &str, zone: &TimeZone) -> Result<Timestamp, &'static str> {
    let raw = raw.trim();
    // Bracketed annotations (`[Europe/Paris]`) are RFC 9557, not what clients are asked for.
    if raw.len() < 10 || raw.len() > 40 || raw.contains('[') {
        return Err(NOT_A_DATE);
    }
    let instant = if has_offset(raw) {
        raw.parse::<Timestamp>().map_err(|_| NOT_A_DATE)?
    } else if raw.len() == 10 {
        let date = raw.parse::<Date>().map_err(|_| NOT_A_DATE)?;
        date.to_zoned(zone.clone())
            .map_err(|_| OUT_OF_RANGE)?
            .timestamp()
    } else {
        let civil = raw.parse::<DateTime>().map_err(|_| NOT_A_DATE)?;
        civil
            .to_zoned(zone.clone())
            .map_err(|_| OUT_OF_RANGE)?
            .timestamp()
    };
    let year = instant.to_zoned(TimeZone::UTC).year();
    if !(1900..=9999).contains(&year) {
        return Err(OUT_OF_RANGE);
    }
    Ok(instant)
}

/// Milliseconds since the Unix epoch of `raw` (see [`parse`]).
pub fn parse_millis(raw: &str, zone: &TimeZone) -> Result<i64, &'static str> {
    parse(raw, zone).map(|t| t.as_millisecond())
}

/// Milliseconds since the Unix epoch of the last instant `raw` covers, for the upper end of an
/// inclusive range: a bare date covers its whole day (up to the last millisecond before the
/// next day starts in `zone`); anything else names one instant (see [`parse`]).
pub fn parse_end_millis(raw: &str, zone: &TimeZone) -> Result<i64, &'static str> {
    let trimmed = raw.trim();
    if trimmed.len() != 10 {
        return parse_millis(raw, zone);
    }
    let date = trimmed.parse::<Date>().map_err(|_| NOT_A_DATE)?;
    // Validates the date and its range the same way as every other bound.
    parse(trimmed, zone)?;
    let end = date
        .tomorrow()
        .and_then(|next_day| next_day.to_zoned(zone.clone()))
        .map(|next_day| next_day.timestamp().as_millisecond() - 1);
    end.map_err(|_| OUT_OF_RANGE)
}

/// `millis` as RFC 3339 in UTC (`2027-03-14T18:30:00Z`, fractional seconds only when there
/// are some).
pub fn format_millis(millis: i64) -> String {
    Timestamp::from_millisecond(millis)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The instant `rfc3339` as people read it where the event takes place: `Wed 5 May 2027, 20:00
/// (Europe/Paris)`; in UTC when `zone` is no IANA name; `None` when `rfc3339` is no instant.
pub fn format_local(rfc3339: &str, zone: Option<&str>) -> Option<String> {
    let instant: Timestamp = rfc3339.parse().ok()?;
    let (zone, name) = zone
        .and_then(|z| time_zone(z).ok())
        .unwrap_or_else(|| (TimeZone::UTC, "UTC".to_string()));
    let local = instant.to_zoned(zone);
    Some(format!(
        "{} ({name})",
        local.strftime("%a %-d %b %Y, %H:%M")
    ))
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_in_the_events_time_zone() {
        assert_eq!(
            format_local("2027-05-05T18:00:00Z", Some("Europe/Paris")).as_deref(),
            Some("Wed 5 May 2027, 20:00 (Europe/Paris)")
        );
        assert_eq!(
            format_local("2027-05-05T18:00:00Z", Some("Not/AZone")).as_deref(),
            Some("Wed 5 May 2027, 18:00 (UTC)")
        );
        assert_eq!(format_local("soon", None), None);
    }

    fn utc(raw: &str) -> Result<String, &'static str> {
        parse_millis(raw, &TimeZone::UTC).map(format_millis)
    }

    #[test]
    fn the_forms_clients_send_are_understood() {
        for (raw, instant) in [
            ("2027-03-14", "2027-03-14T00:00:00Z"),
            ("2027-03-14T19:30", "2027-03-14T19:30:00Z"),
            ("2027-03-14T19", "2027-03-14T19:00:00Z"),
            ("2027-03-14T19:30:05", "2027-03-14T19:30:05Z"),
            ("2027-03-14 19:30", "2027-03-14T19:30:00Z"),
            ("2027-03-14T19:30:05.250", "2027-03-14T19:30:05.25Z"),
            ("2027-03-14T19:30Z", "2027-03-14T19:30:00Z"),
            ("2027-03-14T19:30:00z", "2027-03-14T19:30:00Z"),
            ("2027-03-14T19:30:00+05:30", "2027-03-14T14:00:00Z"),
            ("2027-03-14T19:30+0530", "2027-03-14T14:00:00Z"),
            ("2027-03-14T19:30:00-08:00", "2027-03-15T03:30:00Z"),
            (
                " 2027-03-14T19:30:00.123456789Z ",
                "2027-03-14T19:30:00.123Z",
            ),
        ] {
            assert_eq!(utc(raw).as_deref(), Ok(instant), "{raw}");
        }
    }

    #[test]
    fn offset_less_input_is_read_in_the_zone() {
        let (paris, name) = time_zone("europe/paris").unwrap();
        assert_eq!(name, "Europe/Paris");
        let read = |raw| parse_millis(raw, &paris).map(format_millis);
        // Winter (UTC+1) and summer (UTC+2) time.
        assert_eq!(
            read("2027-01-14T19:30").as_deref(),
            Ok("2027-01-14T18:30:00Z")
        );
        assert_eq!(
            read("2027-07-14T19:30").as_deref(),
            Ok("2027-07-14T17:30:00Z")
        );
        assert_eq!(read("2027-07-14").as_deref(), Ok("2027-07-13T22:00:00Z"));
        // An explicit offset wins over the zone.
        assert_eq!(
            read("2027-07-14T19:30Z").as_deref(),
            Ok("2027-07-14T19:30:00Z")
        );
    }

    #[test]
    fn a_bare_date_ends_at_the_end_of_its_day() {
        let end = |raw, zone: &TimeZone| parse_end_millis(raw, zone).map(format_millis);
        assert_eq!(
            end("2027-06-10", &TimeZone::UTC).as_deref(),
            Ok("2027-06-10T23:59:59.999Z")
        );
        let (paris, _) = time_zone("Europe/Paris").unwrap();
        assert_eq!(
            end("2027-06-10", &paris).as_deref(),
            Ok("2027-06-10T21:59:59.999Z")
        );
        // A date-time is one instant, as for the start of a range.
        assert_eq!(
            end("2027-06-10T19:30", &TimeZone::UTC).as_deref(),
            Ok("2027-06-10T19:30:00Z")
        );
        assert!(parse_end_millis("2027-02-30", &TimeZone::UTC).is_err());
        assert!(parse_end_millis("9999-12-29", &TimeZone::UTC).is_ok());
        // Past the last instant the clock can name: refused, not a panic.
        assert_eq!(
            parse_end_millis("9999-12-31", &TimeZone::UTC),
            Err(OUT_OF_RANGE)
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "",
            "tomorrow",
            "2027-13-01",
            "2027-02-30",
            "2027-03-14T25:00",
            "14/03/2027",
            "2027-03-14T19:30[Europe/Paris]",
            "0001-01-01",
            "1899-12-31T23:00Z",
        ] {
            assert!(utc(raw).is_err(), "{raw:?} must be refused");
        }
        for zone in ["", "Mars/Olympus", "+05:00", "EST5EDT,M3.2.0,M11.1.0"] {
            assert!(time_zone(zone).is_err(), "{zone:?} must be refused");
        }
        assert!(time_zone("UTC").is_ok());
    }
}

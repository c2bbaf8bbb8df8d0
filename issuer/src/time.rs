//! Times and durations as people write them: RFC 3339, `YYYY-MM-DD`, `365d`.
//!
//! The issuer never reads the clock itself: callers pass `now` in (see
//! [`crate::Context`]).

use std::fmt;
use std::str::FromStr;

/// A point in time as written on a command line or in a batch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An absolute time (unix seconds).
    At(u64),
    /// This many seconds after "now" (`365d`).
    After(u64),
    /// No time at all (`never`: a perpetual license).
    Never,
}

impl When {
    /// Resolves against `now`; `None` for [`When::Never`].
    #[must_use]
    pub fn resolve(self, now: u64) -> Option<u64> {
        match self {
            When::At(t) => Some(t),
            When::After(d) => Some(now.saturating_add(d)),
            When::Never => None,
        }
    }
}

/// The latest time keyseal takes (9999-12-30T22:00:00Z, unix seconds): the
/// last that RFC 3339 output can show in every offset. The format could
/// carry up to `u64::MAX` and the ledger up to `i64::MAX`; a later time is
/// refused where it is written, so every part agrees on what was issued.
pub const MAX_TIME: u64 = 253_402_207_200;

/// What a time string may look like, for error messages.
pub const WHEN_FORMS: &str = "an RFC 3339 time (2027-01-31T12:00:00Z), a date (2027-01-31, midnight UTC), a duration from now (365d, 12h, 2w) or `never`";

impl FromStr for When {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("never") {
            return Ok(When::Never);
        }
        if s.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && s.bytes().last().is_some_and(|b| b.is_ascii_alphabetic())
            && let Ok(d) = parse_duration(s)
        {
            return Ok(When::After(d));
        }
        parse_time_as(s).map(When::At).map_err(|e| match e {
            TimeError::Syntax => format!("`{s}` is not {WHEN_FORMS}"),
            e => e.message(s),
        })
    }
}

/// Parses an absolute time: RFC 3339 with an offset, or `YYYY-MM-DD`
/// (midnight UTC), or plain unix seconds; from 1970 to [`MAX_TIME`].
pub fn parse_time(s: &str) -> Result<u64, String> {
    parse_time_as(s).map_err(|e| e.message(s.trim()))
}

/// Why a time did not parse.
enum TimeError {
    Syntax,
    BeforeEpoch,
    TooLate,
}

impl TimeError {
    fn message(&self, s: &str) -> String {
        match self {
            TimeError::Syntax => format!(
                "`{s}` is not an RFC 3339 time (2027-01-31T12:00:00Z), a date (2027-01-31) or unix seconds"
            ),
            TimeError::BeforeEpoch => format!("`{s}` is before 1970"),
            TimeError::TooLate => format!(
                "`{s}` is after {}, the latest time keyseal takes",
                format(MAX_TIME)
            ),
        }
    }
}

fn parse_time_as(s: &str) -> Result<u64, TimeError> {
    let s = s.trim();
    let secs: i128 = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        // Any number of digits: past u64 it is too late, not malformed.
        s.parse::<u64>().map_or(i128::MAX, i128::from)
    } else if s.len() == 10 {
        let date: jiff::civil::Date = s.parse().map_err(|_| TimeError::Syntax)?;
        let dt = date.to_datetime(jiff::civil::Time::midnight());
        jiff::tz::TimeZone::UTC
            .to_timestamp(dt)
            .map_err(|_| TimeError::TooLate)?
            .as_second()
            .into()
    } else {
        s.parse::<jiff::Timestamp>()
            .map_err(|_| TimeError::Syntax)?
            .as_second()
            .into()
    };
    if secs < 0 {
        Err(TimeError::BeforeEpoch)
    } else if secs > i128::from(MAX_TIME) {
        Err(TimeError::TooLate)
    } else {
        u64::try_from(secs).map_err(|_| TimeError::TooLate)
    }
}

/// Parses a duration: a number and a unit, `s`, `m`, `h`, `d` or `w`
/// (`90d`, `12h`, `2w`). Several parts add up (`1d12h`).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad =
        || format!("`{s}` is not a duration such as 30d, 12h, 2w or 90m (units: s, m, h, d, w)");
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let scale = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    Ok(total)
}

/// Unix seconds in RFC 3339 UTC (`2027-01-31T12:00:00Z`).
#[must_use]
pub fn format(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| format!("@{secs}"), |t| t.to_string())
}

/// A duration in the largest unit that divides it (`14d`, `36h`, `90s`).
#[must_use]
pub fn format_duration(secs: u64) -> String {
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= n && secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

/// Display adapter for unix seconds in RFC 3339 UTC.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub u64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse_time("1970-01-01T01:00:00Z").unwrap(), 3600);
        assert_eq!(parse_time("1970-01-01T02:00:00+01:00").unwrap(), 3600);
        assert_eq!(parse_time("86400").unwrap(), 86_400);
        assert!(parse_time("2027-13-01").is_err());
        assert!(parse_time("tomorrow").is_err());
        assert_eq!(parse_time(&MAX_TIME.to_string()), Ok(MAX_TIME));
        assert_eq!(format(MAX_TIME), "9999-12-30T22:00:00Z");
        assert_eq!(parse_time("9999-12-30T22:00:00Z"), Ok(MAX_TIME));
        for late in [
            "253402207201",
            "9223372036854775808",
            "18446744073709551615",
            "99999999999999999999999",
            "9999-12-31",
        ] {
            let e = parse_time(late).unwrap_err();
            assert!(e.contains("the latest time keyseal takes"), "{late}: {e}");
            let e = late.parse::<When>().unwrap_err();
            assert!(e.contains("the latest time keyseal takes"), "{late}: {e}");
        }
        assert_eq!(parse_duration("365d").unwrap(), 365 * 86_400);
        assert_eq!(parse_duration("1d12h").unwrap(), 36 * 3600);
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("12y").is_err());
        assert!(parse_duration("d").is_err());
        assert_eq!("365d".parse::<When>().unwrap(), When::After(365 * 86_400));
        assert_eq!("never".parse::<When>().unwrap(), When::Never);
        assert_eq!(
            "2027-01-31".parse::<When>().unwrap().resolve(0),
            Some(1_801_353_600)
        );
        assert!("2027-31-01".parse::<When>().is_err());
        assert_eq!(format(1_801_353_600), "2027-01-31T00:00:00Z");
        assert_eq!(format_duration(14 * 86_400), "2w");
        assert_eq!(format_duration(36 * 3600), "36h");
    }
}

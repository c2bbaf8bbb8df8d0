//! Plain-language dates and durations for customer messages.

/// `YYYY-MM-DD` (UTC) of a unix time.
pub(crate) fn date(unix: u64) -> String {
    let days = unix / 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A rough duration: "3 minutes", "about 2 hours", "about 5 days".
pub(crate) fn duration(secs: u64) -> String {
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        0..120 => plural(secs, "second"),
        120..7_200 => plural(secs / 60, "minute"),
        7_200..172_800 => format!("about {}", plural(secs / 3_600, "hour")),
        _ => format!("about {}", plural(secs / 86_400, "day")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_800_000_000), "2027-01-15");
        assert_eq!(date(4_102_444_799), "2099-12-31");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(1), "1 second");
        assert_eq!(duration(600), "10 minutes");
        assert_eq!(duration(7_200), "about 2 hours");
        assert_eq!(duration(86_400 * 40), "about 40 days");
    }
}

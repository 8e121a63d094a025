//! RFC 3339 timestamps from epoch seconds, for `created` fields.

/// Formats seconds since the Unix epoch as RFC 3339 UTC, e.g. `1970-01-01T00:00:00Z`.
///
/// The date comes from Howard Hinnant's `civil_from_days` algorithm
/// (<https://howardhinnant.github.io/date_algorithms.html#civil_from_days>): shift the
/// epoch to 0000-03-01 so leap days fall at the end of a year, split the day count into
/// 400-year eras (146 097 days each), then into year-of-era, day-of-year and a
/// March-based month. Exact for every `u64` day count this can see; a dependency for
/// twenty lines was not worth it.
pub fn rfc3339(epoch_secs: u64) -> String {
    let days = epoch_secs / 86_400;
    let secs = epoch_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// (year, month 1–12, day 1–31) of the day `days` after 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn agrees_with_gnu_date() {
        for secs in [
            1u64,
            68_169_600,
            946_684_799,
            1_234_567_890,
            2_147_483_648,
            32_503_680_000,
        ] {
            let out = std::process::Command::new("date")
                .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
                .output()
                .expect("GNU date (coreutils) is needed: apt-get install coreutils");
            assert!(out.status.success());
            assert_eq!(rfc3339(secs), String::from_utf8_lossy(&out.stdout).trim());
        }
    }

    #[test]
    fn consecutive_days_follow_the_gregorian_calendar_for_two_centuries() {
        let mut prev = civil_from_days(0);
        for day in 1..(200 * 366) {
            let cur = civil_from_days(day);
            let expected_next = next_day(prev);
            assert_eq!(cur, expected_next, "day {day}");
            prev = cur;
        }
    }

    fn next_day((y, m, d): (u64, u64, u64)) -> (u64, u64, u64) {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let len = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if d < len {
            (y, m, d + 1)
        } else if m < 12 {
            (y, m + 1, 1)
        } else {
            (y + 1, 1, 1)
        }
    }
}

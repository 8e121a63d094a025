//! What listing commands share: `--format table|json`, writing to stdout
//! (a closed pipe ends the command quietly), times as JSON and as English
//! ("3 minutes ago").

use std::io::Write;
use std::time::{Duration, SystemTime};

use super::{CliResult, Failure};

/// How a listing is printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    // Plain comments, not doc comments: clap would list these as help for
    // each value and turn every listing command's --help into the long form.
    // Aligned columns under a header, for people.
    #[default]
    Table,
    // Pretty-printed JSON, for programs: full digests and exact numbers,
    // never shortened.
    Json,
}

/// Writes `text` to stdout as is. A closed pipe (`… | head`) ends the
/// command quietly with status 0; any other write error is a failure.
pub fn emit(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::reported(0)),
        Err(e) => Err(Failure::failed(format!("writing to stdout: {e}"))),
    }
}

/// Writes `items` as one pretty-printed JSON array.
pub fn emit_json<T: serde::Serialize>(items: &[T]) -> CliResult {
    let mut text = serde_json::to_string_pretty(items)
        .map_err(|e| Failure::failed(format!("encoding JSON: {e}")))?;
    text.push('\n');
    emit(&text)
}

/// Writes `item` as one pretty-printed JSON object.
pub fn emit_json_object<T: serde::Serialize>(item: &T) -> CliResult {
    let mut text = serde_json::to_string_pretty(item)
        .map_err(|e| Failure::failed(format!("encoding JSON: {e}")))?;
    text.push('\n');
    emit(&text)
}

/// Writes one line per item (the `-q` listings).
pub fn emit_lines<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> CliResult {
    let mut text = String::new();
    for i in items {
        text.push_str(i.as_ref());
        text.push('\n');
    }
    emit(&text)
}

/// `t` as RFC 3339 UTC to the second, e.g. `2025-01-02T03:04:05Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How long ago `then` was, in English: "less than a second ago",
/// "1 second ago", "3 minutes ago", "1 hour ago", "2 days ago", "5 weeks
/// ago", "3 months ago", "2 years ago". Every relative time the CLI shows
/// comes from here.
pub fn ago(then: SystemTime) -> String {
    ago_at(then, SystemTime::now())
}

/// [`ago`] as seen at `now`. A time more than a second ahead of `now` (a
/// clock set differently elsewhere) is "in the future".
pub fn ago_at(then: SystemTime, now: SystemTime) -> String {
    match now.duration_since(then) {
        Ok(d) => relative(d),
        Err(e) if e.duration() > Duration::from_secs(1) => "in the future".to_string(),
        Err(_) => relative(Duration::ZERO),
    }
}

/// [`ago`] of a time in seconds since the epoch.
pub fn ago_epoch(secs: u64) -> String {
    ago(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn relative(d: Duration) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const WEEK: u64 = 7 * DAY;
    const MONTH: u64 = 30 * DAY;
    const YEAR: u64 = 365 * DAY;
    const TWO_WEEKS: u64 = 2 * WEEK;
    const TWO_MONTHS: u64 = 2 * MONTH;
    const TWO_YEARS: u64 = 2 * YEAR;
    let s = d.as_secs();
    // Days up to two weeks, weeks up to two months, months up to two years.
    let (n, unit) = match s {
        0 => return "less than a second ago".to_string(),
        1..MINUTE => (s, "second"),
        MINUTE..HOUR => (s / MINUTE, "minute"),
        HOUR..DAY => (s / HOUR, "hour"),
        DAY..TWO_WEEKS => (s / DAY, "day"),
        TWO_WEEKS..TWO_MONTHS => (s / WEEK, "week"),
        TWO_MONTHS..TWO_YEARS => (s / MONTH, "month"),
        _ => (s / YEAR, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> String {
        relative(Duration::from_secs(secs))
    }

    #[test]
    fn relative_times_read_as_english() {
        assert_eq!(at(0), "less than a second ago");
        assert_eq!(at(1), "1 second ago");
        assert_eq!(at(2), "2 seconds ago");
        assert_eq!(at(59), "59 seconds ago");
        assert_eq!(at(60), "1 minute ago");
        assert_eq!(at(119), "1 minute ago");
        assert_eq!(at(180), "3 minutes ago");
        assert_eq!(at(3600), "1 hour ago");
        assert_eq!(at(2 * 3600 + 59 * 60), "2 hours ago");
        assert_eq!(at(86_400), "1 day ago");
        assert_eq!(at(13 * 86_400), "13 days ago");
        assert_eq!(at(14 * 86_400), "2 weeks ago");
        assert_eq!(at(59 * 86_400), "8 weeks ago");
        assert_eq!(at(60 * 86_400), "2 months ago");
        assert_eq!(at(729 * 86_400), "24 months ago");
        assert_eq!(at(730 * 86_400), "2 years ago");
    }

    #[test]
    fn times_ahead_of_the_clock_are_not_ages() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            ago_at(now + Duration::from_millis(300), now),
            "less than a second ago"
        );
        assert_eq!(ago_at(now + Duration::from_secs(90), now), "in the future");
        assert_eq!(ago_at(now - Duration::from_secs(61), now), "1 minute ago");
    }

    #[test]
    fn rfc3339_is_utc_to_the_second() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_789);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
    }
}

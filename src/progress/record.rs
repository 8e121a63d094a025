//! [`Record`]: the JSON form of an event, as JSON sinks and build logs write it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Clock, Event};

/// The version of the JSON event schema (`docs/progress-events.schema.json`).
/// Adding events or optional fields keeps it; renaming or removing bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// One event with its envelope: one line of JSON Lines output.
///
/// ```json
/// {"schema_version":1,"time":"2025-01-02T03:04:05.678Z","elapsed_ms":12,"event":"phase","phase":"creating"}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema_version: u32,
    /// Wall-clock time, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Milliseconds since the build (or command) started.
    pub elapsed_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    /// Stamps `event` with the clock's current time.
    pub fn now(clock: &Clock, event: &Event) -> Record {
        let elapsed_ms = clock.elapsed_ms();
        Record {
            schema_version: SCHEMA_VERSION,
            time: rfc3339_millis(clock.wall_at(elapsed_ms)),
            elapsed_ms,
            event: event.clone(),
        }
    }

    /// One line of JSON, without the newline.
    pub fn to_line(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses one line of JSON Lines output.
    pub fn parse(line: &str) -> Result<Record, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// `time` as RFC 3339 UTC with milliseconds, e.g. `2025-01-02T03:04:05.678Z`
/// (fixed width, so the strings sort as the times do).
pub fn rfc3339_millis(time: SystemTime) -> String {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = crate::image::rfc3339(d.as_secs());
    let base = secs.strip_suffix('Z').unwrap_or(&secs);
    format!("{base}.{:03}Z", d.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Phase;
    use std::time::Duration;

    #[test]
    fn millis_are_fixed_width() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_007);
        assert_eq!(rfc3339_millis(t), "2023-11-14T22:13:20.007Z");
    }

    #[test]
    fn a_record_is_flat_and_round_trips() {
        let r = Record {
            schema_version: SCHEMA_VERSION,
            time: "2023-11-14T22:13:20.007Z".into(),
            elapsed_ms: 5,
            event: Event::Phase {
                phase: Phase::Building,
            },
        };
        let line = r.to_line();
        assert_eq!(
            line,
            r#"{"schema_version":1,"time":"2023-11-14T22:13:20.007Z","elapsed_ms":5,"event":"phase","phase":"building"}"#
        );
        assert_eq!(Record::parse(&line).unwrap(), r);
    }
}

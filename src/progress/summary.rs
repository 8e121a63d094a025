//! [`BuildSummary`]: what `boxwright builds` shows of one build log.

use serde::Serialize;

use super::{Event, Record};
use crate::digest::Digest;

/// Where a build stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    /// Its process still holds the log.
    Running,
    Succeeded,
    Failed,
    /// Its process is gone without a final event (killed or crashed).
    Interrupted,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
            BuildStatus::Interrupted => "interrupted",
        }
    }
}

/// One build, from the first and last records of its log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BuildSummary {
    pub id: String,
    pub status: BuildStatus,
    /// The recipe file of the build.
    pub recipe: Option<String>,
    pub tag: Option<String>,
    /// RFC 3339 start time.
    pub started: Option<String>,
    /// From the start to the last event so far.
    pub duration_ms: Option<u64>,
    /// The manifest digest of a successful build.
    pub digest: Option<Digest>,
    /// Why a failed build failed (its one-line message).
    pub error: Option<String>,
}

impl BuildSummary {
    /// Summarises a log from its first and last records; `running` tells
    /// whether the build's process still holds the log open.
    pub fn new(
        id: &str,
        first: Option<&Record>,
        last: Option<&Record>,
        running: bool,
    ) -> BuildSummary {
        let (recipe, tag) = match first.map(|r| &r.event) {
            Some(Event::BuildStarted { recipe, tag, .. }) => (Some(recipe.clone()), tag.clone()),
            _ => (None, None),
        };
        let (status, digest, error) = match last.map(|r| &r.event) {
            Some(Event::Finished { digest, .. }) => {
                (BuildStatus::Succeeded, Some(digest.clone()), None)
            }
            Some(Event::Failed { message, .. }) => {
                (BuildStatus::Failed, None, Some(message.clone()))
            }
            _ if running => (BuildStatus::Running, None, None),
            _ => (BuildStatus::Interrupted, None, None),
        };
        BuildSummary {
            id: id.to_string(),
            status,
            recipe,
            tag,
            started: first.map(|r| r.time.clone()),
            duration_ms: last.map(|r| r.elapsed_ms),
            digest,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{Phase, SCHEMA_VERSION};

    fn rec(ms: u64, event: Event) -> Record {
        Record {
            schema_version: SCHEMA_VERSION,
            time: format!("2025-01-01T00:00:00.{ms:03}Z"),
            elapsed_ms: ms,
            event,
        }
    }

    #[test]
    fn status_comes_from_the_last_event_and_the_writer() {
        let first = rec(
            0,
            Event::BuildStarted {
                build_id: "abc".into(),
                recipe: "r.toml".into(),
                tag: Some("x:latest".into()),
                log: None,
            },
        );
        let mid = rec(
            7,
            Event::Phase {
                phase: Phase::Building,
            },
        );
        let ok = rec(
            9,
            Event::Finished {
                digest: Digest::of(b"m"),
                name: None,
                cached_steps: 0,
                total_steps: 1,
            },
        );
        let s = BuildSummary::new("abc", Some(&first), Some(&ok), false);
        assert_eq!(s.status, BuildStatus::Succeeded);
        assert_eq!(s.digest, Some(Digest::of(b"m")));
        assert_eq!(s.recipe.as_deref(), Some("r.toml"));
        assert_eq!(s.duration_ms, Some(9));
        assert_eq!(
            BuildSummary::new("abc", Some(&first), Some(&mid), true).status,
            BuildStatus::Running
        );
        // The process is gone and the log has no final event: not "running" forever.
        assert_eq!(
            BuildSummary::new("abc", Some(&first), Some(&mid), false).status,
            BuildStatus::Interrupted
        );
    }
}

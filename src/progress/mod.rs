//! Progress events and their sinks.
//!
//! Every stage reports what it does as [`Event`]s sent to a [`Sink`]. The
//! event enum is the one stable contract between the build and whatever
//! shows it: the CLI's sinks ([`PlainSink`] lines, [`TtySink`] live bars,
//! [`JsonSink`] JSON Lines), the per-build log files, and a web front end
//! reading the JSON form. The JSON form of each event is a [`Record`]:
//! the event's fields plus `schema_version`, `time` and `elapsed_ms`,
//! documented in `docs/progress-events.md` with a JSON Schema beside it.

mod json;
mod mode;
mod plain;
mod record;
mod sanitize;
mod summary;
mod tail;
mod tty;

use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub use crate::units::human_bytes;
pub use json::JsonSink;
pub use mode::{ProgressMode, sink_for};
pub use plain::{PlainSink, render, stamp};
pub use record::{Record, SCHEMA_VERSION, rfc3339_millis};
pub use sanitize::terminal_line;
pub use summary::{BuildStatus, BuildSummary};
pub use tail::{LogTail, first_and_last};
pub use tty::TtySink;

/// The four phases a user watches a build go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Reading the recipe, resolving the base, preparing the sandbox.
    Creating,
    /// Running each step.
    Building,
    /// Uploading to a registry.
    Pushing,
    /// The image is available.
    Done,
}

impl Phase {
    /// The name users see.
    pub fn title(self) -> &'static str {
        match self {
            Phase::Creating => "Creating",
            Phase::Building => "Building",
            Phase::Pushing => "Pushing",
            Phase::Done => "Done",
        }
    }
}

/// Something that happened during a build, pull or push.
///
/// Serialised with an `event` tag in snake case (`step_started`, …). Adding
/// an event or an optional field keeps [`SCHEMA_VERSION`]; renaming or
/// removing one changes it. A build's last event is `finished` or `failed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The first event of a build: its id (for `boxwright logs ID`).
    BuildStarted {
        build_id: String,
        /// The recipe file (absolute path).
        recipe: String,
        /// The name the image will be tagged with, if any.
        tag: Option<String>,
        /// The log file of this build, if one is written.
        log: Option<String>,
    },
    Phase {
        phase: Phase,
    },
    Info {
        message: String,
    },
    Warning {
        message: String,
    },
    StepStarted {
        /// 1-based step number, as users count them.
        step: usize,
        total: usize,
        description: String,
    },
    StepCached {
        step: usize,
        total: usize,
        description: String,
        layer: Digest,
    },
    /// One line of a step's output, as the step printed it (terminal
    /// control sequences included; sinks that draw clean them).
    Log {
        step: usize,
        line: String,
    },
    StepFinished {
        step: usize,
        total: usize,
        duration_ms: u64,
        layer: Digest,
        size: u64,
    },
    /// A blob transfer (push or pull) began; `size` in bytes.
    TransferStarted {
        digest: Digest,
        size: u64,
    },
    /// `done` bytes of the blob moved so far (lower again after a retry).
    TransferProgress {
        digest: Digest,
        done: u64,
        size: u64,
    },
    /// The blob did not need to move, and why (e.g. "exists", "mounted from
    /// REPO", "cached").
    TransferSkipped {
        digest: Digest,
        size: u64,
        reason: String,
    },
    /// An attempt failed and will be retried, resuming at `resume_at` bytes.
    TransferRetrying {
        digest: Digest,
        attempt: u32,
        resume_at: u64,
        reason: String,
    },
    TransferDone {
        digest: Digest,
        size: u64,
    },
    /// The build succeeded: the manifest digest, and the name it got.
    Finished {
        digest: Digest,
        name: Option<String>,
        cached_steps: usize,
        total_steps: usize,
    },
    /// The build failed. For a step whose command exited non-zero, `step`,
    /// `command` and `exit_code` say which and `last_lines` holds the last
    /// (up to 20) lines of its output.
    Failed {
        step: Option<usize>,
        command: Option<String>,
        exit_code: Option<i32>,
        message: String,
        last_lines: Vec<String>,
    },
}

impl Event {
    /// True for the events that end a build (`finished`, `failed`).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Finished { .. } | Event::Failed { .. })
    }
}

/// Receives events; implementations must not block the build for long.
pub trait Sink: Send + Sync {
    fn emit(&self, event: &Event);

    /// The work is over: live displays take their bars down here. Calling
    /// it more than once is harmless.
    fn finish(&self) {}
}

/// A sink that drops everything (library callers that do not watch).
pub struct NullSink;

impl Sink for NullSink {
    fn emit(&self, _event: &Event) {}
}

/// Sends every event to several sinks in turn (e.g. the screen and the build log).
pub struct Tee<'a> {
    sinks: Vec<&'a dyn Sink>,
}

impl<'a> Tee<'a> {
    pub fn new(sinks: Vec<&'a dyn Sink>) -> Tee<'a> {
        Tee { sinks }
    }
}

impl Sink for Tee<'_> {
    fn emit(&self, event: &Event) {
        for s in &self.sinks {
            s.emit(event);
        }
    }

    fn finish(&self) {
        for s in &self.sinks {
            s.finish();
        }
    }
}

/// Collects events in memory; handy for tests and for callers that render later.
#[derive(Default)]
pub struct MemorySink {
    events: std::sync::Mutex<Vec<Event>>,
}

impl MemorySink {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Sink for MemorySink {
    fn emit(&self, event: &Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event.clone());
        }
    }
}

/// Elapsed time since a start, for sinks that print timestamps. Wall-clock
/// times are the start's wall clock plus the monotonic elapsed time, so
/// they never go backwards within a build.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    wall: SystemTime,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            start: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

impl Clock {
    pub fn elapsed_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The wall-clock time `elapsed_ms` after the start.
    pub fn wall_at(&self, elapsed_ms: u64) -> SystemTime {
        self.wall + std::time::Duration::from_millis(elapsed_ms)
    }
}

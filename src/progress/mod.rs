//! Progress events and their sinks.
//!
//! Every stage reports what it does as [`Event`]s sent to a [`Sink`]; the
//! CLI picks a sink (plain lines on stderr today), a web front end could pick
//! another. Events are plain data so they serialise as they are.

mod plain;

use std::time::Instant;

use serde::Serialize;

use crate::digest::Digest;

pub use plain::{PlainSink, human_bytes, render};

/// The four phases a user watches a build go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// Something that happened during a build, pull or push.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
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
    /// One line of a step's output.
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
    Finished {
        digest: Digest,
        name: Option<String>,
        cached_steps: usize,
        total_steps: usize,
    },
    Failed {
        step: Option<usize>,
        command: Option<String>,
        exit_code: Option<i32>,
        message: String,
        last_lines: Vec<String>,
    },
}

/// Receives events; implementations must not block the build for long.
pub trait Sink: Send + Sync {
    fn emit(&self, event: &Event);
}

/// A sink that drops everything (library callers that do not watch).
pub struct NullSink;

impl Sink for NullSink {
    fn emit(&self, _event: &Event) {}
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

/// Elapsed time since a start, for sinks that print timestamps.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            start: Instant::now(),
        }
    }
}

impl Clock {
    pub fn elapsed_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

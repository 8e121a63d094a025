//! One line per event on stderr, for terminals and CI logs alike.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::units::human_bytes;

use super::{Clock, Event, Sink};
use crate::digest::Digest;

/// How often a blob's byte count is repeated while it moves: often enough
/// to show life in a CI log, rarely enough not to flood it.
const TRANSFER_LINE_EVERY: Duration = Duration::from_secs(5);

/// Writes each event as one human-readable line to a writer (stderr by default).
pub struct PlainSink {
    out: Mutex<Box<dyn Write + Send>>,
    clock: Clock,
    /// Prefix step output with its step number (off when a terminal shows it live).
    tag_logs: bool,
    /// When each moving blob last got a progress line.
    transfer_lines: Mutex<HashMap<Digest, Instant>>,
}

impl PlainSink {
    pub fn stderr() -> PlainSink {
        PlainSink::stderr_with(Clock::default())
    }

    /// Lines on stderr, timed from `clock`.
    pub fn stderr_with(clock: Clock) -> PlainSink {
        PlainSink::new(Box::new(std::io::stderr())).with_clock(clock)
    }

    pub fn new(out: Box<dyn Write + Send>) -> PlainSink {
        PlainSink {
            out: Mutex::new(out),
            clock: Clock::default(),
            tag_logs: true,
            transfer_lines: Mutex::new(HashMap::new()),
        }
    }

    /// Times lines from `clock` instead of from this sink's creation.
    pub fn with_clock(mut self, clock: Clock) -> PlainSink {
        self.clock = clock;
        self
    }

    fn line(&self, text: &str) {
        if let Ok(mut out) = self.out.lock() {
            // A closed stderr must not fail the build.
            let _ = writeln!(out, "{}", stamp(self.clock.elapsed_ms(), text));
        }
    }

    /// Byte counts repeat at most every [`TRANSFER_LINE_EVERY`] per blob.
    fn transfer_line_due(&self, event: &Event) -> bool {
        let Ok(mut seen) = self.transfer_lines.lock() else {
            return true;
        };
        match event {
            Event::TransferStarted { digest, .. } => {
                seen.insert(digest.clone(), Instant::now());
                true
            }
            Event::TransferProgress { digest, .. } => match seen.get(digest) {
                Some(t) if t.elapsed() < TRANSFER_LINE_EVERY => false,
                _ => {
                    seen.insert(digest.clone(), Instant::now());
                    true
                }
            },
            Event::TransferDone { digest, .. } | Event::TransferSkipped { digest, .. } => {
                seen.remove(digest);
                true
            }
            _ => true,
        }
    }
}

/// One plain line: `[  12.34s] text`.
pub fn stamp(elapsed_ms: u64, text: &str) -> String {
    format!("[{:>7.2}s] {text}", elapsed_ms as f64 / 1000.0)
}

/// The human form of an event, without the timestamp.
pub fn render(event: &Event, tag_logs: bool) -> String {
    match event {
        Event::BuildStarted {
            build_id,
            recipe,
            tag,
            log,
        } => {
            let what = match tag {
                Some(t) => format!("{recipe} as {t}"),
                None => recipe.clone(),
            };
            match log {
                Some(_) => format!("build {build_id}: {what} (log: boxwright logs {build_id})"),
                None => format!("build {build_id}: {what}"),
            }
        }
        Event::Phase { phase } => format!("==> {}", phase.title()),
        Event::Info { message } => message.clone(),
        Event::Warning { message } => format!("warning: {message}"),
        Event::StepStarted {
            step,
            total,
            description,
        } => format!("STEP {step}/{total}: {description}"),
        Event::StepCached {
            step,
            total,
            description,
            layer,
        } => format!(
            "STEP {step}/{total}: {description} (cached {})",
            layer.short()
        ),
        Event::Log { step, line } => {
            if tag_logs {
                format!("  {step}| {line}")
            } else {
                line.clone()
            }
        }
        Event::StepFinished {
            step,
            duration_ms,
            layer,
            size,
            ..
        } => format!(
            "  step {step} done in {:.2}s: layer {} ({})",
            *duration_ms as f64 / 1000.0,
            layer.short(),
            human_bytes(*size)
        ),
        Event::TransferStarted { digest, size } => {
            format!("  {}: transferring {}", digest.short(), human_bytes(*size))
        }
        Event::TransferProgress { digest, done, size } => format!(
            "  {}: {} of {} ({}%)",
            digest.short(),
            human_bytes(*done),
            human_bytes(*size),
            percent(*done, *size)
        ),
        Event::TransferSkipped {
            digest,
            size,
            reason,
        } => format!(
            "  {}: skipped, {reason} ({})",
            digest.short(),
            human_bytes(*size)
        ),
        Event::TransferRetrying {
            digest,
            attempt,
            resume_at,
            reason,
        } => format!(
            "  {}: attempt {attempt} failed ({reason}); retrying from {}",
            digest.short(),
            human_bytes(*resume_at)
        ),
        Event::TransferDone { digest, size } => {
            format!("  {}: done ({})", digest.short(), human_bytes(*size))
        }
        Event::Finished {
            digest,
            name,
            cached_steps,
            total_steps,
        } => {
            let cached = if *total_steps > 0 && cached_steps == total_steps {
                format!(
                    "all {total_steps} {} cached",
                    plural(*total_steps, "step", "steps")
                )
            } else {
                format!(
                    "{cached_steps} of {total_steps} {} cached",
                    plural(*total_steps, "step", "steps")
                )
            };
            match name {
                Some(n) => format!("built {n} {digest} ({cached})"),
                None => format!("built {digest} ({cached})"),
            }
        }
        Event::Failed {
            step,
            command,
            exit_code,
            message,
            last_lines,
        } => {
            let mut s = String::new();
            if !last_lines.is_empty() {
                s.push_str("last lines of output:\n");
                for l in last_lines {
                    s.push_str("  | ");
                    s.push_str(l);
                    s.push('\n');
                }
            }
            match (step, command, exit_code) {
                (Some(n), Some(c), Some(code)) => s.push_str(&format!(
                    "error: step {n} failed: `{c}` exited with code {code}"
                )),
                _ => s.push_str(&format!("error: {message}")),
            }
            s
        }
    }
}

fn percent(done: u64, size: u64) -> u64 {
    if size == 0 {
        100
    } else {
        (u128::from(done.min(size)) * 100 / u128::from(size)) as u64
    }
}

impl Sink for PlainSink {
    fn emit(&self, event: &Event) {
        if !self.transfer_line_due(event) {
            return;
        }
        let text = render(event, self.tag_logs);
        for l in text.lines() {
            self.line(l);
        }
    }
}

/// `one` for 1, `many` otherwise.
fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn failure_names_step_command_and_code_on_its_last_line() {
        let e = Event::Failed {
            step: Some(3),
            command: Some("/bin/sh -c false".into()),
            exit_code: Some(1),
            message: "exit status 1".into(),
            last_lines: vec!["oops".into()],
        };
        let text = render(&e, true);
        assert_eq!(
            text.lines().last().unwrap(),
            "error: step 3 failed: `/bin/sh -c false` exited with code 1"
        );
        assert!(text.contains("  | oops"));
    }

    #[test]
    fn fully_cached_build_says_so() {
        let e = Event::Finished {
            digest: Digest::of(b"m"),
            name: Some("demo:latest".into()),
            cached_steps: 5,
            total_steps: 5,
        };
        assert!(render(&e, true).contains("all 5 steps cached"));
    }

    #[test]
    fn transfer_progress_is_throttled_per_blob() {
        let sink = PlainSink::new(Box::new(std::io::sink()));
        let d = Digest::of(b"blob");
        let progress = Event::TransferProgress {
            digest: d.clone(),
            done: 1,
            size: 4,
        };
        assert!(sink.transfer_line_due(&Event::TransferStarted {
            digest: d.clone(),
            size: 4
        }));
        assert!(!sink.transfer_line_due(&progress));
        assert!(sink.transfer_line_due(&Event::TransferDone {
            digest: d.clone(),
            size: 4
        }));
        assert_eq!(
            render(&progress, true),
            "  sha256:fa2c8cc4f281: 1 B of 4 B (25%)"
        );
    }
}

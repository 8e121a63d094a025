//! One line per event on stderr, for terminals and CI logs alike.

use std::io::Write;
use std::sync::Mutex;

use super::{Clock, Event, Phase, Sink};

/// Writes each event as one human-readable line to a writer (stderr by default).
pub struct PlainSink {
    out: Mutex<Box<dyn Write + Send>>,
    clock: Clock,
    /// Prefix step output with its step number (off when a terminal shows it live).
    tag_logs: bool,
}

impl PlainSink {
    pub fn stderr() -> PlainSink {
        PlainSink::new(Box::new(std::io::stderr()))
    }

    pub fn new(out: Box<dyn Write + Send>) -> PlainSink {
        PlainSink {
            out: Mutex::new(out),
            clock: Clock::default(),
            tag_logs: true,
        }
    }

    fn line(&self, text: &str) {
        if let Ok(mut out) = self.out.lock() {
            // A closed stderr must not fail the build.
            let _ = writeln!(out, "[{:>7.2}s] {text}", self.clock.elapsed_secs());
        }
    }
}

/// The human form of an event, without the timestamp.
pub fn render(event: &Event, tag_logs: bool) -> String {
    match event {
        Event::Phase { phase } => format!(
            "==> {}",
            match phase {
                Phase::Creating => "Creating",
                Phase::Building => "Building",
                Phase::Pushing => "Pushing",
                Phase::Done => "Done",
            }
        ),
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
        Event::Finished {
            digest,
            name,
            cached_steps,
            total_steps,
        } => {
            let cached = if *total_steps > 0 && cached_steps == total_steps {
                format!("all {total_steps} steps cached")
            } else {
                format!("{cached_steps} of {total_steps} steps cached")
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
                (Some(n), _, _) => s.push_str(&format!("error: step {n} failed: {message}")),
                _ => s.push_str(&format!("error: {message}")),
            }
            s
        }
    }
}

/// Sizes for humans, in binary units as `du -h` prints them.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl Sink for PlainSink {
    fn emit(&self, event: &Event) {
        let text = render(event, self.tag_logs);
        for l in text.lines() {
            self.line(l);
        }
    }
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
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}

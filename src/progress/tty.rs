//! A live display for terminals: one line per phase, the current step's
//! last lines of output, a byte bar per moving blob, a summary at the end.
//!
//! Finished things (phases, steps, blobs) are printed above the live area
//! and scroll like a log; only the live area is redrawn. Every line drawn
//! is cleaned by [`terminal_line`] and cut to the terminal's width, so step
//! output with colours, carriage returns or very long lines cannot move the
//! cursor or wrap, which is what garbles live displays.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use console::{Term, style, truncate_str};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Clock, Event, Phase, Sink, human_bytes, render, terminal_line};
use crate::digest::Digest;

/// How many of the current step's lines stay on screen.
const LOG_LINES: usize = 5;

/// Columns before a step's output line: "  │ ".
const LOG_INDENT: usize = 4;

/// A step line longer than this is cut before cleaning (the screen shows
/// at most a terminal's width of it anyway).
const MAX_LINE_CHARS: usize = 4096;

/// Live bars on stderr. Use it only when stderr is a terminal
/// ([`super::ProgressMode::resolve`] decides); elsewhere use [`super::PlainSink`].
pub struct TtySink {
    state: Mutex<State>,
    clock: Clock,
}

struct State {
    mp: MultiProgress,
    /// The phase being worked on, with its spinner line.
    phase: Option<(Phase, ProgressBar, Instant)>,
    /// The steps running now (several when stages run at once): number,
    /// total and description, in the order they started.
    steps: Vec<(usize, usize, String)>,
    /// One bar per shown line of the current step's output.
    log_bars: Vec<ProgressBar>,
    tail: VecDeque<String>,
    transfers: HashMap<Digest, ProgressBar>,
    closed: bool,
}

impl TtySink {
    /// Draws on stderr.
    pub fn stderr(clock: Clock) -> TtySink {
        TtySink::with_target(ProgressDrawTarget::stderr(), clock)
    }

    /// Draws on `target` (tests use a hidden one).
    pub fn with_target(target: ProgressDrawTarget, clock: Clock) -> TtySink {
        TtySink {
            state: Mutex::new(State {
                mp: MultiProgress::with_draw_target(target),
                phase: None,
                steps: Vec::new(),
                log_bars: Vec::new(),
                tail: VecDeque::with_capacity(LOG_LINES),
                transfers: HashMap::new(),
                closed: false,
            }),
            clock,
        }
    }
}

/// The terminal's width in columns.
fn width() -> usize {
    usize::from(Term::stderr().size().1).max(20)
}

/// A line that fits on one row of the terminal after `reserved` columns
/// of template text, without control sequences.
fn fit_after(reserved: usize, text: &str) -> String {
    let clean = terminal_line(text);
    let room = width().saturating_sub(reserved + 1).max(10);
    truncate_str(&clean, room, "…").into_owned()
}

fn fit(text: &str) -> String {
    fit_after(0, text)
}

/// A step line from a step's output, bounded before it is cleaned.
fn fit_output(line: &str) -> String {
    let line = match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((i, _)) => &line[..i],
        None => line,
    };
    fit_after(LOG_INDENT, line)
}

fn phase_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn log_style() -> ProgressStyle {
    ProgressStyle::with_template("  {prefix:.dim} {wide_msg:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn transfer_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "  {prefix} [{bar:30.cyan/blue}] {bytes:>10}/{total_bytes:<10} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

impl State {
    /// Prints a finished line above the live area.
    fn above(&self, text: &str) {
        for l in text.lines() {
            let _ = self.mp.println(fit(l));
        }
    }

    fn clear_step_output(&mut self) {
        for b in self.log_bars.drain(..) {
            b.finish_and_clear();
            self.mp.remove(&b);
        }
        self.tail.clear();
    }

    /// Ends the current phase's line with a tick (or a cross) and its duration.
    fn end_phase(&mut self, ok: bool) {
        if let Some((phase, bar, started)) = self.phase.take() {
            bar.finish_and_clear();
            self.mp.remove(&bar);
            let mark = if ok {
                style("✓").for_stderr().green()
            } else {
                style("✗").for_stderr().red()
            };
            self.above(&format!(
                "{mark} {} {:.1}s",
                style(phase.title()).for_stderr().bold(),
                started.elapsed().as_secs_f64()
            ));
        }
    }

    fn start_phase(&mut self, phase: Phase) {
        self.end_phase(true);
        if phase == Phase::Done {
            // Done is the summary line printed with the final event.
            return;
        }
        let bar = self.mp.add(ProgressBar::new_spinner());
        bar.set_style(phase_style());
        bar.set_prefix(phase.title());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.phase = Some((phase, bar, Instant::now()));
    }

    fn phase_message(&self, msg: &str) {
        if let Some((_, bar, _)) = &self.phase {
            bar.set_message(fit(msg));
        }
    }

    /// The phase line names the step started last, and how many more run.
    fn show_running(&self) {
        let text = match self.steps.last() {
            None => String::new(),
            Some((n, total, d)) if self.steps.len() == 1 => format!("STEP {n}/{total}: {d}"),
            Some((n, total, d)) => {
                format!("STEP {n}/{total}: {d} (+{} running)", self.steps.len() - 1)
            }
        };
        self.phase_message(&text);
    }

    fn log_line(&mut self, line: &str) {
        if self.tail.len() == LOG_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(fit_output(line));
        while self.log_bars.len() < self.tail.len() {
            let bar = self.mp.add(ProgressBar::new_spinner());
            bar.set_style(log_style());
            bar.set_prefix("│");
            self.log_bars.push(bar);
        }
        for (bar, text) in self.log_bars.iter().zip(&self.tail) {
            bar.set_message(text.clone());
        }
    }

    fn transfer_bar(&mut self, digest: &Digest, size: u64) -> ProgressBar {
        if let Some(b) = self.transfers.get(digest) {
            return b.clone();
        }
        let bar = self.mp.add(ProgressBar::new(size));
        bar.set_style(transfer_style());
        bar.set_prefix(digest.short());
        self.transfers.insert(digest.clone(), bar.clone());
        bar
    }

    fn end_transfer(&mut self, digest: &Digest, line: &str) {
        if let Some(bar) = self.transfers.remove(digest) {
            bar.finish_and_clear();
            self.mp.remove(&bar);
        }
        self.above(line);
    }

    /// Takes every live line down; what follows is printed as plain text.
    fn close(&mut self, ok: bool) {
        self.clear_step_output();
        for (_, bar) in self.transfers.drain() {
            bar.finish_and_clear();
            self.mp.remove(&bar);
        }
        self.end_phase(ok);
        let _ = self.mp.clear();
        self.closed = true;
    }

    fn handle(&mut self, event: &Event, elapsed: f64) {
        match event {
            Event::Phase { phase } => self.start_phase(*phase),
            Event::BuildStarted { .. } | Event::Info { .. } => self.above(&render(event, true)),
            Event::Warning { message } => self.above(&format!(
                "{} {message}",
                style("warning:").for_stderr().yellow().bold()
            )),
            Event::StepStarted {
                step,
                total,
                description,
            } => {
                if self.steps.is_empty() {
                    self.clear_step_output();
                }
                self.steps.push((*step, *total, description.clone()));
                self.show_running();
            }
            Event::StepCached { .. } => self.above(&format!("  {}", render(event, true))),
            // Lines of steps running at once say whose they are.
            Event::Log { line, step } if self.steps.len() > 1 => {
                self.log_line(&format!("{step}| {line}"))
            }
            Event::Log { line, .. } => self.log_line(line),
            Event::StepFinished {
                step,
                total,
                duration_ms,
                layer,
                size,
            } => {
                let description = match self.steps.iter().position(|(n, _, _)| n == step) {
                    Some(i) => self.steps.remove(i).2,
                    None => String::new(),
                };
                if self.steps.is_empty() {
                    self.clear_step_output();
                }
                self.show_running();
                self.above(&format!(
                    "  STEP {step}/{total}: {description} {} {:.1}s, layer {} ({})",
                    style("done in").for_stderr().dim(),
                    *duration_ms as f64 / 1000.0,
                    layer.short(),
                    human_bytes(*size)
                ));
            }
            Event::TransferStarted { digest, size } => {
                let bar = self.transfer_bar(digest, *size);
                bar.set_length(*size);
            }
            Event::TransferProgress { digest, done, size } => {
                let bar = self.transfer_bar(digest, *size);
                bar.set_position(*done);
            }
            Event::TransferRetrying {
                digest, attempt, ..
            } => {
                if let Some(bar) = self.transfers.get(digest) {
                    bar.set_message(format!("retry {attempt}"));
                }
                self.above(&render(event, true));
            }
            Event::TransferSkipped { digest, .. } | Event::TransferDone { digest, .. } => {
                self.end_transfer(digest, &render(event, true))
            }
            Event::Finished { .. } => {
                self.close(true);
                let summary = render(event, true);
                self.mp.suspend(|| {
                    eprintln!(
                        "{} {} {summary} in {elapsed:.1}s",
                        style("✓").for_stderr().green(),
                        style("Done").for_stderr().bold()
                    )
                });
            }
            Event::Failed { .. } => {
                self.close(false);
                // Not cut to the width: nothing is redrawn after it, and the
                // reason must be readable in full.
                let text = render(event, true);
                self.mp.suspend(|| {
                    for l in text.lines() {
                        eprintln!("{}", terminal_line(l));
                    }
                });
            }
        }
    }
}

impl Sink for TtySink {
    fn emit(&self, event: &Event) {
        let elapsed = self.clock.elapsed_secs();
        if let Ok(mut s) = self.state.lock() {
            if s.closed {
                // After the summary there is no live area: print plainly.
                let text = render(event, true);
                s.mp.suspend(|| {
                    for l in text.lines() {
                        eprintln!("{}", terminal_line(l));
                    }
                });
                return;
            }
            s.handle(event, elapsed);
        }
    }

    fn finish(&self) {
        if let Ok(mut s) = self.state.lock()
            && !s.closed
        {
            s.close(true);
        }
    }
}

impl Drop for TtySink {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden() -> TtySink {
        TtySink::with_target(ProgressDrawTarget::hidden(), Clock::default())
    }

    #[test]
    fn keeps_only_the_last_lines_of_the_current_step() {
        let sink = hidden();
        sink.emit(&Event::Phase {
            phase: Phase::Building,
        });
        sink.emit(&Event::StepStarted {
            step: 1,
            total: 2,
            description: "run x".into(),
        });
        for i in 0..12 {
            sink.emit(&Event::Log {
                step: 1,
                line: format!("\u{1b}[32mline {i}\u{1b}[0m\rLINE {i}"),
            });
        }
        let s = sink.state.lock().unwrap();
        assert_eq!(s.log_bars.len(), LOG_LINES);
        assert_eq!(s.tail.front().map(String::as_str), Some("LINE 7"));
        assert_eq!(s.tail.back().map(String::as_str), Some("LINE 11"));
    }

    #[test]
    fn steps_running_at_once_keep_their_lines_tagged_until_the_last_ends() {
        let sink = hidden();
        let d = Digest::of(b"layer");
        sink.emit(&Event::Phase {
            phase: Phase::Building,
        });
        for (step, what) in [(1, "run a"), (3, "run b")] {
            sink.emit(&Event::StepStarted {
                step,
                total: 4,
                description: what.into(),
            });
        }
        sink.emit(&Event::Log {
            step: 1,
            line: "from a".into(),
        });
        sink.emit(&Event::Log {
            step: 3,
            line: "from b".into(),
        });
        {
            let s = sink.state.lock().unwrap();
            assert_eq!(s.steps.len(), 2);
            let tail: Vec<&str> = s.tail.iter().map(String::as_str).collect();
            assert_eq!(tail, ["1| from a", "3| from b"]);
        }
        let finished = |step| Event::StepFinished {
            step,
            total: 4,
            duration_ms: 5,
            layer: d.clone(),
            size: 3,
        };
        // Step 1 ends: step 3 still runs, and its lines stay.
        sink.emit(&finished(1));
        {
            let s = sink.state.lock().unwrap();
            assert_eq!(s.steps, [(3, 4, "run b".to_string())]);
            assert_eq!(s.tail.len(), 2);
        }
        sink.emit(&finished(3));
        let s = sink.state.lock().unwrap();
        assert!(s.steps.is_empty());
        assert!(s.log_bars.is_empty() && s.tail.is_empty());
    }

    #[test]
    fn a_step_end_and_a_failure_take_the_live_lines_down() {
        let sink = hidden();
        let d = Digest::of(b"layer");
        sink.emit(&Event::Phase {
            phase: Phase::Building,
        });
        sink.emit(&Event::StepStarted {
            step: 1,
            total: 1,
            description: "run x".into(),
        });
        sink.emit(&Event::Log {
            step: 1,
            line: "x".repeat(100_000),
        });
        assert!(sink.state.lock().unwrap().tail[0].chars().count() < 1000);
        sink.emit(&Event::StepFinished {
            step: 1,
            total: 1,
            duration_ms: 5,
            layer: d.clone(),
            size: 3,
        });
        assert!(sink.state.lock().unwrap().log_bars.is_empty());
        sink.emit(&Event::TransferStarted {
            digest: d.clone(),
            size: 10,
        });
        sink.emit(&Event::TransferProgress {
            digest: d.clone(),
            done: 4,
            size: 10,
        });
        assert_eq!(sink.state.lock().unwrap().transfers[&d].position(), 4);
        sink.emit(&Event::Failed {
            step: None,
            command: None,
            exit_code: None,
            message: "registry unreachable".into(),
            last_lines: vec![],
        });
        let s = sink.state.lock().unwrap();
        assert!(s.closed && s.transfers.is_empty() && s.phase.is_none());
    }
}

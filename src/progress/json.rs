//! JSON Lines: one [`Record`] per line, for machines (a web UI, `jq`, build logs).

use std::io::Write;
use std::sync::Mutex;

use super::{Clock, Event, Record, Sink};

/// Writes each event as one line of JSON and flushes it, so a reader
/// tailing the output sees every event as it happens.
pub struct JsonSink {
    out: Mutex<Box<dyn Write + Send>>,
    clock: Clock,
}

impl JsonSink {
    /// JSON Lines on stdout (`--progress json`).
    pub fn stdout(clock: Clock) -> JsonSink {
        JsonSink::new(Box::new(std::io::stdout()), clock)
    }

    pub fn new(out: Box<dyn Write + Send>, clock: Clock) -> JsonSink {
        JsonSink {
            out: Mutex::new(out),
            clock,
        }
    }
}

impl Sink for JsonSink {
    fn emit(&self, event: &Event) {
        let mut line = Record::now(&self.clock, event).to_line();
        line.push('\n');
        if let Ok(mut out) = self.out.lock() {
            // One write per line: a reader never sees two events interleaved.
            // A closed output must not fail the build.
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Phase;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_parsable_line_per_event() {
        let buf = Shared::default();
        let sink = JsonSink::new(Box::new(buf.clone()), Clock::default());
        sink.emit(&Event::Phase {
            phase: Phase::Creating,
        });
        sink.emit(&Event::Log {
            step: 2,
            line: "a \"quoted\"\ttab \u{1b}[31mred".into(),
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let second = Record::parse(lines[1]).unwrap();
        assert_eq!(second.schema_version, 1);
        assert_eq!(
            second.event,
            Event::Log {
                step: 2,
                line: "a \"quoted\"\ttab \u{1b}[31mred".into()
            }
        );
    }
}

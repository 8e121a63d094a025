//! `--progress auto|tty|plain|json`: which sink a command shows events with.

use std::io::IsTerminal;

use super::{Clock, JsonSink, PlainSink, Sink, TtySink};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// `tty` when stderr is a terminal, else `plain`.
    #[default]
    Auto,
    /// Live bars on stderr (falls back to `plain` when stderr is not a terminal).
    Tty,
    /// One line per event on stderr, with the elapsed time.
    Plain,
    /// JSON Lines on stdout, nothing else on stdout.
    Json,
}

impl ProgressMode {
    /// The mode actually used here: `auto` and `tty` become `plain` unless
    /// stderr is a terminal that can move its cursor (not `TERM=dumb`), so a
    /// live display never garbles a log file or a pipe.
    pub fn resolve(self) -> ProgressMode {
        match self {
            ProgressMode::Auto | ProgressMode::Tty => {
                let dumb = std::env::var("TERM").map(|t| t == "dumb").unwrap_or(false);
                if std::io::stderr().is_terminal() && !dumb {
                    ProgressMode::Tty
                } else {
                    ProgressMode::Plain
                }
            }
            m => m,
        }
    }

    /// True when events go to stdout, which must then carry nothing else.
    pub fn uses_stdout(self) -> bool {
        self == ProgressMode::Json
    }
}

/// The sink for `mode` (resolved first), timed from `clock`.
pub fn sink_for(mode: ProgressMode, clock: Clock) -> Box<dyn Sink> {
    match mode.resolve() {
        ProgressMode::Json => Box::new(JsonSink::stdout(clock)),
        ProgressMode::Tty => Box::new(TtySink::stderr(clock)),
        _ => Box::new(PlainSink::stderr_with(clock)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_plain_resolve_to_themselves() {
        assert_eq!(ProgressMode::Json.resolve(), ProgressMode::Json);
        assert_eq!(ProgressMode::Plain.resolve(), ProgressMode::Plain);
    }
}

//! Every build's own log: its events as JSON Lines in the store
//! (`ROOT.state/builds/<id>.jsonl`), written as they happen so that
//! `boxwright logs ID --follow` can tail a build from another process.

use crate::progress::{Clock, Event, JsonSink, NullSink, Sink, Tee};
use crate::store::{Store, new_build_id};

use super::{BuildOptions, normalize_tag};

/// The build's id and the sink writing its log file (none if the log
/// could not be created: the build goes on and says so).
pub(crate) struct BuildLog {
    id: String,
    file: Option<JsonSink>,
}

impl BuildLog {
    /// Creates the log and announces the build (`build_started`) to `sink` and the log.
    pub(crate) fn start(opts: &BuildOptions, sink: &dyn Sink) -> BuildLog {
        let created = Store::open(&opts.store).and_then(|s| s.build_logs().create());
        let (id, path, file, problem) = match created {
            Ok(w) => {
                let id = w.id().to_string();
                let path = w.path().display().to_string();
                let file = JsonSink::new(Box::new(w), Clock::default());
                (id, Some(path), Some(file), None)
            }
            Err(e) => (new_build_id(), None, None, Some(e)),
        };
        let log = BuildLog { id, file };
        let started = Event::BuildStarted {
            build_id: log.id.clone(),
            // Absolute, so `boxwright builds` means something from any directory.
            recipe: std::path::absolute(&opts.recipe)
                .unwrap_or_else(|_| opts.recipe.clone())
                .display()
                .to_string(),
            tag: opts
                .tag
                .as_deref()
                .map(|t| normalize_tag(t).unwrap_or_else(|_| t.to_string())),
            log: path,
        };
        Tee::new(vec![sink, log.sink()]).emit(&started);
        if let Some(e) = problem {
            sink.emit(&Event::Warning {
                message: format!("this build keeps no log ({e})"),
            });
        }
        log
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Where the build's events go besides the caller's sink.
    pub(crate) fn sink(&self) -> &dyn Sink {
        match &self.file {
            Some(f) => f,
            None => &NullSink,
        }
    }
}

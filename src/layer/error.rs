//! The layer module's error type.

use std::io;
use std::path::PathBuf;

/// Why writing, importing or applying a layer failed. Each message is one
/// line that names the path or tar entry concerned.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A file of the tree being archived could not be read.
    #[error("cannot read {path}: {source}")]
    ReadTree { path: PathBuf, source: io::Error },

    /// A file changed size while it was being archived.
    #[error(
        "{path} changed while it was being archived: commit again once nothing writes to the tree"
    )]
    Changed { path: PathBuf },

    /// The compressed layer could not be written to its destination.
    #[error("cannot write the layer: {0}")]
    WriteLayer(io::Error),

    /// The layer stream could not be read or decompressed, or is not a tar.
    #[error("cannot read the layer: {0}")]
    ReadLayer(io::Error),

    /// A tar to import is malformed.
    #[error("not a usable tar archive: {0}")]
    NotATar(String),

    /// A layer entry would write outside the destination or is otherwise unsafe.
    #[error("layer entry '{entry}' {reason}: refusing it; the layer is malformed or hostile")]
    Hostile { entry: String, reason: &'static str },

    /// Applying an entry failed at the file system.
    #[error("layer entry '{entry}': cannot {action}: {source}")]
    Apply {
        entry: String,
        action: &'static str,
        source: io::Error,
    },

    /// The destination directory of an apply could not be opened.
    #[error("cannot open the destination {path}: {source}")]
    Dest { path: PathBuf, source: io::Error },
}

impl LayerError {
    pub(crate) fn read_tree(path: impl Into<PathBuf>, source: io::Error) -> LayerError {
        LayerError::ReadTree {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn apply(entry: &[u8], action: &'static str, source: io::Error) -> LayerError {
        LayerError::Apply {
            entry: show(entry),
            action,
            source,
        }
    }

    pub(crate) fn hostile(entry: &[u8], reason: &'static str) -> LayerError {
        LayerError::Hostile {
            entry: show(entry),
            reason,
        }
    }
}

/// An entry name for a message: lossy UTF-8, control characters escaped so a
/// hostile name cannot forge extra lines in a log.
pub(crate) fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).escape_debug().to_string()
}

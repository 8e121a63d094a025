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
    /// (The tar reader's messages quote header bytes: only an excerpt is shown.)
    #[error("cannot read the layer: {}", tar_reason(&.0.to_string()))]
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

    /// The uncompressed layer is not what the image's config says it is.
    #[error(
        "the layer's content has digest {actual}, but the image claims diff_id {expected}: refusing it; the image is damaged or forged, pull or build it again from a source you trust"
    )]
    DiffIdMismatch {
        expected: crate::digest::Digest,
        actual: crate::digest::Digest,
    },

    /// The uncompressed layer grew past the allowed size (a decompression bomb).
    #[error(
        "the layer expands to more than {} ({why}): refusing it",
        crate::units::human_bytes(*limit)
    )]
    TooLarge { limit: u64, why: String },

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

    /// A tar that cannot be read: the reader's message, cut short (it quotes
    /// header bytes, which may be anything, a password file included).
    pub(crate) fn not_a_tar(e: &io::Error) -> LayerError {
        LayerError::NotATar(tar_reason(&e.to_string()))
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

/// What the tar reader found wrong, without the bytes it quotes: its
/// messages read "numeric field was not a number: DATA when getting cksum
/// for NAME", where DATA and NAME are whatever the file holds (a password
/// file's lines, say). Only the reader's own words are kept.
pub(crate) fn tar_reason(message: &str) -> String {
    let Some((head, rest)) = message.split_once(": ") else {
        return crate::quote::excerpt_n(message, 80);
    };
    let field = rest
        .rsplit_once(" when getting ")
        .and_then(|(_, f)| f.split_whitespace().next())
        .filter(|f| f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    match field {
        Some(f) => format!(
            "{} (in a header's {f} field)",
            crate::quote::excerpt_n(head, 80)
        ),
        None => crate::quote::excerpt_n(head, 80),
    }
}

/// An entry name for a message: lossy UTF-8, control characters escaped so a
/// hostile name cannot forge extra lines in a log.
pub(crate) fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).escape_debug().to_string()
}

#[cfg(test)]
mod reason_tests {
    #[test]
    fn tar_reasons_keep_no_file_content() {
        let m = "numeric field was not a number: 999:7::: when getting cksum for root:*:20228:0:99999:7:::\ndaemon:*:1";
        assert_eq!(
            super::tar_reason(m),
            "numeric field was not a number (in a header's cksum field)"
        );
        assert_eq!(super::tar_reason("unexpected EOF"), "unexpected EOF");
    }
}

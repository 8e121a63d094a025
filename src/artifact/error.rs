//! Why an artifact could not be had.

use std::path::{Path, PathBuf};

/// A failed fetch, one line each, naming the artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Found nowhere: every place looked in, with why it did not work.
    #[error(
        "cannot get {artifact}: looked in {}; give a mirror holding it with --artifact-mirror DIR_OR_URL (as <component>/<version>/<file>)",
        looked.join(", ")
    )]
    NotFound {
        artifact: String,
        looked: Vec<String>,
    },
    /// The bytes are not the pinned file. They were discarded.
    #[error(
        "artifact {artifact} from {from} has {algorithm} {got}, but the catalog pins {expected}: the file is corrupt or not the pinned release, and was discarded"
    )]
    Checksum {
        artifact: String,
        from: String,
        algorithm: &'static str,
        expected: String,
        got: String,
    },
    /// `--offline` and some artifacts would need the network.
    #[error(
        "--offline: this build needs {} download(s) that are not in the artifact cache: {}; run once without --offline, or give an internal mirror (--artifact-mirror DIR_OR_URL, or --mirror FROM=TO for their URLs)",
        missing.len(),
        missing.join("; ")
    )]
    Offline { missing: Vec<String> },
    /// The cache could not be written.
    #[error("artifact cache {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ArtifactError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ArtifactError {
        ArtifactError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

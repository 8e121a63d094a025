//! The store's error type.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// What went wrong in the store. Each message says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is not an OCI image layout ({reason}): point at a directory holding 'oci-layout' and 'index.json'"
    )]
    NotALayout { path: PathBuf, reason: String },
    #[error("{path} is not valid JSON of the expected shape ({source}): repair or remove it")]
    BadJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("blob {digest} is not in the layout at {root}: pull or build the image again")]
    BlobNotFound { digest: Digest, root: PathBuf },
    #[error(
        "blob {digest} at {path} is corrupt (its content hashes to {actual}): delete it and pull or build again"
    )]
    CorruptBlob {
        digest: Digest,
        actual: Digest,
        path: PathBuf,
    },
    #[error(
        "content written does not match its digest: expected {expected}, got {actual} ({size} bytes); the blob was discarded"
    )]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("'{0}' is not a usable image name: use NAME[:TAG] or NAME@sha256:HEX without spaces")]
    InvalidName(String),
    #[error("no image named '{name}' in {root} (known: {known}): check the name or build/pull it")]
    NameNotFound {
        name: String,
        root: PathBuf,
        known: String,
    },
    #[error(
        "temp dir {0} is not on the store's file system: create it with Store::temp_dir so it can be renamed into place"
    )]
    CrossDevice(PathBuf),
    #[error("{0}")]
    Archive(String),
    #[error("image index {0} nests indexes too deep: refusing to follow it (is it a cycle?)")]
    TooDeep(Digest),
    #[error(
        "the archive is a docker-archive (manifest.json without oci-layout), which boxwright does not read: convert it with `skopeo copy docker-archive:FILE oci-archive:OUT.tar:NAME`"
    )]
    DockerArchive,
    #[error(
        "archive entry '{0}' escapes the archive (absolute path, '..' or a link): refusing to load it"
    )]
    HostileArchivePath(String),
    #[error("no build '{id}' in {dir}: `boxwright builds` lists the builds kept")]
    NoSuchBuild { id: String, dir: PathBuf },
    #[error("build id '{id}' is ambiguous (matches {matches}): give more of it")]
    AmbiguousBuild { id: String, matches: String },
    #[error(
        "image '{name}' is incomplete: blob {digest} ({role}) is missing from {root}; pull it again"
    )]
    Incomplete {
        name: String,
        digest: Digest,
        role: &'static str,
        root: PathBuf,
    },
}

impl StoreError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand used throughout the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

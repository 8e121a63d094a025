//! The registry module's error type: one line each, saying what failed where
//! and what to do. No variant ever carries a credential or token.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::registry::reference::ReferenceError;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    #[error("registries config {path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("credentials: {message}")]
    Credentials { message: String },

    /// The registry answered with an error status (after any retries).
    #[error("{what} on {registry}: HTTP {status}{detail}")]
    Http {
        what: String,
        registry: String,
        status: u16,
        /// The registry's own error code and message, prefixed with ": ".
        detail: String,
    },

    /// The registry could not be reached, or the connection failed, after retries.
    #[error("{what} on {registry}: {message}")]
    Transport {
        what: String,
        registry: String,
        message: String,
    },

    /// HTTPS reached a server that speaks plain HTTP, and plain HTTP to it
    /// is not allowed (see `RegistriesConfig::schemes`). Never retried.
    #[error(
        "{registry} speaks plain HTTP, not HTTPS: to allow plain HTTP to it, pass --tls-verify=false or set insecure = true for it in registries.toml"
    )]
    PlainHttp { registry: String },

    /// The registry refused our credentials (or has none for us).
    #[error("{registry} refused the credentials{user}: {message}")]
    Unauthorized {
        registry: String,
        user: String,
        message: String,
    },

    #[error("{what} from {registry} has digest {actual}, expected {expected}: refusing it")]
    DigestMismatch {
        what: String,
        registry: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("{what} from {registry} is {actual} bytes, expected {expected}: refusing it")]
    SizeMismatch {
        what: String,
        registry: String,
        expected: u64,
        actual: u64,
    },

    /// A layer fetched for the store (a lazy step-cache hit) whose content
    /// is not the diff_id recorded for it.
    #[error(
        "layer {digest} from {repository} holds content {actual}, not the diff_id {claimed} recorded for it: refusing it"
    )]
    LayerContent {
        digest: Digest,
        repository: String,
        claimed: Digest,
        actual: Digest,
    },

    #[error("malformed {what} from {registry}: {problem}")]
    Manifest {
        what: String,
        registry: String,
        #[source]
        problem: Malformed,
    },

    #[error("{reference} has {source} (choose one with --platform)")]
    NoPlatform {
        reference: String,
        #[source]
        source: crate::image::NoPlatform,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl RegistryError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> RegistryError {
        RegistryError::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status when the registry answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Http { status, .. } => Some(*status),
            RegistryError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }
}

/// What is wrong with a document a registry served (a manifest, an index,
/// a tag list, a token answer): the detail of [`RegistryError::Manifest`].
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    /// A manifest or index that is not one boxwright reads. Boxed: an image
    /// error is large, and every registry result would carry its size.
    #[error(transparent)]
    Document(Box<crate::image::ImageError>),
    /// A tag or catalog list that is not JSON.
    #[error("not JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    #[error("token answer is not JSON ({0})")]
    TokenNotJson(#[source] serde_json::Error),
    #[error("token answer has no 'token'")]
    NoToken,
    #[error("larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("bad Docker-Content-Digest header ({0})")]
    DigestHeader(#[source] DigestHeaderError),
    #[error("an index entry for a platform is itself an index")]
    NestedIndex,
    #[error("expected an image manifest")]
    NotAnImage,
}

/// Why a `Docker-Content-Digest` header does not read as a digest.
#[derive(Debug, thiserror::Error)]
pub enum DigestHeaderError {
    #[error(transparent)]
    NotText(#[from] reqwest::header::ToStrError),
    #[error(transparent)]
    Digest(#[from] crate::digest::DigestError),
}

/// Shorthand for results of this module.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

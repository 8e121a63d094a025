//! The session module's error type.

use crate::sandbox::SandboxError;
use crate::store::StoreError;

/// Why running something in a sandbox, or a store chore done in the
/// namespace worker, failed. One line each.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The user namespace or the sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// `--diff overlay` was asked for and an overlay cannot be mounted here.
    #[error("{why}; use --diff snapshot (or auto) to build without overlayfs")]
    NoOverlay { why: String },
    /// A worker could not be started or talked to, or said it failed.
    #[error("{0}")]
    Worker(String),
    /// A sandbox name that is not known.
    #[error("no sandbox named '{0}': see boxwright ps -a")]
    NoSuchSandbox(String),
    /// A sandbox name already taken.
    #[error(
        "a sandbox named '{0}' already exists: choose another --name, or remove it with boxwright rm {0}"
    )]
    NameTaken(String),
    /// A sandbox in the wrong state for what was asked.
    #[error("sandbox '{name}' is {status}: {hint}")]
    WrongState {
        name: String,
        status: String,
        hint: String,
    },
    /// A sandbox's files could not be read or written.
    #[error("sandbox {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A bad name, volume or other argument.
    #[error("{0}")]
    BadInput(String),
}

impl SessionError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> SessionError {
        SessionError::Io {
            what: what.into(),
            source,
        }
    }

    /// True when the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            SessionError::NoSuchSandbox(_) | SessionError::NameTaken(_) | SessionError::BadInput(_)
        )
    }
}

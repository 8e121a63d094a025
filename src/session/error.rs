//! The session module's error type.

use std::io;
use std::path::PathBuf;

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
    /// A worker said it failed (its message crossed the process boundary as
    /// text), or answered something unexpected.
    #[error("{0}")]
    Worker(String),
    /// A worker could not be started or talked to.
    #[error(transparent)]
    WorkerProcess(#[from] WorkerError),
    /// The worker that empties the store's trash could not be run.
    #[error("cannot empty the store's trash: {0}")]
    EmptyTrash(#[source] WorkerError),
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

/// Why a worker (boxwright re-executed in the build's user namespace) could
/// not be started or talked to, on the parent's side. What a worker itself
/// reports failing arrives as text in its answer: [`SessionError::Worker`].
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot start a worker in a user namespace: {0}")]
    Spawn(#[source] SandboxError),
    /// The request could not be serialized (a boxwright bug).
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    #[error("cannot talk to the worker: {0}")]
    Send(#[source] io::Error),
    /// Waiting for the worker process failed.
    #[error("{0}")]
    Wait(#[source] io::Error),
    /// The worker exited without printing an answer (it crashed or was killed).
    #[error("the worker process ended without an answer ({0})")]
    NoAnswer(std::process::ExitStatus),
    /// The request file of an attached worker could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteRequest {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Why [`remove_tree`](super::worker::remove_tree) left a tree in place.
#[derive(Debug, thiserror::Error)]
pub enum RemoveTreeError {
    /// The tree could not be looked at (other than not being there).
    #[error("{}: {source}", path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

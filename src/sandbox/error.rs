//! The sandbox's error type.
//!
//! Errors raised in the processes that set up a container (which are forked
//! children of the helper) travel back to the helper as JSON over a pipe, so
//! every variant carries plain strings rather than `io::Error` sources.

use serde::{Deserialize, Serialize};

/// What went wrong while mapping ids, spawning into a user namespace or
/// running a step. Each message is one line that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SandboxError {
    /// The kernel refused to create a user namespace.
    #[error(
        "cannot create a user namespace ({reason}): user namespaces are disabled or restricted; \
         set sysctl user.max_user_namespaces above 0 (and kernel.unprivileged_userns_clone=1 on \
         Debian, kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu)"
    )]
    UserNamespace { reason: String },

    /// `newuidmap` or `newgidmap` failed.
    #[error(
        "{tool} failed ({stderr}): check the ranges for your user in /etc/subuid and /etc/subgid \
         and that {tool} is setuid root (Debian package uidmap)"
    )]
    IdMapTool { tool: String, stderr: String },

    /// Writing a `/proc/PID/{uid_map,gid_map,setgroups}` file failed.
    #[error("cannot write {file} ({reason}): the id mapping was refused by the kernel")]
    IdMapWrite { file: String, reason: String },

    /// Reading the id configuration (`/proc/self/uid_map`, `/etc/subuid`) failed.
    #[error("cannot read the id configuration {file} ({reason}): check that it is readable")]
    IdConfig { file: String, reason: String },

    /// The helper program could not be started.
    #[error("cannot start {program} in a user namespace ({reason})")]
    Spawn { program: String, reason: String },

    /// `run_in_namespace` was called outside a user namespace set up by `Userns::spawn`.
    #[error(
        "the sandbox must run as root of a user namespace ({reason}): start the helper with \
         Userns::spawn"
    )]
    NotNamespaceRoot { reason: String },

    /// The run specification cannot be carried out as given.
    #[error("invalid sandbox specification: {reason}")]
    InvalidSpec { reason: String },

    /// Mounting the overlay failed: the caller may fall back to a snapshot diff.
    #[error("overlay mount failed ({reason}): falling back is possible with the snapshot diff")]
    Overlay { reason: String },

    /// The overlay option string does not fit in one page.
    #[error(
        "overlay options are {len} bytes, over the kernel's limit of {limit}: too many or too \
         deeply nested layer directories; squash layers or use the snapshot diff"
    )]
    OverlayOptionsTooLong { len: usize, limit: usize },

    /// A mount needed by the sandbox failed.
    #[error("cannot mount {what} on {target} ({reason})")]
    Mount {
        what: String,
        target: String,
        reason: String,
    },

    /// The root filesystem has something in the way of a sandbox mountpoint.
    #[error(
        "the image's {path} {reason}: the sandbox needs it as a mountpoint; fix the base image"
    )]
    Mountpoint { path: String, reason: String },

    /// A file-system operation of the sandbox itself failed.
    #[error("cannot {action} {path} ({reason})")]
    Io {
        action: String,
        path: String,
        reason: String,
    },

    /// The step's program could not be executed.
    #[error(
        "cannot run `{program}` ({reason}): check that it exists in the image and is executable"
    )]
    Exec { program: String, reason: String },

    /// A COPY step failed.
    #[error("cannot copy {path} ({reason})")]
    Copy { path: String, reason: String },

    /// The step's uid or gid has no mapping in this user namespace.
    #[error(
        "{kind} {id} is not mapped in this user namespace: configure subordinate ids (usermod \
         --add-subuids/--add-subgids) or run the step as root"
    )]
    Unmapped { kind: String, id: u32 },

    /// The fake-root seccomp filter could not be built or installed.
    #[error("cannot install the fake-root seccomp filter ({reason})")]
    Seccomp { reason: String },

    /// The step ran longer than its timeout; all its processes were killed.
    #[error(
        "timed out after {seconds}s; every process it started was killed (raise the step's timeout, or --step-timeout)"
    )]
    TimedOut { seconds: u64 },

    /// A process of the sandbox itself died unexpectedly.
    #[error("sandbox process failed ({reason}): this is a boxwright bug, please report it")]
    Internal { reason: String },
}

impl SandboxError {
    /// An [`SandboxError::Io`] from an action, a path and the OS error.
    pub(crate) fn io(action: &str, path: impl AsRef<std::path::Path>, err: impl ToString) -> Self {
        SandboxError::Io {
            action: action.to_string(),
            path: path.as_ref().display().to_string(),
            reason: err.to_string(),
        }
    }

    /// A [`SandboxError::Mount`] from what is mounted, where, and the OS error.
    pub(crate) fn mount(
        what: &str,
        target: impl AsRef<std::path::Path>,
        err: impl ToString,
    ) -> Self {
        SandboxError::Mount {
            what: what.to_string(),
            target: target.as_ref().display().to_string(),
            reason: err.to_string(),
        }
    }
}

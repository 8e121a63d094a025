//! Sandboxes: user namespaces, id mapping, overlay mounts, chroot, running a step.
//!
//! Every privileged-looking operation of a build runs in a *helper*:
//! boxwright's own executable re-executed inside a fresh user namespace.
//! This module provides both halves of that mechanism:
//!
//! - outside, [`IdMapping::detect`] picks one of the three rootless modes
//!   and [`Userns::spawn`] starts the helper in a user namespace with those
//!   maps, as root of the namespace;
//! - inside, [`run_in_namespace`] runs one step ([`RunSpec`]) in its own
//!   mount, pid, uts, ipc (and optionally network) namespaces on an overlay
//!   (or a plain directory), and [`probe_overlay`] tells whether overlays
//!   can be used at all.
//!
//! Nothing the sandbox adds for its own mounts is left in the upperdir.

mod console;
mod container;
mod copy;
mod copy_files;
mod devices;
mod enter;
mod environment;
mod error;
mod idmap;
mod init;
mod mountpoints;
mod mounts;
mod net;
mod overlay;
mod process;
mod run;
mod seccomp;
mod signals;
mod spec;
mod userns;
mod users;

pub use console::{CONSOLE_FD, receive_terminal};
pub use container::prepare_mountpoints;
pub use enter::{EnterSpec, enter_and_run};
pub use environment::DEFAULT_PATH;
pub use error::SandboxError;
pub use idmap::{IdMapping, IdMode, IdRange};
pub use overlay::probe_overlay;
pub use run::run_in_namespace;
pub use spec::{
    Action, BindMount, CA_BUNDLE_PATH, CopyFiles, HostEnv, ImageMount, Network, Rootfs, RunSpec,
    StdioMode,
};
pub use userns::Userns;

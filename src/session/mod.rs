//! Running things in sandboxes over the store's layers: the one home of the
//! machinery that build steps, `run`, `exec` and `fork` share.
//!
//! - [`worker`]: boxwright re-executed inside the user namespace, where
//!   container-side ids are visible: it unpacks layers, runs a sandbox,
//!   commits an upperdir, removes trees of subordinate ids;
//! - [`StepRunner`]: a build's steps, each on the layers below it with a
//!   fresh upperdir (or the snapshot fallback), committed as one layer;
//! - housekeeping: trash, stale leftovers, gc and fsck, which need the worker.
//!
//! The sandbox module only knows how to spawn into namespaces and run one
//! process tree; the layer module only knows files; this module puts them
//! together over a [`Store`](crate::store::Store).

mod error;
mod housekeeping;
mod lowers;
mod pty;
mod sandbox;
mod steps;
pub mod worker;

pub use error::{RemoveTreeError, SessionError, WorkerError};
pub use housekeeping::{
    GcOutcome, clean_stale, collect_garbage, empty_own_trash, evict_unpacked, fsck,
};
pub use lowers::Unpacker;
pub use sandbox::{
    ENTER_ARG, ExecRequest, MONITOR_ARG, Paused, RunRequest, SandboxFiles, SandboxInfo,
    SandboxRecord, SandboxRootfs, SandboxState, Sandboxes, Status, check_name, enter_main,
    monitor_main,
};
pub use steps::{DiffMethod, ImageAt, ImageUse, StepResult, StepRunner};
pub use worker::Workers;

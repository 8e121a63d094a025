//! The entry point that runs one step in a container.
//!
//! Process layout, all inside the helper's user namespace:
//!
//! ```text
//! helper (calls run_in_namespace; keeps its namespaces untouched)
//!  └─ setup    new mount/pid/uts/ipc(/net) namespaces; mounts the rootfs and
//!     │        everything around it; afterwards unmounts and removes stubs
//!     └─ init  pid 1: proc, pivot_root; runs a COPY itself, or forks
//!        └─ step   env, ids, seccomp, exec — output to the helper's stderr
//! ```

use nix::unistd::Uid;

use super::container::setup_and_run;
use super::error::SandboxError;
use super::process::{Ended, fork_child, report_pipe, wait_for};
use super::spec::RunSpec;

/// Runs `spec` in fresh mount, pid, uts and ipc namespaces (and a
/// loopback-only network namespace for `Network::None`) and returns the
/// step's exit code, or 128 + signal if it was killed.
///
/// Must be called as root of a user namespace, i.e. in a process started by
/// [`Userns::spawn`](super::Userns::spawn). The step's stdout and stderr go to
/// this process's stderr; its stdin is /dev/null. The caller's own
/// namespaces, mounts and working directory are left as they were.
pub fn run_in_namespace(spec: &RunSpec) -> Result<i32, SandboxError> {
    spec.validate()?;
    let euid = Uid::effective();
    if !euid.is_root() {
        return Err(SandboxError::NotNamespaceRoot {
            reason: format!("running as uid {euid}"),
        });
    }
    // The root filesystem needs a mountpoint; in the setup process's private
    // mount namespace this empty directory is all that the host sees.
    let merged = tempfile::Builder::new()
        .prefix("boxwright-root-")
        .tempdir()
        .map_err(|e| SandboxError::io("create a mountpoint in", std::env::temp_dir(), e))?;
    let (reports, reporter) = report_pipe()?;
    let setup = fork_child(&reporter, || setup_and_run(spec, merged.path(), &reporter));
    drop(reporter);
    let ended = match setup {
        Ok(pid) => wait_for(pid),
        Err(e) => Err(e),
    };
    let reported = reports.first_error();
    let removed = merged
        .close()
        .map_err(|e| SandboxError::io("remove the mountpoint in", std::env::temp_dir(), e));
    if let Some(err) = reported {
        return Err(err);
    }
    match ended? {
        Ended::Exited(code) => {
            removed?;
            Ok(code)
        }
        Ended::Signaled(sig) => Err(SandboxError::Internal {
            reason: format!("the sandbox set-up process was killed by signal {sig}"),
        }),
    }
}

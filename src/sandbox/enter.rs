//! Entering a running sandbox (`exec`): join the namespaces of its init,
//! then fork (the pid namespace applies to children) and run a program as a
//! step is run: the image's user, environment and working directory,
//! default signals, the fake-root filter in single-id mode.
//!
//! Must run in a single-threaded process (`setns` into a user namespace
//! refuses threaded callers): boxwright re-executes itself for it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use super::error::SandboxError;
use super::init::{Step, reap_until};
use super::process::{fork_child, report_pipe};
use super::spec::{HostEnv, StdioMode};
use super::users;

/// What to run in a running sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterSpec {
    /// Host pid of the sandbox's init (pid 1 inside).
    pub pid: i32,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// As an image's `User` (`name`, `uid[:gid]`); empty means root.
    pub user: String,
    pub stdio: StdioMode,
    pub fake_root: bool,
    /// The proxies and CA variables the sandbox's program got.
    #[serde(default)]
    pub host: HostEnv,
}

/// Namespaces joined, in this order: the user namespace first (it grants
/// the capabilities the others need).
const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
];

/// Joins the sandbox of `spec.pid` and runs the program; returns its exit
/// status (128 + signal when killed).
pub fn enter_and_run(spec: &EnterSpec) -> Result<i32, SandboxError> {
    let mut fds: Vec<(&str, OwnedFd, CloneFlags)> = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{}/ns/{name}", spec.pid);
        // Joining a namespace we are already in is refused (user) or a
        // no-op: only different ones are joined (the host network, say).
        let same = std::fs::read_link(&path).ok()
            == std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
        if same {
            continue;
        }
        let fd = nix::fcntl::open(
            Path::new(&path),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| SandboxError::io("open", &path, e))?;
        fds.push((name, fd, flag));
    }
    for (name, fd, flag) in &fds {
        nix::sched::setns(fd.as_fd(), *flag).map_err(|e| {
            SandboxError::io(
                &format!("join the {name} namespace of"),
                format!("process {}", spec.pid),
                e,
            )
        })?;
    }
    // Joining the mount namespace moved this process to its root (the
    // sandbox's, since its init pivoted there); start from it.
    nix::unistd::chdir("/").map_err(|e| SandboxError::io("enter", "/", e))?;

    let (uid, gid, home) = if spec.user.is_empty() {
        (0, 0, None)
    } else {
        let u = users::resolve(&spec.user, Path::new("/"))?;
        (u.uid, u.gid, u.home)
    };
    let mut env = spec.env.clone();
    if let Some(home) = home
        && !env.iter().any(|(k, _)| k == "HOME")
    {
        env.push(("HOME".into(), home));
    }
    let (reports, reporter) = report_pipe()?;
    // Prepared in the child: it is in the sandbox's pid namespace, where
    // the sandbox's /proc (and /proc/self) is about it.
    let child = fork_child(&reporter, || {
        Step::prepare(
            &spec.host,
            spec.fake_root,
            spec.stdio,
            &spec.argv,
            &env,
            &spec.cwd,
            uid,
            gid,
        )?
        .exec()
    })?;
    drop(reporter);
    let code = reap_until(child);
    if let Some(err) = reports.first_error() {
        return Err(err);
    }
    code
}

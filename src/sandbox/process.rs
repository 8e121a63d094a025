//! Forked sandbox processes and how their errors reach the helper.
//!
//! The helper forks the processes that build the container; each writes a
//! failure as one JSON line to a shared close-on-exec pipe, which the helper
//! reads once they have ended. Lines are far below `PIPE_BUF`, so writes
//! never interleave.

use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use super::error::SandboxError;

/// Exit code of a sandbox process that failed before the step ran; the real
/// cause travels on the report pipe.
pub(crate) const SETUP_FAILED: i32 = 125;

/// The write end of the report pipe.
pub(crate) struct Reporter {
    fd: OwnedFd,
}

/// The read end of the report pipe.
pub(crate) struct Reports {
    fd: OwnedFd,
}

/// A fresh report pipe; both ends are close-on-exec, so a step never inherits it.
pub(crate) fn report_pipe() -> Result<(Reports, Reporter), SandboxError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SandboxError::io("create", "a pipe", e))?;
    Ok((Reports { fd: r }, Reporter { fd: w }))
}

impl Reporter {
    /// Sends `err` to the helper; failures to send are ignored (the exit
    /// status still says something went wrong).
    pub(crate) fn send(&self, err: &SandboxError) {
        let Ok(mut line) = serde_json::to_vec(err) else {
            return;
        };
        line.push(b'\n');
        let mut rest = &line[..];
        while !rest.is_empty() {
            match nix::unistd::write(self.fd.as_fd(), rest) {
                Ok(0) => return,
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }
}

impl Reports {
    /// The first error reported, read once every sandbox process has ended.
    ///
    /// It does not wait for EOF: a process forked concurrently by another
    /// thread of the helper may hold a copy of the write end for as long as
    /// it lives. Reports are a few short lines, far below the pipe's
    /// capacity, so no writer ever blocked and everything is already there.
    pub(crate) fn first_error(self) -> Option<SandboxError> {
        let fd = self.fd;
        if let Err(e) = nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        ) {
            return Some(SandboxError::Internal {
                reason: format!("cannot read the sandbox's report pipe: {e}"),
            });
        }
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(&fd, &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EAGAIN) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Some(SandboxError::Internal {
                        reason: format!("cannot read the sandbox's report pipe: {e}"),
                    });
                }
            }
        }
        String::from_utf8_lossy(&bytes)
            .lines()
            .find_map(|line| serde_json::from_str(line).ok())
    }
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Exited(i32),
    Signaled(i32),
}

impl Ended {
    /// The shell convention: the exit code, or 128 + signal number.
    pub(crate) fn code(self) -> i32 {
        match self {
            Ended::Exited(code) => code,
            Ended::Signaled(sig) => 128 + sig,
        }
    }
}

/// Forks a child that runs `body` and exits with its code; an error is sent
/// through `reporter` and the child exits with [`SETUP_FAILED`]. The child
/// is killed if the forking thread dies.
///
/// The caller may be multi-threaded: `body` must not rely on locks other
/// threads could hold (glibc keeps `malloc` usable after fork).
pub(crate) fn fork_child(
    reporter: &Reporter,
    body: impl FnOnce() -> Result<i32, SandboxError>,
) -> Result<Pid, SandboxError> {
    let parent = nix::unistd::getpid();
    // SAFETY: the child only runs `body`, which by contract avoids locks
    // held by other threads, and leaves with `_exit` (no atexit handlers).
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            // SAFETY: prctl with constant arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            // A parent outside our pid namespace shows up as pid 0.
            let ppid = nix::unistd::getppid();
            let code = if ppid != parent && ppid.as_raw() != 0 {
                SETUP_FAILED
            } else {
                match catch_unwind(AssertUnwindSafe(body)) {
                    Ok(Ok(code)) => code,
                    Ok(Err(e)) => {
                        reporter.send(&e);
                        SETUP_FAILED
                    }
                    Err(_) => {
                        reporter.send(&SandboxError::Internal {
                            reason: "a sandbox process panicked".to_string(),
                        });
                        SETUP_FAILED
                    }
                }
            };
            // SAFETY: ends the forked child without running the parent's
            // atexit handlers or flushing its buffers twice.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => Ok(child),
        Err(e) => Err(SandboxError::io("fork", "a sandbox process", e)),
    }
}

/// Waits for `pid` to end, retrying on signals.
pub(crate) fn wait_for(pid: Pid) -> Result<Ended, SandboxError> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Ended::Signaled(sig as i32)),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::io("wait for", format!("process {pid}"), e)),
        }
    }
}

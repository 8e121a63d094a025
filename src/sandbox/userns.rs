//! Spawning a program inside a fresh user namespace with the chosen id maps.
//!
//! The child unshares its user namespace between fork and exec, tells the
//! parent its pid, and waits until the parent has written the uid/gid maps
//! (directly as root or for a single id, through `newuidmap`/`newgidmap`
//! otherwise). `Command::spawn` only returns once the child has exec'd, so
//! the parent side runs on a short-lived thread.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use super::error::SandboxError;
use super::idmap::{IdMapping, IdMode, IdRange};

/// Message tags the child sends before exec.
const TAG_UNSHARED: u32 = 1;
const TAG_UNSHARE_FAILED: u32 = 2;

/// Starts programs in user namespaces mapped according to an [`IdMapping`].
#[derive(Debug, Clone)]
pub struct Userns {
    mapping: IdMapping,
}

impl Userns {
    /// A spawner for `mapping` (usually [`IdMapping::detect`]).
    pub fn new(mapping: IdMapping) -> Userns {
        Userns { mapping }
    }

    /// The mapping this spawner applies.
    pub fn mapping(&self) -> &IdMapping {
        &self.mapping
    }

    /// Spawns `cmd` (typically boxwright's own executable with helper
    /// arguments) inside a new user namespace whose uid/gid maps are written
    /// before the child's exec: the program runs as uid 0/gid 0 of that
    /// namespace with full capabilities there. Stdio, environment and
    /// working directory are whatever `cmd` says. The maps are written by
    /// this process, so it must be the user the mapping was detected for.
    pub fn spawn(&self, mut cmd: Command) -> Result<Child, SandboxError> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let (ready_r, ready_w) = cloexec_pipe()?;
        let (go_r, go_w) = cloexec_pipe()?;
        let fds = ChildFds {
            ready_r: ready_r.as_raw_fd(),
            ready_w: ready_w.as_raw_fd(),
            go_r: go_r.as_raw_fd(),
            go_w: go_w.as_raw_fd(),
        };
        // SAFETY: the closure only makes raw, async-signal-safe syscalls on
        // integers it captured; it allocates nothing and takes no locks.
        unsafe {
            cmd.pre_exec(move || enter_userns(fds));
        }
        let mapping = self.mapping.clone();
        let mapper = std::thread::spawn(move || map_child(&mapping, ready_r, go_w));
        let spawned = cmd.spawn();
        // Our copies of the child's ends must go, so that the mapper sees EOF
        // if the child died before reporting.
        drop(ready_w);
        drop(go_r);
        let mapped = mapper.join().unwrap_or_else(|_| {
            Err(SandboxError::Internal {
                reason: "the id-mapping thread panicked".to_string(),
            })
        });
        match (spawned, mapped) {
            (Ok(child), Ok(())) => Ok(child),
            (Ok(mut child), Err(e)) => {
                // Cannot happen (the child does not exec without the go byte),
                // but never leave a half-mapped child running.
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
            (Err(_), Err(e)) => Err(e),
            (Err(e), Ok(())) => Err(SandboxError::Spawn {
                program,
                reason: e.to_string(),
            }),
        }
    }
}

/// The raw pipe ends the pre-exec closure works with.
#[derive(Clone, Copy)]
struct ChildFds {
    ready_r: RawFd,
    ready_w: RawFd,
    go_r: RawFd,
    go_w: RawFd,
}

fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SandboxError::io("create", "a pipe", e))
}

/// Runs in the child between fork and exec: only raw syscalls allowed.
fn enter_userns(fds: ChildFds) -> std::io::Result<()> {
    // SAFETY: plain syscalls on fds this process owns (fork copies) and on
    // stack buffers; all are async-signal-safe.
    unsafe {
        libc::close(fds.ready_r);
        libc::close(fds.go_w);
        // newuidmap refuses a non-dumpable target (one that changed credentials).
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
        let rc = libc::unshare(libc::CLONE_NEWUSER);
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let (tag, value) = if rc == 0 {
            (TAG_UNSHARED, libc::getpid() as u32)
        } else {
            (TAG_UNSHARE_FAILED, errno as u32)
        };
        let (t, v) = (tag.to_ne_bytes(), value.to_ne_bytes());
        let bytes = [t[0], t[1], t[2], t[3], v[0], v[1], v[2], v[3]];
        let mut written = 0;
        while written < bytes.len() {
            let n = libc::write(
                fds.ready_w,
                bytes[written..].as_ptr().cast(),
                bytes.len() - written,
            );
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                break;
            }
            written += n as usize;
        }
        libc::close(fds.ready_w);
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(errno));
        }
        let mut go = 0u8;
        loop {
            let n = libc::read(fds.go_r, (&mut go as *mut u8).cast(), 1);
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n != 1 {
                // The parent could not write the maps; it reports why.
                return Err(std::io::Error::from_raw_os_error(libc::EPERM));
            }
            break;
        }
        libc::close(fds.go_r);
        // Supplementary groups from the host are unmapped (nobody) inside;
        // single-id namespaces forbid setgroups, which is fine.
        libc::setgroups(0, std::ptr::null());
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The helper dies with the thread that spawned it: a killed build
        // must not leave a step running in the background (set after the id
        // switch, which would clear it).
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    }
    Ok(())
}

/// Parent side: wait for the child's pid, write its maps, release it.
fn map_child(mapping: &IdMapping, ready_r: OwnedFd, go_w: OwnedFd) -> Result<(), SandboxError> {
    let mut msg = [0u8; 8];
    let mut ready = File::from(ready_r);
    ready
        .read_exact(&mut msg)
        .map_err(|e| SandboxError::Internal {
            reason: format!("the child died before entering its user namespace: {e}"),
        })?;
    let tag = u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
    let value = u32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
    if tag == TAG_UNSHARE_FAILED {
        return Err(SandboxError::UserNamespace {
            reason: nix::errno::Errno::from_raw(value as i32).to_string(),
        });
    }
    write_maps(mapping, value)?;
    File::from(go_w)
        .write_all(&[1])
        .map_err(|e| SandboxError::Internal {
            reason: format!("cannot release the child after mapping its ids: {e}"),
        })
}

/// Writes the uid and gid maps of process `pid` the way `mapping.mode` allows.
fn write_maps(mapping: &IdMapping, pid: u32) -> Result<(), SandboxError> {
    match mapping.mode {
        IdMode::Root => {
            write_proc(pid, "uid_map", &map_lines(&mapping.uids))?;
            write_proc(pid, "gid_map", &map_lines(&mapping.gids))
        }
        IdMode::Single => {
            // An unprivileged process may map only its own ids, and a gid
            // map is accepted only once setgroups is denied.
            write_proc(pid, "setgroups", "deny")?;
            write_proc(pid, "uid_map", &map_lines(&mapping.uids))?;
            write_proc(pid, "gid_map", &map_lines(&mapping.gids))
        }
        IdMode::Subordinate => {
            run_map_tool("newuidmap", pid, &mapping.uids)?;
            run_map_tool("newgidmap", pid, &mapping.gids)
        }
    }
}

/// "container host len" lines, as `/proc/PID/uid_map` wants them.
fn map_lines(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.container, r.host, r.len))
        .collect()
}

/// Writes `text` to `/proc/PID/name` in one write, as the kernel requires.
fn write_proc(pid: u32, name: &str, text: &str) -> Result<(), SandboxError> {
    let file = format!("/proc/{pid}/{name}");
    let err = |e: std::io::Error| SandboxError::IdMapWrite {
        file: file.clone(),
        reason: e.to_string(),
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .map_err(err)?;
    let n = f.write(text.as_bytes()).map_err(err)?;
    if n != text.len() {
        return Err(SandboxError::IdMapWrite {
            file,
            reason: format!("short write ({n} of {} bytes)", text.len()),
        });
    }
    Ok(())
}

/// Runs `newuidmap PID c h l ...` (or newgidmap) and turns failure into an
/// error quoting its stderr.
fn run_map_tool(tool: &str, pid: u32, ranges: &[IdRange]) -> Result<(), SandboxError> {
    let mut cmd = Command::new(tool);
    cmd.arg(pid.to_string());
    for r in ranges {
        cmd.args([
            r.container.to_string(),
            r.host.to_string(),
            r.len.to_string(),
        ]);
    }
    let out = cmd.output().map_err(|e| SandboxError::IdMapTool {
        tool: tool.to_string(),
        stderr: format!("cannot run it: {e}"),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    Err(SandboxError::IdMapTool {
        tool: tool.to_string(),
        stderr: if stderr.is_empty() {
            out.status.to_string()
        } else {
            stderr
        },
    })
}

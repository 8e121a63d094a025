//! The container's pid 1 and the step it runs.
//!
//! Init mounts /proc (it is the first process of the new pid namespace),
//! pivots into the root filesystem and either performs a COPY itself or
//! forks the step and reaps every zombie until the step exits. When init
//! exits, the kernel kills whatever the step left running.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid};

use super::copy::{CopyJob, copy_into};
use super::environment::{APT_CONF_PATH, APT_SOURCES_DIR, step_env};
use super::error::SandboxError;
use super::mounts::{detach, mount_fs};
use super::process::{Reporter, fork_child};
use super::seccomp::install_fake_root;
use super::spec::{Action, HostEnv, RunSpec, StdioMode};

/// Body of pid 1; returns the step's exit code.
pub(crate) fn container_init(
    spec: &RunSpec,
    merged: &Path,
    reporter: &Reporter,
) -> Result<i32, SandboxError> {
    // A mount namespace of its own, so pivot_root moves only the container's
    // root and the set-up process keeps the host's paths for clean-up.
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| SandboxError::NotNamespaceRoot {
        reason: format!("cannot create a mount namespace: {e}"),
    })?;
    if let Action::CopyFiles(job) = &spec.action {
        // As for Copy below: the tree is opened on the host side, the
        // image becomes the root, the tree the working directory.
        let tree = nix::fcntl::open(
            &job.root,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| SandboxError::io("open the copy source", &job.root, e))?;
        enter_root(merged)?;
        nix::unistd::fchdir(&tree)
            .map_err(|e| SandboxError::io("enter the copy source", &job.root, e))?;
        if spec.fake_root {
            install_fake_root()?;
        }
        super::copy_files::copy_files(job)?;
        return Ok(0);
    }
    if let Action::Copy {
        src,
        dest,
        mode,
        owner,
    } = &spec.action
    {
        // The source is reached through a directory opened before the
        // pivot and made the working directory after it: reads go to the
        // host's source, writes (absolute paths) into the image's root.
        let (dir, name) = match (src.is_dir(), src.parent(), src.file_name()) {
            (true, _, _) => (src.as_path(), None),
            (false, Some(parent), Some(name)) => (parent, Some(name)),
            _ => (src.as_path(), None),
        };
        let src_dir = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| SandboxError::io("open the copy source", dir, e))?;
        enter_root(merged)?;
        nix::unistd::fchdir(&src_dir)
            .map_err(|e| SandboxError::io("enter the copy source", dir, e))?;
        if spec.fake_root {
            install_fake_root()?;
        }
        let relative = name.map(Path::new).unwrap_or(Path::new("."));
        copy_into(&CopyJob {
            src: relative,
            src_name: src.file_name().unwrap_or(OsStr::new("src")),
            dest,
            mode: *mode,
            owner: owner.unwrap_or((0, 0)),
            excludes: None,
            source_excludes: None,
        })?;
        return Ok(0);
    }
    // Mounted before the host's /proc is detached: the kernel only allows a
    // new proc where an unobstructed one is already visible. Inside a
    // container whose /proc is masked (podman's and Kubernetes' default,
    // unless `procMount: Unmasked`), a new proc is refused: the container's
    // /proc is bound instead (with its masks), which shows the container's
    // processes rather than the step's own but runs every build step.
    let proc = merged.join("proc");
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if let Err(e) = mount_fs("proc", &proc, flags, None) {
        let bound = nix::mount::mount(
            Some(Path::new("/proc")),
            &proc,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        );
        if bound.is_err() {
            return Err(e);
        }
    }
    enter_root(merged)?;
    match &spec.action {
        Action::Copy { .. } | Action::CopyFiles(_) => unreachable!("handled above"),
        Action::Exec {
            argv,
            env,
            cwd,
            uid,
            gid,
            user,
        } => {
            redirect_apt_sources(spec)?;
            let (uid, gid, home, groups) = match user.as_deref().filter(|u| !u.is_empty()) {
                Some(u) => {
                    let found = super::users::resolve(u, Path::new("/"))?;
                    (found.uid, found.gid, found.home, found.groups)
                }
                None => (*uid, *gid, None, Vec::new()),
            };
            let mut env = env.clone();
            if let Some(home) = home
                && !env.iter().any(|(k, _)| k == "HOME")
            {
                env.push(("HOME".into(), home));
            }
            let step = Step::prepare(
                &spec.host,
                spec.fake_root,
                spec.stdio,
                argv,
                &env,
                cwd,
                uid,
                gid,
            )?;
            let step = Step {
                groups,
                no_new_privs: spec.no_new_privs,
                ..step
            };
            match spec.timeout_secs {
                None => {
                    let pid = fork_child(reporter, || step.exec())?;
                    reap_until(pid)
                }
                Some(seconds) => {
                    // Blocked before the fork, so no SIGCHLD is lost between
                    // the fork and the wait; the step unblocks it before exec.
                    let chld = block_sigchld()?;
                    let pid = fork_child(reporter, || step.exec())?;
                    reap_until_deadline(pid, &chld, seconds)
                }
            }
        }
    }
}

/// With download mirrors, gives apt rewritten copies of the image's sources
/// (read here, inside the root, so symlinks resolve in the image) on the
/// /run tmpfs and adds the lines that point apt at them to boxwright's apt
/// snippet. The image's own sources are left as they are.
fn redirect_apt_sources(spec: &RunSpec) -> Result<(), SandboxError> {
    let dir = Path::new(APT_SOURCES_DIR);
    let conf = crate::mirror::apt::redirect_sources(
        Path::new("/"),
        dir,
        APT_SOURCES_DIR,
        &spec.host.mirrors,
    )
    .map_err(|e| SandboxError::io("rewrite apt's sources into", dir, e))?;
    if let Some(lines) = conf {
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(APT_CONF_PATH)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .map_err(|e| SandboxError::io("write", APT_CONF_PATH, e))?;
    }
    Ok(())
}

/// Makes `merged` the root and drops every view of the host's tree.
fn enter_root(merged: &Path) -> Result<(), SandboxError> {
    nix::unistd::chdir(merged).map_err(|e| SandboxError::io("enter", merged, e))?;
    // pivot_root(".", ".") stacks the old root on top of the new one;
    // detaching "." then removes it.
    nix::unistd::pivot_root(".", ".").map_err(|e| SandboxError::io("pivot into", merged, e))?;
    detach(Path::new("."))?;
    nix::unistd::chdir("/").map_err(|e| SandboxError::io("enter", "/", e))
}

/// Waits for `step`, reaping any other child (orphans re-parent to pid 1).
pub(crate) fn reap_until(step: Pid) -> Result<i32, SandboxError> {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == step => return Ok(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == step => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::io("wait for", "the step", e)),
        }
    }
}

/// Blocks SIGCHLD and returns a signalfd that reports it.
fn block_sigchld() -> Result<SignalFd, SandboxError> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.thread_block()
        .map_err(|e| SandboxError::io("block SIGCHLD in", "the sandbox init", e))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| SandboxError::io("create a signalfd in", "the sandbox init", e))
}

/// [`reap_until`] with a deadline: when `seconds` have passed and the step
/// still runs, kills every process of the pid namespace (init is its pid 1,
/// so `kill(-1)` reaches them all and no other) and fails.
fn reap_until_deadline(step: Pid, chld: &SignalFd, seconds: u64) -> Result<i32, SandboxError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == step => return Ok(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == step => {
                    return Ok(128 + sig as i32);
                }
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(SandboxError::io("wait for", "the step", e)),
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let _ = nix::sys::signal::kill(Pid::from_raw(-1), Signal::SIGKILL);
            return Err(SandboxError::TimedOut { seconds });
        }
        let ms = u16::try_from(left.as_millis().clamp(1, 60_000)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(chld.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(SandboxError::io("wait for", "the step", e)),
        }
        // Drain the pending SIGCHLDs; the waitpid loop does the real work.
        while let Ok(Some(_)) = chld.read_signal() {}
    }
}

/// Everything the step process needs, computed before fork.
pub(crate) struct Step {
    program: String,
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
    uid: u32,
    gid: u32,
    /// Supplementary groups (none when empty).
    groups: Vec<u32>,
    /// Set `no_new_privs` before the exec.
    no_new_privs: bool,
    fake_root: bool,
    stdio: StdioMode,
}

impl Step {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn prepare(
        host: &HostEnv,
        fake_root: bool,
        stdio: StdioMode,
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
        uid: u32,
        gid: u32,
    ) -> Result<Step, SandboxError> {
        let (uid, gid) = (
            effective_id("uid", uid, "/proc/self/uid_map", fake_root)?,
            effective_id("gid", gid, "/proc/self/gid_map", fake_root)?,
        );
        // The snippet exists when the set-up or the mirrors wrote one.
        let apt_conf = Path::new(APT_CONF_PATH).is_file();
        let env = step_env(env, host, apt_conf, uid);
        let cstring = |s: &str| {
            CString::new(s).map_err(|_| SandboxError::InvalidSpec {
                reason: "a NUL byte in the command or environment".to_string(),
            })
        };
        let path_var = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or("", |(_, v)| v.as_str());
        let program = argv.first().cloned().unwrap_or_default();
        let candidates = if program.contains('/') {
            vec![cstring(&program)?]
        } else {
            path_var
                .split(':')
                .map(|dir| {
                    cstring(&format!(
                        "{}/{program}",
                        if dir.is_empty() { "." } else { dir }
                    ))
                })
                .collect::<Result<_, _>>()?
        };
        // Docker creates a missing working directory; it is a real change
        // of the image, so it is made here, through the root filesystem.
        let cwd = Path::new("/").join(cwd);
        std::fs::create_dir_all(&cwd)
            .map_err(|e| SandboxError::io("create the working directory", &cwd, e))?;
        Ok(Step {
            candidates,
            argv: argv.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?,
            envp: env
                .iter()
                .map(|(k, v)| cstring(&format!("{k}={v}")))
                .collect::<Result<_, _>>()?,
            cwd: cstring(&cwd.to_string_lossy())?,
            program,
            uid,
            gid,
            groups: Vec::new(),
            no_new_privs: false,
            fake_root,
            stdio,
        })
    }

    /// Body of the step process: only returns on failure.
    pub(crate) fn exec(&self) -> Result<i32, SandboxError> {
        // Its own session: no controlling terminal from the host, and out of
        // the helper's process group (a Ctrl-C reaches the helper, whose
        // death takes the sandbox down).
        let _ = nix::unistd::setsid();
        match self.stdio {
            StdioMode::Step => redirect_stdio()?,
            StdioMode::Inherit => {}
            StdioMode::Tty => super::console::attach_terminal()?,
        }
        nix::unistd::chdir(self.cwd.as_c_str())
            .map_err(|e| SandboxError::io("enter", self.cwd.to_string_lossy().as_ref(), e))?;
        let groups: Vec<Gid> = self.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        // A namespace that may not set groups (single-id mode) keeps none.
        if nix::unistd::setgroups(&groups).is_err() {
            match nix::unistd::setgroups(&[]) {
                Ok(()) | Err(Errno::EPERM) => {}
                Err(e) => return Err(SandboxError::io("clear the groups of", "the step", e)),
            }
        }
        let gid = Gid::from_raw(self.gid);
        nix::unistd::setresgid(gid, gid, gid)
            .map_err(|e| SandboxError::io(&format!("switch to gid {gid} for"), "the step", e))?;
        let uid = Uid::from_raw(self.uid);
        nix::unistd::setresuid(uid, uid, uid)
            .map_err(|e| SandboxError::io(&format!("switch to uid {uid} for"), "the step", e))?;
        if self.no_new_privs {
            // SAFETY: prctl with constant arguments; it only sets a flag of this process.
            let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if rc != 0 {
                return Err(SandboxError::io(
                    "set no_new_privs for",
                    "the step",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        if self.fake_root {
            install_fake_root()?;
        }
        super::signals::reset_for_exec();
        let mut denied = false;
        for candidate in &self.candidates {
            match nix::unistd::execve(candidate, &self.argv, &self.envp) {
                Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => continue,
                Err(Errno::EACCES) => denied = true,
                Err(e) => {
                    return Err(SandboxError::Exec {
                        program: self.program.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Err(SandboxError::Exec {
            program: self.program.clone(),
            reason: if denied {
                "permission denied".to_string()
            } else if self.program.contains('/') {
                "no such file".to_string()
            } else {
                "not found in PATH".to_string()
            },
        })
    }
}

/// Stdin from /dev/null; stdout joins stderr, so the helper's stdout stays
/// free for its result message.
fn redirect_stdio() -> Result<(), SandboxError> {
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| SandboxError::io("open", "/dev/null", e))?;
    let dup = |from: i32, to: i32| {
        // SAFETY: dup2 on descriptors this process owns; the standard
        // descriptors are meant to be replaced here.
        if unsafe { libc::dup2(from, to) } < 0 {
            Err(SandboxError::io(
                "redirect",
                "the step's output",
                Errno::last(),
            ))
        } else {
            Ok(())
        }
    };
    dup(null.as_fd().as_raw_fd(), 0)?;
    dup(2, 1)
}

/// The id the step runs as: `id` if this namespace maps it; with fake root,
/// root instead (only one id exists), said on the step's output.
fn effective_id(kind: &str, id: u32, map: &str, fake_root: bool) -> Result<u32, SandboxError> {
    let text = std::fs::read_to_string(map).map_err(|e| SandboxError::io("read", map, e))?;
    let mapped = text.lines().any(|line| {
        let mut f = line.split_whitespace().map(str::parse::<u64>);
        matches!((f.next(), f.next(), f.next()),
            (Some(Ok(start)), Some(Ok(_)), Some(Ok(len))) if (start..start + len).contains(&u64::from(id)))
    });
    if mapped {
        return Ok(id);
    }
    if fake_root {
        let note = format!(
            "boxwright: {kind} {id} does not exist with a single mapped id; running the step as root\n"
        );
        let _ = nix::unistd::write(std::io::stderr().as_fd(), note.as_bytes());
        return Ok(0);
    }
    Err(SandboxError::Unmapped {
        kind: kind.to_string(),
        id,
    })
}

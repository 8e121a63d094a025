//! Signal state a process hands to what it executes.
//!
//! An ignored disposition and the blocked-signal mask survive `execve`. A
//! Rust program starts with SIGPIPE ignored, so without this reset every
//! program a sandbox runs would inherit it and `yes | head -c 8` would spin
//! forever: `yes` gets EPIPE instead of dying. Handled signals are reset by
//! the kernel on exec; ignored ones and the mask are not.

/// Sets every signal's disposition to the default and unblocks all signals.
/// Called in a freshly forked child right before it executes a program;
/// async-signal-safe (raw syscalls only).
pub(crate) fn reset_for_exec() {
    // The kernel's own `struct sigaction` (handler, flags, restorer, mask),
    // all zero: SIG_DFL, no flags, empty mask. The raw syscall, because
    // glibc refuses signals 32 and 33 (its own), which a parent may still
    // have left ignored.
    let default = [0u64; 4];
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid, zeroed kernel sigaction, no
        // old-action pointer, and the kernel's sigset size (8 bytes).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
    // SAFETY: an empty set, initialised by sigemptyset, replaces the mask.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// The ignored-signal set of a child that inherits SIGPIPE ignored (as a
    /// step forked from boxwright's worker does), with or without the reset.
    fn ignored(reset: bool) -> u64 {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg("grep '^SigIgn' /proc/self/status");
        // SAFETY: raw, async-signal-safe syscalls only.
        unsafe {
            cmd.pre_exec(move || {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                libc::signal(libc::SIGUSR1, libc::SIG_IGN);
                if reset {
                    super::reset_for_exec();
                }
                Ok(())
            });
        }
        let out = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
        let hex = out.trim().rsplit('\t').next().unwrap();
        u64::from_str_radix(hex, 16).unwrap()
    }

    #[test]
    fn a_reset_child_ignores_no_signal() {
        let bit = |sig: i32| 1u64 << (sig - 1);
        let inherited = ignored(false);
        assert_ne!(inherited & bit(libc::SIGPIPE), 0, "{inherited:x}");
        assert_ne!(inherited & bit(libc::SIGUSR1), 0, "{inherited:x}");
        assert_eq!(ignored(true), 0);
    }
}

//! The terminal of a program run with a tty (`run -t`, `exec -t`), made
//! inside the sandbox as runc and podman make it: the program opens the
//! sandbox's own /dev/ptmx (its private devpts), takes the slave as its
//! controlling terminal and standard streams, and sends the master end out
//! over the *console socket* (SCM_RIGHTS) to the process that relays it to
//! the user. A terminal from the host would not exist in the sandbox's
//! /dev/pts, so `tty` and `ttyname` would fail there.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use super::error::SandboxError;

/// The descriptor number the console socket has in the sandbox's processes
/// (high, so nothing the spawning code opens collides with it).
pub const CONSOLE_FD: RawFd = 64;

/// In the program's process (a session leader, before exec): makes the
/// terminal, sends its master over [`CONSOLE_FD`], and puts the slave on
/// fds 0, 1 and 2 as the controlling terminal.
pub(crate) fn attach_terminal() -> Result<(), SandboxError> {
    let err =
        |what: &str, e: nix::errno::Errno| SandboxError::io(what, "the sandbox's /dev/ptmx", e);
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| err("open", e))?;
    nix::pty::grantpt(&master).map_err(|e| err("grant", e))?;
    nix::pty::unlockpt(&master).map_err(|e| err("unlock", e))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| err("name the slave of", e))?;
    let slave = nix::fcntl::open(name.as_str(), OFlag::O_RDWR, nix::sys::stat::Mode::empty())
        .map_err(|e| SandboxError::io("open", &name, e))?;
    // SAFETY: TIOCSCTTY on a terminal this session leader just opened.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(SandboxError::io(
            "make the controlling terminal",
            &name,
            nix::errno::Errno::last(),
        ));
    }
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"t")];
    sendmsg::<()>(CONSOLE_FD, &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| SandboxError::io("send the terminal over", "the console socket", e))?;
    drop(master);
    // SAFETY: the console socket was inherited as CONSOLE_FD and is not
    // used again; the slave goes onto the standard descriptors.
    unsafe {
        libc::close(CONSOLE_FD);
        for fd in 0..3 {
            if libc::dup2(slave.as_raw_fd(), fd) < 0 {
                return Err(SandboxError::io(
                    "redirect",
                    "the program's terminal",
                    nix::errno::Errno::last(),
                ));
            }
        }
    }
    Ok(())
}

/// On the relaying side: waits for the master end the program sends; `None`
/// when every holder of the socket's other end closed it first (the sandbox
/// failed before the program started).
pub fn receive_terminal(socket: BorrowedFd<'_>) -> Result<Option<OwnedFd>, SandboxError> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                for c in msg
                    .cmsgs()
                    .map_err(|e| SandboxError::io("read", "the console socket", e))?
                {
                    if let ControlMessageOwned::ScmRights(fds) = c
                        && let Some(&fd) = fds.first()
                    {
                        // SAFETY: the kernel just installed this descriptor for us.
                        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
                    }
                }
                return Ok(None);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::io("read", "the console socket", e)),
        }
    }
}

//! Terminals for `run -t` and `exec -t`: a pseudo-terminal whose slave end
//! becomes the program's controlling terminal, relayed to the user's own
//! terminal (in raw mode, so keys such as Ctrl-C reach the program, whose
//! terminal turns them into signals).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

use super::SessionError;

/// A socket pair for the console: the sandbox sends the master end of the
/// terminal it makes over `theirs` (inherited as [`crate::sandbox::CONSOLE_FD`]);
/// it arrives on `ours`.
pub(crate) struct ConsoleSocket {
    pub ours: OwnedFd,
    pub theirs: OwnedFd,
}

pub(crate) fn console_socket() -> Result<ConsoleSocket, SessionError> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SessionError::io("a console socket", e.into()))?;
    Ok(ConsoleSocket { ours, theirs })
}

/// Gives the terminal `master` the size of `like` when that is a terminal.
pub(crate) fn copy_size(master: BorrowedFd<'_>, like: BorrowedFd<'_>) {
    let mut size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `size` (left as it was on
    // a non-terminal); TIOCSWINSZ reads one from it.
    unsafe {
        libc::ioctl(like.as_raw_fd(), libc::TIOCGWINSZ, &mut size);
        libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
    }
}

/// Runs a relay for a program started with a tty: waits for its terminal
/// on the console socket (`ours`) and copies between it and this process's stdin (with
/// `interactive`) and stdout until the program's side closes.
pub(crate) fn relay_console(ours: &OwnedFd, interactive: bool) -> Result<(), SessionError> {
    let master = crate::sandbox::receive_terminal(ours.as_fd())?;
    let Some(master) = master else {
        // The sandbox ended before its program started (it said why on stderr).
        return Ok(());
    };
    copy_size(master.as_fd(), std::io::stdin().as_fd());
    let raw = if interactive { RawMode::enter() } else { None };
    relay(master, interactive, &mut std::io::stdout());
    drop(raw);
    Ok(())
}

/// The user's terminal in raw mode until dropped.
pub(crate) struct RawMode {
    fd: std::io::Stdin,
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode; `None` when stdin is no terminal.
    pub(crate) fn enter() -> Option<RawMode> {
        let fd = std::io::stdin();
        let saved = termios::tcgetattr(fd.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Copies what the program writes to the terminal into `out` until every
/// holder of the slave end has closed it; with `input`, the user's stdin
/// goes the other way (on a thread that dies with the process).
pub(crate) fn relay(master: OwnedFd, input: bool, out: &mut dyn Write) {
    if input && let Ok(to_master) = master.try_clone() {
        std::thread::spawn(move || {
            let mut w = std::fs::File::from(to_master);
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let mut r = std::fs::File::from(master);
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            // EIO: the slave side is closed (the program and its children ended).
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = out.flush();
            }
        }
    }
}

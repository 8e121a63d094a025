//! Terminals for `run -t` and `exec -t`: a pseudo-terminal whose slave end
//! becomes the program's controlling terminal, relayed to the user's own
//! terminal (in raw mode, so keys such as Ctrl-C reach the program, whose
//! terminal turns them into signals).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

use super::SessionError;

/// A pseudo-terminal pair.
pub(crate) struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a pty, sized like `like` when that is a terminal (80x24 otherwise).
pub(crate) fn open(like: Option<BorrowedFd<'_>>) -> Result<Pty, SessionError> {
    let mut size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    if let Some(fd) = like {
        // SAFETY: TIOCGWINSZ writes one winsize into `size`, which lives
        // for the call; a non-terminal fails and leaves it as it was.
        unsafe {
            libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size);
        }
    }
    let pair = nix::pty::openpty(Some(&size), None)
        .map_err(|e| SessionError::io("a pseudo-terminal", e.into()))?;
    Ok(Pty {
        master: pair.master,
        slave: pair.slave,
    })
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

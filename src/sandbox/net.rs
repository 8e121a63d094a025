//! Networking for `Network::None`: a private network namespace whose only
//! interface, loopback, must be brought up by hand.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::error::SandboxError;

/// Sets the `IFF_UP` flag of `lo` in the current network namespace.
pub(crate) fn loopback_up() -> Result<(), SandboxError> {
    let err = |e: std::io::Error| SandboxError::io("bring up", "the loopback interface", e);
    // SAFETY: socket() with constant arguments; the result is checked
    // before it is owned.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a freshly created descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data, valid when zeroed.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the flags member of
    // the ifreq we own, which outlives both calls.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

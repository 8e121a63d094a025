//! The container's /dev: a tmpfs with the host's harmless device nodes bound
//! in (a user namespace cannot create device nodes), a private devpts and a
//! /dev/shm.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, symlink};
use std::path::Path;

use nix::mount::MsFlags;

use super::error::SandboxError;
use super::mounts::{bind, mount_fs};

/// Device nodes bound from the host.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Symlinks every /dev has.
const LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Builds the container's /dev on `dev` (the mountpoint, reached through a path
/// the caller has resolved safely).
pub(crate) fn populate_dev(dev: &Path) -> Result<(), SandboxError> {
    mount_fs(
        "tmpfs",
        dev,
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        if !host.exists() {
            continue;
        }
        let node = dev.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&node)
            .map_err(|e| SandboxError::io("create", &node, e))?;
        bind(&host, &node, false)?;
    }
    let pts = dev.join("pts");
    make_dir(&pts, 0o755)?;
    // No gid= option: group 5 (tty) may not be mapped in this namespace.
    mount_fs(
        "devpts",
        &pts,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    let shm = dev.join("shm");
    make_dir(&shm, 0o1777)?;
    mount_fs(
        "tmpfs",
        &shm,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )?;
    for (name, target) in LINKS {
        let link = dev.join(name);
        symlink(target, &link).map_err(|e| SandboxError::io("create", &link, e))?;
    }
    Ok(())
}

/// Creates directory `path` with exactly `mode` (the umask would drop the sticky bit).
pub(crate) fn make_dir(path: &Path, mode: u32) -> Result<(), SandboxError> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| SandboxError::io("create", path, e))?;
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        nix::sys::stat::Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| SandboxError::io("set the mode of", path, e))
}

//! Thin wrappers over mount(2) that turn failures into sandbox errors.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::error::SandboxError;

/// Mounts a fresh file system of type `fstype` on `target`.
pub(crate) fn mount_fs(
    fstype: &str,
    target: &Path,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SandboxError> {
    mount(Some(fstype), target, Some(fstype), flags, data)
        .map_err(|e| SandboxError::mount(fstype, target, e))
}

/// Bind-mounts `src` on `target` (with its sub-mounts if `recursive`).
pub(crate) fn bind(src: &Path, target: &Path, recursive: bool) -> Result<(), SandboxError> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(src), target, None::<&str>, flags, None::<&str>)
        .map_err(|e| SandboxError::mount(&src.display().to_string(), target, e))
}

/// Makes the mount on `target` read-only, with its sub-mounts if `recursive`.
///
/// mount_setattr changes only the read-only bit; the remount fallback for
/// kernels before 5.12 must repeat the mount's locked flags (nosuid, nodev,
/// noexec), which an unprivileged namespace may not clear.
pub(crate) fn make_readonly(target: &Path, recursive: bool) -> Result<(), SandboxError> {
    let err = |e: nix::errno::Errno| SandboxError::mount("a read-only remount", target, e);
    let c_target =
        CString::new(target.as_os_str().as_bytes()).map_err(|_| err(nix::errno::Errno::EINVAL))?;
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: valid NUL-terminated path and a properly sized mount_attr
    // that outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_target.as_ptr(),
            flags as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let errno = nix::errno::Errno::last();
    if errno != nix::errno::Errno::ENOSYS {
        return Err(err(errno));
    }
    let st = nix::sys::statvfs::statvfs(target).map_err(err)?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    use nix::sys::statvfs::FsFlags;
    for (st_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.flags().contains(st_flag) {
            flags |= ms_flag;
        }
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(err)
}

/// Makes every mount private so nothing propagates back to the host.
pub(crate) fn make_private_recursively() -> Result<(), SandboxError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| SandboxError::mount("private propagation", "/", e))
}

/// Lazily unmounts `target`.
pub(crate) fn detach(target: &Path) -> Result<(), SandboxError> {
    umount2(target, MntFlags::MNT_DETACH).map_err(|e| SandboxError::io("unmount", target, e))
}

//! File system operations confined to a destination directory, as if it were
//! `/`: parent directories are resolved with `openat2(RESOLVE_IN_ROOT)`, so a
//! symlink met on the way (absolute or full of `..`) is resolved inside the
//! destination, and every change is an `*at` call on the final component
//! that never follows a symlink there.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How often a resolution is retried when the kernel reports a concurrent
/// rename (`EAGAIN` from `openat2`).
const RETRIES: usize = 16;

/// An open destination directory.
pub(crate) struct Root {
    fd: OwnedFd,
}

/// Splits a normalized relative path into its parent and its last component.
pub(crate) fn split_last(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|b| *b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

impl Root {
    pub(crate) fn open(dest: &Path) -> io::Result<Root> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            dest,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The directory at `rel` (normalized; empty for the root itself),
    /// resolved inside the root, as an `O_PATH` descriptor.
    pub(crate) fn dir(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        let path: &[u8] = if rel.is_empty() { b"." } else { rel };
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &self.fd,
                path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(Errno::AGAIN) if tries < RETRIES => tries += 1,
                r => return r.map_err(Into::into),
            }
        }
    }

    /// Like [`Root::dir`], creating missing directories (mode 0755) on the way.
    pub(crate) fn dir_create(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        match self.dir(rel) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            r => return r,
        }
        let mut cur = self.dir(b"")?;
        let mut end = 0;
        while end < rel.len() {
            let start = if end == 0 { 0 } else { end + 1 };
            end = rel[start..]
                .iter()
                .position(|b| *b == b'/')
                .map_or(rel.len(), |i| start + i);
            let prefix = &rel[..end];
            cur = match self.dir(prefix) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let name = &rel[start..end];
                    match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) => {
                            // mkdir's mode passes through the umask; set it exactly.
                            let fd = open_dir_nofollow(&cur, name)?;
                            rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
                        }
                        // A dangling symlink is in the way: resolving again
                        // reports it.
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    self.dir(prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(cur)
    }
}

/// Opens directory `name` in `parent` for reading (needed for `fchown`,
/// `fchmod`, `fsetxattr`, listing), refusing a symlink there.
pub(crate) fn open_dir_nofollow(parent: impl AsFd, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The type of `name` in `parent` (not following a symlink), `None` if absent.
pub(crate) fn kind_at(parent: impl AsFd, name: &[u8]) -> io::Result<Option<(FileType, u64, u64)>> {
    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some((
            FileType::from_raw_mode(st.st_mode),
            st.st_dev,
            st.st_ino,
        ))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The names in a directory (any descriptor of it, `O_PATH` included),
/// without `.` and `..`.
pub(crate) fn list(dir: impl AsFd) -> io::Result<Vec<(Vec<u8>, FileType)>> {
    // `Dir::read_from` would reopen with the same flags, and an `O_PATH`
    // descriptor cannot be read.
    let readable = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in Dir::new(readable)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push((name.to_vec(), entry.file_type()));
        }
    }
    Ok(names)
}

/// Removes `name` from `parent`, recursively if it is a directory, never
/// following a symlink. Iterative: no recursion depth to exhaust, one
/// descriptor open at a time; every path is resolved below `parent` with
/// symlinks refused.
pub(crate) fn remove_tree(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match kind_at(parent, name)? {
        None => return Ok(()),
        Some((FileType::Directory, _, _)) => {}
        Some(_) => return Ok(rustix::fs::unlinkat(parent, name, AtFlags::empty())?),
    }
    let beneath = |rel: &[u8], flags: OFlags| -> io::Result<OwnedFd> {
        Ok(rustix::fs::openat2(
            parent,
            rel,
            flags | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )?)
    };
    let mut stack: Vec<Vec<u8>> = vec![name.to_vec()];
    while let Some(dir) = stack.last() {
        let fd = beneath(dir, OFlags::RDONLY)?;
        let mut subdirs = Vec::new();
        for (child, ty) in list(&fd)? {
            let ty = match ty {
                FileType::Unknown => kind_at(&fd, &child)?.map_or(FileType::Unknown, |k| k.0),
                ty => ty,
            };
            if ty == FileType::Directory {
                subdirs.push([&dir[..], b"/", &child[..]].concat());
            } else {
                rustix::fs::unlinkat(&fd, child.as_slice(), AtFlags::empty())?;
            }
        }
        drop(fd);
        if subdirs.is_empty() {
            let (up, last) = split_last(dir);
            let up_fd;
            let up_ref: BorrowedFd<'_> = if up.is_empty() {
                parent
            } else {
                up_fd = beneath(up, OFlags::PATH)?;
                up_fd.as_fd()
            };
            rustix::fs::unlinkat(up_ref, last, AtFlags::REMOVEDIR)?;
            stack.pop();
        } else {
            stack.extend(subdirs);
        }
    }
    Ok(())
}

/// `fchmodat(parent, name, mode, AT_SYMLINK_NOFOLLOW)`: rustix refuses the
/// flag, glibc implements it (through `/proc/self/fd` where the kernel lacks
/// `fchmodat2`). Used for nodes that cannot be opened safely (devices, fifos).
pub(crate) fn chmod_nofollow(parent: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let name =
        std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the
    // call; `parent` is an open descriptor borrowed for the call.
    let rc = unsafe {
        libc::fchmodat(
            std::os::fd::AsRawFd::as_raw_fd(&parent),
            name.as_ptr(),
            mode as libc::mode_t,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

//! Mountpoints inside the root filesystem, and removing the traces they leave.
//!
//! The sandbox mounts /proc, /dev, /sys, /run, /etc/resolv.conf and
//! /etc/hosts. When the image lacks them they must be created through the
//! merged view, so they (and parents copied up to hold them) appear in the
//! upperdir — or in the directory itself for the snapshot fallback. Every
//! path visited is recorded with whether it was in that base before; after
//! the step, whatever the sandbox brought into the base and the step left
//! untouched is removed again, deepest first.
//!
//! Paths are resolved with `openat2(RESOLVE_IN_ROOT)`, so a symlink in the
//! image can never point a mount outside the root filesystem.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};

use super::error::SandboxError;

/// Whether a mountpoint is a directory or a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

/// A mountpoint path (or one of its parents) as found in the base.
#[derive(Debug)]
struct Visited {
    /// Real path relative to the root (symlinks resolved).
    rel: PathBuf,
    /// Present in the base before the sandbox touched anything.
    existed: bool,
    /// Mode, uid and gid in the base once set-up was done.
    after_setup: Option<(u32, u32, u32)>,
}

/// The mountpoints of one sandbox, tracked for clean-up.
pub(crate) struct Mountpoints {
    /// Where the root filesystem is mounted.
    merged: PathBuf,
    /// An `O_PATH` descriptor of `merged`, the root for path resolution.
    root: OwnedFd,
    /// Where changes land: the upperdir, or the directory itself.
    base: PathBuf,
    visited: Vec<Visited>,
}

impl Mountpoints {
    /// Tracks mountpoints of the root filesystem mounted at `merged`, whose
    /// changes land in `base`.
    pub(crate) fn new(merged: &Path, base: &Path) -> Result<Mountpoints, SandboxError> {
        let merged = merged
            .canonicalize()
            .map_err(|e| SandboxError::io("resolve", merged, e))?;
        let root = nix::fcntl::open(
            &merged,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SandboxError::io("open", &merged, e))?;
        Ok(Mountpoints {
            merged,
            root,
            base: base.to_path_buf(),
            visited: Vec::new(),
        })
    }

    /// Opens directory `rel` (relative to the root, not a symlink itself) as
    /// an `O_PATH` descriptor, creating it and missing parents (0755) if needed.
    pub(crate) fn ensure_dir(&mut self, rel: &str) -> Result<OwnedFd, SandboxError> {
        self.ensure(rel, Kind::Dir)?
            .ok_or_else(|| mountpoint_error(Path::new(rel), "is a dangling symlink"))
    }

    /// Opens regular file `rel` as an `O_PATH` descriptor, creating it (0644)
    /// and missing parents if needed; `None` if it is a dangling symlink
    /// (an image whose resolv.conf points into a systemd /run, say).
    pub(crate) fn ensure_file(&mut self, rel: &str) -> Result<Option<OwnedFd>, SandboxError> {
        self.ensure(rel, Kind::File)
    }

    /// Symlinks in `rel` are followed inside the root; a directory
    /// mountpoint must not be a symlink itself.
    fn ensure(&mut self, rel: &str, kind: Kind) -> Result<Option<OwnedFd>, SandboxError> {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        let mut parent = nix::fcntl::openat(
            &self.root,
            ".",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SandboxError::io("open", &self.merged, e))?;
        let mut lexical = PathBuf::new();
        let mut parent_real = PathBuf::new();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let want_dir = !last || kind == Kind::Dir;
            lexical.push(part);
            let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
            if want_dir {
                flags |= OFlag::O_DIRECTORY;
            }
            if last && kind == Kind::Dir {
                flags |= OFlag::O_NOFOLLOW;
            }
            let fd = match nix::fcntl::openat2(&self.root, &lexical, in_root(flags)) {
                Ok(fd) => {
                    let real = self.real_rel(&fd)?;
                    self.visit(&real, false);
                    fd
                }
                Err(Errno::ENOENT) => {
                    let fd = match create_in(&parent, part, want_dir) {
                        Ok(fd) => fd,
                        Err(Errno::EEXIST) if last && kind == Kind::File => return Ok(None),
                        Err(Errno::EEXIST) => {
                            return Err(mountpoint_error(&lexical, "is a dangling symlink"));
                        }
                        Err(e) => {
                            return Err(mountpoint_error(
                                &lexical,
                                &format!("cannot be created ({e})"),
                            ));
                        }
                    };
                    let real = parent_real.join(part);
                    self.visit(&real, true);
                    fd
                }
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                    return Err(mountpoint_error(&lexical, "is not a directory"));
                }
                Err(e) => {
                    return Err(mountpoint_error(
                        &lexical,
                        &format!("cannot be opened ({e})"),
                    ));
                }
            };
            if last && kind == Kind::File {
                let st = nix::sys::stat::fstat(&fd)
                    .map_err(|e| SandboxError::io("stat", &lexical, e))?;
                if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
                    return Err(mountpoint_error(&lexical, "is not a regular file"));
                }
            }
            parent_real = self.real_rel(&fd)?;
            parent = fd;
        }
        Ok(Some(parent))
    }

    /// Whether `rel` (symlinks followed inside the root) exists. Records nothing.
    pub(crate) fn exists(&self, rel: &str) -> bool {
        nix::fcntl::openat2(&self.root, rel, in_root(OFlag::O_PATH | OFlag::O_CLOEXEC)).is_ok()
    }

    /// Records the state of every visited path once set-up is complete, so
    /// clean-up can tell whether the step changed it.
    pub(crate) fn seal(&mut self) {
        for v in &mut self.visited {
            v.after_setup = std::fs::symlink_metadata(self.base.join(&v.rel))
                .ok()
                .map(|m| (m.mode(), m.uid(), m.gid()));
        }
    }

    /// Removes from the base what set-up put there and the step left as it
    /// was: empty stub directories and files, and parents that became empty.
    /// Must run after the root filesystem is unmounted; drops the last
    /// descriptor into it first.
    pub(crate) fn clean_up(self) -> Result<(), SandboxError> {
        let Mountpoints {
            root,
            base,
            visited,
            ..
        } = self;
        drop(root);
        let mut order: Vec<&Visited> = visited.iter().filter(|v| !v.existed).collect();
        order.sort_by_key(|v| std::cmp::Reverse(v.rel.components().count()));
        for v in order {
            let Some(after) = v.after_setup else {
                continue;
            };
            let path = base.join(&v.rel);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if (meta.mode(), meta.uid(), meta.gid()) != after {
                continue;
            }
            let removed = if meta.is_dir() {
                let empty = std::fs::read_dir(&path).is_ok_and(|mut e| e.next().is_none());
                if !empty {
                    continue;
                }
                std::fs::remove_dir(&path)
            } else if meta.is_file() && meta.len() == 0 {
                std::fs::remove_file(&path)
            } else {
                continue;
            };
            removed.map_err(|e| SandboxError::io("remove the sandbox stub", &path, e))?;
        }
        Ok(())
    }

    /// Remembers `rel`, noting whether it was in the base before we touched it.
    /// Only the first visit counts: a later one may see our own copy-up.
    fn visit(&mut self, rel: &Path, created: bool) {
        if self.visited.iter().any(|v| v.rel == rel) {
            return;
        }
        let existed = !created && std::fs::symlink_metadata(self.base.join(rel)).is_ok();
        self.visited.push(Visited {
            rel: rel.to_path_buf(),
            existed,
            after_setup: None,
        });
    }

    /// The real path of `fd` relative to the root.
    fn real_rel(&self, fd: &OwnedFd) -> Result<PathBuf, SandboxError> {
        let link = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
        let real = std::fs::read_link(&link).map_err(|e| SandboxError::io("resolve", &link, e))?;
        real.strip_prefix(&self.merged)
            .map(Path::to_path_buf)
            .map_err(|_| SandboxError::Internal {
                reason: format!(
                    "{} resolved outside the root filesystem {}",
                    real.display(),
                    self.merged.display()
                ),
            })
    }
}

/// `/proc/self/fd/N`: the path a mount call uses to reach exactly `fd`.
pub(crate) fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Creates `name` in `parent` (a directory or an empty file) and opens it `O_PATH`.
fn create_in(parent: &OwnedFd, name: &str, dir: bool) -> Result<OwnedFd, Errno> {
    if dir {
        nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(0o755))?;
    } else {
        nix::fcntl::openat(
            parent,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )?;
    }
    nix::fcntl::openat(
        parent,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// How every path under the root is opened: symlinks resolve inside it
/// (`RESOLVE_IN_ROOT`), and never through /proc magic links.
fn in_root(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

fn mountpoint_error(rel: &Path, what: &str) -> SandboxError {
    SandboxError::Mountpoint {
        path: format!("/{}", rel.display()),
        reason: what.to_string(),
    }
}

//! The COPY action, run inside the container's root so `dest` (and any
//! symlink on the way to it) resolves within the image, never on the host.
//!
//! Dockerfile semantics: a file lands at `dest`, or at `dest/NAME` when
//! `dest` ends in `/` or is a directory; a directory's contents are merged
//! into `dest`. Missing parents of `dest` are created 0755 root:root.
//! Symlinks are copied as symlinks, hard links inside the source stay hard
//! links, mtimes are kept. `mode` applies to every copied file and
//! directory, `owner` to everything copied.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::error::SandboxError;

/// One COPY: the source (a path relative to the working directory, which
/// is the host's source directory), the host name of the source (for
/// `dest/NAME`), and what to apply to the copies.
pub(crate) struct CopyJob<'a> {
    pub(crate) src: &'a Path,
    pub(crate) src_name: &'a OsStr,
    pub(crate) dest: &'a str,
    pub(crate) mode: Option<u32>,
    pub(crate) owner: (u32, u32),
    /// Paths (relative to the working directory) left out of a directory copy.
    pub(crate) excludes: Option<&'a crate::context::Excludes>,
    /// Paths relative to `src` left out of a directory copy (`--exclude`).
    pub(crate) source_excludes: Option<&'a crate::context::Excludes>,
}

/// Copies the job's source to its destination. Device nodes and sockets
/// cannot be made in a user namespace: they are left out, named in one line
/// of the step's output.
pub(crate) fn copy_into(job: &CopyJob) -> Result<(), SandboxError> {
    let result = copy_job(job);
    if let Ok(skipped) = &result
        && !skipped.is_empty()
    {
        let names: Vec<String> = skipped.iter().map(|p| p.display().to_string()).collect();
        let line = format!(
            "boxwright: COPY left out {} device node(s) and socket(s), which a rootless build cannot create: {}\n",
            names.len(),
            crate::quote::excerpt_n(&names.join(", "), 300)
        );
        let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
    }
    result.map(drop)
}

fn copy_job(job: &CopyJob) -> Result<Vec<PathBuf>, SandboxError> {
    let src = job.src;
    let src_meta = std::fs::metadata(src).map_err(|e| copy_err(src, e))?;
    let dest = Path::new("/").join(job.dest);
    let mut copier = Copier {
        mode: job.mode,
        owner: job.owner,
        excludes: job.excludes,
        source_excludes: job.source_excludes.map(|e| (job.src, e)),
        links: HashMap::new(),
        skipped: Vec::new(),
    };
    if src_meta.is_dir() {
        create_parents(&dest)?;
        let created = match std::fs::symlink_metadata(&dest) {
            Ok(_) if dest.is_dir() => false,
            Ok(m) if m.file_type().is_symlink() => {
                // A dangling link: its target becomes the directory.
                mkdir_all(&dest, 0)?;
                false
            }
            Ok(_) => {
                return Err(copy_err(&dest, "exists and is not a directory"));
            }
            Err(_) => {
                std::fs::create_dir(&dest).map_err(|e| copy_err(&dest, e))?;
                true
            }
        };
        copier.copy_children(src, &dest)?;
        if created {
            copier.finish(&dest, &src_meta, true)?;
        }
        Ok(copier.skipped)
    } else {
        let into_dir = job.dest.ends_with('/') || dest.is_dir();
        let target = if into_dir {
            dest.join(job.src_name)
        } else {
            dest
        };
        create_parents(&target)?;
        copier.copy_entry(src, &target, &src_meta)?;
        Ok(copier.skipped)
    }
}

struct Copier<'a> {
    mode: Option<u32>,
    excludes: Option<&'a crate::context::Excludes>,
    source_excludes: Option<(&'a Path, &'a crate::context::Excludes)>,
    owner: (u32, u32),
    /// (device, inode) of multiply-linked source files → their first copy.
    links: HashMap<(u64, u64), PathBuf>,
    /// Device nodes and sockets left out (their destination paths).
    skipped: Vec<PathBuf>,
}

impl Copier<'_> {
    /// Copies the entries of directory `src` into existing directory `dst`, sorted by name.
    fn copy_children(&mut self, src: &Path, dst: &Path) -> Result<(), SandboxError> {
        let mut names: Vec<_> = std::fs::read_dir(src)
            .map_err(|e| copy_err(src, e))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| copy_err(src, e))?;
        names.sort();
        for name in names {
            let from = src.join(&name);
            let meta = std::fs::symlink_metadata(&from).map_err(|e| copy_err(&from, e))?;
            let mut excluded = false;
            let mut walk = false;
            let inner = self
                .source_excludes
                .map(|(base, ex)| (ex, from.strip_prefix(base).unwrap_or(&from).to_path_buf()));
            for (ex, path) in self
                .excludes
                .map(|e| (e, from.clone()))
                .into_iter()
                .chain(inner)
            {
                if ex.is_excluded(&path) {
                    excluded = true;
                    // A `!` exception may bring back something below.
                    walk |= ex.has_exceptions() && meta.is_dir();
                }
            }
            if excluded && !walk {
                continue;
            }
            let to = dst.join(&name);
            let existed = std::fs::symlink_metadata(&to).is_ok();
            self.copy_entry(&from, &to, &meta)?;
            // An excluded directory walked for its exceptions stays only
            // if one of them brought something back.
            if excluded && !existed && std::fs::read_dir(&to).is_ok_and(|mut d| d.next().is_none())
            {
                std::fs::remove_dir(&to).map_err(|e| copy_err(&to, e))?;
            }
        }
        Ok(())
    }

    /// Copies one entry (recursively for a directory) to `dst`.
    fn copy_entry(&mut self, src: &Path, dst: &Path, meta: &Metadata) -> Result<(), SandboxError> {
        let existing = std::fs::symlink_metadata(dst).ok();
        let ft = meta.file_type();
        if ft.is_dir() {
            match existing {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    remove_non_dir(dst)?;
                    std::fs::create_dir(dst).map_err(|e| copy_err(dst, e))?;
                }
                None => std::fs::create_dir(dst).map_err(|e| copy_err(dst, e))?,
            }
            self.copy_children(src, dst)?;
            return self.finish(dst, meta, true);
        }
        if existing.as_ref().is_some_and(Metadata::is_dir) {
            return Err(copy_err(
                dst,
                "is a directory and cannot be replaced by a file",
            ));
        }
        if existing.is_some() {
            remove_non_dir(dst)?;
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(src).map_err(|e| copy_err(src, e))?;
            std::os::unix::fs::symlink(&target, dst).map_err(|e| copy_err(dst, e))?;
            return self.finish(dst, meta, false);
        }
        if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    return std::fs::hard_link(first, dst).map_err(|e| copy_err(dst, e));
                }
                self.links.insert(key, dst.to_path_buf());
            }
            std::fs::copy(src, dst).map_err(|e| copy_err(dst, e))?;
            return self.finish(dst, meta, true);
        }
        if ft.is_fifo() {
            nix::unistd::mkfifo(dst, nix::sys::stat::Mode::from_bits_truncate(0o644))
                .map_err(|e| copy_err(dst, e))?;
            return self.finish(dst, meta, true);
        }
        self.skipped.push(dst.to_path_buf());
        Ok(())
    }

    /// Applies owner, then mode (chown clears setuid bits), then the source's mtime.
    fn finish(&self, dst: &Path, src_meta: &Metadata, has_mode: bool) -> Result<(), SandboxError> {
        let (uid, gid) = self.owner;
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            dst,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| copy_err(dst, format!("chown to {uid}:{gid}: {e}")))?;
        if has_mode {
            let mode = self.mode.unwrap_or(src_meta.mode()) & 0o7777;
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode))
                .map_err(|e| copy_err(dst, e))?;
        }
        let mtime = TimeSpec::new(src_meta.mtime(), src_meta.mtime_nsec());
        utimensat(
            nix::fcntl::AT_FDCWD,
            dst,
            &mtime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| copy_err(dst, e))
    }
}

/// Creates the missing parents of `path` with mode 0755.
fn create_parents(path: &Path) -> Result<(), SandboxError> {
    match path.parent() {
        Some(parent) => mkdir_all(parent, 0),
        None => Ok(()),
    }
}

/// `mkdir -p` that follows symlinks on the way, dangling ones included: a
/// symlink `/dl -> /srv` with no `/srv` yet makes `/srv` (std's
/// `create_dir_all` stops with "File exists" there). This runs chrooted in
/// the image, so absolute targets resolve inside the image, as Docker
/// resolves COPY destinations. `depth` bounds symlink loops.
fn mkdir_all(dir: &Path, depth: u32) -> Result<(), SandboxError> {
    if depth > 40 {
        return Err(copy_err(dir, "too many levels of symbolic links"));
    }
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(m) if m.file_type().is_symlink() => {
            if dir.is_dir() {
                return Ok(());
            }
            let target = std::fs::read_link(dir).map_err(|e| copy_err(dir, e))?;
            let target = dir.parent().unwrap_or(Path::new("/")).join(target);
            return mkdir_all(&target, depth + 1);
        }
        Ok(_) => return Err(copy_err(dir, "exists and is not a directory")),
        Err(_) => {}
    }
    if let Some(parent) = dir.parent() {
        mkdir_all(parent, depth)?;
    }
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(copy_err(dir, e)),
    }
}

fn remove_non_dir(path: &Path) -> Result<(), SandboxError> {
    std::fs::remove_file(path).map_err(|e| copy_err(path, e))
}

fn copy_err(path: &Path, reason: impl ToString) -> SandboxError {
    SandboxError::Copy {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

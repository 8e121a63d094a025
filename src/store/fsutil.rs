//! Durable file-system steps shared by the store: atomic replace and directory fsync.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{CWD, RenameFlags, renameat_with};
use rustix::io::Errno;

use super::error::{Result, StoreError};

/// Prefix of every temp file and dir the store creates, so strays are recognisable.
pub(crate) const TEMP_PREFIX: &str = ".boxwright-tmp-";

/// Flushes a directory's entries (a rename is only durable once its directory is synced).
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Replaces `dest` with `bytes` atomically: a temp file in `tmp_dir` (which must be on the
/// same file system), written, fsynced, renamed over `dest`, and `dest`'s directory fsynced.
/// Readers see the old content or the new, never a mix.
pub(crate) fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(tmp_dir)
        .map_err(|e| StoreError::io(tmp_dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| StoreError::io(tmp.path(), e))?;
    tmp.persist(dest)
        .map_err(|e| StoreError::io(dest, e.error))?;
    fsync_dir(parent_of(dest))
}

/// Replaces the small file `dest` with `bytes` atomically, for files outside a
/// store (settings, credentials, caches): its folder is created, a temp file
/// beside it gets `mode` (if given) before any byte, is written, fsynced and
/// renamed over `dest`, and the folder is fsynced.
pub fn replace_file(dest: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = parent_of(dest);
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    if let Some(mode) = mode {
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

/// Reads a whole file, refusing one larger than `limit` bytes (JSON documents the store
/// reads are small; a huge one is damage or hostility, not data).
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let meta = fs::metadata(path).map_err(|e| StoreError::io(path, e))?;
    if meta.len() > limit {
        return Err(StoreError::io(
            path,
            std::io::Error::other(format!(
                "file is {} bytes, more than the {limit} allowed for this kind of file",
                meta.len()
            )),
        ));
    }
    fs::read(path).map_err(|e| StoreError::io(path, e))
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Renames `from` to `to` unless `to` exists. Returns `Ok(false)` when it does exist
/// (someone else got there first), `Ok(true)` when the rename happened.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> Result<bool> {
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Ok(false),
        Err(Errno::XDEV) => Err(StoreError::CrossDevice(from.to_path_buf())),
        Err(e) => Err(StoreError::io(from, e.into())),
    }
}

/// Moves `path` into `trash_dir` under a fresh unique name and returns the new path.
/// A rename, not a delete: the tree may hold files of subordinate uids that this process
/// cannot remove outside a user namespace.
pub(crate) fn move_into(trash_dir: &Path, path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "entry".to_string());
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dest = trash_dir.join(format!("{stem}.{}.{nanos}.{n}", std::process::id()));
        if rename_noreplace(path, &dest)? {
            fsync_dir(trash_dir)?;
            return Ok(dest);
        }
    }
}

//! [`StoreLock`]: the store-wide `flock` that keeps garbage collection away from builds.

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::error::{Result, StoreError};
use super::root::Store;

/// Whether a lock is held shared or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Builds: any number at once.
    Shared,
    /// Garbage collection: alone.
    Exclusive,
}

/// A held `flock` on `ROOT.state/lock`; released when dropped.
///
/// Builds (and anything that writes blobs it has not tagged yet) hold it shared; garbage
/// collection holds it exclusive. Tagging does not need it: `index.json` has its own
/// lock, so builds holding the shared lock can still tag. `flock` locks belong to an open
/// file description, so two `Store` handles in one process exclude each other just as two
/// processes do (a handle's second lock blocks on its first: take one at a time).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    kind: LockKind,
}

/// A held lock on one cache mount: a `flock` on its directory itself, so
/// no lock file shows inside the mount; released when dropped.
#[derive(Debug)]
pub struct MountLock {
    _dir: File,
}

/// A held lock on one step's cache key; released when dropped.
#[derive(Debug)]
pub struct KeyLock {
    _file: File,
}

impl StoreLock {
    /// How the lock is held.
    pub fn kind(&self) -> LockKind {
        self.kind
    }
}

impl Store {
    /// Blocks until the store lock is held shared.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        self.lock(LockKind::Shared)
    }

    /// Blocks until the store lock is held exclusive.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        self.lock(LockKind::Exclusive)
    }

    /// Takes the lock without waiting; `Ok(None)` if another holder prevents it.
    pub fn try_lock(&self, kind: LockKind) -> Result<Option<StoreLock>> {
        let file = self.open_lock_file()?;
        let got = match kind {
            LockKind::Shared => file.try_lock_shared(),
            LockKind::Exclusive => file.try_lock(),
        };
        match got {
            Ok(()) => Ok(Some(StoreLock { _file: file, kind })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(self.lock_path(), e)),
        }
    }

    fn lock(&self, kind: LockKind) -> Result<StoreLock> {
        let file = self.open_lock_file()?;
        match kind {
            LockKind::Shared => file.lock_shared(),
            LockKind::Exclusive => file.lock(),
        }
        .map_err(|e| StoreError::io(self.lock_path(), e))?;
        Ok(StoreLock { _file: file, kind })
    }

    /// Takes the lock of one step's cache key, waiting for it: builds of
    /// this store running the same step run it once (the second waits, then
    /// finds the layer in the cache). A `flock`: a killed holder's lock goes
    /// with it.
    pub fn lock_key(&self, key: &crate::digest::Digest) -> Result<KeyLock> {
        let file = self.open_key_lock(key)?;
        file.lock()
            .map_err(|e| StoreError::io(self.key_lock_path(key), e))?;
        Ok(KeyLock { _file: file })
    }

    /// [`Store::lock_key`] without waiting: `None` while another holds it.
    pub fn try_lock_key(&self, key: &crate::digest::Digest) -> Result<Option<KeyLock>> {
        let file = self.open_key_lock(key)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(KeyLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(self.key_lock_path(key), e)),
        }
    }

    /// Takes the lock of the cache mount directory `dir` (one that
    /// [`Store::mount_cache_dir`] made) without waiting: `None` while a step
    /// of this or another build holds it. Steps hold the package-manager
    /// caches this way while they run: apt refuses to share its lists and
    /// archives with another apt ("Could not get lock").
    pub fn try_lock_mount(&self, dir: &Path) -> Result<Option<MountLock>> {
        let file = File::open(dir).map_err(|e| StoreError::io(dir, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(MountLock { _dir: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(dir, e)),
        }
    }

    /// [`Store::try_lock_mount`], waiting for the holder to let go.
    pub fn lock_mount(&self, dir: &Path) -> Result<MountLock> {
        let file = File::open(dir).map_err(|e| StoreError::io(dir, e))?;
        file.lock().map_err(|e| StoreError::io(dir, e))?;
        Ok(MountLock { _dir: file })
    }

    fn key_lock_path(&self, key: &crate::digest::Digest) -> std::path::PathBuf {
        self.state_dir()
            .join("locks")
            .join(format!("{}.lock", key.hex()))
    }

    fn open_key_lock(&self, key: &crate::digest::Digest) -> Result<File> {
        let path = self.key_lock_path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(path, e))
    }

    fn open_lock_file(&self) -> Result<File> {
        let path = self.lock_path();
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_mount_lock_excludes_others_until_dropped_and_leaves_the_mount_empty() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path()).unwrap();
        let b = Store::open(dir.path()).unwrap();
        let apt = a.mount_cache_dir("/var/cache/apt").unwrap();
        let pip = a.mount_cache_dir("/root/.cache/pip").unwrap();
        let held = a.try_lock_mount(&apt).unwrap().expect("free at first");
        assert!(b.try_lock_mount(&apt).unwrap().is_none());
        // Another cache is another lock.
        assert!(b.try_lock_mount(&pip).unwrap().is_some());
        drop(held);
        assert!(b.try_lock_mount(&apt).unwrap().is_some());
        assert_eq!(std::fs::read_dir(&apt).unwrap().count(), 0);
    }

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path()).unwrap();
        let b = Store::open(dir.path()).unwrap();
        let s1 = a.lock_shared().unwrap();
        let s2 = b.try_lock(LockKind::Shared).unwrap();
        assert!(s2.is_some());
        assert!(b.try_lock(LockKind::Exclusive).unwrap().is_none());
        drop(s1);
        drop(s2);
        let x = b.lock_exclusive().unwrap();
        assert_eq!(x.kind(), LockKind::Exclusive);
        // Same handle, same process: still excluded (per open file description).
        assert!(b.try_lock(LockKind::Shared).unwrap().is_none());
        assert!(a.try_lock(LockKind::Exclusive).unwrap().is_none());
        drop(x);
        assert!(a.try_lock(LockKind::Exclusive).unwrap().is_some());
    }

    #[test]
    fn an_exclusive_lock_waits_for_a_shared_holder_in_another_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let shared = store.lock_shared().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = store.clone();
        let t = std::thread::spawn(move || {
            let _x = other.lock_exclusive().unwrap();
            tx.send(()).unwrap();
        });
        // Not a timing assertion: the thread cannot get through while we hold the lock.
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err()
        );
        drop(shared);
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
        t.join().unwrap();
    }
}

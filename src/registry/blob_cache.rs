//! The blob-info cache: which repositories of a registry are known to hold a
//! blob, learned from every push and pull and kept across runs (as
//! containers/image's blobinfocache does), so that a push can mount a blob
//! from a sibling repository instead of uploading it.
//!
//! A JSON file, `$XDG_DATA_HOME/boxwright/blob-info-cache.json`:
//! `{"version":1,"registries":{"host":{"sha256:…":["repo", …]}}}`, most
//! recently seen repository first. It holds hints only: a wrong entry costs
//! one refused mount. Saving re-reads the file and merges, so concurrent
//! boxwright processes lose nothing but ordering; the write is atomic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Repositories remembered per blob; older ones are forgotten.
const MAX_REPOS_PER_BLOB: usize = 8;

#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    registries: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// The default location (`$XDG_DATA_HOME/boxwright/blob-info-cache.json`).
pub fn default_path() -> Option<PathBuf> {
    crate::xdg::data_home().map(|d| d.join("boxwright/blob-info-cache.json"))
}

/// Registry → blob → repositories known to hold it.
pub struct BlobInfoCache {
    path: Option<PathBuf>,
    data: Mutex<CacheFile>,
    /// What this process learned, to merge into the file on save.
    learned: Mutex<Vec<(String, String, String)>>,
    /// Held while saving.
    saving: Mutex<()>,
}

impl BlobInfoCache {
    /// Loads `path` (a missing or unreadable file is an empty cache: it is
    /// only a hint); `None` keeps the cache in memory.
    pub fn open(path: Option<PathBuf>) -> BlobInfoCache {
        let data = path.as_deref().map(load).unwrap_or_default();
        BlobInfoCache {
            path,
            data: Mutex::new(data),
            learned: Mutex::new(Vec::new()),
            saving: Mutex::new(()),
        }
    }

    /// Repositories of `registry` known to hold `digest`, most recent first.
    pub fn repositories(&self, registry: &str, digest: &Digest) -> Vec<String> {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        data.registries
            .get(registry)
            .and_then(|m| m.get(&digest.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Remembers that `repository` of `registry` holds `digest`.
    pub fn record(&self, registry: &str, digest: &Digest, repository: &str) {
        let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        insert(&mut data, registry, &digest.to_string(), repository);
        self.learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((
                registry.to_string(),
                digest.to_string(),
                repository.to_string(),
            ));
    }

    /// Writes what was learned to the file (merged with its current content).
    /// Failure is logged, not returned: the cache is an optimisation.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        // One saver at a time, in this process and across processes (a
        // lock file beside the cache): two that read the file at once would
        // each write back only what they learned, and one's would be lost.
        let _saving = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        let learned = std::mem::take(&mut *self.learned.lock().unwrap_or_else(|e| e.into_inner()));
        if learned.is_empty() {
            return;
        }
        let _locked = lock_file(path);
        let mut on_disk = load(path);
        for (r, d, repo) in &learned {
            insert(&mut on_disk, r, d, repo);
        }
        on_disk.version = 1;
        if let Err(e) = write_atomic(path, &on_disk) {
            tracing::warn!(path = %path.display(), error = %e, "could not save the blob-info cache");
        }
    }
}

fn insert(data: &mut CacheFile, registry: &str, digest: &str, repository: &str) {
    let repos = data
        .registries
        .entry(registry.to_string())
        .or_default()
        .entry(digest.to_string())
        .or_default();
    repos.retain(|r| r != repository);
    repos.insert(0, repository.to_string());
    repos.truncate(MAX_REPOS_PER_BLOB);
}

/// An exclusive lock on `PATH.lock`, released when the file is dropped
/// (or its process dies); `None` if it cannot be had (the save goes on:
/// the cache holds hints only).
fn lock_file(path: &Path) -> Option<std::fs::File> {
    let lock = path.with_extension("json.lock");
    if let Some(dir) = lock.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .ok()?;
    f.lock().ok()?;
    Some(f)
}

fn load(path: &Path) -> CacheFile {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable blob-info cache");
            CacheFile::default()
        }),
        Err(_) => CacheFile::default(),
    }
}

fn write_atomic(path: &Path, data: &CacheFile) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(data).map_err(std::io::Error::other)?;
    crate::store::replace_file(path, &bytes, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_across_instances_and_merges_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/cache.json");
        let d1 = Digest::of(b"one");
        let d2 = Digest::of(b"two");
        let a = BlobInfoCache::open(Some(path.clone()));
        let b = BlobInfoCache::open(Some(path.clone()));
        a.record("r:5000", &d1, "x");
        a.record("r:5000", &d1, "y");
        b.record("r:5000", &d2, "z");
        a.save();
        b.save();
        let c = BlobInfoCache::open(Some(path.clone()));
        assert_eq!(c.repositories("r:5000", &d1), ["y", "x"]);
        assert_eq!(c.repositories("r:5000", &d2), ["z"]);
        assert!(c.repositories("other", &d1).is_empty());
        for i in 0..20 {
            c.record("r:5000", &d1, &format!("r{i}"));
        }
        assert_eq!(c.repositories("r:5000", &d1).len(), MAX_REPOS_PER_BLOB);
        assert_eq!(c.repositories("r:5000", &d1)[0], "r19");
        std::fs::write(&path, "garbage").unwrap();
        assert!(
            BlobInfoCache::open(Some(path))
                .repositories("r:5000", &d2)
                .is_empty()
        );
    }

    #[test]
    fn saves_from_many_threads_and_instances_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        let shared = BlobInfoCache::open(Some(path.clone()));
        std::thread::scope(|scope| {
            for i in 0..16u8 {
                let (shared, path) = (&shared, &path);
                scope.spawn(move || {
                    // Half through one instance, half each through its own.
                    let own = BlobInfoCache::open(Some(path.clone()));
                    let c = if i % 2 == 0 { shared } else { &own };
                    c.record("r:5000", &Digest::of(&[i]), "repo");
                    c.save();
                });
            }
        });
        let fresh = BlobInfoCache::open(Some(path));
        for i in 0..16u8 {
            assert_eq!(
                fresh.repositories("r:5000", &Digest::of(&[i])),
                vec!["repo".to_string()],
                "blob {i}"
            );
        }
    }
}

//! The build cache: a step's cache key → the layer that step produced.

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::canonical_json::to_canonical_json;
use super::error::{Result, StoreError};
use super::fsutil::{read_limited, write_atomic};
use super::root::Store;
use crate::digest::Digest;
use crate::media::LayerInfo;

/// Cache files are a few hundred bytes; anything far larger is damage.
const CACHE_FILE_LIMIT: u64 = 1 << 20;

/// What a cached step produced: its layer and the history line that goes with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub layer: LayerInfo,
    /// The history `created_by` of the step.
    pub created_by: String,
    /// When the layer was made, in seconds since the epoch (the history `created`).
    #[serde(default)]
    pub created: u64,
}

impl Store {
    fn cache_path(&self, key: &Digest) -> PathBuf {
        self.cache_dir().join(format!("{}.json", key.hex()))
    }

    /// Looks up a step. A miss is `None`, and so is an entry whose layer blob is gone
    /// (garbage collected) or whose file is unreadable as an entry: the step just runs again.
    pub fn cache_get(&self, key: &Digest) -> Result<Option<CacheEntry>> {
        let path = self.cache_path(key);
        let bytes = match read_limited(&path, CACHE_FILE_LIMIT) {
            Ok(b) => b,
            Err(StoreError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let entry: CacheEntry = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable cache entry");
                return Ok(None);
            }
        };
        // The blob is here, or a registry holds it (a lazy step-cache hit).
        let blob_ok = self.blob_size(&entry.layer.digest).ok() == Some(entry.layer.size)
            || self
                .remote_layer(&entry.layer.digest)
                .is_some_and(|r| r.layer == entry.layer);
        Ok(blob_ok.then_some(entry))
    }

    /// Records what a step produced (atomically; a concurrent writer of the same key
    /// wins or loses whole).
    pub fn cache_put(&self, key: &Digest, entry: &CacheEntry) -> Result<()> {
        let path = self.cache_path(key);
        let bytes = to_canonical_json(entry).map_err(|e| StoreError::BadJson {
            path: path.clone(),
            source: e,
        })?;
        write_atomic(&self.tmp_dir(), &path, &bytes)
    }

    /// The keys of every cache entry on disk (valid or not).
    pub(crate) fn cache_keys(&self) -> Result<Vec<Digest>> {
        let dir = self.cache_dir();
        let rd = fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let mut keys = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let name = entry.file_name();
            if let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json"))
                && let Ok(d) = Digest::from_hex(hex)
            {
                keys.push(d);
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Removes a cache entry, returning the bytes freed.
    pub(crate) fn cache_remove(&self, key: &Digest) -> Result<u64> {
        let path = self.cache_path(key);
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&path) {
            Ok(()) => Ok(size),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::OCI_LAYER_GZIP;

    fn entry_for(store: &Store, content: &[u8]) -> CacheEntry {
        let digest = store.write_blob(content).unwrap();
        CacheEntry {
            layer: LayerInfo {
                digest,
                diff_id: Digest::of(b"uncompressed"),
                size: content.len() as u64,
                media_type: OCI_LAYER_GZIP.to_string(),
            },
            created_by: "RUN apt-get install -y git".into(),
            created: 42,
        }
    }

    #[test]
    fn put_then_get_hits_and_an_unknown_key_misses() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = Digest::of(b"step key");
        assert_eq!(store.cache_get(&key).unwrap(), None);
        let entry = entry_for(&store, b"layer bytes");
        store.cache_put(&key, &entry).unwrap();
        assert_eq!(store.cache_get(&key).unwrap(), Some(entry));
        assert_eq!(store.cache_keys().unwrap(), vec![key]);
    }

    #[test]
    fn an_entry_whose_blob_is_gone_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = Digest::of(b"step key");
        let entry = entry_for(&store, b"layer bytes");
        store.cache_put(&key, &entry).unwrap();
        fs::remove_file(store.blob_path(&entry.layer.digest)).unwrap();
        assert_eq!(store.cache_get(&key).unwrap(), None);
    }

    #[test]
    fn a_damaged_entry_is_a_miss_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = Digest::of(b"step key");
        fs::write(store.cache_path(&key), b"{\"layer\": 3").unwrap();
        assert_eq!(store.cache_get(&key).unwrap(), None);
    }
}

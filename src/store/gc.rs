//! Garbage collection: everything not reachable from `index.json` goes.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use super::error::{Result, StoreError};
use super::reach::Reach;
use super::root::Store;
use crate::digest::Digest;

/// What a garbage collection removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted: not reachable from any image in `index.json`.
    pub removed_blobs: Vec<Digest>,
    /// Cache entries deleted because their layer blob is gone.
    pub removed_cache_entries: Vec<Digest>,
    /// Unpacked layers (by diff_id) moved to the trash: no reachable config names them.
    /// Their space comes back when the trash is emptied (see [`Store::trash_entries`]).
    pub trashed_layer_dirs: Vec<Digest>,
    /// Leftovers of interrupted writes removed from (or, for dirs, trashed out of)
    /// `ROOT.state/tmp`, and entries of `ROOT.state/layers` that are not diff_ids.
    pub cleared_strays: Vec<PathBuf>,
    /// Bytes freed right away (blobs, cache files and temp files).
    pub freed_bytes: u64,
    /// Blobs still in the store.
    pub kept_blobs: usize,
    /// Records of registry-held layers (lazy step-cache hits) dropped: no
    /// image names the layer any more, or its blob was fetched since.
    pub forgotten_remote_layers: Vec<Digest>,
}

impl Store {
    /// Collects garbage under the exclusive store lock, which it takes itself (do not
    /// hold a [`super::StoreLock`] from this process while calling it). Also holds the
    /// index lock throughout, so a concurrent `tag` either lands before the mark or sees
    /// its blob gone and fails rather than naming a deleted blob.
    ///
    /// Marks every blob reachable from `index.json` (indexes → manifests → config and
    /// layers), then removes unmarked blobs, cache entries whose blob is gone, and moves
    /// unpacked layer dirs whose diff_id no reachable config names into the trash.
    /// A corrupt manifest or config stops the collection before anything is deleted.
    pub fn gc(&self) -> Result<GcReport> {
        let _store_lock = self.lock_exclusive()?;
        let _index_lock = self.lock_index()?;
        let mut reach = Reach::default();
        for desc in self.index()?.manifests {
            reach.walk(self, &desc)?;
        }
        // Sandboxes run on their image's layers whether or not it is tagged.
        for desc in self.sandbox_images() {
            reach.walk(self, &desc)?;
        }
        let keep: BTreeSet<Digest> = reach.blobs.iter().cloned().collect();
        let mut report = GcReport::default();

        for digest in self.blob_digests()? {
            if keep.contains(&digest) {
                report.kept_blobs += 1;
                continue;
            }
            let size = self.blob_size(&digest).unwrap_or(0);
            if self.remove_blob(&digest)? {
                report.freed_bytes += size;
                report.removed_blobs.push(digest);
            }
        }

        // Layers an image names but the store does not hold: those a
        // registry holds for it keep their records.
        let absent: BTreeSet<&Digest> = reach.missing.iter().map(|(d, _)| d).collect();
        for (digest, _) in self.remote_layer_records()? {
            if !absent.contains(&digest) {
                self.forget_remote_layer(&digest)?;
                report.forgotten_remote_layers.push(digest);
            }
        }

        for key in self.cache_keys()? {
            if self.cache_get(&key)?.is_none() {
                report.freed_bytes += self.cache_remove(&key)?;
                report.removed_cache_entries.push(key);
            }
        }

        for (name, path) in list_dir(&self.layers_dir())? {
            match Digest::from_hex(&name) {
                Ok(diff_id) if reach.diff_ids.contains(&diff_id) => {}
                Ok(diff_id) => {
                    self.move_to_trash(&path)?;
                    self.forget_layer_use(&diff_id);
                    report.trashed_layer_dirs.push(diff_id);
                }
                Err(_) => {
                    self.move_to_trash(&path)?;
                    report.cleared_strays.push(path);
                }
            }
        }

        // Use records of layers that are gone (trashed by fsck, or by hand).
        for (name, _) in list_dir(&self.layer_use_dir())? {
            if let Ok(diff_id) = Digest::from_hex(&name)
                && !self.has_layer_dir(&diff_id)
            {
                self.forget_layer_use(&diff_id);
            }
        }

        // Nothing writes into tmp without the shared lock, which we exclude.
        let (freed, strays) = self.clear_temp_entries()?;
        report.freed_bytes += freed;
        report.cleared_strays.extend(strays);
        Ok(report)
    }

    /// Clears `ROOT.state/tmp`, where only a process holding the store lock
    /// writes: files are removed, dirs (which may hold files of subordinate
    /// ids) moved to the trash. Returns the bytes of the files removed. The
    /// caller holds the exclusive store lock.
    pub fn clear_temp(&self) -> Result<u64> {
        Ok(self.clear_temp_entries()?.0)
    }

    fn clear_temp_entries(&self) -> Result<(u64, Vec<PathBuf>)> {
        let mut freed = 0;
        let mut cleared = Vec::new();
        for (_, path) in list_dir(&self.tmp_dir())? {
            let meta = fs::symlink_metadata(&path).map_err(|e| StoreError::io(&path, e))?;
            if meta.is_dir() {
                self.move_to_trash(&path)?;
            } else {
                fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                freed += meta.len();
            }
            cleared.push(path);
        }
        Ok((freed, cleared))
    }

    /// The images of the store's sandboxes (the `image` of each
    /// `sandboxes/NAME/sandbox.json`; unreadable records are skipped).
    pub(super) fn sandbox_images(&self) -> Vec<crate::media::Descriptor> {
        #[derive(serde::Deserialize)]
        struct Record {
            image: crate::media::Descriptor,
        }
        let Ok(rd) = fs::read_dir(self.sandboxes_dir()) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| fs::read(e.path().join("sandbox.json")).ok())
            .filter_map(|b| serde_json::from_slice::<Record>(&b).ok())
            .map(|r| r.image)
            .collect()
    }

    /// Empties the build-time caches that images never reference, under the
    /// exclusive store lock: the cache mounts (`ROOT.state/mounts`, apt/npm/pip
    /// downloads kept across builds) when `mounts`, and the verified upstream
    /// artifacts (`ROOT.state/artifacts`) when `artifacts`. Entries go to the
    /// trash (package managers in steps leave files of subordinate ids there);
    /// returns what was moved.
    pub fn prune_build_caches(&self, mounts: bool, artifacts: bool) -> Result<Vec<PathBuf>> {
        let _store_lock = self.lock_exclusive()?;
        let mut moved = Vec::new();
        let dirs = [
            (mounts, self.mounts_dir()),
            (artifacts, self.artifacts_dir()),
        ];
        for (_, dir) in dirs.iter().filter(|(on, _)| *on) {
            if !dir.exists() {
                continue;
            }
            for (_, path) in list_dir(dir)? {
                self.move_to_trash(&path)?;
                moved.push(path);
            }
        }
        Ok(moved)
    }

    /// Digests of every sha256 blob file (other names in `blobs/sha256` are left alone).
    fn blob_digests(&self) -> Result<Vec<Digest>> {
        let dir = self.root().join("blobs/sha256");
        let mut digests: Vec<Digest> = list_dir(&dir)?
            .into_iter()
            .filter_map(|(name, _)| Digest::from_hex(&name).ok())
            .collect();
        digests.sort();
        Ok(digests)
    }
}

/// (name, path) of each entry of `dir`, sorted by name; names that are not UTF-8 are
/// returned lossily (they never match a digest).
fn list_dir(dir: &std::path::Path) -> Result<Vec<(String, PathBuf)>> {
    let rd = fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    out.sort();
    Ok(out)
}

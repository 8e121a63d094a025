//! The unpacked-layer cache's bound: when each unpacked layer was last used,
//! what it takes on disk, and least-recently-used eviction down to a size.
//!
//! Unpacked layers (`ROOT.state/layers/<diff_id>`) are only a cache of their
//! blobs: a build or sandbox that needs an evicted one unpacks its blob
//! again. Each has a small record, `ROOT.state/layer-use/<diff_id>`, holding
//! its size in bytes (measured once, when it is first recorded); the
//! record's mtime is the layer's last use. Records are hints: a missing one
//! is measured again, a stale one (its layer gone) is dropped, and none is
//! ever needed for a build to be right.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;

use super::error::{Result, StoreError};
use super::fsutil::replace_file;
use super::root::Store;
use super::usage::Meter;
use crate::digest::Digest;

/// The default bound on unpacked layers (10 GiB) when neither `--max-unpacked`,
/// `$BOXWRIGHT_MAX_UNPACKED` nor `max_unpacked` in config.toml sets one:
/// room for a few toolbox images' layers (a Debian toolbox unpacks to about
/// 1.5 GB), small enough not to grow without end on a CI runner.
pub const DEFAULT_MAX_UNPACKED: u64 = 10 << 30;

/// What an eviction moved to the trash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eviction {
    /// The diff_ids whose unpacked dirs went, least recently used first.
    pub evicted: Vec<Digest>,
    /// Their recorded sizes, in all.
    pub bytes: u64,
    /// What the unpacked layers take after the eviction (as recorded).
    pub remaining: u64,
}

/// One unpacked layer as the eviction sees it.
struct Entry {
    diff_id: Digest,
    bytes: u64,
    last_used: SystemTime,
}

impl Store {
    pub(super) fn layer_use_dir(&self) -> PathBuf {
        self.state_dir().join("layer-use")
    }

    fn layer_use_path(&self, diff_id: &Digest) -> PathBuf {
        self.layer_use_dir().join(diff_id.hex())
    }

    /// Notes that the unpacked layer `diff_id` was just used (as a lowerdir,
    /// or committed from a step). The first time, its size is measured and
    /// recorded. Failing to record is not a build failure: the record only
    /// orders evictions, so errors are left for the next use to retry.
    pub fn record_layer_use(&self, diff_id: &Digest) {
        let path = self.layer_use_path(diff_id);
        let touched = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now()));
        if touched.is_err() {
            let _ = self.measure_layer(diff_id);
        }
    }

    /// Measures the unpacked layer and writes its record (mtime: now).
    fn measure_layer(&self, diff_id: &Digest) -> Result<u64> {
        // Files of subordinate ids in dirs this process cannot read are
        // left out: the size is then a lower bound, which is all an
        // ordering of evictions needs.
        let bytes = Meter::default().tree(&self.layer_dir(diff_id));
        let path = self.layer_use_path(diff_id);
        replace_file(&path, format!("{bytes}\n").as_bytes(), None)
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(bytes)
    }

    /// Removes the record of a layer whose dir is gone (or going).
    pub(crate) fn forget_layer_use(&self, diff_id: &Digest) {
        let _ = fs::remove_file(self.layer_use_path(diff_id));
    }

    /// The recorded bytes of every unpacked layer (measuring those without a
    /// record), least recently used first.
    fn layer_entries(&self) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let dir = self.layers_dir();
        let read = fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        for item in read.flatten() {
            let Ok(diff_id) = Digest::from_hex(&item.file_name().to_string_lossy()) else {
                continue; // strays are gc's business
            };
            let path = self.layer_use_path(&diff_id);
            let recorded = fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .zip(fs::metadata(&path).and_then(|m| m.modified()).ok());
            let (bytes, last_used) = match recorded {
                Some(r) => r,
                None => {
                    // Unpacked before records existed: as old as its dir.
                    let last_used = item
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    let bytes = self.measure_layer(&diff_id)?;
                    let _ = fs::File::options()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_modified(last_used));
                    (bytes, last_used)
                }
            };
            entries.push(Entry {
                diff_id,
                bytes,
                last_used,
            });
        }
        entries.sort_by(|a, b| {
            a.last_used
                .cmp(&b.last_used)
                .then_with(|| a.diff_id.cmp(&b.diff_id))
        });
        Ok(entries)
    }

    /// The bytes the unpacked layers take, as recorded.
    pub fn unpacked_bytes(&self) -> Result<u64> {
        Ok(self.layer_entries()?.iter().map(|e| e.bytes).sum())
    }

    /// Moves least recently used unpacked layers to the trash until the rest
    /// take at most `limit` bytes, never one named in `keep` (the layers of
    /// sandboxes, which run on them). The caller holds the exclusive store
    /// lock, so no build is using a layer it removes; the trash is emptied
    /// in a user namespace afterwards (it holds files of subordinate ids).
    ///
    /// `keep` is asked only when something must go: a build that ends under
    /// the bound reads the use records and nothing else.
    pub fn evict_layers(
        &self,
        limit: u64,
        keep: impl FnOnce() -> Result<BTreeSet<Digest>>,
    ) -> Result<Eviction> {
        let entries = self.layer_entries()?;
        let mut out = Eviction {
            remaining: entries.iter().map(|e| e.bytes).sum(),
            ..Eviction::default()
        };
        if out.remaining <= limit {
            return Ok(out);
        }
        let keep = keep()?;
        for e in entries {
            if out.remaining <= limit {
                break;
            }
            if keep.contains(&e.diff_id) {
                continue;
            }
            self.move_to_trash(&self.layer_dir(&e.diff_id))?;
            self.forget_layer_use(&e.diff_id);
            out.remaining -= e.bytes;
            out.bytes += e.bytes;
            out.evicted.push(e.diff_id);
        }
        Ok(out)
    }

    /// The diff_ids of every sandbox's image (their layers stay unpacked).
    pub fn sandbox_diff_ids(&self) -> Result<BTreeSet<Digest>> {
        let mut reach = super::reach::Reach::default();
        for desc in self.sandbox_images() {
            reach.walk(self, &desc)?;
        }
        Ok(reach.diff_ids.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An unpacked layer of `size` bytes, last used `age` ago.
    fn layer(store: &Store, name: &str, size: usize, age: u64) -> Digest {
        let d = Digest::of(name.as_bytes());
        let dir = store.layer_dir(&d);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f"), vec![1u8; size]).unwrap();
        store.record_layer_use(&d);
        let f = fs::File::options()
            .write(true)
            .open(store.layer_use_path(&d))
            .unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(age))
            .unwrap();
        d
    }

    #[test]
    fn eviction_goes_least_recently_used_first_and_stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let old = layer(&store, "old", 100_000, 300);
        let middle = layer(&store, "middle", 100_000, 200);
        let new = layer(&store, "new", 100_000, 100);
        let one = store.unpacked_bytes().unwrap() / 3;
        assert!(one >= 100_000, "{one}");

        // Room for two: only the oldest goes.
        let out = store.evict_layers(2 * one, || Ok(BTreeSet::new())).unwrap();
        assert_eq!(out.evicted, vec![old.clone()]);
        assert_eq!(out.bytes, one);
        assert!(!store.has_layer_dir(&old));
        assert!(store.has_layer_dir(&middle) && store.has_layer_dir(&new));
        assert_eq!(store.unpacked_bytes().unwrap(), 2 * one);

        // A use makes the middle one the newest: the other goes next.
        store.record_layer_use(&middle);
        let out = store.evict_layers(one, || Ok(BTreeSet::new())).unwrap();
        assert_eq!(out.evicted, vec![new.clone()]);
        assert!(store.has_layer_dir(&middle));

        // Nothing under the limit moves; kept layers never do.
        let out = store.evict_layers(one, || Ok(BTreeSet::new())).unwrap();
        assert!(out.evicted.is_empty());
        let keep = BTreeSet::from([middle.clone()]);
        let out = store.evict_layers(0, || Ok(keep.clone())).unwrap();
        assert!(out.evicted.is_empty());
        assert_eq!(out.remaining, one);
        assert!(store.has_layer_dir(&middle));
        let out = store.evict_layers(0, || Ok(BTreeSet::new())).unwrap();
        assert_eq!(out.evicted, vec![middle]);
        assert_eq!(store.unpacked_bytes().unwrap(), 0);
    }

    #[test]
    fn layers_without_a_record_are_measured_and_count_as_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let recorded = layer(&store, "recorded", 50_000, 10);
        let unrecorded = Digest::of(b"unrecorded");
        let udir = store.layer_dir(&unrecorded);
        fs::create_dir_all(&udir).unwrap();
        fs::write(udir.join("f"), vec![2u8; 50_000]).unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        fs::File::open(&udir).unwrap().set_modified(old).unwrap();

        let total = store.unpacked_bytes().unwrap();
        assert!(total >= 100_000, "{total}");
        let out = store
            .evict_layers(total - 1, || Ok(BTreeSet::new()))
            .unwrap();
        assert_eq!(out.evicted, vec![unrecorded]);
        assert!(store.has_layer_dir(&recorded));
    }
}

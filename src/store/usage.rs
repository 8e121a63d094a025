//! [`Store::usage`]: how much disk the store takes, by kind, and how much of
//! it `boxwright gc` would give back.
//!
//! Sizes are what the files occupy on disk (`st_blocks` × 512, as `du`
//! counts), directories included, each inode once however many hard links
//! name it. Trees holding files of subordinate ids (unpacked layers, cache
//! mounts, sandboxes of a rootless user) may have directories this process
//! cannot read: what can be read is counted, and the unreadable directories
//! are listed so the caller can say the numbers are a lower bound.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::error::Result;
use super::reach::Reach;
use super::root::Store;
use crate::digest::Digest;

/// The space one kind of content takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Bytes on disk (blocks × 512; hard links counted once).
    pub bytes: u64,
    /// Of those, what `boxwright gc` (without flags) would free.
    pub reclaimable: u64,
}

/// The space a store takes on disk, by kind (see [`Store::usage`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreUsage {
    /// The OCI layout: blobs (layers, configs, manifests), `index.json`,
    /// `oci-layout`. Reclaimable: the blobs no image or sandbox uses.
    pub blobs: Usage,
    /// Unpacked layers (`ROOT.state/layers`), the overlay lowerdirs of
    /// builds and sandboxes. Reclaimable: those of no reachable image.
    pub layers: Usage,
    /// The bound on unpacked layers (least recently used ones are evicted
    /// past it), when the caller knows it; [`Store::usage`] leaves it unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers_limit: Option<u64>,
    /// Build cache records (`ROOT.state/cache`). Reclaimable: those whose
    /// layer is gone.
    pub cache_records: Usage,
    /// Cache mounts of run steps (`ROOT.state/mounts`: apt, npm, pip
    /// downloads); freed by `gc --cache-mounts` only, so never reclaimable here.
    pub cache_mounts: Usage,
    /// Verified upstream artifacts (`ROOT.state/artifacts`); freed by
    /// `gc --artifacts` only.
    pub artifacts: Usage,
    /// Build logs (`ROOT.state/builds`); the newest ones are kept, never
    /// collected.
    pub build_logs: Usage,
    /// Sandboxes (`ROOT.state/sandboxes`): records, changes and logs; they
    /// go with `boxwright rm`.
    pub sandboxes: Usage,
    /// Leftovers (`ROOT.state/tmp` and `ROOT.state/trash`), all reclaimable.
    pub leftovers: Usage,
    /// Everything else under `ROOT.state` (the lock file, the directories
    /// themselves).
    pub other: Usage,
    /// Directories whose contents could not be read (files of subordinate
    /// ids, or permissions): the sizes above leave their contents out.
    pub unreadable: Vec<PathBuf>,
}

impl StoreUsage {
    /// Each kind with its name, in the order a listing shows them.
    pub fn kinds(&self) -> [(&'static str, Usage); 9] {
        [
            ("blobs", self.blobs),
            ("unpacked layers", self.layers),
            ("build cache records", self.cache_records),
            ("cache mounts", self.cache_mounts),
            ("artifacts", self.artifacts),
            ("build logs", self.build_logs),
            ("sandboxes", self.sandboxes),
            ("leftovers", self.leftovers),
            ("other", self.other),
        ]
    }

    /// Bytes the store takes in all.
    pub fn total(&self) -> u64 {
        self.kinds().iter().map(|(_, u)| u.bytes).sum()
    }

    /// Bytes `boxwright gc` would free.
    pub fn reclaimable(&self) -> u64 {
        self.kinds().iter().map(|(_, u)| u.reclaimable).sum()
    }

    /// True when every directory could be read, so the sizes are exact.
    pub fn is_complete(&self) -> bool {
        self.unreadable.is_empty()
    }
}

/// Adds up trees, each inode once.
#[derive(Default)]
pub(super) struct Meter {
    /// (device, inode) of files with more than one link, already counted.
    seen: HashSet<(u64, u64)>,
    unreadable: Vec<PathBuf>,
}

impl Meter {
    /// The bytes of one inode, or 0 when a hard link to it was counted already.
    fn inode(&mut self, meta: &fs::Metadata) -> u64 {
        if !meta.is_dir() && meta.nlink() > 1 && !self.seen.insert((meta.dev(), meta.ino())) {
            return 0;
        }
        meta.blocks() * 512
    }

    /// The bytes of the tree at `path` (nothing if it does not exist). Does
    /// not follow symlinks or cross into other file systems (a sandbox's
    /// mounted root is its layers, counted where they live).
    pub(super) fn tree(&mut self, path: &Path) -> u64 {
        let mut bytes = 0;
        let walk = walkdir::WalkDir::new(path)
            .follow_links(false)
            .same_file_system(true);
        for entry in walk {
            match entry {
                Ok(e) => match e.metadata() {
                    Ok(meta) => bytes += self.inode(&meta),
                    Err(_) => self.unreadable.push(e.path().to_path_buf()),
                },
                Err(err) => {
                    let missing = err
                        .io_error()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound);
                    // A root that is absent takes no space; an entry removed
                    // while we walk took none we can measure.
                    if !missing && let Some(p) = err.path() {
                        self.unreadable.push(p.to_path_buf());
                    }
                }
            }
        }
        bytes
    }

    /// The directory `dir` itself (not its contents), or 0 when absent.
    fn dir_only(&mut self, dir: &Path) -> u64 {
        fs::symlink_metadata(dir)
            .map(|m| self.inode(&m))
            .unwrap_or(0)
    }

    /// The paths in `dir`, sorted; none when it is absent, and none (with
    /// `dir` listed as unreadable) when it cannot be read.
    fn entries(&mut self, dir: &Path) -> Vec<PathBuf> {
        match fs::read_dir(dir) {
            Ok(rd) => {
                let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                paths.sort();
                paths
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(_) => {
                self.unreadable.push(dir.to_path_buf());
                Vec::new()
            }
        }
    }

    /// The bytes of `dir` itself and of every entry's tree but those in
    /// `skip` (measured apart).
    fn dir_except(&mut self, dir: &Path, skip: &[PathBuf]) -> u64 {
        let mut bytes = self.dir_only(dir);
        for path in self.entries(dir) {
            if !skip.contains(&path) {
                bytes += self.tree(&path);
            }
        }
        bytes
    }

    /// The usage of `dir`: its own blocks plus each entry's tree, the trees
    /// of the entries whose names `reclaim` picks counted as reclaimable too.
    fn dir(&mut self, dir: &Path, mut reclaim: impl FnMut(&str) -> bool) -> Usage {
        let mut usage = Usage {
            bytes: self.dir_only(dir),
            reclaimable: 0,
        };
        for path in self.entries(dir) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = self.tree(&path);
            usage.bytes += bytes;
            if reclaim(&name) {
                usage.reclaimable += bytes;
            }
        }
        usage
    }
}

impl Store {
    /// Measures the store (see [`StoreUsage`]) under the shared store lock,
    /// so no garbage collection runs meanwhile (builds may: their files in
    /// progress count as leftovers).
    ///
    /// What is reclaimable follows `gc`'s own rules: blobs no tagged image
    /// and no sandbox reaches, unpacked layers no reachable config names,
    /// cache records whose layer blob is gone, and every leftover. Fails as
    /// `gc` would on a corrupt manifest or config (`fsck` finds it).
    pub fn usage(&self) -> Result<StoreUsage> {
        let _lock = self.lock_shared()?;
        let mut reach = Reach::default();
        for desc in self.index()?.manifests {
            reach.walk(self, &desc)?;
        }
        for desc in self.sandbox_images() {
            reach.walk(self, &desc)?;
        }
        let keep: BTreeSet<Digest> = reach.blobs.iter().cloned().collect();

        let mut m = Meter::default();
        let mut usage = StoreUsage {
            blobs: self.blob_usage(&mut m, &keep),
            layers: m.dir(&self.layers_dir(), |name| {
                !Digest::from_hex(name).is_ok_and(|d| reach.diff_ids.contains(&d))
            }),
            layers_limit: None,
            cache_records: m.dir(&self.cache_dir(), |name| {
                name.strip_suffix(".json")
                    .and_then(|hex| Digest::from_hex(hex).ok())
                    .is_some_and(|key| matches!(self.cache_get(&key), Ok(None)))
            }),
            cache_mounts: m.dir(&self.mounts_dir(), |_| false),
            artifacts: m.dir(&self.artifacts_dir(), |_| false),
            build_logs: m.dir(&self.builds_dir(), |_| false),
            sandboxes: m.dir(&self.sandboxes_dir(), |_| false),
            ..StoreUsage::default()
        };
        let tmp = m.dir(&self.tmp_dir(), |_| true);
        let trash = m.dir(&self.trash_dir(), |_| true);
        // The layers' use records belong with them.
        usage.layers.bytes += m.tree(&self.layer_use_dir());
        usage.leftovers = Usage {
            bytes: tmp.bytes + trash.bytes,
            reclaimable: tmp.reclaimable + trash.reclaimable,
        };
        // The rest of ROOT.state: the lock file and the state dir itself.
        let counted = [
            self.layers_dir(),
            self.layer_use_dir(),
            self.cache_dir(),
            self.mounts_dir(),
            self.artifacts_dir(),
            self.builds_dir(),
            self.sandboxes_dir(),
            self.tmp_dir(),
            self.trash_dir(),
        ];
        usage.other.bytes = m.dir_except(self.state_dir(), &counted);
        usage.unreadable = m.unreadable;
        Ok(usage)
    }

    /// The layout's usage: every file under it, the blobs no image reaches
    /// reclaimable.
    fn blob_usage(&self, m: &mut Meter, keep: &BTreeSet<Digest>) -> Usage {
        let root = self.root();
        let blobs = root.join("blobs");
        let sha256 = blobs.join("sha256");
        let mut usage = m.dir(&sha256, |name| {
            Digest::from_hex(name).is_ok_and(|d| !keep.contains(&d))
        });
        // index.json, oci-layout, other algorithms' blobs, the dirs themselves.
        usage.bytes += m.dir_except(root, std::slice::from_ref(&blobs));
        usage.bytes += m.dir_except(&blobs, std::slice::from_ref(&sha256));
        usage
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::*;
    use crate::media::{Descriptor, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};

    fn put(store: &Store, bytes: &[u8], media_type: &str) -> Descriptor {
        let d = store.write_blob(bytes).unwrap();
        Descriptor::new(media_type, d, bytes.len() as u64)
    }

    /// Tags `name`: an image of one layer whose unpacked dir holds a file.
    fn image(store: &Store, name: &str, content: &str) -> Digest {
        let layer = put(store, content.as_bytes(), OCI_LAYER_GZIP);
        let diff_id = Digest::of(format!("uncompressed {content}").as_bytes());
        let config = json!({"architecture": "amd64", "os": "linux",
                            "rootfs": {"type": "layers", "diff_ids": [diff_id]}});
        let config = put(store, &serde_json::to_vec(&config).unwrap(), OCI_CONFIG);
        let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                              "config": config, "layers": [layer]});
        let manifest = put(store, &serde_json::to_vec(&manifest).unwrap(), OCI_MANIFEST);
        store.tag(name, manifest).unwrap();
        let dir = store.layer_dir(&diff_id);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("file"), vec![7u8; 20_000]).unwrap();
        diff_id
    }

    fn du(path: &Path) -> u64 {
        Meter::default().tree(path)
    }

    #[test]
    fn usage_counts_each_kind_and_what_gc_would_free() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        image(&store, "kept:1", "kept layer");
        // Garbage: a blob, an unpacked layer and a cache record nothing uses,
        // and a leftover temp file.
        let orphan = store.write_blob(&vec![1u8; 64 * 1024]).unwrap();
        let orphan_dir = store.layers_dir().join(Digest::of(b"gone").hex());
        fs::create_dir_all(&orphan_dir).unwrap();
        fs::write(orphan_dir.join("big"), vec![2u8; 100_000]).unwrap();
        fs::write(store.tmp_dir().join("partial"), vec![3u8; 10_000]).unwrap();
        let record = store
            .cache_dir()
            .join(format!("{}.json", Digest::of(b"key").hex()));
        fs::write(
            &record,
            serde_json::to_vec(&json!({
                "layer": {"digest": Digest::of(b"missing"), "diff_id": Digest::of(b"d"),
                          "size": 3, "media_type": OCI_LAYER_GZIP},
                "created_by": "RUN true"
            }))
            .unwrap(),
        )
        .unwrap();
        // Kept: a cache mount, a build log.
        let mount = store.mount_cache_dir("/var/cache/apt").unwrap();
        fs::write(mount.join("pkg.deb"), vec![4u8; 50_000]).unwrap();
        fs::create_dir_all(store.builds_dir()).unwrap();
        fs::write(store.builds_dir().join("0123456789ab.jsonl"), "{}\n").unwrap();

        let u = store.usage().unwrap();
        assert!(u.is_complete(), "{:?}", u.unreadable);
        assert_eq!(u.blobs.reclaimable, du(&store.blob_path(&orphan)));
        assert!(u.blobs.reclaimable >= 64 * 1024);
        assert!(u.blobs.bytes > u.blobs.reclaimable + 20_000 / 512 * 512);
        assert_eq!(u.layers.reclaimable, du(&orphan_dir));
        assert!(u.layers.bytes >= u.layers.reclaimable + 20_000);
        assert_eq!(u.cache_records.reclaimable, du(&record));
        assert!(u.cache_records.reclaimable > 0);
        assert!(u.cache_mounts.bytes >= 50_000);
        assert_eq!(u.cache_mounts.reclaimable, 0);
        assert!(u.build_logs.bytes > 0);
        assert_eq!(u.build_logs.reclaimable, 0);
        assert_eq!(
            u.leftovers.reclaimable,
            du(&store.tmp_dir().join("partial"))
        );
        assert_eq!(u.sandboxes, Usage::default());
        assert!(u.other.bytes > 0, "the state dir itself");
        assert_eq!(
            u.reclaimable(),
            u.blobs.reclaimable
                + u.layers.reclaimable
                + u.cache_records.reclaimable
                + u.leftovers.reclaimable
        );
        assert!(u.total() >= u.reclaimable() + 50_000);

        // After gc (and the trash emptied, as `boxwright gc` does) nothing
        // is left to reclaim, and what was kept is still counted.
        store.gc().unwrap();
        for entry in store.trash_entries() {
            fs::remove_dir_all(&entry)
                .or_else(|_| fs::remove_file(&entry))
                .unwrap();
        }
        let after = store.usage().unwrap();
        assert_eq!(after.reclaimable(), 0, "{after:?}");
        assert_eq!(after.total(), u.total() - u.reclaimable(), "{after:?}");
    }

    #[test]
    fn hard_links_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let a = store.mount_cache_dir("/a").unwrap();
        fs::write(a.join("f"), vec![5u8; 1 << 20]).unwrap();
        let before = store.usage().unwrap().cache_mounts.bytes;
        let b = store.mount_cache_dir("/b").unwrap();
        fs::hard_link(a.join("f"), b.join("g")).unwrap();
        let after = store.usage().unwrap().cache_mounts.bytes;
        assert!(before >= 1 << 20);
        assert_eq!(
            after - before,
            du(&b) - du(&b.join("g")),
            "only dir b is new"
        );
        assert!(after - before < 1 << 20);
    }

    #[test]
    fn unreadable_dirs_are_listed_and_what_can_be_read_is_counted() {
        // Root reads everything; the check needs an ordinary user. Run as
        // root, the test checks the same dir is then counted in full.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let m = store.mount_cache_dir("/m").unwrap();
        fs::write(m.join("readable"), vec![6u8; 30_000]).unwrap();
        let locked = m.join("locked");
        fs::create_dir(&locked).unwrap();
        fs::write(locked.join("hidden"), vec![6u8; 30_000]).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let u = store.usage().unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(u.cache_mounts.bytes >= 30_000);
        if rustix::process::geteuid().is_root() {
            assert!(u.is_complete(), "{:?}", u.unreadable);
            assert!(u.cache_mounts.bytes >= 60_000);
        } else {
            assert_eq!(u.unreadable, vec![locked]);
            assert!(u.cache_mounts.bytes < 60_000);
        }
    }
}

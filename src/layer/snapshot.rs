//! The fallback diff when overlayfs cannot be mounted: a stat snapshot of the
//! tree before a step, compared with the tree after it.
//!
//! The layer is byte-identical to what [`write_upperdir`](super::write_upperdir)
//! writes for the same change made on an overlay, because the rules below
//! reproduce what overlayfs puts in an upperdir:
//! - a new or changed path is written with all its ancestor directories
//!   (overlayfs copies parents up);
//! - a deleted path becomes a whiteout at the topmost deleted path only;
//! - a directory replaced by a new one (other inode or birth time, or a
//!   non-directory before) is opaque and written with all its contents.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::ops::Bound;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::media::LayerInfo;

use super::WriteOptions;
use super::error::LayerError;
use super::fsmeta::{Kind, Meta, TreeKey, walk, xattrs_digest};
use super::tree_tar::TreeTar;
use super::upperdir::CommitStats;

/// Format version of a serialized snapshot.
const SNAPSHOT_VERSION: u32 = 1;

/// The state of every path below a root: enough metadata (times to the
/// nanosecond, size, mode, owner, inode, device, type, xattrs) to tell which
/// paths a later command created, changed or deleted. Serializable, so it
/// can be taken in one process and compared in another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "SnapshotFile", try_from = "SnapshotFile")]
pub struct Snapshot {
    entries: BTreeMap<TreeKey, Stamp>,
}

/// What a snapshot keeps of one path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    #[serde(flatten)]
    meta: Meta,
    /// Digest of all xattrs (`None`: no xattrs).
    #[serde(default)]
    xattrs: Option<String>,
}

impl Stamp {
    /// The same file, unchanged, whichever user namespace each was read in.
    fn same_file(&self, other: &Stamp) -> bool {
        let (a, b) = (&self.meta, &other.meta);
        (a.kind, a.size, a.mtime_ns, a.ctime_ns, a.ino, a.dev)
            == (b.kind, b.size, b.mtime_ns, b.ctime_ns, b.ino, b.dev)
    }
}

impl Snapshot {
    /// Records every path below `root` (symlinks are not followed).
    pub fn take(root: &Path) -> Result<Snapshot, LayerError> {
        let mut entries = BTreeMap::new();
        walk(root, |key, meta| {
            let path = key.under(root);
            let xattrs = xattrs_digest(&path).map_err(|e| LayerError::read_tree(&path, e))?;
            entries.insert(
                key.clone(),
                Stamp {
                    meta: meta.clone(),
                    xattrs,
                },
            );
            Ok(true)
        })?;
        Ok(Snapshot { entries })
    }

    /// Number of paths recorded (the root itself is not one).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the root held nothing when the snapshot was taken.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What to write for one path of the diff.
enum Item {
    Node { opaque: bool },
    Whiteout,
}

/// Writes the layer holding what changed below `root` since `before` was
/// taken, to `out`, and returns its digests.
pub fn write_snapshot_diff<W: Write>(
    root: &Path,
    before: &Snapshot,
    opts: &WriteOptions,
    out: W,
) -> Result<LayerInfo, LayerError> {
    write_snapshot_diff_filtered(root, before, opts, out, &|_| false).map(|(info, _)| info)
}

/// [`write_snapshot_diff`] leaving out every path (`/a/b`, absolute in the
/// image) for which `exclude` is true, with whatever is below it; returns
/// what was kept and left out, counted as
/// [`write_upperdir_filtered`](super::write_upperdir_filtered) counts the
/// upperdir of the same change.
pub fn write_snapshot_diff_filtered<W: Write>(
    root: &Path,
    before: &Snapshot,
    opts: &WriteOptions,
    out: W,
    exclude: &dyn Fn(&str) -> bool,
) -> Result<(LayerInfo, CommitStats), LayerError> {
    let now = Snapshot::take(root)?;
    let items = diff(&before.entries, &now.entries);
    let mut tar = TreeTar::new(root, opts, out)?;
    let mut stats = CommitStats::default();
    // Items come in tree order, so what lies below an excluded path follows
    // it directly.
    let mut excluded_at: Option<&TreeKey> = None;
    for (key, item) in &items {
        if excluded_at.is_some_and(|top| key.is_below(top)) {
            stats.excluded += 1;
            continue;
        }
        let abs = format!("/{}", String::from_utf8_lossy(&key.0));
        if exclude(&abs) {
            excluded_at = Some(key);
            stats.excluded += 1;
            stats.excluded_paths.push(abs);
            continue;
        }
        match item {
            Item::Whiteout => {
                tar.whiteout(key)?;
                stats.changes += 1;
                stats.deletions += 1;
            }
            Item::Node { opaque } => {
                // Every node key comes from `now`.
                let Some(stamp) = now.entries.get(key) else {
                    continue;
                };
                tar.node(key, &stamp.meta)?;
                if *opaque {
                    tar.opaque(key)?;
                    stats.changes += 1;
                    stats.deletions += 1;
                }
                match stamp.meta.kind {
                    Kind::Dir => {}
                    Kind::File => {
                        stats.changes += 1;
                        stats.files += 1;
                        stats.bytes += stamp.meta.size;
                        let top = abs
                            .split('/')
                            .nth(1)
                            .map(|t| format!("/{t}"))
                            .unwrap_or_default();
                        let e = stats.by_top.entry(top).or_default();
                        e.0 += 1;
                        e.1 += stamp.meta.size;
                    }
                    _ => stats.changes += 1,
                }
            }
        }
    }
    stats.excluded_paths.sort();
    Ok((tar.finish()?, stats))
}

/// Bytes of the regular files below `root` that are new or changed since
/// `before` was taken (what `ps` shows as a copied tree's changes). Owners
/// are not compared: this may run outside the user namespace the snapshot
/// was taken in, where ids read differently; a chown changes the ctime anyway.
pub fn changed_bytes(root: &Path, before: &Snapshot) -> Result<u64, LayerError> {
    let now = Snapshot::take(root)?;
    Ok(now
        .entries
        .iter()
        .filter(|(k, s)| {
            s.meta.kind == Kind::File && !before.entries.get(*k).is_some_and(|b| b.same_file(s))
        })
        .map(|(_, s)| s.meta.size)
        .sum())
}

/// The entries of the diff from `before` to `now`, in tree order.
fn diff(
    before: &BTreeMap<TreeKey, Stamp>,
    now: &BTreeMap<TreeKey, Stamp>,
) -> BTreeMap<TreeKey, Item> {
    let mut items: BTreeMap<TreeKey, Item> = BTreeMap::new();
    let mut replaced: BTreeSet<TreeKey> = BTreeSet::new();

    for (key, stamp) in now {
        match before.get(key) {
            None => {
                items.insert(key.clone(), Item::Node { opaque: false });
            }
            Some(old) if is_replaced_dir(&old.meta, &stamp.meta) => {
                replaced.insert(key.clone());
                items.insert(key.clone(), Item::Node { opaque: true });
            }
            Some(old) if old != stamp => {
                items.insert(key.clone(), Item::Node { opaque: false });
            }
            Some(_) => {}
        }
    }

    // A replaced directory is written whole: nothing of the old one shows.
    for dir in &replaced {
        let below = now
            .range((Bound::Excluded(dir.clone()), Bound::Unbounded))
            .take_while(|(k, _)| k.is_below(dir));
        for (key, _) in below {
            items
                .entry(key.clone())
                .or_insert(Item::Node { opaque: false });
        }
    }

    // Whiteouts only where the parent is still the same directory: below a
    // deleted or replaced directory nothing of the old tree needs hiding.
    for key in before.keys() {
        if now.contains_key(key) {
            continue;
        }
        let parent_kept = match key.parent() {
            None => true,
            Some(p) => {
                now.get(&p).is_some_and(|s| s.meta.kind == Kind::Dir) && !replaced.contains(&p)
            }
        };
        if parent_kept {
            items.insert(key.clone(), Item::Whiteout);
        }
    }

    // Ancestors of everything written, as overlayfs copies parents up.
    let mut ancestors = Vec::new();
    for key in items.keys() {
        let mut cur = key.parent();
        while let Some(p) = cur {
            if items.contains_key(&p) {
                break;
            }
            cur = p.parent();
            ancestors.push(p);
        }
    }
    for p in ancestors {
        items.entry(p).or_insert(Item::Node { opaque: false });
    }
    items
}

/// Whether a directory now at a path is not the one that was there before.
fn is_replaced_dir(old: &Meta, new: &Meta) -> bool {
    if new.kind != Kind::Dir {
        return false;
    }
    old.kind != Kind::Dir
        || old.ino != new.ino
        || old.dev != new.dev
        || matches!((old.btime_ns, new.btime_ns), (Some(a), Some(b)) if a != b)
}

/// The serialized form: a version and a list of paths. Paths are strings
/// with non-UTF-8 bytes (and `%`) percent-escaped, so any file name survives.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    version: u32,
    entries: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    path: String,
    #[serde(flatten)]
    stamp: Stamp,
}

impl From<Snapshot> for SnapshotFile {
    fn from(s: Snapshot) -> SnapshotFile {
        SnapshotFile {
            version: SNAPSHOT_VERSION,
            entries: s
                .entries
                .into_iter()
                .map(|(k, stamp)| FileEntry {
                    path: escape(&k.0),
                    stamp,
                })
                .collect(),
        }
    }
}

/// Why a stored snapshot does not read back (serde shows it as the
/// deserialization error's message).
#[derive(Debug, thiserror::Error)]
enum SnapshotFileError {
    #[error(
        "snapshot format version {0} is not {SNAPSHOT_VERSION}: take the snapshot again with this boxwright"
    )]
    Version(u32),
    /// A path whose `%XX` escapes do not decode.
    #[error("bad path '{0}' in snapshot")]
    BadPath(String),
}

impl TryFrom<SnapshotFile> for Snapshot {
    type Error = SnapshotFileError;

    fn try_from(f: SnapshotFile) -> Result<Snapshot, SnapshotFileError> {
        if f.version != SNAPSHOT_VERSION {
            return Err(SnapshotFileError::Version(f.version));
        }
        let mut entries = BTreeMap::new();
        for e in f.entries {
            let key =
                unescape(&e.path).ok_or_else(|| SnapshotFileError::BadPath(e.path.clone()))?;
            entries.insert(TreeKey(key), e.stamp);
        }
        Ok(Snapshot { entries })
    }
}

fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' {
                s.push_str("%25");
            } else {
                s.push(c);
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_names_survive_serialization() {
        for name in [
            &b"plain"[..],
            b"50%",
            b"caf\xc3\xa9",
            b"bad\xff\xfename",
            b"%FF",
        ] {
            assert_eq!(unescape(&escape(name)).unwrap(), name);
        }
        assert_eq!(unescape("%G1"), None);
        assert_eq!(unescape("%4"), None);
    }

    #[test]
    fn snapshot_round_trips_through_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), "x").unwrap();
        let odd = std::ffi::OsStr::from_bytes(b"n\xffo");
        std::fs::write(dir.path().join(odd), "y").unwrap();
        let snap = Snapshot::take(dir.path()).unwrap();
        assert_eq!(snap.len(), 3);
        let json = serde_json::to_string(&snap).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
        let bad = json.replace("\"version\":1", "\"version\":9");
        let err = serde_json::from_str::<Snapshot>(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("take the snapshot again"), "{err}");
    }

    #[test]
    fn a_reused_inode_with_a_new_birth_time_is_a_replaced_directory() {
        let dir = Meta {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 4096,
            mtime_ns: 1,
            ctime_ns: 1,
            btime_ns: Some(1),
            ino: 42,
            dev: 7,
            rdev_major: 0,
            rdev_minor: 0,
            nlink: 2,
        };
        let touched = Meta {
            mtime_ns: 2,
            ctime_ns: 2,
            ..dir.clone()
        };
        assert!(
            !is_replaced_dir(&dir, &touched),
            "a modified directory is the same directory"
        );
        let reborn = Meta {
            btime_ns: Some(2),
            ..touched.clone()
        };
        assert!(
            is_replaced_dir(&dir, &reborn),
            "same inode number, new birth time"
        );
        let no_btime = Meta {
            btime_ns: None,
            ..dir.clone()
        };
        assert!(!is_replaced_dir(
            &no_btime,
            &Meta {
                btime_ns: None,
                ..touched.clone()
            }
        ));
        assert!(is_replaced_dir(
            &no_btime,
            &Meta {
                ino: 43,
                ..touched.clone()
            }
        ));
        let file = Meta {
            kind: Kind::File,
            ..dir.clone()
        };
        assert!(is_replaced_dir(&file, &dir), "a file became a directory");
        assert!(
            !is_replaced_dir(&dir, &file),
            "a file is never an opaque directory"
        );
    }

    use std::os::unix::ffi::OsStrExt;
}

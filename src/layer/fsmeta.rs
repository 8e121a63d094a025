//! What the layer writers need to know about a file: one `statx` without
//! following symlinks, the xattrs boxwright looks at, and the order in which
//! paths are walked.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, StatxFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::LayerError;

/// The xattr that marks file capabilities; the only one layers carry.
pub(crate) const CAPABILITY_XATTR: &str = "security.capability";

/// Opaque-directory markers overlayfs sets (`userxattr` mounts use the
/// `user.` one).
pub(crate) const OPAQUE_XATTRS: [&str; 2] = ["user.overlay.opaque", "trusted.overlay.opaque"];

/// The type of a file system object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

/// The metadata of one path, as `lstat` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// Birth time, where the file system records one: tells a directory that
    /// was removed and re-created apart from the original even when the
    /// inode number is reused (ext4 reuses them).
    #[serde(default)]
    pub btime_ns: Option<i64>,
    pub ino: u64,
    pub dev: u64,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub nlink: u32,
}

impl Meta {
    /// `lstat` of `path`.
    pub(crate) fn of(path: &Path) -> io::Result<Meta> {
        let st = rustix::fs::statx(
            CWD,
            path,
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::BASIC_STATS | StatxFlags::BTIME,
        )?;
        let kind = match FileType::from_raw_mode(st.stx_mode.into()) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::CharacterDevice => Kind::Char,
            FileType::BlockDevice => Kind::Block,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            FileType::Unknown => {
                return Err(io::Error::other(
                    "the file system reports an unknown file type",
                ));
            }
        };
        let ns = |t: rustix::fs::StatxTimestamp| {
            t.tv_sec
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(t.tv_nsec))
        };
        let has_btime = st.stx_mask & StatxFlags::BTIME.bits() != 0;
        Ok(Meta {
            kind,
            mode: u32::from(st.stx_mode) & 0o7777,
            uid: st.stx_uid,
            gid: st.stx_gid,
            size: st.stx_size,
            mtime_ns: ns(st.stx_mtime),
            ctime_ns: ns(st.stx_ctime),
            btime_ns: has_btime.then(|| ns(st.stx_btime)),
            ino: st.stx_ino,
            dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
            rdev_major: st.stx_rdev_major,
            rdev_minor: st.stx_rdev_minor,
            nlink: st.stx_nlink,
        })
    }

    /// An overlayfs whiteout: a character device with device number 0/0.
    pub(crate) fn is_whiteout(&self) -> bool {
        self.kind == Kind::Char && self.rdev_major == 0 && self.rdev_minor == 0
    }

    /// Modification time in whole seconds (rounded down).
    pub(crate) fn mtime_secs(&self) -> i64 {
        self.mtime_ns.div_euclid(1_000_000_000)
    }
}

/// The value of xattr `name` of `path` (not following a symlink), or `None`
/// when it is not set or the file system has no xattrs.
pub(crate) fn xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 64 * 1024];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Err(e) if e == rustix::io::Errno::NODATA || e == rustix::io::Errno::NOTSUP => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether directory `path` carries an overlayfs opaque marker set to `y`.
pub(crate) fn is_opaque_dir(path: &Path) -> io::Result<bool> {
    for name in OPAQUE_XATTRS {
        if xattr(path, name)?.as_deref() == Some(b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A digest of all xattrs of `path` (names sorted), `None` when it has none.
/// Snapshots only need to know whether xattrs changed, so they keep this
/// rather than the values.
pub(crate) fn xattrs_digest(path: &Path) -> io::Result<Option<String>> {
    let mut list = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut list[..]) {
        Ok(n) => n,
        Err(e) if e == rustix::io::Errno::NOTSUP => 0,
        Err(e) => return Err(e.into()),
    };
    if n == 0 {
        return Ok(None);
    }
    let mut names: Vec<&[u8]> = list[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .collect();
    names.sort_unstable();
    let mut h = Sha256::new();
    for name in names {
        let value = xattr(path, &String::from_utf8_lossy(name))?.unwrap_or_default();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name);
        h.update((value.len() as u64).to_le_bytes());
        h.update(&value);
    }
    Ok(Some(hex::encode(h.finalize())))
}

/// Rewrites a `security.capability` value in the v2 form (no root id) that
/// every reader understands: v3 loses its root id, v1 gains an empty upper
/// half. Anything unrecognised is dropped (`None`).
pub(crate) fn capability_v2(value: &[u8]) -> Option<Vec<u8>> {
    const REVISION_MASK: u32 = 0xff00_0000;
    const FLAGS_MASK: u32 = 0x00ff_ffff;
    const V1: u32 = 0x0100_0000;
    const V2: u32 = 0x0200_0000;
    const V3: u32 = 0x0300_0000;
    let magic = u32::from_le_bytes(value.get(..4)?.try_into().ok()?);
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&(V2 | (magic & FLAGS_MASK)).to_le_bytes());
    match (magic & REVISION_MASK, value.len()) {
        (V1, 12) => {
            out.extend_from_slice(&value[4..12]);
            out.extend_from_slice(&[0; 8]);
        }
        (V2, 20) | (V3, 24) => out.extend_from_slice(&value[4..20]),
        _ => return None,
    }
    Some(out)
}

/// The order paths are walked and written in: depth first, a directory
/// before its contents, siblings by the bytes of their names. Comparing with
/// `/` ranked below every other byte gives exactly that order for paths
/// relative to the root (`a`, `a/b`, `a-c`), so sorted keys need no tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TreeKey(pub Vec<u8>);

impl Ord for TreeKey {
    fn cmp(&self, other: &TreeKey) -> Ordering {
        let rank = |b: &u8| if *b == b'/' { 0 } else { u16::from(*b) + 1 };
        self.0.iter().map(rank).cmp(other.0.iter().map(rank))
    }
}

impl PartialOrd for TreeKey {
    fn partial_cmp(&self, other: &TreeKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl TreeKey {
    /// The parent's key; `None` for a top-level name.
    pub(crate) fn parent(&self) -> Option<TreeKey> {
        let i = self.0.iter().rposition(|b| *b == b'/')?;
        Some(TreeKey(self.0[..i].to_vec()))
    }

    /// Whether `self` lies strictly below `dir`.
    pub(crate) fn is_below(&self, dir: &TreeKey) -> bool {
        self.0.len() > dir.0.len() && self.0.starts_with(&dir.0) && self.0[dir.0.len()] == b'/'
    }

    /// The path under `root`.
    pub(crate) fn under(&self, root: &Path) -> PathBuf {
        root.join(OsStr::from_bytes(&self.0))
    }
}

/// Visits every path below `root` (not `root` itself) in [`TreeKey`] order,
/// never following symlinks. `visit` returns whether to descend into a
/// directory. Iterative, so deep trees cannot exhaust the stack; only the
/// sibling names along the current path are held in memory.
pub(crate) fn walk<F>(root: &Path, mut visit: F) -> Result<(), LayerError>
where
    F: FnMut(&TreeKey, &Meta) -> Result<bool, LayerError>,
{
    let mut stack: Vec<(Vec<u8>, std::vec::IntoIter<Vec<u8>>)> = vec![(
        Vec::new(),
        sorted_names(root).map_err(|e| LayerError::read_tree(root, e))?,
    )];
    while let Some((dir, names)) = stack.last_mut() {
        let Some(name) = names.next() else {
            stack.pop();
            continue;
        };
        let mut rel = Vec::with_capacity(dir.len() + 1 + name.len());
        if !dir.is_empty() {
            rel.extend_from_slice(dir);
            rel.push(b'/');
        }
        rel.extend_from_slice(&name);
        let key = TreeKey(rel);
        let path = key.under(root);
        let meta = Meta::of(&path).map_err(|e| LayerError::read_tree(&path, e))?;
        if visit(&key, &meta)? && meta.kind == Kind::Dir {
            let names = sorted_names(&path).map_err(|e| LayerError::read_tree(&path, e))?;
            stack.push((key.0, names));
        }
    }
    Ok(())
}

fn sorted_names(dir: &Path) -> io::Result<std::vec::IntoIter<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.push(entry?.file_name().as_bytes().to_vec());
    }
    names.sort_unstable();
    Ok(names.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_order_is_depth_first_with_byte_sorted_siblings() {
        let mut keys: Vec<TreeKey> = ["a-c", "a/b", "a", "b", "a/b/c", "a.", "A", "a/a"]
            .iter()
            .map(|s| TreeKey(s.as_bytes().to_vec()))
            .collect();
        keys.sort();
        let got: Vec<&str> = keys
            .iter()
            .map(|k| std::str::from_utf8(&k.0).unwrap())
            .collect();
        assert_eq!(got, ["A", "a", "a/a", "a/b", "a/b/c", "a-c", "a.", "b"]);
        let ab = TreeKey(b"a/b".to_vec());
        assert!(ab.is_below(&TreeKey(b"a".to_vec())));
        assert!(!TreeKey(b"a-c".to_vec()).is_below(&TreeKey(b"a".to_vec())));
        assert_eq!(ab.parent(), Some(TreeKey(b"a".to_vec())));
        assert_eq!(TreeKey(b"a".to_vec()).parent(), None);
    }

    #[test]
    fn capabilities_are_rewritten_as_v2() {
        let mut v3 = vec![0x01, 0, 0, 0x03]; // v3, effective
        v3.extend_from_slice(&[0x00, 0x20, 0, 0, 0, 0, 0, 0]); // cap_net_raw permitted
        v3.extend_from_slice(&[0; 8]);
        v3.extend_from_slice(&1000u32.to_le_bytes()); // root id
        let v2 = capability_v2(&v3).unwrap();
        assert_eq!(v2.len(), 20);
        assert_eq!(&v2[..4], &[0x01, 0, 0, 0x02]);
        assert_eq!(&v2[4..], &v3[4..20]);
        assert_eq!(capability_v2(&v2).unwrap(), v2);
        let v1 = [0, 0, 0, 0x01, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(
            capability_v2(&v1).unwrap(),
            [
                0, 0, 0, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        assert_eq!(capability_v2(&[1, 2, 3]), None);
        assert_eq!(capability_v2(&v3[..23]), None);
    }
}

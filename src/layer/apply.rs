//! Reading layers and applying them to a directory, either flattened onto
//! the layers below or as one overlayfs lowerdir of its own.
//!
//! Nothing outside the destination is ever written, whatever the layer
//! holds: names with `..` or a leading `/` are refused, parents are resolved
//! inside the destination (see `inroot`), and the final component is never
//! followed when it is a symlink (an existing symlink is replaced).

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::ops::Bound;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use tar::EntryType;

use crate::digest::{Digest, DigestReader};
use crate::media::Compression;

use super::error::LayerError;
use super::fsmeta::{CAPABILITY_XATTR, TreeKey};
use super::inroot::{
    Root, chmod_nofollow, kind_at, list, open_dir_nofollow, remove_tree, split_last,
};
use super::tree_tar::{OPAQUE_MARKER, WHITEOUT_PREFIX};

/// The xattr that makes a directory opaque in a `userxattr` overlay mount.
const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// How a layer's whiteouts are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    /// `dest` holds the layers below: whiteouts delete from it.
    Flatten,
    /// `dest` is an empty directory that becomes an overlayfs lowerdir
    /// (mounted with `userxattr`): whiteouts become 0/0 character devices
    /// and opaque markers the `user.overlay.opaque=y` xattr.
    OverlayLower,
}

/// What applying a layer did, including what the environment refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Tar entries read (extension headers not counted).
    pub entries: u64,
    /// Whiteouts and opaque markers applied.
    pub whiteouts: u64,
    /// Device nodes not created because `mknod` was refused (user namespace).
    pub skipped_devices: u64,
    /// Entries whose owner could not be set (single-id user namespace).
    pub ownership_failures: u64,
    /// `security.capability` values that could not be set.
    pub xattr_failures: u64,
    /// Entries of a type a file system cannot hold (e.g. tape volume labels).
    pub skipped_entries: u64,
}

/// The uncompressed tar of a layer blob read from `r`. gzip layers are read
/// with a multi-member decoder (boxwright's parallel gzip writes many
/// members). If a zstd decoder cannot be created, the error comes from the
/// first read.
pub fn open_layer<'a>(r: impl Read + 'a, compression: Compression) -> Box<dyn Read + 'a> {
    match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => match zstd::stream::read::Decoder::new(r) {
            Ok(d) => Box::new(d),
            Err(e) => Box::new(Failed(Some(e))),
        },
        Compression::None => Box::new(r),
    }
}

/// A reader whose first read reports an error found when it was set up.
struct Failed(Option<io::Error>);

impl Read for Failed {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("layer reader failed")))
    }
}

/// What an apply checks the layer's uncompressed stream against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyChecks {
    /// The diff_id the image claims for the layer: the sha256 of the whole
    /// uncompressed stream must equal it, or the apply fails (and whoever
    /// unpacked must not file the result under that diff_id).
    pub diff_id: Option<Digest>,
    /// The most uncompressed bytes to read before refusing the layer (a
    /// decompression bomb), with the reason shown when it is reached.
    pub max_size: Option<SizeCap>,
}

/// A cap on a layer's uncompressed size, and what sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeCap {
    pub bytes: u64,
    /// Ends "…expands to more than N bytes (WHY)", e.g. "--max-layer-size".
    pub why: String,
}

/// Applies the layer blob read from `r` to directory `dest`, without checks
/// on its content's digest or size; see [`apply_layer_checked`].
pub fn apply_layer(
    r: impl Read,
    compression: Compression,
    dest: &Path,
    mode: ApplyMode,
) -> Result<ApplyReport, LayerError> {
    apply_layer_checked(r, compression, dest, mode, &ApplyChecks::default())
}

/// Applies the layer blob read from `r` to directory `dest`, hashing and
/// counting the uncompressed stream on the way: more than `checks.max_size`
/// bytes stops the apply, and a stream whose sha256 is not `checks.diff_id`
/// fails it once read to the end (what was written by then is the caller's
/// to discard: `dest` must be a fresh directory that nothing trusts yet).
pub fn apply_layer_checked(
    r: impl Read,
    compression: Compression,
    dest: &Path,
    mode: ApplyMode,
    checks: &ApplyChecks,
) -> Result<ApplyReport, LayerError> {
    let root = Root::open(dest).map_err(|source| LayerError::Dest {
        path: dest.to_path_buf(),
        source,
    })?;
    let mut applier = Applier {
        root,
        mode,
        report: ApplyReport::default(),
        written: BTreeSet::new(),
        dir_times: Vec::new(),
        buf: vec![0; 256 * 1024],
    };
    let stream = Capped {
        inner: DigestReader::new(open_layer(r, compression)),
        cap: checks.max_size.as_ref().map(|c| c.bytes),
        exceeded: false,
    };
    let mut archive = tar::Archive::new(stream);
    let over = |s: &Capped<_>, e: LayerError| match (&checks.max_size, s.exceeded) {
        (Some(cap), true) => LayerError::TooLarge {
            limit: cap.bytes,
            why: cap.why.clone(),
        },
        _ => e,
    };
    let entries = archive.entries().map_err(LayerError::ReadLayer);
    let result = entries.and_then(|entries| {
        for entry in entries {
            let entry = entry.map_err(LayerError::ReadLayer)?;
            applier.entry(entry)?;
        }
        Ok(())
    });
    let mut stream = archive.into_inner();
    if let Err(e) = result {
        return Err(over(&stream, e));
    }
    // What follows the end-of-archive blocks is part of the stream the
    // diff_id covers, so it is read (and counted) too.
    if let Err(e) = io::copy(&mut stream, &mut io::sink()) {
        return Err(over(&stream, LayerError::ReadLayer(e)));
    }
    let (_, actual, _) = stream.inner.finish();
    if let Some(expected) = &checks.diff_id
        && *expected != actual
    {
        return Err(LayerError::DiffIdMismatch {
            expected: expected.clone(),
            actual,
        });
    }
    applier.finish()
}

/// The uncompressed stream of a layer: hashed, counted, and cut off once it
/// grows past the cap.
struct Capped<R> {
    inner: DigestReader<R>,
    cap: Option<u64>,
    exceeded: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(cap) = self.cap
            && self.inner.len() > cap
        {
            self.exceeded = true;
            return Err(io::Error::other("the layer is larger than allowed"));
        }
        Ok(n)
    }
}

/// Checks a tar entry name and returns it normalized: no `./` prefix, no
/// empty or `.` components, no trailing `/`. Empty means the root itself.
pub(crate) fn normalize_entry_name(name: &[u8]) -> Result<Vec<u8>, LayerError> {
    normalize(name).map_err(|reason| LayerError::hostile(name, reason))
}

/// Checks the target of hardlink `name`; returns it normalized.
pub(crate) fn check_link_target(name: &[u8], target: &[u8]) -> Result<Vec<u8>, LayerError> {
    let t = normalize(target).map_err(|reason| {
        LayerError::hostile(
            name,
            if reason == ABSOLUTE {
                "is a hardlink to an absolute path"
            } else {
                "is a hardlink whose target has a '..' component"
            },
        )
    })?;
    if t.is_empty() {
        return Err(LayerError::hostile(
            name,
            "is a hardlink to the root directory",
        ));
    }
    Ok(t)
}

const ABSOLUTE: &str = "is an absolute path";

fn normalize(name: &[u8]) -> Result<Vec<u8>, &'static str> {
    if name.first() == Some(&b'/') {
        return Err(ABSOLUTE);
    }
    let mut out = Vec::with_capacity(name.len());
    for comp in name.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("has a '..' component"),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

/// The ownership, mode and time of an entry.
struct Attrs {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: i64,
}

struct Applier {
    root: Root,
    mode: ApplyMode,
    report: ApplyReport,
    /// Paths this layer has written: whiteouts and opaque markers leave them
    /// alone (they only hide what lower layers hold, OCI image-spec layer.md).
    written: BTreeSet<TreeKey>,
    /// Directory mtimes, set last: writing children changes them.
    dir_times: Vec<(Vec<u8>, i64)>,
    buf: Vec<u8>,
}

impl Applier {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), LayerError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let rel = normalize_entry_name(&raw)?;
        self.report.entries += 1;
        let (parent_rel, base) = split_last(&rel);

        if matches!(kind, EntryType::Regular | EntryType::Continuous)
            && base.starts_with(WHITEOUT_PREFIX)
        {
            if base == OPAQUE_MARKER {
                return self.opaque(&raw, parent_rel);
            }
            if base.starts_with(b".wh..wh.") {
                // aufs bookkeeping (`.wh..wh.plnk` and the like): not content.
                return Ok(());
            }
            let victim = &base[WHITEOUT_PREFIX.len()..];
            if matches!(victim, b"" | b"." | b"..") {
                return Err(LayerError::hostile(
                    &raw,
                    "is a whiteout for its own directory",
                ));
            }
            return self.whiteout(&raw, parent_rel, victim);
        }

        let h = entry.header();
        let hdr_err = |e| LayerError::apply(&raw, "read its header", e);
        let attrs = Attrs {
            uid: h.uid().map_err(hdr_err)?,
            gid: h.gid().map_err(hdr_err)?,
            mode: h.mode().map_err(hdr_err)? & 0o7777,
            mtime: i64::try_from(h.mtime().map_err(hdr_err)?).unwrap_or(i64::MAX),
        };

        if rel.is_empty() {
            if kind != EntryType::Directory {
                return Err(LayerError::hostile(
                    &raw,
                    "names the root but is not a directory",
                ));
            }
            let fd = rustix::fs::openat(
                self.root.fd(),
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| LayerError::apply(&raw, "open the root", e.into()))?;
            self.set_owner_mode(&raw, &fd, &attrs)?;
            self.dir_times.push((Vec::new(), attrs.mtime));
            return Ok(());
        }

        let parent = self
            .root
            .dir_create(parent_rel)
            .map_err(|e| LayerError::apply(&raw, "create its parent directories", e))?;
        let created = match kind {
            EntryType::Directory => self.dir(&raw, &rel, &parent, base, &attrs)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let cap = capability(&mut entry);
                self.file(&raw, &parent, base, &attrs, cap.as_deref(), &mut entry)?
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.symlink(&raw, &parent, base, &target, &attrs)?
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let target = check_link_target(&raw, &target)?;
                self.hardlink(&raw, &rel, &parent, base, &target)?
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let dev = rustix::fs::makedev(
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                );
                let ty = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.node(&raw, &parent, base, ty, dev, &attrs)?
            }
            other => {
                tracing::warn!(entry = %super::error::show(&raw), kind = ?other, "entry type cannot be applied; skipped");
                self.report.skipped_entries += 1;
                false
            }
        };
        if created {
            self.written.insert(TreeKey(rel));
        }
        Ok(())
    }

    /// Removes whatever is at `name` unless it is a directory and `keep_dir`.
    /// Returns whether a directory was kept.
    fn clear(
        &self,
        raw: &[u8],
        parent: &OwnedFd,
        name: &[u8],
        keep_dir: bool,
    ) -> Result<bool, LayerError> {
        let err = |e| LayerError::apply(raw, "replace what is at its path", e);
        match kind_at(parent, name).map_err(err)? {
            None => Ok(false),
            Some((FileType::Directory, _, _)) if keep_dir => Ok(true),
            Some(_) => remove_tree(parent.as_fd(), name)
                .map(|()| false)
                .map_err(err),
        }
    }

    fn dir(
        &mut self,
        raw: &[u8],
        rel: &[u8],
        parent: &OwnedFd,
        name: &[u8],
        a: &Attrs,
    ) -> Result<bool, LayerError> {
        if !self.clear(raw, parent, name, true)? {
            rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
                .map_err(|e| LayerError::apply(raw, "create the directory", e.into()))?;
        }
        let fd = open_dir_nofollow(parent, name)
            .map_err(|e| LayerError::apply(raw, "open the directory", e))?;
        self.set_owner_mode(raw, &fd, a)?;
        self.dir_times.push((rel.to_vec(), a.mtime));
        Ok(true)
    }

    fn file<R: Read>(
        &mut self,
        raw: &[u8],
        parent: &OwnedFd,
        name: &[u8],
        a: &Attrs,
        cap: Option<&[u8]>,
        data: &mut R,
    ) -> Result<bool, LayerError> {
        self.clear(raw, parent, name, false)?;
        // O_EXCL after the removal: never writes through a symlink or into
        // a file that appeared meanwhile.
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| LayerError::apply(raw, "create the file", e.into()))?;
        let mut file = std::fs::File::from(fd);
        loop {
            let n = data.read(&mut self.buf).map_err(LayerError::ReadLayer)?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n])
                .map_err(|e| LayerError::apply(raw, "write the file", e))?;
        }
        self.set_owner_mode(raw, &file, a)?;
        // After chown, which clears file capabilities.
        if let Some(cap) = cap
            && let Err(e) = rustix::fs::fsetxattr(&file, CAPABILITY_XATTR, cap, XattrFlags::empty())
        {
            tracing::debug!(entry = %super::error::show(raw), error = %e, "security.capability not set");
            self.report.xattr_failures += 1;
        }
        let t = times(a.mtime);
        rustix::fs::futimens(&file, &t)
            .map_err(|e| LayerError::apply(raw, "set its mtime", e.into()))?;
        Ok(true)
    }

    fn symlink(
        &mut self,
        raw: &[u8],
        parent: &OwnedFd,
        name: &[u8],
        target: &[u8],
        a: &Attrs,
    ) -> Result<bool, LayerError> {
        self.clear(raw, parent, name, false)?;
        rustix::fs::symlinkat(target, parent, name)
            .map_err(|e| LayerError::apply(raw, "create the symlink", e.into()))?;
        self.chown_at(raw, parent.as_fd(), name, a)?;
        rustix::fs::utimensat(parent, name, &times(a.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| LayerError::apply(raw, "set its mtime", e.into()))?;
        Ok(true)
    }

    fn hardlink(
        &mut self,
        raw: &[u8],
        rel: &[u8],
        parent: &OwnedFd,
        name: &[u8],
        target: &[u8],
    ) -> Result<bool, LayerError> {
        if target == rel {
            return Ok(false);
        }
        let (tparent_rel, tname) = split_last(target);
        let missing = |e| LayerError::apply(raw, "find its hardlink target", e);
        let tparent = self.root.dir(tparent_rel).map_err(missing)?;
        let Some((_, tdev, tino)) = kind_at(&tparent, tname).map_err(missing)? else {
            return Err(missing(io::Error::from(io::ErrorKind::NotFound)));
        };
        if let Some((_, dev, ino)) = kind_at(parent, name).map_err(missing)?
            && (dev, ino) == (tdev, tino)
        {
            return Ok(true);
        }
        self.clear(raw, parent, name, false)?;
        // No AT_SYMLINK_FOLLOW: a symlink target is linked itself, not followed.
        rustix::fs::linkat(&tparent, tname, parent, name, AtFlags::empty())
            .map_err(|e| LayerError::apply(raw, "create the hardlink", e.into()))?;
        Ok(true)
    }

    fn node(
        &mut self,
        raw: &[u8],
        parent: &OwnedFd,
        name: &[u8],
        ty: FileType,
        dev: u64,
        a: &Attrs,
    ) -> Result<bool, LayerError> {
        self.clear(raw, parent, name, false)?;
        match rustix::fs::mknodat(parent, name, ty, Mode::from_raw_mode(a.mode & 0o777), dev) {
            Ok(()) => {}
            Err(Errno::PERM) if ty != FileType::Fifo => {
                tracing::debug!(entry = %super::error::show(raw), "mknod refused; device skipped");
                self.report.skipped_devices += 1;
                return Ok(false);
            }
            Err(e) => return Err(LayerError::apply(raw, "create the node", e.into())),
        }
        self.chown_at(raw, parent.as_fd(), name, a)?;
        chmod_nofollow(parent.as_fd(), name, a.mode)
            .map_err(|e| LayerError::apply(raw, "set its mode", e))?;
        rustix::fs::utimensat(parent, name, &times(a.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| LayerError::apply(raw, "set its mtime", e.into()))?;
        Ok(true)
    }

    /// Owner, then mode (chown clears setuid/setgid) of an open file or dir.
    fn set_owner_mode(&mut self, raw: &[u8], fd: impl AsFd, a: &Attrs) -> Result<(), LayerError> {
        let ids = owner(a);
        let res = match ids {
            Some((u, g)) => rustix::fs::fchown(&fd, Some(u), Some(g)),
            None => Err(Errno::INVAL),
        };
        self.ownership(raw, res)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(a.mode))
            .map_err(|e| LayerError::apply(raw, "set its mode", e.into()))
    }

    fn chown_at(
        &mut self,
        raw: &[u8],
        parent: BorrowedFd<'_>,
        name: &[u8],
        a: &Attrs,
    ) -> Result<(), LayerError> {
        let res = match owner(a) {
            Some((u, g)) => {
                rustix::fs::chownat(parent, name, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW)
            }
            None => Err(Errno::INVAL),
        };
        self.ownership(raw, res)
    }

    /// A refused chown (EPERM, or EINVAL for an id the user namespace does
    /// not map) is counted, not fatal: files then keep the applier's ids.
    fn ownership(&mut self, raw: &[u8], res: rustix::io::Result<()>) -> Result<(), LayerError> {
        match res {
            Ok(()) => Ok(()),
            Err(Errno::PERM | Errno::INVAL) => {
                self.report.ownership_failures += 1;
                Ok(())
            }
            Err(e) => Err(LayerError::apply(raw, "set its owner", e.into())),
        }
    }

    fn whiteout(&mut self, raw: &[u8], parent_rel: &[u8], victim: &[u8]) -> Result<(), LayerError> {
        self.report.whiteouts += 1;
        let key = TreeKey(join(parent_rel, victim));
        match self.mode {
            ApplyMode::Flatten => self.hide_lower(raw, key),
            ApplyMode::OverlayLower => {
                if self.written.contains(&key) {
                    return Ok(());
                }
                let parent = self
                    .root
                    .dir_create(parent_rel)
                    .map_err(|e| LayerError::apply(raw, "create its parent directories", e))?;
                self.clear(raw, &parent, victim, false)?;
                rustix::fs::mknodat(&parent, victim, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| {
                        LayerError::apply(raw, "create the overlay whiteout (0/0 device)", e.into())
                    })
            }
        }
    }

    fn opaque(&mut self, raw: &[u8], dir_rel: &[u8]) -> Result<(), LayerError> {
        self.report.whiteouts += 1;
        match self.mode {
            ApplyMode::Flatten => {
                let Ok(dir) = self.root.dir(dir_rel) else {
                    return Ok(());
                };
                let children =
                    list(&dir).map_err(|e| LayerError::apply(raw, "list its directory", e))?;
                for (child, _) in children {
                    self.hide_lower(raw, TreeKey(join(dir_rel, &child)))?;
                }
                Ok(())
            }
            ApplyMode::OverlayLower => {
                let dir = self
                    .root
                    .dir_create(dir_rel)
                    .map_err(|e| LayerError::apply(raw, "create its directory", e))?;
                let fd = open_dir_nofollow(&dir, b".")
                    .map_err(|e| LayerError::apply(raw, "open its directory", e))?;
                rustix::fs::fsetxattr(&fd, USER_OPAQUE_XATTR, b"y", XattrFlags::empty()).map_err(
                    |e| {
                        LayerError::apply(
                            raw,
                            "mark the directory opaque (user.overlay.opaque)",
                            e.into(),
                        )
                    },
                )
            }
        }
    }

    /// Deletes what lower layers put at `key`, keeping whatever this layer
    /// wrote there or below.
    fn hide_lower(&mut self, raw: &[u8], key: TreeKey) -> Result<(), LayerError> {
        let err = |e| LayerError::apply(raw, "remove what it hides", e);
        let mut work = vec![key];
        while let Some(k) = work.pop() {
            let keeps_self = self.written.contains(&k);
            let keeps_below = self
                .written
                .range((Bound::Excluded(&k), Bound::Unbounded))
                .next()
                .is_some_and(|w| w.is_below(&k));
            let (parent_rel, name) = split_last(&k.0);
            let Ok(parent) = self.root.dir(parent_rel) else {
                continue;
            };
            if !keeps_self && !keeps_below {
                remove_tree(parent.as_fd(), name).map_err(err)?;
                continue;
            }
            if let Some((FileType::Directory, _, _)) = kind_at(&parent, name).map_err(err)? {
                let dir = open_dir_nofollow(&parent, name).map_err(err)?;
                for (child, _) in list(&dir).map_err(err)? {
                    work.push(TreeKey(join(&k.0, &child)));
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<ApplyReport, LayerError> {
        for (rel, mtime) in &self.dir_times {
            let (parent_rel, name) = split_last(rel);
            let name: &[u8] = if rel.is_empty() { b"." } else { name };
            // A directory removed later in the layer has no time to set.
            let Ok(parent) = self.root.dir(parent_rel) else {
                continue;
            };
            match rustix::fs::utimensat(&parent, name, &times(*mtime), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(LayerError::apply(rel, "set its mtime", e.into())),
            }
        }
        Ok(self.report)
    }
}

fn owner(a: &Attrs) -> Option<(Uid, Gid)> {
    let uid = u32::try_from(a.uid).ok()?;
    let gid = u32::try_from(a.gid).ok()?;
    // (uid_t)-1 means "leave unchanged" to chown: not an id a layer can ask for.
    if uid == u32::MAX || gid == u32::MAX {
        return None;
    }
    Some((Uid::from_raw(uid), Gid::from_raw(gid)))
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

/// The `security.capability` the entry carries, if any; every other xattr
/// is ignored, and a name containing `overlay.` could never pass (a layer
/// must not steer overlayfs).
fn capability<R: Read>(entry: &mut tar::Entry<'_, R>) -> Option<Vec<u8>> {
    let exts = entry.pax_extensions().ok().flatten()?;
    let mut cap = None;
    for ext in exts.flatten() {
        let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        if name == CAPABILITY_XATTR.as_bytes() && !name.windows(8).any(|w| w == b"overlay.") {
            cap = Some(ext.value_bytes().to_vec());
        }
    }
    cap
}

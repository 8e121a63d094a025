//! Turns paths of a directory tree into layer entries: file data, symlink
//! targets, hardlinks, devices, whiteouts and opaque markers, with the
//! metadata rules that make layers reproducible.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::media::LayerInfo;

use super::WriteOptions;
use super::compress::Compressor;
use super::error::LayerError;
use super::fsmeta::{CAPABILITY_XATTR, Kind, Meta, TreeKey, capability_v2, xattr};
use super::tar_out::{EntryHead, TarOut};

/// Prefix of an OCI whiteout file name.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Name of the OCI opaque-directory marker.
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Mode of the whiteout and opaque marker files. They carry no metadata of
/// their own: constants keep an overlay upperdir and a snapshot diff of the
/// same change byte-identical.
const MARKER_MODE: u32 = 0o644;

/// Copy buffer size: large reads keep syscalls off the profile.
const COPY_BUF: usize = 256 * 1024;

/// A layer being written from the files under `root`.
pub(crate) struct TreeTar<W: Write> {
    root: PathBuf,
    out: TarOut<Compressor<W>>,
    epoch: u64,
    /// First entry name of each (device, inode) seen with more than one link.
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
}

impl<W: Write> TreeTar<W> {
    pub(crate) fn new(root: &Path, opts: &WriteOptions, out: W) -> Result<TreeTar<W>, LayerError> {
        let comp = Compressor::new(out, opts.compression).map_err(LayerError::WriteLayer)?;
        Ok(TreeTar {
            root: root.to_path_buf(),
            out: TarOut::new(comp),
            epoch: opts.source_date_epoch,
            links: HashMap::new(),
            buf: vec![0; COPY_BUF],
        })
    }

    fn mtime(&self, meta: &Meta) -> u64 {
        u64::try_from(meta.mtime_secs())
            .unwrap_or(0)
            .min(self.epoch)
    }

    /// Writes the entry for the file at `key` (an lstat result in `meta`).
    /// Sockets cannot be archived and are left out.
    pub(crate) fn node(&mut self, key: &TreeKey, meta: &Meta) -> Result<(), LayerError> {
        let path = key.under(&self.root);
        let mut head = EntryHead {
            name: &key.0,
            kind: EntryType::Regular,
            mode: meta.mode,
            uid: u64::from(meta.uid),
            gid: u64::from(meta.gid),
            size: 0,
            mtime: self.mtime(meta),
            link: None,
            dev_major: 0,
            dev_minor: 0,
            capability: None,
        };
        let dir_name;
        let target;
        let cap;
        if meta.kind != Kind::Dir && meta.nlink > 1 {
            if let Some(first) = self.links.get(&(meta.dev, meta.ino)).cloned() {
                head.kind = EntryType::Link;
                head.link = Some(&first);
                return self.out.head(&head).map_err(LayerError::WriteLayer);
            }
            self.links.insert((meta.dev, meta.ino), key.0.clone());
        }
        match meta.kind {
            Kind::Dir => {
                dir_name = [&key.0[..], b"/"].concat();
                head.name = &dir_name;
                head.kind = EntryType::Directory;
            }
            Kind::File => {
                head.size = meta.size;
                cap = xattr(&path, CAPABILITY_XATTR)
                    .map_err(|e| LayerError::read_tree(&path, e))?
                    .and_then(|v| capability_v2(&v));
                head.capability = cap.as_deref();
            }
            Kind::Symlink => {
                target = std::fs::read_link(&path).map_err(|e| LayerError::read_tree(&path, e))?;
                head.kind = EntryType::Symlink;
                head.link = Some(target.as_os_str().as_bytes());
            }
            Kind::Char | Kind::Block => {
                head.kind = if meta.kind == Kind::Char {
                    EntryType::Char
                } else {
                    EntryType::Block
                };
                head.dev_major = meta.rdev_major;
                head.dev_minor = meta.rdev_minor;
            }
            Kind::Fifo => head.kind = EntryType::Fifo,
            Kind::Socket => {
                tracing::warn!(path = %path.display(), "sockets cannot be stored in a layer; left out");
                return Ok(());
            }
        }
        self.out.head(&head).map_err(LayerError::WriteLayer)?;
        if meta.kind == Kind::File {
            self.copy_file(&path, meta.size)?;
        }
        Ok(())
    }

    /// Copies exactly `size` bytes of the file, failing if it is shorter or
    /// longer than it was when stat'ed (the header already carries the size).
    fn copy_file(&mut self, path: &Path, size: u64) -> Result<(), LayerError> {
        let read_err = |e| LayerError::read_tree(path, e);
        let mut file = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(read_err)?;
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left).map_or(self.buf.len(), |l| l.min(self.buf.len()));
            let n = file.read(&mut self.buf[..want]).map_err(read_err)?;
            if n == 0 {
                return Err(LayerError::Changed { path: path.into() });
            }
            self.out
                .data(&self.buf[..n])
                .map_err(LayerError::WriteLayer)?;
            left -= n as u64;
        }
        if file.read(&mut self.buf[..1]).map_err(read_err)? != 0 {
            return Err(LayerError::Changed { path: path.into() });
        }
        self.out.pad(size).map_err(LayerError::WriteLayer)
    }

    /// Writes the whiteout `.wh.NAME` that deletes `key` from lower layers.
    pub(crate) fn whiteout(&mut self, key: &TreeKey) -> Result<(), LayerError> {
        let (dir, name) = match key.0.iter().rposition(|b| *b == b'/') {
            Some(i) => (&key.0[..=i], &key.0[i + 1..]),
            None => (&key.0[..0], &key.0[..]),
        };
        let entry = [dir, WHITEOUT_PREFIX, name].concat();
        self.marker(&entry)
    }

    /// Writes `DIR/.wh..wh..opq`, hiding what lower layers hold in `dir`.
    pub(crate) fn opaque(&mut self, dir: &TreeKey) -> Result<(), LayerError> {
        let entry = [&dir.0[..], b"/", OPAQUE_MARKER].concat();
        self.marker(&entry)
    }

    fn marker(&mut self, name: &[u8]) -> Result<(), LayerError> {
        self.out
            .head(&EntryHead {
                name,
                kind: EntryType::Regular,
                mode: MARKER_MODE,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: self.epoch,
                link: None,
                dev_major: 0,
                dev_minor: 0,
                capability: None,
            })
            .map_err(LayerError::WriteLayer)
    }

    /// Ends the tar and the compressed stream.
    pub(crate) fn finish(self) -> Result<LayerInfo, LayerError> {
        let comp = self.out.finish().map_err(LayerError::WriteLayer)?;
        let (_, info) = comp.finish().map_err(LayerError::WriteLayer)?;
        Ok(info)
    }
}

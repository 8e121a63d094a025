//! Reading a root filesystem without mounting it: a plain directory, or the
//! layer dirs of an overlay merged in user space.
//!
//! Paths are resolved one component at a time, symbolic links included, with
//! `..` clamped at the root and absolute link targets taken from the tree's
//! root, the way a chroot resolves them, so that a link in the tree (to `/etc`,
//! to `../../..`) never reaches a file of the host.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{InventoryError, MAX_FILE_SIZE, MAX_SYMLINK_HOPS};

/// Read access to a root filesystem. Paths are absolute inside the root
/// (`/var/lib/dpkg/status`); a relative path is taken from the root too.
pub trait Tree {
    /// The bytes of the regular file at `path`, or `None` if it is absent or
    /// not a regular file. Symbolic links are followed inside the tree (at most
    /// [`MAX_SYMLINK_HOPS`]); an absolute target is relative to the tree's root.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, InventoryError>;
    /// The names in directory `path`, sorted; empty if it does not exist or is
    /// not a directory. Symbolic links to directories are followed inside the
    /// tree. Names that are not UTF-8 are left out.
    fn list(&self, path: &str) -> Result<Vec<String>, InventoryError>;
    /// Whether `path` is a directory (after following links inside the tree).
    fn is_dir(&self, path: &str) -> bool;
}

/// One name looked up in a directory, without following it.
enum Node<D> {
    Absent,
    Dir(D),
    Symlink(String),
    File,
    /// A device, fifo or socket: never read.
    Other,
}

/// Where a whole path led.
enum Resolved<D> {
    Absent,
    Dir(D),
    /// A regular file: its directory and its name there.
    File(D, String),
    Other,
}

/// The primitive operations both trees resolve paths with.
trait Lookup {
    /// A directory reached by resolution.
    type Dir;
    fn root(&self) -> Result<Self::Dir, InventoryError>;
    fn lookup(&self, dir: &Self::Dir, name: &str) -> Result<Node<Self::Dir>, InventoryError>;
}

/// Resolves `path` inside the tree, following every symbolic link.
fn resolve<L: Lookup>(fs: &L, path: &str) -> Result<Resolved<L::Dir>, InventoryError> {
    // The directories walked so far, root first: `..` pops one, never the root.
    let mut stack = vec![fs.root()?];
    let mut pending: VecDeque<String> = components(path).collect();
    let mut hops = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let Some(dir) = stack.last() else {
            return Ok(Resolved::Absent);
        };
        match fs.lookup(dir, &name)? {
            Node::Absent => return Ok(Resolved::Absent),
            Node::Dir(d) => stack.push(d),
            // An empty target names nothing (ENOENT), not the link's directory.
            Node::Symlink(target) if target.is_empty() => return Ok(Resolved::Absent),
            Node::Symlink(target) => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(InventoryError::SymlinkLoop {
                        path: path.to_string(),
                    });
                }
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                for (i, c) in components(&target).enumerate() {
                    pending.insert(i, c);
                }
            }
            Node::File if pending.is_empty() => {
                return Ok(stack
                    .pop()
                    .map_or(Resolved::Absent, |dir| Resolved::File(dir, name)));
            }
            Node::Other if pending.is_empty() => return Ok(Resolved::Other),
            // A file followed by more components is used as a directory: ENOTDIR.
            Node::File | Node::Other => return Ok(Resolved::Absent),
        }
    }
    Ok(stack.pop().map_or(Resolved::Absent, Resolved::Dir))
}

/// The components of a path, without empty ones and `.`.
fn components(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
}

/// Reads an open file, refusing more than [`MAX_FILE_SIZE`] bytes.
fn read_capped(mut file: File, path: &Path) -> Result<Vec<u8>, InventoryError> {
    let too_large = || InventoryError::TooLarge {
        path: path.to_path_buf(),
        limit: MAX_FILE_SIZE,
    };
    let len = file
        .metadata()
        .map_err(|e| InventoryError::io(path, e))?
        .len();
    if len > MAX_FILE_SIZE {
        return Err(too_large());
    }
    // The file may grow while it is read: read one byte past the cap to notice.
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InventoryError::io(path, e))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Errors that mean "no such file" to a lookup. `ELOOP` and `ENOTDIR` come from
/// an entry swapped for a link or a file between its stat and its open.
fn is_absent(e: Errno) -> bool {
    matches!(
        e,
        Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::NAMETOOLONG | Errno::INVAL
    )
}

/// A plain directory as the root of a tree.
///
/// Every component is opened relative to its parent's file descriptor with
/// `O_NOFOLLOW`, so a link swapped in while the tree is read (by a sandbox still
/// running in it) cannot lead outside the root either.
#[derive(Clone, Debug)]
pub struct DirTree {
    root: PathBuf,
}

/// A directory of a [`DirTree`] being resolved: its descriptor and its path in
/// the tree (for error messages).
struct FdDir {
    fd: OwnedFd,
    path: String,
}

impl DirTree {
    /// The tree rooted at directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirTree { root: root.into() }
    }

    /// The host path of `path` in the tree, for error messages.
    fn host(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn open_dir_at(&self, dir: &FdDir, name: &str) -> Result<Option<FdDir>, InventoryError> {
        let path = super::join(&dir.path, name);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&dir.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(FdDir { fd, path })),
            Err(e) if is_absent(e) => Ok(None),
            Err(e) => Err(InventoryError::io(self.host(&path), e.into())),
        }
    }
}

impl Lookup for DirTree {
    type Dir = FdDir;

    fn root(&self) -> Result<FdDir, InventoryError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(&self.root, flags, Mode::empty())
            .map_err(|e| InventoryError::io(&self.root, e.into()))?;
        Ok(FdDir {
            fd,
            path: "/".to_string(),
        })
    }

    fn lookup(&self, dir: &FdDir, name: &str) -> Result<Node<FdDir>, InventoryError> {
        let path = super::join(&dir.path, name);
        let st = match rustix::fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if is_absent(e) => return Ok(Node::Absent),
            Err(e) => return Err(InventoryError::io(self.host(&path), e.into())),
        };
        Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => self.open_dir_at(dir, name)?.map_or(Node::Absent, Node::Dir),
            FileType::Symlink => match rustix::fs::readlinkat(&dir.fd, name, Vec::new()) {
                // A target that is not UTF-8 cannot be followed by name: treat as dangling.
                Ok(target) => target.into_string().map_or(Node::Absent, Node::Symlink),
                Err(e) if is_absent(e) => Node::Absent,
                Err(e) => return Err(InventoryError::io(self.host(&path), e.into())),
            },
            FileType::RegularFile => Node::File,
            _ => Node::Other,
        })
    }
}

impl Tree for DirTree {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, InventoryError> {
        let Resolved::File(dir, name) = resolve(self, path)? else {
            return Ok(None);
        };
        let host = self.host(&super::join(&dir.path, &name));
        // O_NONBLOCK: if a fifo was swapped in after the stat, opening it must
        // not hang; the type is checked again on the open file.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&dir.fd, name.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) if is_absent(e) => return Ok(None),
            Err(e) => return Err(InventoryError::io(host, e.into())),
        };
        let file = File::from(fd);
        let is_file = file
            .metadata()
            .map_err(|e| InventoryError::io(&host, e))?
            .is_file();
        if !is_file {
            return Ok(None);
        }
        read_capped(file, &host).map(Some)
    }

    fn list(&self, path: &str) -> Result<Vec<String>, InventoryError> {
        let Resolved::Dir(dir) = resolve(self, path)? else {
            return Ok(Vec::new());
        };
        let host = self.host(&dir.path);
        let entries =
            rustix::fs::Dir::read_from(&dir.fd).map_err(|e| InventoryError::io(&host, e.into()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| InventoryError::io(&host, e.into()))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if let Ok(name) = std::str::from_utf8(name) {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn is_dir(&self, path: &str) -> bool {
        matches!(resolve(self, path), Ok(Resolved::Dir(_)))
    }
}

/// The layer dirs of an overlay ("upperdir form"), topmost first, merged with
/// overlayfs semantics:
///
/// - a character device 0/0 is a whiteout: the name is deleted in its layer
///   and all lower ones; so is a zero-size regular file carrying the
///   `user.overlay.whiteout` / `trusted.overlay.whiteout` xattr in a directory
///   whose opaque xattr is `x` (the kernel's "xwhiteout", for layers made where
///   device nodes cannot be created);
/// - a directory whose `user.overlay.opaque` or `trusted.overlay.opaque` xattr
///   is `y` hides everything below it in lower layers;
/// - a non-directory hides a directory of the same name in lower layers.
///
/// These rules apply at every component of a path. Overlay redirects and
/// metacopy files are not followed (boxwright's layers do not use them).
/// Layer dirs are read by path, not descriptor by descriptor as [`DirTree`]
/// does: they are the store's, not changed while they are read.
#[derive(Clone, Debug)]
pub struct LayeredTree {
    layers: Vec<PathBuf>,
}

/// A merged directory: its path in the tree and the layers (indices, topmost
/// first) in which it is a directory that counts.
struct MergedDir {
    path: String,
    layers: Vec<usize>,
}

/// What one layer holds at one path.
enum Entry {
    Absent,
    Whiteout,
    Dir { opaque: bool },
    Symlink,
    File,
    Other,
}

const OPAQUE_XATTRS: [&str; 2] = ["user.overlay.opaque", "trusted.overlay.opaque"];
const WHITEOUT_XATTRS: [&str; 2] = ["user.overlay.whiteout", "trusted.overlay.whiteout"];

impl LayeredTree {
    /// The merged view of `layers`, topmost first.
    pub fn new(layers: Vec<PathBuf>) -> Self {
        LayeredTree { layers }
    }

    /// The host path of `path` in layer `layer`.
    fn host(&self, layer: usize, path: &str) -> PathBuf {
        self.layers[layer].join(path.trim_start_matches('/'))
    }

    /// What layer `layer` holds at `path` (whose parent is a directory there).
    fn entry(&self, layer: usize, path: &str) -> Result<Entry, InventoryError> {
        let host = self.host(layer, path);
        let md = match std::fs::symlink_metadata(&host) {
            Ok(md) => md,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Entry::Absent);
            }
            Err(e) => return Err(InventoryError::io(host, e)),
        };
        let ft = md.file_type();
        Ok(if ft.is_char_device() && md.rdev() == 0 {
            Entry::Whiteout
        } else if ft.is_dir() {
            Entry::Dir {
                opaque: opaque_value(&host)?.as_deref() == Some(b"y"),
            }
        } else if ft.is_symlink() {
            Entry::Symlink
        } else if ft.is_file() {
            if md.len() == 0 && is_xwhiteout(&host)? {
                Entry::Whiteout
            } else {
                Entry::File
            }
        } else {
            Entry::Other
        })
    }
}

/// The value of the first overlay opaque xattr set on `path`.
fn opaque_value(path: &Path) -> Result<Option<Vec<u8>>, InventoryError> {
    for name in OPAQUE_XATTRS {
        if let Some(v) = xattr(path, name)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// Whether the empty file `path` is an xwhiteout: it carries the whiteout
/// xattr and its directory's opaque xattr is `x`.
fn is_xwhiteout(path: &Path) -> Result<bool, InventoryError> {
    let mut marked = false;
    for name in WHITEOUT_XATTRS {
        marked |= xattr(path, name)?.is_some();
    }
    if !marked {
        return Ok(false);
    }
    let parent = path.parent().unwrap_or(path);
    Ok(opaque_value(parent)?.as_deref() == Some(b"x"))
}

/// The value of xattr `name` of `path` (not following a link), `None` when it
/// is unset or the file system has no xattrs.
fn xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>, InventoryError> {
    // Overlay markers are one or two bytes; a larger value is not one of them.
    let mut buf = [0u8; 16];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(Errno::NODATA | Errno::NOTSUP | Errno::NOENT) => Ok(None),
        Err(Errno::RANGE) => Ok(Some(Vec::new())),
        Err(e) => Err(InventoryError::io(path, e.into())),
    }
}

impl Lookup for LayeredTree {
    type Dir = MergedDir;

    fn root(&self) -> Result<MergedDir, InventoryError> {
        Ok(MergedDir {
            path: "/".to_string(),
            layers: (0..self.layers.len()).collect(),
        })
    }

    fn lookup(&self, dir: &MergedDir, name: &str) -> Result<Node<MergedDir>, InventoryError> {
        let path = super::join(&dir.path, name);
        let mut layers = Vec::new();
        for &layer in &dir.layers {
            match self.entry(layer, &path)? {
                Entry::Absent => continue,
                Entry::Dir { opaque } => {
                    layers.push(layer);
                    if opaque {
                        break;
                    }
                }
                // A whiteout, or a non-directory under a directory of a higher
                // layer, hides this name in every lower layer.
                Entry::Whiteout => break,
                _ if !layers.is_empty() => break,
                Entry::Symlink => {
                    let target = std::fs::read_link(self.host(layer, &path))
                        .map_err(|e| InventoryError::io(self.host(layer, &path), e))?;
                    return Ok(std::str::from_utf8(target.as_os_str().as_bytes())
                        .map_or(Node::Absent, |t| Node::Symlink(t.to_string())));
                }
                Entry::File => return Ok(Node::File),
                Entry::Other => return Ok(Node::Other),
            }
        }
        Ok(if layers.is_empty() {
            Node::Absent
        } else {
            Node::Dir(MergedDir { path, layers })
        })
    }
}

impl Tree for LayeredTree {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, InventoryError> {
        let Resolved::File(dir, name) = resolve(self, path)? else {
            return Ok(None);
        };
        let path = super::join(&dir.path, &name);
        // The topmost layer holding the name is the one lookup found the file in.
        for &layer in &dir.layers {
            let host = self.host(layer, &path);
            let opened = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&host);
            let file = match opened {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(InventoryError::io(host, e)),
            };
            let is_file = file
                .metadata()
                .map_err(|e| InventoryError::io(&host, e))?
                .is_file();
            return if is_file {
                read_capped(file, &host).map(Some)
            } else {
                Ok(None)
            };
        }
        Ok(None)
    }

    fn list(&self, path: &str) -> Result<Vec<String>, InventoryError> {
        let Resolved::Dir(dir) = resolve(self, path)? else {
            return Ok(Vec::new());
        };
        // The topmost layer holding a name decides whether it is visible.
        let mut visible: BTreeMap<String, bool> = BTreeMap::new();
        for &layer in &dir.layers {
            let host = self.host(layer, &dir.path);
            let entries = std::fs::read_dir(&host).map_err(|e| InventoryError::io(&host, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| InventoryError::io(&host, e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if visible.contains_key(&name) {
                    continue;
                }
                match self.entry(layer, &super::join(&dir.path, &name))? {
                    // Gone since the directory was read: let a lower layer decide.
                    Entry::Absent => {}
                    Entry::Whiteout => {
                        visible.insert(name, false);
                    }
                    _ => {
                        visible.insert(name, true);
                    }
                }
            }
        }
        Ok(visible
            .into_iter()
            .filter_map(|(name, shown)| shown.then_some(name))
            .collect())
    }

    fn is_dir(&self, path: &str) -> bool {
        matches!(resolve(self, path), Ok(Resolved::Dir(_)))
    }
}

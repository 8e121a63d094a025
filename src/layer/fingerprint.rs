//! A fingerprint of an unpacked layer directory: what applying a layer
//! decides about each path (type, permissions, owner, size, content, link
//! target, device numbers, whiteout and opaque markers), in tree order.
//!
//! Two directories with the same fingerprint present the same files to an
//! overlay mount. `fsck` compares an unpacked layer with a fresh unpack of
//! its (diff_id-verified) blob this way: times are left out (the apply
//! clamps and sets them), and so are sockets (layers cannot hold them).

use std::fs::File;
use std::io;

use crate::digest::{Digest, DigestWriter, Hasher};

use super::error::LayerError;
use super::fsmeta::{Kind, OPAQUE_XATTRS, walk, xattr};

/// The fingerprint of one path: its name and a digest of what it holds.
pub type Entry = (String, Digest);

/// The fingerprint of every path below `root`, in tree order.
pub fn fingerprint(root: &std::path::Path) -> Result<Vec<Entry>, LayerError> {
    let mut out = Vec::new();
    walk(root, |key, meta| {
        if meta.kind == Kind::Socket {
            return Ok(false);
        }
        let path = key.under(root);
        let mut h = Hasher::new();
        h.update(format!("{:?} {:o} {}:{}", meta.kind, meta.mode, meta.uid, meta.gid).as_bytes());
        match meta.kind {
            Kind::File => {
                let mut f = File::open(&path).map_err(|e| LayerError::read_tree(&path, e))?;
                let mut w = DigestWriter::new(io::sink());
                io::copy(&mut f, &mut w).map_err(|e| LayerError::read_tree(&path, e))?;
                h.update(format!(" {} {}", meta.size, w.finish().1).as_bytes());
            }
            Kind::Symlink => {
                let t = std::fs::read_link(&path).map_err(|e| LayerError::read_tree(&path, e))?;
                h.update(b" -> ");
                h.update(t.as_os_str().as_encoded_bytes());
            }
            Kind::Char | Kind::Block => {
                h.update(format!(" {}:{}", meta.rdev_major, meta.rdev_minor).as_bytes());
            }
            Kind::Dir => {
                for name in OPAQUE_XATTRS {
                    if xattr(&path, name).ok().flatten().as_deref() == Some(b"y") {
                        h.update(b" opaque");
                    }
                }
            }
            Kind::Fifo | Kind::Socket => {}
        }
        out.push((String::from_utf8_lossy(&key.0).into_owned(), h.finish().0));
        Ok(true)
    })?;
    Ok(out)
}

/// The first path where two fingerprints differ, with how: `None` when equal.
pub fn first_difference(a: &[Entry], b: &[Entry]) -> Option<String> {
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (None, None) => return None,
            (Some((p, _)), None) => return Some(format!("{p} is extra")),
            (None, Some((p, _))) => return Some(format!("{p} is missing")),
            (Some((pa, da)), Some((pb, db))) => {
                if pa != pb {
                    return Some(if pa < pb {
                        format!("{pa} is extra")
                    } else {
                        format!("{pb} is missing")
                    });
                }
                if da != db {
                    return Some(format!("{pa} differs"));
                }
            }
        }
        i += 1;
    }
}

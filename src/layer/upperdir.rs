//! A layer from an overlayfs upperdir: the upperdir *is* the step's diff.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::media::LayerInfo;

use super::WriteOptions;
use super::error::LayerError;
use super::fsmeta::{Kind, is_opaque_dir, walk};
use super::tree_tar::TreeTar;

/// Writes the layer for overlayfs upperdir `upper` to `out` and returns its
/// digests. Overlay whiteouts (0/0 character devices) become `.wh.NAME`
/// files and opaque directories get a `.wh..wh..opq` entry; overlay xattrs
/// are never written. The same tree always gives the same bytes.
pub fn write_upperdir<W: Write>(
    upper: &Path,
    opts: &WriteOptions,
    out: W,
) -> Result<LayerInfo, LayerError> {
    write_upperdir_filtered(upper, opts, out, &|_| false).map(|(info, _)| info)
}

/// What a filtered upperdir commit kept and left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStats {
    /// Entries that change the image: files, symlinks, devices, whiteouts and
    /// opaque directories (directories that are only parents are not counted).
    pub changes: u64,
    /// Regular files and the bytes they hold.
    pub files: u64,
    pub bytes: u64,
    /// Deletions (whiteouts and opaque directories).
    pub deletions: u64,
    /// Files and bytes per top-level directory (`/usr`, `/root`…).
    pub by_top: BTreeMap<String, (u64, u64)>,
    /// Paths left out (an excluded directory counts with everything in it).
    pub excluded: u64,
    /// The excluded paths as matched (top of each excluded tree), sorted.
    pub excluded_paths: Vec<String>,
}

/// [`write_upperdir`] leaving out every path (`/a/b`, absolute in the
/// image) for which `exclude` is true, with whatever is below it; returns
/// what was kept and left out.
pub fn write_upperdir_filtered<W: Write>(
    upper: &Path,
    opts: &WriteOptions,
    out: W,
    exclude: &dyn Fn(&str) -> bool,
) -> Result<(LayerInfo, CommitStats), LayerError> {
    let mut tar = TreeTar::new(upper, opts, out)?;
    let mut stats = CommitStats::default();
    walk(upper, |key, meta| {
        let abs = format!("/{}", String::from_utf8_lossy(&key.0));
        if exclude(&abs) {
            let path = key.under(upper);
            stats.excluded += if meta.kind == Kind::Dir {
                walkdir::WalkDir::new(&path).into_iter().count() as u64
            } else {
                1
            };
            stats.excluded_paths.push(abs);
            return Ok(false);
        }
        let top = abs
            .split('/')
            .nth(1)
            .map(|t| format!("/{t}"))
            .unwrap_or_default();
        if meta.is_whiteout() {
            tar.whiteout(key)?;
            stats.changes += 1;
            stats.deletions += 1;
            return Ok(false);
        }
        tar.node(key, meta)?;
        match meta.kind {
            Kind::Dir => {
                let path = key.under(upper);
                if is_opaque_dir(&path).map_err(|e| LayerError::read_tree(&path, e))? {
                    tar.opaque(key)?;
                    stats.changes += 1;
                    stats.deletions += 1;
                }
            }
            Kind::File => {
                stats.changes += 1;
                stats.files += 1;
                stats.bytes += meta.size;
                let e = stats.by_top.entry(top).or_default();
                e.0 += 1;
                e.1 += meta.size;
            }
            _ => stats.changes += 1,
        }
        Ok(true)
    })?;
    stats.excluded_paths.sort();
    Ok((tar.finish()?, stats))
}

//! A layer from an overlayfs upperdir: the upperdir *is* the step's diff.

use std::io::Write;
use std::path::Path;

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
    let mut tar = TreeTar::new(upper, opts, out)?;
    walk(upper, |key, meta| {
        if meta.is_whiteout() {
            tar.whiteout(key)?;
            return Ok(false);
        }
        tar.node(key, meta)?;
        if meta.kind == Kind::Dir {
            let path = key.under(upper);
            if is_opaque_dir(&path).map_err(|e| LayerError::read_tree(&path, e))? {
                tar.opaque(key)?;
            }
        }
        Ok(true)
    })?;
    tar.finish()
}

//! Layers: diffs of an upperdir or of two trees, deterministic OCI tars, compression, applying layers.
//!
//! Writing: [`write_upperdir`] turns an overlayfs upperdir into a layer;
//! [`Snapshot`] and [`write_snapshot_diff`] do the same from a before/after
//! comparison when overlayfs cannot be mounted, with byte-identical results;
//! [`import_tar`] takes a tar as it is. All of them stream through a
//! [`Compressor`], which hashes the tar (diff_id) and the blob (digest) in the
//! same pass.
//!
//! Reading: [`open_layer`] decompresses a blob; [`apply_layer`] unpacks it
//! into a directory, flattened or as an overlay lowerdir, refusing anything
//! that would write outside that directory.
//!
//! Reproducibility rules: entries in depth-first order with siblings sorted
//! by name bytes; mtimes clamped to `source_date_epoch`; no atime/ctime;
//! numeric ids only; only `security.capability` among xattrs (v2 form);
//! hardlinks kept; fixed compression levels and framing.

mod apply;
mod compress;
mod error;
mod exclude;
mod fingerprint;
mod fsmeta;
mod import;
mod inroot;
mod pgzip;
mod snapshot;
mod tar_out;
mod tree_tar;
mod upperdir;

#[cfg(test)]
mod tests;

pub use apply::{
    ApplyChecks, ApplyMode, ApplyReport, SizeCap, apply_layer, apply_layer_checked, open_layer,
};
pub use compress::Compressor;
pub use error::LayerError;
pub use exclude::{ExcludeError, Exclusions};
pub use fingerprint::{Entry as FingerprintEntry, fingerprint, first_difference};
pub use import::import_tar;
pub use snapshot::{Snapshot, changed_bytes, write_snapshot_diff, write_snapshot_diff_filtered};
pub use upperdir::{CommitStats, write_upperdir, write_upperdir_filtered};

use crate::media::Compression;

/// The default cap on the bytes one layer may expand to when unpacked: far
/// above any real layer, low enough to stop a decompression bomb before it
/// fills a disk.
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 64 << 30;

/// How layers are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    pub compression: Compression,
    /// Upper bound for entry mtimes (seconds since the epoch); whiteouts
    /// carry exactly this time.
    pub source_date_epoch: u64,
}

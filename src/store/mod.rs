//! The store: an OCI image layout plus unpacked layers and the build cache; atomic writes.
//!
//! [`Layout`] is any OCI image layout (boxwright's own, or a foreign `oci:DIR`);
//! [`Store`] is boxwright's layout with its extras in `ROOT.state/` beside it (unpacked layer
//! dirs, build cache, temp, trash, lock). Every write goes to a temp file that is fsynced,
//! verified against its digest and renamed into place; `index.json` updates are
//! serialised by a lock so concurrent processes never lose or corrupt a tag.

mod archive;
mod blob_writer;
mod cache;
mod canonical_json;
mod error;
mod fsck;
mod fsutil;
mod gc;
mod index;
mod layer_use;
mod layout;
mod lock;
mod logs;
mod reach;
mod remote_layers;
mod root;
mod usage;

#[cfg(test)]
mod archive_tests;
#[cfg(test)]
mod concurrency_tests;
#[cfg(test)]
mod gc_tests;

pub use archive::{load_archive, save_archive};
pub use blob_writer::BlobWriter;
pub use cache::CacheEntry;
pub use canonical_json::to_canonical_json;
pub use error::StoreError;
pub use fsck::{FsckProblem, FsckReport, LayerDirs};
pub use fsutil::replace_file;
pub use gc::GcReport;
pub use index::{Index, normalize_name, ref_name};
pub use layer_use::{DEFAULT_MAX_UNPACKED, Eviction};
pub use layout::Layout;
pub use lock::{KeyLock, LockKind, MountLock, StoreLock};
pub use logs::{BuildLogFile, BuildLogWriter, BuildLogs, KEEP_BUILDS, new_build_id};
pub use remote_layers::RemoteLayer;
pub use root::Store;
pub use usage::{StoreUsage, Usage};

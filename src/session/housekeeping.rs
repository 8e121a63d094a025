//! Keeping the store tidy with the namespace worker's help: emptying the
//! trash, clearing what killed or failed runs left behind, garbage
//! collection that reports what it really frees, and `fsck`'s comparison of
//! unpacked layers with their blobs. Each needs a worker because unpacked
//! layers and step leftovers hold files of subordinate ids.

use std::path::PathBuf;

use crate::store::{Eviction, FsckReport, GcReport, LockKind, Store};

use super::SessionError;
use super::worker::{Answer, Op, Workers};

/// Removes everything in the store's trash (in a worker); returns the bytes freed.
/// The caller holds the exclusive store lock.
fn empty_trash(store: &Store, workers: &Workers) -> Result<u64, SessionError> {
    let trash = store.trash_entries();
    if trash.is_empty() {
        return Ok(0);
    }
    match workers.run(&Op::Remove { paths: trash }, &mut |_| {}) {
        Ok(Answer::Removed { bytes }) => Ok(bytes),
        Ok(Answer::Failed { message }) => Err(SessionError::Worker(format!(
            "cannot empty the store's trash: {message}"
        ))),
        Err(e) => Err(SessionError::EmptyTrash(e)),
        Ok(other) => Err(SessionError::Worker(format!(
            "unexpected worker answer {other:?}"
        ))),
    }
}

/// Removes the trash entries this process made (their names carry its
/// pid), without the exclusive lock: no other process touches them. A
/// failure leaves them for the next clean-up.
pub fn empty_own_trash(store: &Store, workers: &Workers) {
    let tag = format!(".{}.", std::process::id());
    let own: Vec<PathBuf> = store
        .trash_entries()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(&tag))
        })
        .collect();
    if !own.is_empty() {
        let _ = workers.run(&Op::Remove { paths: own }, &mut |_| {});
    }
}

/// Clears what killed or failed runs left in the store (temp files and
/// dirs, the trash) when no other process is using it: the exclusive store
/// lock is taken without waiting, and nothing is touched if another build,
/// pull or gc holds the store. Returns the bytes freed (`None`: the store
/// was busy).
pub fn clean_stale(store: &Store, workers: &Workers) -> Result<Option<u64>, SessionError> {
    let Some(_lock) = store.try_lock(LockKind::Exclusive)? else {
        return Ok(None);
    };
    let mut freed = store.clear_temp()?;
    freed += empty_trash(store, workers)?;
    Ok(Some(freed))
}

/// Bounds the unpacked layers to `limit` bytes, least recently used ones
/// evicted first (never a sandbox's), when no other process is using the
/// store: like [`clean_stale`], the exclusive lock is taken without waiting
/// and `None` returned when the store is busy (the next build or `gc`
/// catches up). The evicted dirs are removed at once.
pub fn evict_unpacked(
    store: &Store,
    workers: &Workers,
    limit: u64,
) -> Result<Option<Eviction>, SessionError> {
    let Some(_lock) = store.try_lock(LockKind::Exclusive)? else {
        return Ok(None);
    };
    let eviction = store.evict_layers(limit, || store.sandbox_diff_ids())?;
    if !eviction.evicted.is_empty() {
        empty_trash(store, workers)?;
    }
    Ok(Some(eviction))
}

/// What a garbage collection did, the trash emptied included.
#[derive(Clone, Debug, Default)]
pub struct GcOutcome {
    pub report: GcReport,
    /// Cache mounts and artifact dirs emptied.
    pub pruned: Vec<PathBuf>,
    /// Every byte freed: blobs, cache records, unpacked layers, leftovers.
    pub freed_bytes: u64,
    /// Unpacked layers of kept images evicted to stay within the bound.
    pub eviction: Eviction,
}

/// `gc`: removes what no tag reaches, optionally empties the build caches
/// (`mounts`: apt/npm/pip cache mounts; `artifacts`: downloaded upstream
/// files), evicts least recently used unpacked layers past
/// `max_unpacked` bytes, then empties the trash, counting every byte that
/// really went.
pub fn collect_garbage(
    store: &Store,
    workers: &Workers,
    mounts: bool,
    artifacts: bool,
    max_unpacked: u64,
) -> Result<GcOutcome, SessionError> {
    let report = store.gc()?;
    let pruned = store.prune_build_caches(mounts, artifacts)?;
    let _lock = store.lock_exclusive()?;
    let eviction = store.evict_layers(max_unpacked, || store.sandbox_diff_ids())?;
    let trash = empty_trash(store, workers)?;
    Ok(GcOutcome {
        freed_bytes: report.freed_bytes + trash,
        report,
        pruned,
        eviction,
    })
}

/// `fsck`: checks blobs, tags, layers and cache records
/// ([`Store::fsck_files`]), then compares every unpacked layer dir with a
/// fresh, diff_id-checked unpack of its blob. With `repair`, removes what is
/// broken (never a tag, never a valid blob). Holds the exclusive store lock.
pub fn fsck(
    store: &Store,
    workers: &Workers,
    repair: bool,
    max_layer_size: u64,
) -> Result<FsckReport, SessionError> {
    let _lock = store.lock_exclusive()?;
    let (mut report, dirs) = store.fsck_files(repair)?;
    for layer in dirs.known {
        let dir = store.layer_dir(&layer.diff_id);
        let scratch = store.temp_dir()?;
        let answer = workers.run(
            &Op::VerifyLayerDir {
                store: store.root().to_path_buf(),
                layer: layer.clone(),
                dir: dir.clone(),
                scratch: scratch.join("fresh"),
                max_size: max_layer_size,
            },
            &mut |_| {},
        );
        let _ = workers.run(
            &Op::Remove {
                paths: vec![scratch],
            },
            &mut |_| {},
        );
        let why = match answer {
            Ok(Answer::Verified { difference: None }) => continue,
            Ok(Answer::Verified {
                difference: Some(d),
            }) => format!("differs from its layer {}: {d}", layer.digest.short()),
            Ok(Answer::Failed { message }) => message,
            Err(e) => e.to_string(),
            Ok(other) => format!("unexpected worker answer {other:?}"),
        };
        // A broken unpack is only a cache of its blob: the next build
        // unpacks the blob again.
        let fixed = repair && store.move_to_trash(&dir).is_ok();
        report.add_problem(
            format!("unpacked layer {}: {why}", layer.diff_id.short()),
            fixed,
        );
    }
    if repair {
        empty_trash(store, workers)?;
    }
    Ok(report)
}

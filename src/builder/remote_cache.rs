//! The step cache in a registry (`--cache-to REPO`, `--cache-from REPO`):
//! the registry a fleet of runners already has is their shared build cache,
//! as BuildKit's registry cache and kaniko's `--cache-repo` are.
//!
//! One record per step, tagged `REPO:bwcache-<cache key hex>` so a lookup is
//! one manifest request: an OCI manifest with `artifactType`
//! [`ARTIFACT_TYPE`], whose config (media type [`RECORD_TYPE`]) is the
//! record (key, diff_id, history line, time) and whose one layer is the
//! step's layer blob. A hit reads the record (a few hundred bytes) and asks
//! whether the layer is there; the layer itself is not downloaded then. The
//! store records it as held by the repository (`store::RemoteLayer`), and
//! it is fetched only when its content is needed: as a lower of a step that
//! runs, at the end of a build whose image stays on this machine, or by
//! `run`, `save` and pushes elsewhere. The fetch checks the blob's digest
//! and, while it streams, its content against the record's diff_id; a
//! record that fails is a miss with a warning and its step runs (the build
//! goes back to it), so a forged or foreign record never makes a wrong
//! image here. A build pushed to the cache's own registry mounts those
//! layers there and never downloads them: that image's diff_ids are the
//! records' (the cache repository is trusted as far as its writers are;
//! whoever can write records there decides what the steps produce anyway).
//! A record that is missing, unreadable, foreign or wrong is a miss with a
//! warning, never a failed build.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::image::ManifestKind;
use crate::media::{Compression, Descriptor, LayerInfo, OCI_MANIFEST};
use crate::progress::{Event, Sink};
use crate::registry::{Reference, Registry};

use super::error::CacheRecordError;
use crate::store::{CacheEntry, RemoteLayer, Store};

/// The `artifactType` of a cache record manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.boxwright.step-cache.v1";
/// The media type of a record's config blob.
pub const RECORD_TYPE: &str = "application/vnd.boxwright.step-cache.record.v1+json";
/// Tags of cache records start with this.
pub const TAG_PREFIX: &str = "bwcache-";

/// What a record says (its config blob).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: Digest,
    pub layer: LayerInfo,
    pub created_by: String,
    /// The history time of the step.
    pub created: u64,
    /// When the record was pushed (seconds since the epoch), for prune.
    pub pushed: u64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The reference of the record of `key` in `repo` (a tag or digest given
/// with the repository is replaced: records have their own tags).
fn record_ref(repo: &str, key: &Digest) -> Result<Reference, CacheRecordError> {
    let r: Reference = repo.parse().map_err(|e| CacheRecordError::Repository {
        repo: repo.to_string(),
        source: e,
    })?;
    Ok(r.with_tag(&format!("{TAG_PREFIX}{}", key.hex())))
}

/// Looks `key` up in `repo`: one request. A hit returns the record and the
/// repository holding its layer, which is neither downloaded nor asked for
/// here: the record is checked (type, key, layer digest and size); the
/// build fetches the layer when it needs its content (checking it against
/// the diff_id, `registry::fetch_remote_layer`) or, when it leaves the
/// layer in the registry, asks for it before its push. Either finding it
/// gone makes the step a miss. Misses here (foreign, corrupt, another
/// step's) say why on `sink` as a warning, except plain absence.
pub(crate) fn lookup(
    client: &Registry,
    repo: &str,
    key: &Digest,
    sink: &dyn Sink,
) -> Option<(CacheEntry, RemoteLayer)> {
    let warn = |why: String| {
        sink.emit(&Event::Warning {
            message: format!(
                "cache record for step key {} in {repo} is not usable ({why}): running the step",
                key.short()
            ),
        });
    };
    let reference = match record_ref(repo, key) {
        Ok(r) => r,
        Err(e) => {
            warn(e.to_string());
            return None;
        }
    };
    // One request tells hit from miss (404: a plain miss) and, for records
    // that carry it in their annotations, is the whole record.
    let fetched = match client.fetch_manifest(&reference) {
        Ok(x) => x,
        Err(e) if e.status() == Some(404) => return None,
        Err(e) => {
            warn(crate::quote::excerpt_n(&e.to_string(), 160));
            return None;
        }
    };
    let manifest = match fetched.kind {
        ManifestKind::Image(m) if m.config.media_type == RECORD_TYPE && m.layers.len() == 1 => m,
        _ => {
            warn("not a boxwright step-cache record".into());
            return None;
        }
    };
    let record = match record_from_annotations(&manifest.annotations, &manifest.layers[0]) {
        Some(r) => Some(r),
        // Records without the annotations: the config blob is the record.
        None => client
            .fetch_image_config(&reference)
            .ok()
            .and_then(|(_, config)| serde_json::from_slice::<CacheRecord>(&config).ok()),
    };
    let Some(record) = record else {
        warn("its record does not read".into());
        return None;
    };
    let layer = &manifest.layers[0];
    if record.key != *key || record.layer.digest != layer.digest || record.layer.size != layer.size
    {
        warn("it describes another step or layer".into());
        return None;
    }
    if Compression::from_layer_media_type(&record.layer.media_type).is_none() {
        warn(format!("layer media type {}", record.layer.media_type));
        return None;
    }
    // A push to another repository of this registry mounts it from here.
    client.remember_blob(&reference, &layer.digest);
    let remote = RemoteLayer {
        layer: record.layer.clone(),
        repository: format!("{}/{}", reference.registry(), reference.repository()),
    };
    let entry = CacheEntry {
        layer: record.layer,
        created_by: record.created_by,
        created: record.created,
    };
    Some((entry, remote))
}

/// Annotation keys of a record manifest that repeat its config, so that a
/// lookup reads the manifest alone.
const ANN_KEY: &str = "io.boxwright.cache.key";
const ANN_DIFF_ID: &str = "io.boxwright.cache.diff-id";
const ANN_CREATED_BY: &str = "io.boxwright.cache.created-by";
const ANN_CREATED: &str = "io.boxwright.cache.created";
const ANN_PUSHED: &str = "io.boxwright.cache.pushed";

/// The record a manifest's annotations describe, with its one layer's
/// descriptor; `None` if any annotation is missing or unreadable.
fn record_from_annotations(
    ann: &std::collections::BTreeMap<String, String>,
    layer: &Descriptor,
) -> Option<CacheRecord> {
    Some(CacheRecord {
        key: ann.get(ANN_KEY)?.parse().ok()?,
        layer: LayerInfo {
            digest: layer.digest.clone(),
            diff_id: ann.get(ANN_DIFF_ID)?.parse().ok()?,
            size: layer.size,
            media_type: layer.media_type.clone(),
        },
        created_by: ann.get(ANN_CREATED_BY)?.clone(),
        created: ann.get(ANN_CREATED)?.parse().ok()?,
        pushed: ann.get(ANN_PUSHED)?.parse().ok()?,
    })
}

/// Pushes the record of one step (its layer from the store, then the
/// record and the manifest) to `repo`.
pub(crate) fn push_record(
    client: &Registry,
    store: &Store,
    repo: &str,
    key: &Digest,
    entry: &CacheEntry,
    sink: &dyn Sink,
) -> Result<(), CacheRecordError> {
    let reference = record_ref(repo, key)?;
    let record = CacheRecord {
        key: key.clone(),
        layer: entry.layer.clone(),
        created_by: entry.created_by.clone(),
        created: entry.created,
        pushed: now(),
    };
    let config_bytes = crate::store::to_canonical_json(&record)?;
    let config_digest = store.layout().write_blob(&config_bytes)?;
    let config = Descriptor::new(RECORD_TYPE, config_digest, config_bytes.len() as u64);
    let layer = Descriptor::new(
        entry.layer.media_type.clone(),
        entry.layer.digest.clone(),
        entry.layer.size,
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": config,
        "layers": [layer],
        "annotations": {
            ANN_KEY: key.to_string(),
            ANN_DIFF_ID: record.layer.diff_id.to_string(),
            ANN_CREATED_BY: record.created_by,
            ANN_CREATED: record.created.to_string(),
            ANN_PUSHED: record.pushed.to_string(),
        },
    });
    let bytes = crate::store::to_canonical_json(&manifest)?;
    let report = super::remote::transfer_reporter(sink);
    client
        .push(
            store.layout(),
            &reference,
            &bytes,
            OCI_MANIFEST,
            &[config, layer],
            &report,
        )
        .map(drop)?;
    Ok(())
}

/// What `cache prune --remote` did.
#[derive(Clone, Debug, Default)]
pub struct PruneReport {
    pub kept: usize,
    pub removed: Vec<String>,
}

/// Removes the records of `repo` pushed more than `older_than_secs` ago.
pub fn prune_remote(
    client: &Registry,
    repo: &str,
    older_than_secs: u64,
) -> Result<PruneReport, crate::registry::RegistryError> {
    let reference: Reference = repo.parse()?;
    let cutoff = now().saturating_sub(older_than_secs);
    let mut report = PruneReport::default();
    for tag in client.list_tags(&reference)? {
        if !tag.starts_with(TAG_PREFIX) {
            continue;
        }
        let tagged = reference.with_tag(&tag);
        let (fetched, config) = match client.fetch_image_config(&tagged) {
            Ok(x) => x,
            Err(_) => continue,
        };
        // Only boxwright's own records go: anything else under the prefix stays.
        let Ok(record) = serde_json::from_slice::<CacheRecord>(&config) else {
            report.kept += 1;
            continue;
        };
        if record.pushed >= cutoff {
            report.kept += 1;
            continue;
        }
        let by_digest = reference.with_digest(fetched.digest.clone());
        client.delete_manifest(&by_digest)?;
        report.removed.push(tag);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_from_its_manifest_annotations_or_not_at_all() {
        let layer = Descriptor::new(crate::media::OCI_LAYER_GZIP, Digest::of(b"blob"), 4);
        let record = CacheRecord {
            key: Digest::of(b"key"),
            layer: LayerInfo {
                digest: layer.digest.clone(),
                diff_id: Digest::of(b"tar"),
                size: 4,
                media_type: layer.media_type.clone(),
            },
            created_by: "RUN /bin/sh -c echo \"a b\"".into(),
            created: 7,
            pushed: 1_800_000_000,
        };
        let ann: std::collections::BTreeMap<String, String> = [
            (ANN_KEY, record.key.to_string()),
            (ANN_DIFF_ID, record.layer.diff_id.to_string()),
            (ANN_CREATED_BY, record.created_by.clone()),
            (ANN_CREATED, "7".into()),
            (ANN_PUSHED, "1800000000".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(record_from_annotations(&ann, &layer), Some(record));
        // Any one missing or unreadable: the config blob is read instead.
        for gone in [
            ANN_KEY,
            ANN_DIFF_ID,
            ANN_CREATED_BY,
            ANN_CREATED,
            ANN_PUSHED,
        ] {
            let mut a = ann.clone();
            a.remove(gone);
            assert_eq!(record_from_annotations(&a, &layer), None, "{gone}");
        }
        let mut a = ann.clone();
        a.insert(ANN_DIFF_ID.into(), "sha256:nothex".into());
        assert_eq!(record_from_annotations(&a, &layer), None);
    }
}

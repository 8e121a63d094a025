//! Garbage collection removes exactly what no tag reaches.

use std::collections::BTreeSet;
use std::fs;

use serde_json::json;

use super::{CacheEntry, Store};
use crate::digest::Digest;
use crate::media::{Descriptor, LayerInfo, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};

fn put(store: &Store, bytes: &[u8], media_type: &str) -> Descriptor {
    let d = store.write_blob(bytes).unwrap();
    Descriptor::new(media_type, d, bytes.len() as u64)
}

fn put_json(store: &Store, v: serde_json::Value, media_type: &str) -> Descriptor {
    put(store, &serde_json::to_vec(&v).unwrap(), media_type)
}

/// An image with one layer per content given; returns (manifest, config, layers, diff_ids).
fn image(
    store: &Store,
    contents: &[&str],
) -> (Descriptor, Descriptor, Vec<Descriptor>, Vec<Digest>) {
    let layers: Vec<Descriptor> = contents
        .iter()
        .map(|c| put(store, c.as_bytes(), OCI_LAYER_GZIP))
        .collect();
    let diff_ids: Vec<Digest> = contents
        .iter()
        .map(|c| Digest::of(format!("uncompressed {c}").as_bytes()))
        .collect();
    let config = put_json(
        store,
        json!({"architecture": "amd64", "os": "linux",
               "rootfs": {"type": "layers", "diff_ids": diff_ids}}),
        OCI_CONFIG,
    );
    let manifest = put_json(
        store,
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}),
        OCI_MANIFEST,
    );
    (manifest, config, layers, diff_ids)
}

fn layer_dir(store: &Store, diff_id: &Digest) {
    fs::create_dir_all(store.layer_dir(diff_id).join("usr/bin")).unwrap();
    fs::write(store.layer_dir(diff_id).join("usr/bin/tool"), "x").unwrap();
}

fn cache(store: &Store, key: &[u8], layer: &Descriptor) -> Digest {
    let key = Digest::of(key);
    let entry = CacheEntry {
        layer: LayerInfo {
            digest: layer.digest.clone(),
            diff_id: Digest::of(b"d"),
            size: layer.size,
            media_type: OCI_LAYER_GZIP.into(),
        },
        created_by: "RUN true".into(),
        created: 0,
    };
    store.cache_put(&key, &entry).unwrap();
    key
}

fn set(ds: &[&Digest]) -> BTreeSet<Digest> {
    ds.iter().map(|d| (*d).clone()).collect()
}

#[test]
fn gc_removes_exactly_the_unreachable_blobs_cache_entries_and_layer_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    // a:1 → a plain manifest; b:1 → an index whose second child was never pulled.
    let (m1, c1, l1, d1) = image(&store, &["one", "two"]);
    let (m2, c2, l2, d2) = image(&store, &["three"]);
    let absent_child = Descriptor::new(OCI_MANIFEST, Digest::of(b"other platform"), 14);
    let idx = put_json(
        &store,
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [m2, absent_child]}),
        OCI_INDEX,
    );
    store.tag("a:1", m1.clone()).unwrap();
    store.tag("b:1", idx.clone()).unwrap();

    // Garbage: an untagged image, a loose blob, their layer dir, cache entries, strays.
    let (m3, c3, l3, d3) = image(&store, &["four"]);
    let junk = put(&store, b"junk", "application/octet-stream");
    for d in d1.iter().chain(&d2).chain(&d3) {
        layer_dir(&store, d);
    }
    fs::create_dir(store.layers_dir().join("half-unpacked")).unwrap();
    let kept_key = cache(&store, b"k1", &l1[0]);
    let dropped_key = cache(&store, b"k2", &l3[0]);
    let damaged_key = Digest::of(b"k3");
    fs::write(
        store
            .cache_dir()
            .join(format!("{}.json", damaged_key.hex())),
        "{",
    )
    .unwrap();
    let stray_dir = store.temp_dir().unwrap();
    fs::write(stray_dir.join("f"), "partial").unwrap();
    fs::write(store.tmp_dir().join(".boxwright-tmp-stray"), "12345").unwrap();

    let gone_sizes: u64 = [&m3, &c3, &l3[0]].iter().map(|d| d.size).sum::<u64>() + 4;
    let cache_file_sizes: u64 = [&dropped_key, &damaged_key]
        .iter()
        .map(|k| {
            fs::metadata(store.cache_dir().join(format!("{}.json", k.hex())))
                .unwrap()
                .len()
        })
        .sum();

    let report = store.gc().unwrap();
    let removed: BTreeSet<Digest> = report.removed_blobs.iter().cloned().collect();
    assert_eq!(
        removed,
        set(&[&m3.digest, &c3.digest, &l3[0].digest, &junk.digest])
    );
    assert_eq!(report.kept_blobs, 8);
    for d in [&m1, &c1, &l1[0], &l1[1], &m2, &c2, &l2[0], &idx] {
        assert!(store.has_blob(&d.digest), "{} was removed", d.digest);
    }
    assert_eq!(
        report.removed_cache_entries.iter().collect::<BTreeSet<_>>(),
        [&dropped_key, &damaged_key].into_iter().collect()
    );
    assert!(store.cache_get(&kept_key).unwrap().is_some());
    assert_eq!(report.trashed_layer_dirs, d3);
    for d in d1.iter().chain(&d2) {
        assert!(store.has_layer_dir(d));
    }
    assert!(!store.has_layer_dir(&d3[0]));
    assert_eq!(
        report.cleared_strays.len(),
        3,
        "{:?}",
        report.cleared_strays
    );
    assert_eq!(report.freed_bytes, gone_sizes + cache_file_sizes + 5);
    // Trashed dirs (the layer, the half-unpacked one, the temp dir) wait in the trash.
    assert_eq!(store.trash_entries().len(), 3);
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);

    // A second run finds nothing more.
    let again = store.gc().unwrap();
    assert_eq!(
        again.removed_blobs.len() + again.trashed_layer_dirs.len(),
        0
    );
    assert_eq!(again.freed_bytes, 0);

    // Untagging a:1 releases its manifest, config, layers, layer dirs and cache entry.
    store.untag("a:1").unwrap();
    let third = store.gc().unwrap();
    let removed: BTreeSet<Digest> = third.removed_blobs.iter().cloned().collect();
    assert_eq!(
        removed,
        set(&[&m1.digest, &c1.digest, &l1[0].digest, &l1[1].digest])
    );
    assert_eq!(
        third.trashed_layer_dirs.iter().collect::<BTreeSet<_>>(),
        d1.iter().collect()
    );
    assert_eq!(third.removed_cache_entries, vec![kept_key]);
    assert_eq!(third.kept_blobs, 4);
}

#[test]
fn gc_refuses_to_delete_anything_when_a_manifest_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (m1, ..) = image(&store, &["one"]);
    store.tag("a:1", m1.clone()).unwrap();
    let junk = put(&store, b"junk", "application/octet-stream");
    fs::write(store.blob_path(&m1.digest), b"{\"tampered\":true}").unwrap();
    let err = store.gc().unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(store.has_blob(&junk.digest));
}

#[test]
fn gc_waits_for_builds_holding_the_shared_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let build = store.lock_shared().unwrap();
    let other = Store::open(dir.path()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let gc = std::thread::spawn(move || {
        let r = other.gc();
        tx.send(()).unwrap();
        r
    });
    // An untagged blob written by the "build" while it holds the lock.
    let blob = put(&store, b"not yet tagged", OCI_LAYER_GZIP);
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(300))
            .is_err()
    );
    assert!(store.has_blob(&blob.digest));
    drop(build);
    let report = gc.join().unwrap().unwrap();
    assert_eq!(report.removed_blobs, vec![blob.digest]);
}

#[test]
fn build_caches_are_emptied_only_when_asked_and_only_they() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let apt = store.mount_cache_dir("/var/cache/apt").unwrap();
    fs::create_dir_all(apt.join("archives")).unwrap();
    fs::write(apt.join("archives/jq.deb"), "deb").unwrap();
    let artifact = store.artifacts_dir().join("go/1.23.4");
    fs::create_dir_all(&artifact).unwrap();
    fs::write(artifact.join("go.tar.gz"), "tgz").unwrap();
    let (manifest, ..) = image(&store, &["kept"]);
    store.tag("kept:1", manifest).unwrap();

    assert!(store.prune_build_caches(false, false).unwrap().is_empty());
    assert!(apt.join("archives/jq.deb").exists());

    let moved = store.prune_build_caches(true, false).unwrap();
    assert_eq!(moved, vec![apt.clone()]);
    assert!(!apt.exists());
    assert!(artifact.join("go.tar.gz").exists(), "artifacts stay");

    let moved = store.prune_build_caches(false, true).unwrap();
    assert_eq!(moved, vec![store.artifacts_dir().join("go")]);
    assert!(!artifact.exists());
    assert_eq!(store.trash_entries().len(), 2, "both wait in the trash");
    assert!(store.resolve("kept:1").is_ok(), "images are untouched");
    // The cache mount comes back empty on the next build.
    assert!(
        store
            .mount_cache_dir("/var/cache/apt")
            .unwrap()
            .read_dir()
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn gc_keeps_the_records_of_layers_a_registry_holds_for_a_tagged_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (manifest, _, layers, diff_ids) = image(&store, &["held", "local"]);
    store.layout().tag("img:1", manifest).unwrap();
    let record = |d: &Descriptor, diff_id: &Digest| super::RemoteLayer {
        layer: LayerInfo {
            digest: d.digest.clone(),
            diff_id: diff_id.clone(),
            size: d.size,
            media_type: OCI_LAYER_GZIP.into(),
        },
        repository: "127.0.0.1:5000/ci/cache".into(),
    };
    // The first layer is only in the registry; the second is here (its
    // record is stale); a third record names a layer no image has.
    let held = record(&layers[0], &diff_ids[0]);
    assert!(store.remove_blob(&layers[0].digest).unwrap());
    store.put_remote_layer(&held).unwrap();
    store
        .put_remote_layer(&record(&layers[1], &diff_ids[1]))
        .unwrap();
    let stray = put(&store, b"stray", OCI_LAYER_GZIP);
    store
        .put_remote_layer(&record(&stray, &Digest::of(b"s")))
        .unwrap();
    assert!(store.remove_blob(&stray.digest).unwrap());
    // A cache entry of the held layer stays a hit.
    let key = Digest::of(b"step");
    let entry = CacheEntry {
        layer: held.layer.clone(),
        created_by: "RUN held".into(),
        created: 0,
    };
    store.cache_put(&key, &entry).unwrap();

    let report = store.gc().unwrap();
    let forgotten: BTreeSet<Digest> = report.forgotten_remote_layers.into_iter().collect();
    assert_eq!(forgotten, set(&[&layers[1].digest, &stray.digest]));
    assert_eq!(store.remote_layer(&layers[0].digest), Some(held));
    assert_eq!(store.cache_get(&key).unwrap(), Some(entry));
    assert!(report.removed_cache_entries.is_empty());
    // fsck counts the held layer, and reports nothing of it missing (the
    // local layer of this fixture is no gzip: that is reported).
    let (fsck, _) = store.fsck_files(false).unwrap();
    assert_eq!(fsck.remote_layers, 1);
    let held_hex = layers[0].digest.hex();
    assert!(
        fsck.problems
            .iter()
            .all(|p| !p.message.contains(&held_hex[..12])),
        "{:?}",
        fsck.problems
    );
}

//! load_archive's refusals and save/load round trips on hand-made archives.

use std::io::Write;

use serde_json::json;

use super::{Store, StoreError, load_archive, save_archive};
use crate::digest::Digest;
use crate::media::{ANNOTATION_REF_NAME, Descriptor, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};

/// A tar built entry by entry; names are written raw so hostile ones can be made.
struct RawTar(Vec<u8>);

impl RawTar {
    fn new() -> RawTar {
        RawTar(Vec::new())
    }

    fn entry(mut self, name: &str, kind: tar::EntryType, data: &[u8]) -> RawTar {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(kind);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    fn file(self, name: &str, data: &[u8]) -> RawTar {
        self.entry(name, tar::EntryType::Regular, data)
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0u8; 1024]);
        self.0
    }
}

/// Blobs of a one-layer image, as (descriptor, bytes) with the manifest first.
fn image_blobs() -> Vec<(Descriptor, Vec<u8>)> {
    let layer = b"pretend gzip layer".to_vec();
    let layer_d = Descriptor::new(OCI_LAYER_GZIP, Digest::of(&layer), layer.len() as u64);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"tar")]}
    }))
    .unwrap();
    let config_d = Descriptor::new(OCI_CONFIG, Digest::of(&config), config.len() as u64);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_d, "layers": [layer_d]
    }))
    .unwrap();
    let manifest_d = Descriptor::new(OCI_MANIFEST, Digest::of(&manifest), manifest.len() as u64);
    vec![(manifest_d, manifest), (config_d, config), (layer_d, layer)]
}

fn index_naming(manifest: &Descriptor, name: Option<&str>) -> Vec<u8> {
    let mut d = manifest.clone();
    if let Some(n) = name {
        d.annotations.insert(ANNOTATION_REF_NAME.into(), n.into());
    }
    serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [d]})).unwrap()
}

fn archive_with(blobs: &[(Descriptor, Vec<u8>)], index: &[u8]) -> Vec<u8> {
    let mut t = RawTar::new()
        .file("./oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .entry("./blobs/", tar::EntryType::Directory, b"");
    for (d, bytes) in blobs {
        t = t.file(&format!("./blobs/sha256/{}", d.digest.hex()), bytes);
    }
    t.file("./index.json", index).finish()
}

fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn blob_count(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn a_well_formed_archive_loads_plain_or_gzipped_and_saves_back_identically() {
    let blobs = image_blobs();
    let archive = archive_with(&blobs, &index_naming(&blobs[0].0, Some("demo")));
    let (_d1, store) = fresh_store();
    assert_eq!(load_archive(&store, &archive[..]).unwrap(), ["demo:latest"]);
    assert_eq!(store.resolve("demo").unwrap().digest, blobs[0].0.digest);
    assert_eq!(blob_count(&store), 3);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&archive).unwrap();
    let (_d2, store2) = fresh_store();
    assert_eq!(
        load_archive(&store2, &gz.finish().unwrap()[..]).unwrap(),
        ["demo:latest"]
    );

    // save → load → save gives byte-identical archives (a name given twice, in two
    // spellings, is listed once).
    let mut first = Vec::new();
    let twice = ["demo".to_string(), "demo:latest".to_string()];
    save_archive(&store, &twice, &mut first).unwrap();
    let (_d3, store3) = fresh_store();
    load_archive(&store3, &first[..]).unwrap();
    let mut second = Vec::new();
    save_archive(&store3, &["demo:latest".to_string()], &mut second).unwrap();
    assert_eq!(first, second);
}

#[test]
fn hostile_paths_and_links_are_refused() {
    let (_d, store) = fresh_store();
    for (name, kind) in [
        ("../evil", tar::EntryType::Regular),
        ("blobs/../../evil", tar::EntryType::Regular),
        ("/etc/evil", tar::EntryType::Regular),
        ("blobs/sha256/link", tar::EntryType::Symlink),
        ("blobs/sha256/hard", tar::EntryType::Link),
    ] {
        let archive = RawTar::new().entry(name, kind, b"").finish();
        let err = load_archive(&store, &archive[..]).unwrap_err();
        assert!(
            matches!(err, StoreError::HostileArchivePath(_)),
            "{name}: {err}"
        );
    }
    assert!(!store.root().parent().unwrap().join("evil").exists());
}

#[test]
fn a_blob_that_does_not_match_its_name_is_refused_and_not_stored() {
    let mut blobs = image_blobs();
    blobs[2].1 = b"tampered layer bytes".to_vec();
    let archive = archive_with(&blobs, &index_naming(&blobs[0].0, Some("demo")));
    let (_d, store) = fresh_store();
    let err = load_archive(&store, &archive[..]).unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    assert!(!store.has_blob(&blobs[2].0.digest));
    assert!(store.tags().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn incomplete_unnamed_docker_and_non_archives_are_refused_with_a_reason() {
    let blobs = image_blobs();
    let (_d, store) = fresh_store();

    let missing_layer = archive_with(&blobs[..2], &index_naming(&blobs[0].0, Some("demo")));
    let err = load_archive(&store, &missing_layer[..]).unwrap_err();
    assert!(
        matches!(err, StoreError::Incomplete { role: "layer", .. }),
        "{err}"
    );
    assert!(store.tags().unwrap().is_empty());

    let unnamed = archive_with(&blobs, &index_naming(&blobs[0].0, None));
    let err = load_archive(&store, &unnamed[..]).unwrap_err();
    assert!(err.to_string().contains("names no image"), "{err}");

    let docker = RawTar::new()
        .file("manifest.json", b"[]")
        .file("repositories", b"{}")
        .finish();
    let err = load_archive(&store, &docker[..]).unwrap_err();
    assert!(matches!(err, StoreError::DockerArchive), "{err}");
    assert!(
        err.to_string().contains("skopeo copy docker-archive:"),
        "{err}"
    );

    let err = load_archive(&store, &b"definitely not a tar"[..]).unwrap_err();
    assert!(err.to_string().contains("archive"), "{err}");
}

#[test]
fn saving_an_image_with_a_missing_blob_fails_clearly() {
    let blobs = image_blobs();
    let (_d, store) = fresh_store();
    for (_, bytes) in &blobs[..2] {
        store.write_blob(bytes).unwrap();
    }
    store.tag("demo", blobs[0].0.clone()).unwrap();
    let err = save_archive(&store, &["demo".to_string()], Vec::new()).unwrap_err();
    assert!(
        matches!(err, StoreError::Incomplete { role: "layer", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("demo"), "{err}");
}

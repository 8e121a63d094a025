//! write_image / load_image against a real layout, plus digest determinism.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use super::*;
use crate::digest::Digest;
use crate::media::{
    DOCKER_LAYER_GZIP, Descriptor, LayerInfo, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST,
};
use crate::store::{Layout, Store};

/// A real gzip-compressed tar layer holding `files`, written into the layout.
pub(crate) fn gzip_layer(layout: &Layout, files: &[(&str, &[u8])]) -> LayerInfo {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, *content).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&raw).unwrap();
    let blob = gz.finish().unwrap();
    LayerInfo {
        digest: layout.write_blob(&blob).unwrap(),
        diff_id: Digest::of(&raw),
        size: blob.len() as u64,
        media_type: OCI_LAYER_GZIP.to_string(),
    }
}

fn labels_in_order(keys: &[&str]) -> BTreeMap<String, String> {
    // Fill a HashMap in the given order first, as a caller with HashMap inputs would.
    let h: HashMap<String, String> = keys
        .iter()
        .map(|k| (k.to_string(), format!("v-{k}")))
        .collect();
    h.into_iter().collect()
}

fn config_with(layers: &[LayerInfo], label_order: &[&str]) -> ImageConfig {
    let mut c = ImageConfig::new_for_host(1_700_000_000);
    for (i, l) in layers.iter().enumerate() {
        c.push_layer(
            l.diff_id.clone(),
            &format!("step {i}"),
            1_700_000_000 + i as u64,
        );
    }
    c.apply(&ConfigOverrides {
        labels: labels_in_order(label_order),
        env: labels_in_order(&["B", "A", "C"]),
        exposed_ports: vec!["8443".into(), "22/tcp".into()],
        ..Default::default()
    });
    c
}

#[test]
fn same_inputs_in_any_order_give_the_same_digests_in_any_layout() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let la = Layout::create(a.path()).unwrap();
    let lb = Layout::create(b.path()).unwrap();
    let layer_a = gzip_layer(&la, &[("hello.txt", b"hi\n")]);
    let layer_b = gzip_layer(&lb, &[("hello.txt", b"hi\n")]);
    assert_eq!(layer_a, layer_b);
    let ca = config_with(std::slice::from_ref(&layer_a), &["z", "a", "m", "k"]);
    let cb = config_with(std::slice::from_ref(&layer_b), &["k", "m", "a", "z"]);
    assert_eq!(
        ca.to_canonical_json().unwrap(),
        cb.to_canonical_json().unwrap()
    );
    let ann = |order: &[&str]| labels_in_order(order);
    let da = write_image(&la, &ca, &[layer_a], ann(&["x", "y"])).unwrap();
    let db = write_image(&lb, &cb, &[layer_b], ann(&["y", "x"])).unwrap();
    assert_eq!(da, db);
    assert_eq!(da.media_type, OCI_MANIFEST);

    // A config parsed from JSON with its keys in another order is the same config.
    let shuffled = r#"{"rootfs":{"diff_ids":[],"type":"layers"},"os":"linux","config":{"Labels":{"b":"2","a":"1"}},"architecture":"amd64"}"#;
    let sorted = r#"{"architecture":"amd64","config":{"Labels":{"a":"1","b":"2"}},"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let x = ImageConfig::from_json(shuffled.as_bytes())
        .unwrap()
        .to_canonical_json()
        .unwrap();
    let y = ImageConfig::from_json(sorted.as_bytes())
        .unwrap()
        .to_canonical_json()
        .unwrap();
    assert_eq!(x, y);
    assert_eq!(
        String::from_utf8(x).unwrap(),
        r#"{"architecture":"amd64","config":{"Labels":{"a":"1","b":"2"}},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#
    );
}

#[test]
fn written_images_load_back_with_their_layers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let l1 = gzip_layer(&store, &[("a", b"1")]);
    let l2 = gzip_layer(&store, &[("b", b"2")]);
    let mut config = config_with(&[l1.clone(), l2.clone()], &["k"]);
    config.push_empty_history("ENV X=1", 5);
    let desc = write_image(&store, &config, &[l1.clone(), l2.clone()], BTreeMap::new()).unwrap();
    let img = load_image(&store, &desc).unwrap();
    assert_eq!(img.manifest_descriptor, desc);
    assert_eq!(img.config, config);
    assert_eq!(img.config_bytes, config.to_canonical_json().unwrap());
    assert_eq!(Digest::of(&img.config_bytes), img.manifest.config.digest);
    assert_eq!(img.layers().unwrap(), vec![l1, l2]);
}

#[test]
fn docker_layer_types_become_oci_types_and_bad_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let mut l = gzip_layer(&layout, &[("a", b"1")]);
    l.media_type = DOCKER_LAYER_GZIP.into();
    let config = config_with(&[l.clone()], &[]);
    let desc = write_image(&layout, &config, &[l.clone()], BTreeMap::new()).unwrap();
    let img = load_image(&layout, &desc).unwrap();
    assert_eq!(img.manifest.layers[0].media_type, OCI_LAYER_GZIP);

    // diff_ids that disagree with the layers given.
    let other = gzip_layer(&layout, &[("b", b"2")]);
    assert!(matches!(
        write_image(&layout, &config, &[other], BTreeMap::new()),
        Err(ImageError::DiffIdsDisagree { .. })
    ));
    // A layer whose blob was never written.
    let mut ghost = l.clone();
    ghost.digest = Digest::of(b"never written");
    let mut c2 = ImageConfig::new_for_host(0);
    c2.push_layer(ghost.diff_id.clone(), "x", 0);
    assert!(matches!(
        write_image(&layout, &c2, &[ghost], BTreeMap::new()),
        Err(ImageError::MissingLayer(_))
    ));
}

#[test]
fn load_image_follows_an_index_to_the_host_platform() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path()).unwrap();
    let host = host_platform();
    let mut foreign = host.clone();
    foreign.architecture = if host.architecture == "s390x" {
        "amd64"
    } else {
        "s390x"
    }
    .into();
    foreign.variant = None;

    let mk = |content: &[u8], platform: &crate::media::Platform| {
        let l = gzip_layer(&layout, &[("f", content)]);
        let mut c = ImageConfig::new_for_host(0);
        c.architecture = platform.architecture.clone();
        c.variant = platform.variant.clone();
        c.push_layer(l.diff_id.clone(), "x", 0);
        let mut d = write_image(&layout, &c, &[l], BTreeMap::new()).unwrap();
        d.platform = Some(platform.clone());
        d
    };
    let foreign_desc = mk(b"foreign", &foreign);
    let host_desc = mk(b"host", &host);
    let index = crate::store::Index {
        manifests: vec![foreign_desc.clone(), host_desc.clone()],
        ..Default::default()
    };
    let bytes = crate::store::to_canonical_json(&index).unwrap();
    let index_desc = Descriptor::new(
        OCI_INDEX,
        layout.write_blob(&bytes).unwrap(),
        bytes.len() as u64,
    );
    layout.tag("multi:1", index_desc.clone()).unwrap();

    let img = load_image(&layout, &layout.resolve("multi:1").unwrap()).unwrap();
    assert_eq!(img.manifest_descriptor.digest, host_desc.digest);
    assert_eq!(img.config.architecture, host.architecture);
    let img = load_image_for(&layout, &index_desc, &foreign).unwrap();
    assert_eq!(img.manifest_descriptor.digest, foreign_desc.digest);

    // A descriptor whose size lies is caught even though the digest matches.
    let mut lying = host_desc.clone();
    lying.size += 1;
    assert!(matches!(
        load_image(&layout, &lying),
        Err(ImageError::SizeMismatch { .. })
    ));
}

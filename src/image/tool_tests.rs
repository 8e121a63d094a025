//! Independent verifiers: skopeo, umoci, oci-image-tool and podman read what boxwright
//! writes, and boxwright reads what skopeo writes. The store's extra `boxwright/`
//! directory is populated first, to prove the tools tolerate it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::image_io_tests::gzip_layer;
use super::*;
use crate::digest::Digest;
use crate::media::{Descriptor, LayerInfo};
use crate::store::{CacheEntry, Store, load_archive, save_archive};

const HELLO: &[u8] = b"hello from boxwright\n";

/// A command for a tool the test needs; fails (never skips) when it is missing.
fn tool(name: &str, package: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is needed for this test: apt-get install {package}"
    );
    Command::new(name)
}

fn run(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A store holding one small image tagged `t:1`, with every kind of extra populated.
fn store_with_image(root: &Path) -> (Store, Descriptor, LayerInfo) {
    let store = Store::open(root).unwrap();
    let layer = gzip_layer(&store, &[("hello.txt", HELLO)]);
    let mut config = ImageConfig::new_for_host(0);
    config.push_layer(layer.diff_id.clone(), "boxwright test layer", 0);
    config.apply(&ConfigOverrides {
        env: [("PATH".to_string(), "/usr/bin:/bin".to_string())].into(),
        cmd: Some(vec!["/bin/sh".into()]),
        exposed_ports: vec!["22/tcp".into()],
        ..Default::default()
    });
    let desc = write_image(
        &store,
        &config,
        std::slice::from_ref(&layer),
        BTreeMap::new(),
    )
    .unwrap();
    store.tag("t:1", desc.clone()).unwrap();

    // The extras beside the layout: an unpacked layer, a cache entry, temp and trash.
    let tmp = store.temp_dir().unwrap();
    fs::write(tmp.join("hello.txt"), HELLO).unwrap();
    store.commit_layer_dir(&tmp, &layer.diff_id).unwrap();
    let entry = CacheEntry {
        layer: layer.clone(),
        created_by: "boxwright test layer".into(),
        created: 0,
    };
    store.cache_put(&Digest::of(b"step"), &entry).unwrap();
    let straggler = store.temp_dir().unwrap();
    fs::write(straggler.join("partial"), b"x").unwrap();
    let loser = store.temp_dir().unwrap();
    store.commit_layer_dir(&loser, &layer.diff_id).unwrap();
    assert_eq!(store.trash_entries().len(), 1);
    (store, desc, layer)
}

fn skopeo_layers(transport_ref: &str) -> Vec<String> {
    let out = run(tool("skopeo", "skopeo").args(["inspect", transport_ref]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn oci_image_tool_skopeo_and_umoci_read_a_store_with_its_extras() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let (store, _desc, layer) = store_with_image(&root);
    let root_s = root.to_str().unwrap();

    run(tool("oci-image-tool", "oci-image-tool")
        .args(["validate", "--type", "image", "--ref", "name=t:1", root_s]));
    // Control: the validator does look the name up.
    let wrong = tool("oci-image-tool", "oci-image-tool")
        .args(["validate", "--type", "image", "--ref", "name=t:2", root_s])
        .output()
        .unwrap();
    assert!(!wrong.status.success());

    assert_eq!(
        skopeo_layers(&format!("oci:{root_s}:t:1")),
        vec![layer.digest.to_string()]
    );

    // A name with a registry-style path works the same way.
    store
        .tag("localhost/x:1", store.resolve("t:1").unwrap())
        .unwrap();
    run(tool("oci-image-tool", "oci-image-tool").args([
        "validate",
        "--type",
        "image",
        "--ref",
        "name=localhost/x:1",
        root_s,
    ]));
    assert_eq!(
        skopeo_layers(&format!("oci:{root_s}:localhost/x:1")),
        vec![layer.digest.to_string()]
    );

    let listed = run(tool("umoci", "umoci").args(["ls", "--layout", root_s]));
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    assert_eq!(listed, ["localhost/x:1", "t:1"]);

    let bundle = dir.path().join("bundle");
    let mut unpack = tool("umoci", "umoci");
    unpack.arg("unpack");
    if !nix::unistd::geteuid().is_root() {
        unpack.arg("--rootless");
    }
    run(unpack
        .args(["--image", &format!("{root_s}:t:1")])
        .arg(&bundle));
    assert_eq!(fs::read(bundle.join("rootfs/hello.txt")).unwrap(), HELLO);
    let runtime: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(runtime["process"]["args"][0], "/bin/sh");

    // The tools left the store as it was: both tags, nothing for gc to collect.
    assert_eq!(store.tags().unwrap().len(), 2);
    let report = store.gc().unwrap();
    assert!(report.removed_blobs.is_empty(), "{report:?}");
    assert!(report.trashed_layer_dirs.is_empty(), "{report:?}");
}

#[test]
fn saved_archives_are_read_by_skopeo_and_podman() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _desc, layer) = store_with_image(&dir.path().join("store"));
    let archive = dir.path().join("t.tar");
    save_archive(
        &store,
        &["t:1".to_string()],
        fs::File::create(&archive).unwrap(),
    )
    .unwrap();
    let archive_s = archive.to_str().unwrap();
    assert_eq!(
        skopeo_layers(&format!("oci-archive:{archive_s}:t:1")),
        vec![layer.digest.to_string()]
    );

    // podman load into throwaway storage, then read the image's layer back out.
    let podman_root = dir.path().join("podman");
    let podman = |args: &[&str]| {
        let mut c = tool("podman", "podman");
        c.arg("--root")
            .arg(podman_root.join("root"))
            .arg("--runroot")
            .arg(podman_root.join("run"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"])
            .args(args);
        run(&mut c)
    };
    let loaded = podman(&["load", "-i", archive_s]);
    assert!(loaded.contains("t:1"), "{loaded}");
    let inspect = podman(&["image", "inspect", "t:1"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["RootFS"]["Layers"][0], layer.diff_id.to_string());
}

#[test]
fn archives_written_by_skopeo_load_and_saved_archives_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (src, desc, layer) = store_with_image(&dir.path().join("src"));
    let other = dir.path().join("other.tar");
    run(tool("skopeo", "skopeo").args([
        "copy",
        &format!("oci:{}:t:1", src.root().display()),
        &format!("oci-archive:{}:t:1", other.display()),
    ]));

    let dst = Store::open(&dir.path().join("dst")).unwrap();
    let names = load_archive(&dst, fs::File::open(&other).unwrap()).unwrap();
    assert_eq!(names, ["t:1"]);
    let img = load_image(&dst, &dst.resolve("t:1").unwrap()).unwrap();
    assert_eq!(img.layers().unwrap(), vec![layer.clone()]);
    assert_eq!(img.manifest_descriptor.digest, desc.digest);

    // Our own archive, loaded into a third store, gives the identical image.
    let ours = dir.path().join("ours.tar");
    save_archive(&dst, &["t:1".to_string()], fs::File::create(&ours).unwrap()).unwrap();
    let third = Store::open(&dir.path().join("third")).unwrap();
    assert_eq!(
        load_archive(&third, fs::File::open(&ours).unwrap()).unwrap(),
        ["t:1"]
    );
    assert_eq!(third.resolve("t:1").unwrap().digest, desc.digest);
    assert!(third.has_blob(&layer.digest));
    let _: PathBuf = ours;
}

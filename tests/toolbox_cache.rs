//! Package-manager caches never land in layers: apt's archives and lists are
//! cache mounts kept per store, so a second build downloads nothing and the
//! layers hold no .deb and no package lists. Checked on a Debian minbase base
//! made by mmdebstrap, with GNU tar listing the layer blobs. The image gets
//! Docker's `docker-clean` apt hook first, which boxwright must hide while
//! its caches are mounted.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const DOCKER_CLEAN: &str = r#"DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"#;

fn recipe(dir: &Path) -> PathBuf {
    debian_base_in(dir);
    fs::create_dir_all(dir.join("files")).unwrap();
    fs::write(dir.join("files/docker-clean"), DOCKER_CLEAN).unwrap();
    write_recipe(
        dir,
        "apt.toml",
        r#"[image]
base = "rootfs:minbase.tar"

[[steps]]
copy = { src = "files/docker-clean", dest = "/etc/apt/apt.conf.d/docker-clean", mode = "0644" }

[[steps]]
run = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq && jq --version"
"#,
    )
}

/// The layer blobs of image `tag` in `store`, bottom first.
fn layer_blobs(store: &Path, tag: &str) -> Vec<PathBuf> {
    let inspect = boxwright(&["inspect", "--store", store.to_str().unwrap(), tag]).ok();
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    v["manifest"]["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in {}", inspect.stdout))
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().unwrap();
            store
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"))
        })
        .collect()
}

/// Entry names of a gzip layer, listed by GNU tar.
fn tar_entries(blob: &Path) -> Vec<String> {
    let out = sh(Command::new("tar").arg("-tzf").arg(blob));
    out.lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect()
}

fn debs_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".deb"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn apt_caches_are_mounts_not_layers_and_a_rebuild_downloads_nothing() {
    require_root("root mode");
    require_tool("tar", "tar");
    let t = world_tempdir();
    let r = recipe(t.path());
    let store = t.path().join("store");
    let first = boxwright(&[
        "build",
        "--store",
        store.to_str().unwrap(),
        "-t",
        "jq",
        r.to_str().unwrap(),
    ])
    .ok();
    assert!(first.stderr.contains("Setting up jq"), "{}", first.stderr);

    // The downloads are in the store's cache mount, despite docker-clean.
    let archives = t.path().join("store.state/mounts/var+cache+apt/archives");
    let debs = debs_in(&archives);
    assert!(
        debs.iter().any(|d| d.starts_with("jq_")),
        "jq's .deb must stay in the cache mount {}: {debs:?}",
        archives.display()
    );
    let lists = t.path().join("store.state/mounts/var+lib+apt+lists");
    let has_packages_list = fs::read_dir(&lists)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"));
    assert!(
        has_packages_list,
        "apt's lists must be in {}",
        lists.display()
    );

    // No layer above the base holds apt's downloads or lists, or any stub of
    // the cache mounts (the base's own empty apt dirs are all the image has).
    let blobs = layer_blobs(&store, "jq");
    assert_eq!(blobs.len(), 3, "base + copy + apt step");
    for blob in &blobs[1..] {
        for e in tar_entries(blob) {
            let bad = (e.starts_with("var/cache/apt/archives/") && e.ends_with(".deb"))
                || (e.starts_with("var/lib/apt/lists/") && e.ends_with("_Packages"))
                || e.starts_with("var/cache/apt/")
                || e.starts_with("var/lib/apt/lists/")
                || e.starts_with("root/.npm")
                || e.starts_with("root/.cache")
                || e.starts_with("run/");
            assert!(!bad, "layer {} holds {e}", blob.display());
        }
    }
    let apt_layer = tar_entries(&blobs[2]);
    assert!(
        apt_layer.iter().any(|e| e == "usr/bin/jq"),
        "jq is in the layer"
    );
    // The image can still apt-get update: its lists dir is there, empty.
    let base = tar_entries(&blobs[0]);
    assert!(base.iter().any(|e| e == "var/lib/apt/lists/"));
    assert!(!base.iter().any(|e| e.ends_with("_Packages")));

    // A rebuild without the step cache takes every package from the mount.
    let second = boxwright(&[
        "build",
        "--no-cache",
        "--store",
        store.to_str().unwrap(),
        "-t",
        "jq2",
        r.to_str().unwrap(),
    ])
    .ok();
    assert!(second.stderr.contains("Setting up jq"), "{}", second.stderr);
    assert!(
        second.stderr.contains("Need to get 0 B/"),
        "apt must find every package in the cache mount: {}",
        second.stderr
    );
    let fetched: Vec<&str> = second
        .stderr
        .lines()
        .filter(|l| l.contains("Get:") && l.contains(" jq "))
        .collect();
    assert!(fetched.is_empty(), "downloaded again: {fetched:?}");
    assert_eq!(debs_in(&archives), debs, "no new downloads");

    // `gc --cache-mounts` empties them (apt's files of the _apt user too),
    // leaving the images alone.
    let s = store.to_str().unwrap();
    let gc = boxwright(&["gc", "--store", s, "--cache-mounts"]).ok();
    assert!(gc.stderr.contains("emptied"), "{}", gc.stderr);
    let state = store.with_extension("state");
    for dir in ["mounts", "trash"] {
        let left: Vec<_> = fs::read_dir(state.join(dir)).unwrap().collect();
        assert!(left.is_empty(), "{dir} after gc: {left:?}");
    }
    boxwright(&["inspect", "--store", s, "jq2"]).ok();
}

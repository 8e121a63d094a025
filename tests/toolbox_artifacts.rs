//! Upstream artifacts through `boxwright build`: a local mirror served on
//! 127.0.0.1 (and a directory mirror) with a wrong file and a missing one,
//! and `--offline` naming every download up front. The recipe asks for
//! Node.js 20, which comes from a pinned nodejs.org tarball.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::file_server::Server;
use support::*;

/// The pinned Node.js 20 file for this machine and its checksum.
fn node_file() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => (
            "node-v20.11.1-linux-arm64.tar.gz",
            "e34ab2fc2726b4abd896bcbff0250e9b2da737cbd9d24267518a802ed0606f3b",
        ),
        _ => (
            "node-v20.11.1-linux-x64.tar.gz",
            "bf3a779bef19452da90fb88358ec2c57e0d2f882839b20dc6afc297b6aafc0d7",
        ),
    }
}

fn recipe(dir: &Path) -> std::path::PathBuf {
    write_recipe(
        dir,
        "node.toml",
        &format!(
            "{}dev_access = false\n[runtimes]\nnode = \"20\"\n",
            busybox_base()
        ),
    )
}

fn build(dir: &Path, extra: &[&str]) -> Run {
    let store = dir.join("store");
    let r = recipe(dir);
    let mut args = vec!["build", "--store", store.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(r.to_str().unwrap());
    boxwright(&args)
}

#[test]
fn a_wrong_file_from_the_mirror_fails_naming_the_artifact() {
    let (file, sum) = node_file();
    let mut files = BTreeMap::new();
    files.insert(format!("/node/20.11.1/{file}"), b"not node".to_vec());
    let server = Server::start(files);
    let t = tempfile::tempdir().unwrap();
    let run = build(t.path(), &["--artifact-mirror", &server.addr]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let expected = format!(
        "artifact node 20.11.1 ({file}) from {}/node/20.11.1/{file} has sha256 ",
        server.addr
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("but the catalog pins {sum}")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
    // Nothing unverified is kept.
    let cached = t
        .path()
        .join(format!("store.state/artifacts/sha256-{sum}/{file}"));
    assert!(!cached.exists());
}

#[test]
fn a_missing_file_fails_naming_every_place_looked_in() {
    let (file, sum) = node_file();
    let t = tempfile::tempdir().unwrap();
    let mirror = t.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let run = build(t.path(), &["--artifact-mirror", mirror.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let cache = t
        .path()
        .join(format!("store.state/artifacts/sha256-{sum}/{file}"));
    let expected = format!(
        "cannot get node 20.11.1 ({file}): looked in {} (not cached), {} (not found)",
        cache.display(),
        mirror.join(format!("node/20.11.1/{file}")).display()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);

    // The same over HTTP: the URL and its answer are named.
    let server = Server::start(BTreeMap::new());
    let run = build(
        t.path(),
        &["--artifact-mirror", &format!("{}/", server.addr)],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "{}/node/20.11.1/{file} (HTTP 404 Not Found)",
            server.addr
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn offline_names_every_download_before_any_step_runs() {
    let (file, _) = node_file();
    let t = tempfile::tempdir().unwrap();
    let run = build(t.path(), &["--offline"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "--offline: this build needs 1 download(s) that are not in the artifact cache: node 20.11.1 ({file}) from https://nodejs.org/dist/v20.11.1/{file}"
        )),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("STEP 1/1"),
        "no step may start: {}",
        run.stderr
    );
}

//! Apt for real: a Debian minbase base made by mmdebstrap, openssh-server
//! installed by a step, in the rootful mode and the subordinate-ids mode;
//! podman then checks the result with `sshd -t`.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use support::*;

const STEP: &str = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server";

fn recipe(dir: &std::path::Path) -> PathBuf {
    debian_base_in(dir);
    let r = write_recipe(
        dir,
        "apt.toml",
        &format!("[image]\nbase = \"rootfs:minbase.tar\"\n[[steps]]\nrun = \"{STEP}\"\n"),
    );
    fs::set_permissions(&r, fs::Permissions::from_mode(0o644)).unwrap();
    r
}

fn sshd_check(store: &std::path::Path, tag: &str) {
    let pod = store.parent().unwrap().join("podman");
    let out = podman_run(
        &pod,
        store,
        tag,
        &[
            "/bin/sh",
            "-c",
            "ssh-keygen -A >/dev/null && mkdir -p /run/sshd && /usr/sbin/sshd -t && echo sshd-config-ok",
        ],
    );
    podman_cleanup(&pod);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sshd-config-ok"),
        "sshd -t failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn apt_installs_openssh_server_as_root() {
    require_root("root mode and podman");
    let t = world_tempdir();
    let r = recipe(t.path());
    let store = t.path().join("store");
    let run = boxwright(&[
        "build",
        "--store",
        store.to_str().unwrap(),
        "-t",
        "ssh",
        r.to_str().unwrap(),
    ])
    .ok();
    assert!(
        run.stderr.contains("Setting up openssh-server"),
        "{}",
        run.stderr
    );
    sshd_check(&store, "ssh:latest");
}

#[test]
fn apt_installs_openssh_server_with_subordinate_ids() {
    require_user("bwsub");
    let t = world_tempdir();
    let r = recipe(t.path());
    let exe = shared_binary(t.path());
    let work = t.path().join("work");
    fs::create_dir(&work).unwrap();
    sh(Command::new("chown").arg("bwsub").arg(&work));
    let store = work.join("store");
    let run = run_as(
        "bwsub",
        &work,
        &exe,
        &[
            "build",
            "--store",
            store.to_str().unwrap(),
            "-t",
            "ssh",
            r.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(
        run.stderr.contains("Setting up openssh-server"),
        "{}",
        run.stderr
    );
    sshd_check(&store, "ssh:latest");
}

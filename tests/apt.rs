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

/// Two builds of one store that run apt at the same time (different steps,
/// so no step lock makes one wait) both succeed: the package-manager cache
/// mounts are held by one step at a time, and the second says it waits.
/// Without that, the second apt fails with "Could not get lock
/// /var/lib/apt/lists/lock".
#[test]
fn concurrent_builds_of_one_store_share_the_apt_caches_one_step_at_a_time() {
    require_root("root mode");
    let t = world_tempdir();
    debian_base_in(t.path());
    let store = t.path().join("store");
    let recipes: Vec<PathBuf> = ["a", "b"]
        .iter()
        .map(|n| {
            write_recipe(
                t.path(),
                &format!("{n}.toml"),
                &format!(
                    "[image]\nbase = \"rootfs:minbase.tar\"\n[[steps]]\n\
                     run = \"echo {n} && apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                     apt-get install -y -qq --no-install-recommends hello >/dev/null && hello && echo ok-{n}\"\n"
                ),
            )
        })
        .collect();
    // The base unpacked once first, so the two steps start together.
    let warm = write_recipe(
        t.path(),
        "warm.toml",
        "[image]\nbase = \"rootfs:minbase.tar\"\n[[steps]]\nrun = \"true\"\n",
    );
    boxwright(&[
        "build",
        "--store",
        store.to_str().unwrap(),
        warm.to_str().unwrap(),
    ])
    .ok();
    let children: Vec<_> = recipes
        .iter()
        .map(|r| {
            Command::new(bin())
                .args(["--store", store.to_str().unwrap(), "--progress", "plain"])
                .arg("build")
                .arg(r)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut waited = 0;
    for (o, n) in outs.iter().zip(["a", "b"]) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "build {n}:\n{err}");
        assert!(err.contains("Hello, world!"), "{err}");
        assert!(err.contains(&format!("ok-{n}")), "{err}");
        assert!(!err.contains("Could not get lock"), "{err}");
        if err.contains("is in use by another step; waiting for it") {
            waited += 1;
        }
    }
    assert_eq!(
        waited, 1,
        "exactly one build waited for the other's apt caches"
    );
}

/// Stages on a Debian base (so every step has the apt caches mounted) that
/// do not run apt are not made to wait for each other: each waits for the
/// other's mark in a shared cache mount, which works only when they run at
/// once.
#[test]
fn stages_that_do_not_run_apt_run_at_once_on_a_debian_base() {
    let t = world_tempdir();
    debian_base_in(t.path());
    let wait_for = |mine: &str, theirs: &str| {
        format!(
            "RUN --mount=type=cache,target=/rv,id=rv touch /rv/{mine} && i=0 && \
             until [ -e /rv/{theirs} ]; do i=$((i+1)); [ $i -lt 150 ] || exit 7; sleep 0.1; done"
        )
    };
    let text = format!(
        "FROM rootfs:minbase.tar AS a\n{}\n\nFROM rootfs:minbase.tar AS b\n{}\n\n\
         FROM rootfs:minbase.tar\nCOPY --from=a /etc/hostname /a\nCOPY --from=b /etc/hostname /b\n",
        wait_for("a", "b"),
        wait_for("b", "a")
    );
    fs::write(t.path().join("Containerfile"), text).unwrap();
    let store = t.path().join("store");
    let run = boxwright(&[
        "--store",
        store.to_str().unwrap(),
        "--progress",
        "plain",
        "build",
        "--jobs",
        "2",
        t.path().to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("waiting for it"), "{}", run.stderr);
}

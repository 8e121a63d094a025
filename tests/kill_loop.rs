//! Crash consistency: builds and `gc` killed with SIGKILL at random points,
//! 50 times over one store. After every kill `fsck` finds nothing wrong
//! (no blob is visible under a digest it does not have, no tag points at a
//! missing image, no cache record at a missing layer), and a build run to
//! the end gives the reference digest of a clean store.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const KILLS: usize = 50;

fn containerfile(ctx: &Path) {
    fs::create_dir_all(ctx).unwrap();
    fs::write(ctx.join("data.txt"), "payload\n".repeat(50_000)).unwrap();
    fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM rootfs:{}\n\
             RUN head -c 3000000 /dev/zero | tr '\\0' a > /one && sleep 0.05\n\
             COPY data.txt /data.txt\n\
             RUN head -c 3000000 /dev/zero | tr '\\0' b > /two\n\
             ENV DONE=1\n",
            busybox_tar().display()
        ),
    )
    .unwrap();
}

fn digest(store: &Path) -> String {
    let out = boxwright(&["--store", &store.display().to_string(), "inspect", "k"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["digest"].as_str().unwrap().to_string()
}

/// `fsck` finds nothing but, with `leftovers_ok`, the temporary files of
/// writes the kill interrupted (never visible under a digest; the next
/// build or `gc` removes them).
fn fsck(store: &Path, after: &str, leftovers_ok: bool) {
    let run = boxwright(&["--store", &store.display().to_string(), "fsck"]);
    if run.code == 0 {
        return;
    }
    let text = format!("{}{}", run.stdout, run.stderr);
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("checked "))
        .filter(|l| !(leftovers_ok && l.starts_with("leftover of an interrupted write")))
        .collect();
    assert!(
        leftovers_ok && problems.is_empty(),
        "fsck after {after}:\n{text}"
    );
}

#[test]
fn fifty_kills_leave_a_consistent_store_and_the_same_image() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    containerfile(&ctx);
    let c = ctx.display().to_string();
    // The reference: a clean store, built once to the end.
    let clean = t.path().join("clean");
    boxwright(&[
        "--store",
        &clean.display().to_string(),
        "build",
        "-q",
        "-t",
        "k",
        &c,
    ])
    .ok();
    let want = digest(&clean);

    let store = t.path().join("store");
    let s = store.display().to_string();
    // Kills land anywhere in a build: delays up to 80% of the fastest of
    // three (one slow run, on a busy machine, must not make most kills
    // land after the end).
    let fastest = |args: &[&str]| {
        (0..3)
            .map(|_| {
                let started = std::time::Instant::now();
                boxwright(args).ok();
                started.elapsed().as_millis() as u64
            })
            .min()
            .unwrap()
            * 4
            / 5
    };
    let build_ms = fastest(&["--store", &s, "build", "-q", "--no-cache", "-t", "k", &c]).max(20);
    let gc_ms = fastest(&["--store", &s, "gc"]).max(5);
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut killed_running = 0;
    for i in 0..KILLS {
        // Every fifth round kills a `gc` instead (after a build to collect from).
        let gc = i % 5 == 4;
        let mut cmd = Command::new(bin());
        cmd.args(["--store", &s]);
        if gc {
            cmd.args(["gc"]);
        } else {
            cmd.args(["build", "-q", "--no-cache", "-t", "k", &c]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let within = if gc { gc_ms } else { build_ms };
        std::thread::sleep(Duration::from_millis(rng.u64(0..within)));
        if child.try_wait().unwrap().is_none() {
            killed_running += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        fsck(
            &store,
            &format!("kill {} ({})", i + 1, if gc { "gc" } else { "build" }),
            true,
        );
    }
    eprintln!("{killed_running} of {KILLS} kills hit a running build or gc");
    assert!(
        killed_running >= KILLS / 2,
        "only {killed_running} of {KILLS} kills hit a running process: the delays are too long"
    );
    boxwright(&["--store", &s, "build", "-q", "-t", "k", &c]).ok();
    assert_eq!(
        digest(&store),
        want,
        "the store gives another image after the kills"
    );
    // The final build removed what interrupted runs left: nothing to report.
    fsck(&store, "the final build", false);
}

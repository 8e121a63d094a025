//! Build logs for real: every build writes its events to the store,
//! `boxwright logs` prints them (and tails a build running in another
//! process), `boxwright builds` lists builds with their status.

mod progress_support;
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use progress_support::*;
use serde_json::Value;
use support::*;

fn recipe(dir: &Path, name: &str, steps: &[&str]) -> std::path::PathBuf {
    let mut text = busybox_base();
    for s in steps {
        text.push_str(&format!("\n[[steps]]\nrun = {s:?}\n"));
    }
    write_recipe(dir, name, &text)
}

fn store_arg(store: &Path) -> &str {
    store.to_str().unwrap()
}

/// `boxwright builds --json` as JSON values, newest first.
fn builds_json(store: &Path) -> Vec<Value> {
    let run = boxwright(&["builds", "--store", store_arg(store), "--json"]).ok();
    json_lines(&run.stdout)
}

fn build_row<'a>(builds: &'a [Value], id: &str) -> &'a Value {
    builds
        .iter()
        .find(|b| b["id"] == id)
        .unwrap_or_else(|| panic!("build {id} is not listed: {builds:?}"))
}

/// Starts a plain build in its own process group and returns it once it
/// has announced its id on stderr (read by a thread that keeps the rest).
fn spawn_build(store: &Path, recipe: &Path) -> (Child, String, std::thread::JoinHandle<String>) {
    let mut child = Command::new(bin())
        .args(["--store", store_arg(store), "--progress", "plain", "build"])
        .arg(recipe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start boxwright build");
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let id = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                if let Some(id) = build_id_in(&line) {
                    break id;
                }
            }
            Err(e) => panic!("the build never printed its id: {e}"),
        }
    };
    (child, id, reader)
}

fn wait_until(timeout: Duration, what: &str, mut pred: impl FnMut() -> bool) {
    let start = Instant::now();
    while !pred() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn logs_and_builds_show_finished_and_failed_builds() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let ok = recipe(t.path(), "ok.toml", &["echo hello from the log"]);
    let bad = recipe(t.path(), "bad.toml", &["echo doomed; exit 3"]);

    let good = boxwright(&[
        "build",
        "--store",
        store_arg(&store),
        "--progress",
        "plain",
        "-t",
        "logged",
        ok.to_str().unwrap(),
    ])
    .ok();
    let good_id = build_id_in(&good.stderr).expect("the build id is printed first");
    assert!(
        good.stderr.lines().next().unwrap().contains(&good_id),
        "the id comes first: {}",
        good.stderr
    );
    let digest = good.stdout.trim().to_string();
    let failed = boxwright(&[
        "build",
        "--store",
        store_arg(&store),
        "--progress",
        "plain",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(failed.code, 1);
    let bad_id = build_id_in(&failed.stderr).unwrap();

    // The log file is in the store's state dir, one event per line, valid.
    let file = t.path().join(format!("store.state/builds/{good_id}.jsonl"));
    let text = std::fs::read_to_string(&file).expect("the build log exists");
    validate_lines(&text.lines().collect::<Vec<_>>());
    let events = json_lines(&text);
    assert_eq!(events[0]["event"], "build_started");
    assert_eq!(events[0]["build_id"], good_id.as_str());
    assert_eq!(events.last().unwrap()["digest"], digest.as_str());

    // `logs ID` renders it as the plain display did (same lines, same order).
    let logs = boxwright(&["logs", "--store", store_arg(&store), &good_id]).ok();
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.get(11..).unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(strip(&logs.stdout), strip(&good.stderr));
    assert!(logs.stdout.contains("  1| hello from the log\n"));
    // --json gives the raw lines; a unique prefix finds the build.
    let raw = boxwright(&[
        "logs",
        "--store",
        store_arg(&store),
        "--json",
        &good_id[..6],
    ])
    .ok();
    assert_eq!(raw.stdout, text);
    // Without an id: the latest build, the failed one, ending with its reason.
    let latest = boxwright(&["logs", "--store", store_arg(&store)]).ok();
    assert!(
        latest.stdout.lines().last().unwrap().ends_with(
            "error: step 1 failed: `RUN /bin/sh -c echo doomed; exit 3` exited with code 3"
        ),
        "{}",
        latest.stdout
    );
    let missing = boxwright(&["logs", "--store", store_arg(&store), "ffffffffffff"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no build 'ffffffffffff'"),
        "{}",
        missing.stderr
    );

    // `builds`: both, newest first, with status, digest and recipe.
    let rows = builds_json(&store);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], bad_id.as_str());
    let g = build_row(&rows, &good_id);
    assert_eq!(g["status"], "succeeded");
    assert_eq!(g["digest"], digest.as_str());
    assert_eq!(g["tag"], "logged:latest");
    assert_eq!(g["recipe"], ok.to_str().unwrap());
    assert!(g["duration_ms"].as_u64().is_some());
    let b = build_row(&rows, &bad_id);
    assert_eq!(b["status"], "failed");
    assert!(b["digest"].is_null());
    let table = boxwright(&["builds", "--store", store_arg(&store)]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("BUILD ID"));
    assert!(
        lines[1].starts_with(&format!("{bad_id}  failed")),
        "{}",
        table.stdout
    );
    assert!(
        lines[2].starts_with(&format!("{good_id}  succeeded")),
        "{}",
        table.stdout
    );
    assert!(lines[2].contains(&digest[..19]), "{}", table.stdout);
}

#[test]
fn follow_tails_a_build_running_in_another_process_until_it_ends() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let r = recipe(
        t.path(),
        "slow.toml",
        &["echo before the pause; sleep 4; echo after the pause"],
    );
    let (mut build, id, stderr) = spawn_build(&store, &r);

    let mut follow = Command::new(bin())
        .args(["logs", "--store", store_arg(&store), "--follow", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start boxwright logs --follow");
    // While it runs, `builds` says so.
    wait_until(Duration::from_secs(60), "the step to start", || {
        std::fs::read_to_string(t.path().join(format!("store.state/builds/{id}.jsonl")))
            .map(|s| s.contains("before the pause"))
            .unwrap_or(false)
    });
    assert!(
        build.try_wait().unwrap().is_none(),
        "the build is still running"
    );
    assert_eq!(build_row(&builds_json(&store), &id)["status"], "running");
    assert!(
        follow.try_wait().unwrap().is_none(),
        "--follow waits for the build"
    );

    let status = build.wait().unwrap();
    assert!(
        status.success(),
        "build failed:\n{}",
        stderr.join().unwrap()
    );
    let mut waited = 0;
    let follow_status = loop {
        if let Some(s) = follow.try_wait().unwrap() {
            break s;
        }
        assert!(waited < 100, "--follow did not stop when the build ended");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    };
    let out = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        follow_status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = text.find("1| before the pause").expect("first line");
    let after = text.find("1| after the pause").expect("second line");
    assert!(before < after);
    assert!(
        text.lines().last().unwrap().contains("] built sha256:"),
        "ends with the result:\n{text}"
    );
    assert_eq!(build_row(&builds_json(&store), &id)["status"], "succeeded");
}

#[test]
fn a_killed_build_is_interrupted_not_running_forever() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let r = recipe(t.path(), "hang.toml", &["echo started; sleep 60"]);
    let (mut build, id, stderr) = spawn_build(&store, &r);
    let log = t.path().join(format!("store.state/builds/{id}.jsonl"));
    wait_until(Duration::from_secs(60), "the step to start", || {
        std::fs::read_to_string(&log)
            .map(|s| s.contains("\"line\":\"started\""))
            .unwrap_or(false)
    });
    let mut follow = Command::new(bin())
        .args(["logs", "--store", store_arg(&store), "-f", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(build_row(&builds_json(&store), &id)["status"], "running");

    // Kill the build and its workers (its process group, which we made).
    let pgid = nix::unistd::Pid::from_raw(-(build.id() as i32));
    nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = build.wait();
    let _ = stderr.join();

    let row = build_row(&builds_json(&store), &id).clone();
    assert_eq!(row["status"], "interrupted", "{row}");
    // --follow notices the writer is gone and stops.
    let mut waited = 0;
    while follow.try_wait().unwrap().is_none() {
        assert!(waited < 100, "--follow did not stop after the build died");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    let out = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1| started"), "{text}");
    assert!(text.trim_end().ends_with("interrupted)"), "{text}");
}

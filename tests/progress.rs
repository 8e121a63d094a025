//! The progress displays end to end: the JSON Lines output checked against
//! the documented schema by an independent validator (python3-jsonschema),
//! a failing step 3 reported by every display, and the tty display on a
//! real pseudo-terminal (tmux).

mod progress_support;
mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxwright::digest::Digest;
use boxwright::progress::{Clock, Event, JsonSink, Phase, Sink};
use progress_support::*;
use serde_json::Value;
use support::*;

fn two_steps(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        "{}\n[[steps]]\nrun = \"echo first step says hi\"\n\n[[steps]]\nrun = \"echo second > /second\"\n",
        busybox_base()
    );
    write_recipe(dir, "ok.toml", &text)
}

/// Step 3 prints two lines, then exits 7.
fn failing_step3(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"{}
[[steps]]
run = "echo one > /one"

[[steps]]
run = "echo two > /two"

[[steps]]
run = "echo about to fail; echo really; exit 7"
"#,
        busybox_base()
    );
    write_recipe(dir, "fail.toml", &text)
}

fn build(store: &Path, mode: &str, recipe: &Path) -> Run {
    boxwright(&[
        "build",
        "--store",
        store.to_str().unwrap(),
        "--progress",
        mode,
        "-t",
        "progress-test",
        recipe.to_str().unwrap(),
    ])
}

fn event<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

#[test]
fn json_output_of_fresh_cached_and_failed_builds_matches_the_schema() {
    require_jsonschema();
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");

    // A fresh build: stdout holds only events, the last one the digest.
    let run = build(&store, "json", &two_steps(t.path())).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    validate_lines(&lines);
    let events = json_lines(&run.stdout);
    assert_eq!(events[0]["event"], "build_started", "{}", run.stdout);
    assert_eq!(phases(&events), ["creating", "building", "done"]);
    assert_eq!(event(&events, "step_started").len(), 2);
    assert_eq!(event(&events, "step_finished").len(), 2);
    let logs = event(&events, "log");
    assert!(
        logs.iter()
            .any(|l| l["step"] == 1 && l["line"] == "first step says hi"),
        "the step's output travels in log events: {}",
        run.stdout
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "finished");
    assert_eq!(last["name"], "progress-test:latest");
    // The digest is the one the store tagged (read from index.json, not from boxwright).
    let index: Value =
        serde_json::from_slice(&std::fs::read(store.join("index.json")).unwrap()).unwrap();
    let tagged = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "progress-test:latest")
        .expect("the image is tagged");
    assert_eq!(last["digest"], tagged["digest"]);
    assert!(
        !run.stderr.contains("\"event\""),
        "no events on stderr: {}",
        run.stderr
    );

    // The same recipe again: every step from the cache, same digest.
    let cached = build(&store, "json", &two_steps(t.path())).ok();
    validate_lines(&cached.stdout.lines().collect::<Vec<_>>());
    let cev = json_lines(&cached.stdout);
    assert_eq!(phases(&cev), ["creating", "building", "done"]);
    assert_eq!(event(&cev, "step_cached").len(), 2);
    assert!(event(&cev, "step_started").is_empty());
    let clast = cev.last().unwrap();
    assert_eq!(clast["event"], "finished");
    assert_eq!(clast["cached_steps"], 2);
    assert_eq!(clast["digest"], last["digest"]);
    assert_ne!(
        cev[0]["build_id"], events[0]["build_id"],
        "each build has its own id"
    );

    // A failing build: non-zero exit, still only schema-valid events on stdout.
    let failed = build(&store, "json", &failing_step3(t.path()));
    assert_eq!(failed.code, 1, "stderr: {}", failed.stderr);
    validate_lines(&failed.stdout.lines().collect::<Vec<_>>());
    let fev = json_lines(&failed.stdout);
    assert_eq!(phases(&fev), ["creating", "building"]);
    assert_eq!(fev.last().unwrap()["event"], "failed");
}

/// One event of every kind, through the library's JSON sink: the schema
/// documents them all (the match below stops compiling when a kind is added).
#[test]
fn every_event_kind_is_in_the_schema() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let d = Digest::of(b"blob");
    let all = vec![
        Event::BuildStarted {
            build_id: "0123456789ab".into(),
            recipe: "r.toml".into(),
            tag: None,
            log: Some("/s.state/builds/0123456789ab.jsonl".into()),
        },
        Event::Phase {
            phase: Phase::Pushing,
        },
        Event::Info {
            message: "i".into(),
        },
        Event::Warning {
            message: "w".into(),
        },
        Event::StepStarted {
            step: 1,
            total: 1,
            description: "RUN x".into(),
        },
        Event::StepCached {
            step: 1,
            total: 1,
            description: "RUN x".into(),
            layer: d.clone(),
        },
        Event::Log {
            step: 1,
            line: "\u{1b}[31mred\r\t".into(),
        },
        Event::StepFinished {
            step: 1,
            total: 1,
            duration_ms: 3,
            layer: d.clone(),
            size: 10,
        },
        Event::TransferStarted {
            digest: d.clone(),
            size: 10,
        },
        Event::TransferProgress {
            digest: d.clone(),
            done: 5,
            size: 10,
        },
        Event::TransferSkipped {
            digest: d.clone(),
            size: 10,
            reason: "exists".into(),
        },
        Event::TransferRetrying {
            digest: d.clone(),
            attempt: 1,
            resume_at: 5,
            reason: "connection reset".into(),
        },
        Event::TransferDone {
            digest: d.clone(),
            size: 10,
        },
        Event::Finished {
            digest: d.clone(),
            name: Some("x:latest".into()),
            cached_steps: 0,
            total_steps: 1,
        },
        Event::Failed {
            step: None,
            command: None,
            exit_code: None,
            message: "m".into(),
            last_lines: vec![],
        },
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for e in &all {
        kinds.insert(match e {
            Event::BuildStarted { .. } => "build_started",
            Event::Phase { .. } => "phase",
            Event::Info { .. } => "info",
            Event::Warning { .. } => "warning",
            Event::StepStarted { .. } => "step_started",
            Event::StepCached { .. } => "step_cached",
            Event::Log { .. } => "log",
            Event::StepFinished { .. } => "step_finished",
            Event::TransferStarted { .. } => "transfer_started",
            Event::TransferProgress { .. } => "transfer_progress",
            Event::TransferSkipped { .. } => "transfer_skipped",
            Event::TransferRetrying { .. } => "transfer_retrying",
            Event::TransferDone { .. } => "transfer_done",
            Event::Finished { .. } => "finished",
            Event::Failed { .. } => "failed",
        });
    }
    assert_eq!(kinds.len(), 15, "one sample of each kind");
    let buf = Buf::default();
    let sink = JsonSink::new(Box::new(buf.clone()), Clock::default());
    for e in &all {
        sink.emit(e);
    }
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), all.len());
    validate_lines(&lines);
    // The schema names exactly these kinds.
    let schema: Value = serde_json::from_slice(
        &std::fs::read(repo().join("docs/progress-events.schema.json")).unwrap(),
    )
    .unwrap();
    let documented: std::collections::BTreeSet<&str> = schema["properties"]["event"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(documented, kinds);
}

#[test]
fn a_failing_step_3_is_named_last_in_plain_and_json() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let recipe = failing_step3(t.path());
    let expected = "error: step 3 failed: `RUN /bin/sh -c echo about to fail; echo really; exit 7` exited with code 7";

    let plain = build(&store, "plain", &recipe);
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    assert!(plain.stdout.is_empty(), "no digest for a failed build");
    let last = plain.stderr.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(expected),
        "last plain line: {last:?}\n{}",
        plain.stderr
    );
    assert!(plain.stderr.contains("  | about to fail\n"));
    assert!(
        plain
            .stderr
            .contains("STEP 3/3: RUN /bin/sh -c echo about to fail")
    );

    let json = build(&store, "json", &recipe);
    assert_eq!(json.code, 1, "{}", json.stderr);
    let events = json_lines(&json.stdout);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "failed");
    assert_eq!(last["step"], 3);
    assert_eq!(last["exit_code"], 7);
    assert_eq!(
        last["command"],
        "RUN /bin/sh -c echo about to fail; echo really; exit 7"
    );
    assert_eq!(
        last["last_lines"],
        serde_json::json!(["about to fail", "really"])
    );
    assert!(last["message"].as_str().unwrap().contains("step 3 failed"));
}

#[test]
fn auto_and_tty_fall_back_to_plain_lines_when_stderr_is_not_a_terminal() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let recipe = two_steps(t.path());
    for mode in ["auto", "tty"] {
        let run = build(&store, mode, &recipe).ok();
        assert!(
            !run.stderr.contains('\u{1b}'),
            "no escape codes: {:?}",
            run.stderr
        );
        assert!(
            run.stderr.contains("] ==> Creating\n") && run.stderr.contains("] ==> Done\n"),
            "{mode}: plain phase lines expected:\n{}",
            run.stderr
        );
        for line in run.stderr.lines() {
            // `[   0.12s] text`: every line carries the elapsed time.
            let stamp = line.get(..11).unwrap_or_default();
            assert!(
                stamp.starts_with('[')
                    && stamp.ends_with("s] ")
                    && stamp[1..8].trim().parse::<f64>().is_ok(),
                "{mode}: not a plain line: {line:?}"
            );
        }
        assert_eq!(run.stdout.lines().count(), 1, "the digest alone on stdout");
    }
}

/// Rows of a tmux screen, trailing blanks dropped.
fn rows(screen: &str) -> Vec<&str> {
    let mut r: Vec<&str> = screen.lines().map(str::trim_end).collect();
    while r.last().is_some_and(|l| l.is_empty()) {
        r.pop();
    }
    r
}

#[test]
fn tty_display_stays_clean_on_a_terminal_with_hostile_step_output() {
    let t = world_tempdir();
    let store = t.path().join("store");
    // Step 2 prints colours, a carriage-return progress line, a tab, a very
    // long line, then waits so the live display can be looked at.
    let text = format!(
        r#"{}
[[steps]]
run = "echo plain line"

[[steps]]
run = '''printf '\033[31mred text\033[0m\n'; printf 'downloading 3/9\rdownloading 9/9\n'; printf 'a\tb\n'; printf '%0500d\n' 0; echo waiting; sleep 4'''

[[steps]]
run = "echo last step"
"#,
        busybox_base()
    );
    let recipe = write_recipe(t.path(), "tty.toml", &text);
    let out = t.path().join("stdout");
    let tmux = Tmux::start(&shell_line(
        &bin(),
        &[
            "--store",
            store.to_str().unwrap(),
            "--progress",
            "auto",
            "build",
            recipe.to_str().unwrap(),
        ],
        &out,
    ));

    // While step 2 sleeps: its last lines are shown, cleaned and cut to the width.
    let live = tmux.wait_for(Duration::from_secs(120), "step 2's output", |s| {
        s.contains("waiting") || s.contains("[exit")
    });
    let live_rows = rows(&live);
    assert!(
        live_rows.iter().any(|r| r.contains("STEP 2/3")),
        "the phase line names the running step:\n{live}"
    );
    assert!(live_rows.iter().any(|r| r.ends_with("red text")), "{live}");
    assert!(
        live_rows.iter().any(|r| r.ends_with("downloading 9/9")),
        "{live}"
    );
    let output_rows: Vec<&&str> = live_rows
        .iter()
        .filter(|r| r.trim_start().starts_with('│'))
        .collect();
    assert_eq!(output_rows.len(), 5, "the last 5 lines of output:\n{live}");
    assert!(
        !output_rows.iter().any(|r| r.contains("downloading 3/9")),
        "CR overwrites:\n{live}"
    );
    assert!(
        !output_rows
            .iter()
            .any(|r| r.contains("[31m") || r.contains("[0m")),
        "{live}"
    );
    assert!(live_rows.iter().any(|r| r.ends_with("a       b")), "{live}");
    let long: Vec<&&str> = live_rows
        .iter()
        .filter(|r| r.contains("0000000000"))
        .collect();
    assert_eq!(
        long.len(),
        1,
        "the long line is one row, not wrapped:\n{live}"
    );
    assert!(
        long[0].ends_with('…'),
        "cut with an ellipsis: {:?}",
        long[0]
    );
    assert!(
        !live_rows
            .iter()
            .any(|r| !r.is_empty() && r.chars().all(|c| c == '0')),
        "no wrapped remainder:\n{live}"
    );

    // At the end: each finished thing once, no live lines left behind.
    let end = tmux.wait_for(Duration::from_secs(120), "the build to end", |s| {
        s.contains("[exit")
    });
    let end_rows = rows(&end);
    assert_eq!(end_rows.last().copied(), Some("[exit 0]"), "{end}");
    for needle in [
        "STEP 1/3",
        "STEP 2/3",
        "STEP 3/3",
        "✓ Creating",
        "✓ Building",
        "✓ Done",
    ] {
        let n = end_rows.iter().filter(|r| r.contains(needle)).count();
        assert_eq!(n, 1, "{needle:?} appears {n} times:\n{end}");
    }
    assert!(
        !end_rows.iter().any(|r| r.trim_start().starts_with('│')),
        "step output lines are taken down:\n{end}"
    );
    assert!(
        !end_rows
            .iter()
            .any(|r| r.starts_with('[') && r.contains("s] ")),
        "auto on a terminal is the tty display, not plain lines:\n{end}"
    );
    let digest = std::fs::read_to_string(&out).unwrap();
    assert!(digest.trim().starts_with("sha256:"), "stdout: {digest:?}");
}

#[test]
fn tty_display_names_a_failed_step_3_last() {
    let t = world_tempdir();
    let store = t.path().join("store");
    let recipe = failing_step3(t.path());
    let out = t.path().join("stdout");
    let tmux = Tmux::start(&shell_line(
        &bin(),
        &[
            "--store",
            store.to_str().unwrap(),
            "--progress",
            "tty",
            "build",
            recipe.to_str().unwrap(),
        ],
        &out,
    ));
    let end = tmux.wait_for(Duration::from_secs(120), "the build to end", |s| {
        s.contains("[exit")
    });
    let r = rows(&end);
    assert_eq!(r.last().copied(), Some("[exit 1]"), "{end}");
    // The error line may wrap on the 120-column screen: join the rows after "really".
    let tail_start = r
        .iter()
        .rposition(|l| l.trim() == "| really")
        .unwrap_or_else(|| panic!("the step's last lines are shown:\n{end}"));
    let reason: String = r[tail_start + 1..r.len() - 1].concat();
    assert_eq!(
        reason,
        "error: step 3 failed: `RUN /bin/sh -c echo about to fail; echo really; exit 7` exited with code 7",
        "\n{end}"
    );
    assert!(r.iter().any(|l| l.contains("✗ Building")), "{end}");
    assert!(!end.contains("\u{1b}"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "", "no digest");
}

//! Helpers for the progress and build-log tests: schema validation of JSON
//! event lines (python3-jsonschema), event parsing, and a private tmux
//! server to watch the tty display on a real pseudo-terminal.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{repo, require_tool};

/// Fails unless python3 can import jsonschema, saying how to install it.
pub fn require_jsonschema() {
    require_tool("python3", "python3");
    let ok = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3's jsonschema module is missing: install it with `apt-get install python3-jsonschema` (or run scripts/install-deps.sh)"
    );
}

const VALIDATE: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
bad = 0
for n, line in enumerate(open(sys.argv[2]), 1):
    errors = list(v.iter_errors(json.loads(line)))
    for e in errors:
        print(f"line {n}: {e.message}: {line.strip()}")
    bad += bool(errors)
sys.exit(1 if bad else 0)
"#;

/// Validates each line against docs/progress-events.schema.json with an
/// independent validator; panics with the errors.
pub fn validate_lines(lines: &[&str]) {
    require_jsonschema();
    assert!(!lines.is_empty(), "no event lines to validate");
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("events.jsonl");
    fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = Command::new("python3")
        .args(["-c", VALIDATE])
        .arg(repo().join("docs/progress-events.schema.json"))
        .arg(&file)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "events do not match the schema:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every line of `stdout` parsed as JSON (panics on a line that is not).
pub fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect()
}

/// The `phase` events' phases, in order.
pub fn phases(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "phase")
        .map(|e| e["phase"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The build id announced by a plain display (`build ID: …`).
pub fn build_id_in(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        let rest = l.split("] build ").nth(1)?;
        let id = rest.split(':').next()?;
        (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
    })
}

/// A private tmux server with one 120x40 window running a shell command;
/// the server is killed when this is dropped, and its socket goes with
/// the temporary directory that holds it.
pub struct Tmux {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    pub fn start(command: &str) -> Tmux {
        require_tool("tmux", "tmux");
        let dir = tempfile::tempdir().unwrap();
        let t = Tmux {
            socket: dir.path().join("tmux.sock"),
            _dir: dir,
        };
        let st = t
            .cmd()
            .args(["new-session", "-d", "-x", "120", "-y", "40", "-s", "t"])
            .arg(command)
            .status()
            .expect("run tmux");
        assert!(st.success(), "tmux new-session failed");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .env_remove("TMUX");
        c
    }

    /// The visible screen, one row per line (wrapped lines stay split).
    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen until `pred` holds; panics with the last screen after `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// A shell command line that runs boxwright with `args` in a tmux window,
/// stdout to `stdout_file`, then prints `[exit N]` and waits to be captured.
pub fn shell_line(bin: &Path, args: &[&str], stdout_file: &Path) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = quote(&bin.display().to_string());
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    format!(
        "{line} > {}; echo \"[exit $?]\"; sleep 600",
        quote(&stdout_file.display().to_string())
    )
}

//! A running `boxwright serve` for tests, and curl as its client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `boxwright serve` on a free loopback port, killed when dropped.
pub struct Server {
    pub url: String,
    child: Child,
}

impl Server {
    /// Starts serve on `store` with extra arguments; waits until it listens.
    pub fn start(bin: &Path, store: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(bin)
            .arg("--store")
            .arg(store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start boxwright serve");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("serve ended before listening")
                .expect("read serve's stderr");
            if let Some(rest) = line.split("is at ").nth(1) {
                break rest.trim().trim_end_matches('/').to_string();
            }
        };
        // Keep draining stderr so serve never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { url, child }
    }

    /// `curl` of `path`: (HTTP status, body). `args` are extra curl options.
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        args: &[&str],
    ) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-S", "-X", method, "-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("{}{path}", self.url));
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let out = cmd.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (code, body) = self.curl("GET", path, None, &[]);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let (code, text) = self.curl("POST", path, Some(&body.to_string()), &[]);
        (
            code,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// The SSE stream of a build, read to its end: (id, data) pairs.
    pub fn events(
        &self,
        id: &str,
        last_event_id: Option<usize>,
    ) -> Vec<(usize, serde_json::Value)> {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-N", "--max-time", "600"]);
        if let Some(n) = last_event_id {
            cmd.args(["-H", &format!("Last-Event-ID: {n}")]);
        }
        let out = cmd
            .arg(format!("{}/api/builds/{id}/events", self.url))
            .output()
            .expect("curl events");
        parse_sse(&String::from_utf8_lossy(&out.stdout))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The events of an SSE body: `id:` and `data:` lines, blank-line separated.
pub fn parse_sse(text: &str) -> Vec<(usize, serde_json::Value)> {
    let mut out = Vec::new();
    let mut id = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("data: ")
            && let (Some(i), Ok(j)) = (id, serde_json::from_str(v))
        {
            out.push((i, j));
        }
    }
    out
}

/// The phases of a build's events, in order.
pub fn phases(events: &[(usize, serde_json::Value)]) -> Vec<String> {
    events
        .iter()
        .filter(|(_, e)| e["event"] == "phase")
        .map(|(_, e)| e["phase"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A path in the system's temp dir for a token file.
pub fn token_file(dir: &Path, token: &str) -> PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, token).unwrap();
    p
}

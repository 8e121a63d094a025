//! A running `boxwright serve` for tests, and curl as its client.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `boxwright serve` on a free loopback port, killed when dropped.
pub struct Server {
    pub url: String,
    child: Child,
    /// The bearer token serve was given (`--token-file`); curl sends it.
    token: Option<String>,
    /// Whether serve runs in a network namespace of its own.
    own_network: bool,
}

/// How [`Server::start_with`] starts serve, beyond the store and arguments.
#[derive(Default)]
pub struct Options<'a> {
    /// Start with `--token-file` (the token written beside the store); the
    /// helpers below send it as `Authorization: Bearer`.
    pub token: Option<&'a str>,
    /// A home of its own: HOME and the XDG directories under this folder,
    /// and no BOXWRIGHT_* variables, so nothing serve or its child builds
    /// do touches the user's config.
    pub home: Option<&'a Path>,
    /// A network namespace of its own with loopback only (needs root):
    /// nothing serve or its children do reaches past this machine. Clients
    /// run in it through [`Server::command`].
    pub own_network: bool,
}

impl Server {
    /// Starts serve on `store` with extra arguments; waits until it listens.
    pub fn start(bin: &Path, store: &Path, extra: &[&str]) -> Server {
        Server::start_with(bin, store, extra, Options::default())
    }

    /// [`Server::start`] with [`Options`].
    pub fn start_with(bin: &Path, store: &Path, extra: &[&str], opts: Options) -> Server {
        let mut cmd = if opts.own_network {
            // unshare execs sh, which brings loopback up and execs serve:
            // the child's pid is serve's, and its namespace is serve's.
            let mut c = Command::new("unshare");
            c.args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec \"$@\"",
                "sh",
            ])
            .arg(bin);
            c
        } else {
            Command::new(bin)
        };
        cmd.arg("--store")
            .arg(store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra);
        if let Some(token) = opts.token {
            let mut file = store.as_os_str().to_owned();
            file.push(".token");
            std::fs::write(&file, token).expect("write the token file");
            cmd.arg("--token-file").arg(file);
        }
        if let Some(home) = opts.home {
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                if k.starts_with("BOXWRIGHT_") || k.starts_with("XDG_") {
                    cmd.env_remove(&*k);
                }
            }
            for (var, dir) in [
                ("HOME", "home"),
                ("XDG_CONFIG_HOME", "config"),
                ("XDG_CACHE_HOME", "cache"),
                ("XDG_DATA_HOME", "data"),
                ("XDG_STATE_HOME", "state"),
            ] {
                let d = home.join(dir);
                std::fs::create_dir_all(&d).expect("make the home dirs");
                cmd.env(var, d);
            }
        }
        let mut child = cmd
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
        Server {
            url,
            child,
            token: opts.token.map(String::from),
            own_network: opts.own_network,
        }
    }

    /// `program`, to run where serve can be reached: in serve's network
    /// namespace when it has one of its own.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        if self.own_network {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{}/ns/net", self.child.id()))
                .arg("--")
                .arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// The `Authorization` header serve wants, if it wants one.
    pub fn auth_header(&self) -> Option<String> {
        self.token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}"))
    }

    /// Whether serve is still running (it has not crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `curl` of `path`: (HTTP status, body). `args` are extra curl options.
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        args: &[&str],
    ) -> (u16, String) {
        let mut cmd = self.command("curl");
        cmd.args(["-s", "-S", "-X", method, "-w", "\n%{http_code}"]);
        if let Some(h) = self.auth_header() {
            cmd.args(["-H", &h]);
        }
        cmd.args(args).arg(format!("{}{path}", self.url));
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

    /// The SSE stream of a build read for at most `seconds`, then the
    /// connection dropped (a client that goes away mid-build).
    pub fn events_for(&self, id: &str, seconds: u32) -> Vec<(usize, serde_json::Value)> {
        let mut cmd = self.command("curl");
        cmd.args(["-s", "-N", "--max-time", &seconds.to_string()]);
        if let Some(h) = self.auth_header() {
            cmd.args(["-H", &h]);
        }
        let out = cmd
            .arg(format!("{}/api/builds/{id}/events", self.url))
            .output()
            .expect("curl events");
        parse_sse(&String::from_utf8_lossy(&out.stdout))
    }

    /// The SSE stream of a build, read to its end: (id, data) pairs.
    pub fn events(
        &self,
        id: &str,
        last_event_id: Option<usize>,
    ) -> Vec<(usize, serde_json::Value)> {
        let mut cmd = self.command("curl");
        cmd.args(["-s", "-N", "--max-time", "600"]);
        if let Some(h) = self.auth_header() {
            cmd.args(["-H", &h]);
        }
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

//! Crash consistency: `build --no-cache`, `push` (to a real registry),
//! `pull` (from it, into the store) and `gc`, in turn, killed with SIGKILL
//! at random points over one store, until 50 kills (`BOXWRIGHT_KILLS`) have
//! hit a running process. After every kill `fsck` finds nothing wrong (no
//! blob is visible under a digest it does not have, no tag points at a
//! missing image, no cache record at a missing layer); a killed push leaves
//! its tag either absent or on the complete image (never on a partial one);
//! a killed pull leaves its name either absent or on the whole image. Every
//! few kills, and at the end, a build, a push and a pull run to the end give
//! the reference digests of a clean store.
//!
//! `benches/kill_loop.sh` runs it with many more kills.

#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use regsupport::registry::TestRegistry;
use support::*;

/// Kills that must hit a running process, unless `BOXWRIGHT_KILLS` says otherwise.
const DEFAULT_KILLS: usize = 50;
/// Kill rounds per hit allowed: a round whose process had already ended
/// counts as an attempt, not a hit.
const ATTEMPTS_PER_KILL: usize = 4;
/// A build, a push and a pull are run to the end after every this many rounds.
const RERUN_EVERY: usize = 12;

fn kills() -> usize {
    match std::env::var("BOXWRIGHT_KILLS") {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| panic!("BOXWRIGHT_KILLS={v:?}: want a positive number of kills")),
        Err(_) => DEFAULT_KILLS,
    }
}

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

/// The image the pull rounds fetch: its own blobs (none shared with the
/// built image, and 2 MB that do not compress), so that every pull into a
/// store without it downloads, verifies and writes them.
fn pulled_containerfile(ctx: &Path) {
    fs::create_dir_all(ctx).unwrap();
    fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM rootfs:{}\n\
             RUN head -c 2000000 /dev/urandom > /random\n",
            busybox_tar().display()
        ),
    )
    .unwrap();
}

fn store_args<'a>(store: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec!["--store", store, "--tls-verify=false"];
    full.extend_from_slice(args);
    full
}

/// The digest of `name` in the store, `None` when the store has no such image.
fn stored_digest(store: &str, name: &str) -> Option<String> {
    let run = boxwright(&store_args(store, &["inspect", name]));
    if run.code != 0 {
        assert!(
            run.stderr.contains("no image named"),
            "inspect {name}: {}",
            run.stderr
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    Some(v["digest"].as_str().unwrap().to_string())
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

/// One plain HTTP/1.0 request to the registry: status and body. Raw, so
/// that what is checked is the registry's own answer, not a client's view.
fn http(port: u16, method: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the registry");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\
         Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the registry's answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, raw[split + 4..].to_vec())
}

/// A pushed tag either does not exist or names the complete image `want`:
/// its manifest has that digest, and the registry has every blob it lists.
fn tag_absent_or_complete(port: u16, repo: &str, want: &str, after: &str) -> bool {
    let (status, body) = http(port, "GET", &format!("/v2/{repo}/manifests/1"));
    if status == 404 {
        return false;
    }
    assert_eq!(status, 200, "{after}: GET the tag");
    let got = boxwright::digest::Digest::of(&body).to_string();
    assert_eq!(got, want, "{after}: the tag names another manifest");
    let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let blobs = std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap());
    for b in blobs {
        let d = b["digest"].as_str().unwrap();
        let (status, _) = http(port, "HEAD", &format!("/v2/{repo}/blobs/{d}"));
        assert_eq!(status, 200, "{after}: the tagged image lacks blob {d}");
    }
    true
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Build,
    Push,
    Pull,
    Gc,
}

const KINDS: [Kind; 4] = [Kind::Build, Kind::Push, Kind::Pull, Kind::Gc];

struct Bed {
    store: String,
    ctx: String,
    reg: TestRegistry,
    /// The built image's digest in a clean store.
    want: String,
    /// The pulled image's reference and digest.
    src: String,
    src_digest: String,
    /// Repositories pushed to so far (each push gets a new one).
    pushes: usize,
}

impl Bed {
    fn args(&mut self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::Build => owned(&["build", "-q", "--no-cache", "-t", "k", &self.ctx]),
            Kind::Push => {
                self.pushes += 1;
                owned(&["push", "k", &format!("{}:1", self.push_repo())])
            }
            Kind::Pull => owned(&["pull", &self.src]),
            Kind::Gc => owned(&["gc"]),
        }
    }

    /// The repository of the latest push, with the registry's host.
    fn push_repo(&self) -> String {
        format!("{}/kill/p{}", self.reg.host(), self.pushes)
    }

    fn run(&self, args: &[String]) -> Run {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        boxwright(&store_args(&self.store, &args))
    }

    /// Leaves the store without the pulled image (its blobs go with the
    /// next `gc`), so that the next pull downloads again.
    fn forget_pulled(&self) {
        let run = boxwright(&store_args(&self.store, &["rmi", &self.src]));
        assert!(
            run.code == 0 || run.stderr.contains("no image named"),
            "rmi: {}",
            run.stderr
        );
    }

    /// What a kill of `kind` may leave, beyond what `fsck` checks. For a
    /// push or a pull: whether it had got as far as the tag.
    fn check_after_kill(&self, kind: Kind, after: &str) -> Option<bool> {
        fsck(Path::new(&self.store), after, true);
        // A killed build leaves `k` on the previous (same) image.
        assert_eq!(
            stored_digest(&self.store, "k").as_deref(),
            Some(self.want.as_str()),
            "{after}"
        );
        match kind {
            Kind::Push => {
                let repo = format!("kill/p{}", self.pushes);
                Some(tag_absent_or_complete(
                    self.reg.port,
                    &repo,
                    &self.want,
                    after,
                ))
            }
            Kind::Pull => {
                let got = stored_digest(&self.store, &self.src);
                if let Some(d) = &got {
                    assert_eq!(d, &self.src_digest, "{after}: the pulled name");
                }
                self.forget_pulled();
                Some(got.is_some())
            }
            Kind::Build | Kind::Gc => None,
        }
    }

    /// A build, a push and a pull run to the end give the reference digests.
    fn rerun(&mut self, when: &str) {
        self.run(&owned(&["build", "-q", "-t", "k", &self.ctx]))
            .ok();
        assert_eq!(
            stored_digest(&self.store, "k").as_deref(),
            Some(self.want.as_str()),
            "build {when}"
        );
        let push = self.args(Kind::Push);
        let out = self.run(&push).ok();
        assert_eq!(out.stdout.trim(), self.want, "push {when}");
        let repo = format!("kill/p{}", self.pushes);
        assert!(
            tag_absent_or_complete(self.reg.port, &repo, &self.want, when),
            "push {when}: no tag"
        );
        let out = self.run(&owned(&["pull", &self.src])).ok();
        assert_eq!(out.stdout.trim(), self.src_digest, "pull {when}");
        self.forget_pulled();
    }
}

#[test]
fn kills_of_build_push_pull_and_gc_leave_a_consistent_store_and_registry() {
    let kills = kills();
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    containerfile(&ctx);
    let c = ctx.display().to_string();
    let reg = TestRegistry::start();

    // The references: a clean store, built once to the end, which also
    // pushes the image the pull rounds fetch.
    let clean = t.path().join("clean").display().to_string();
    boxwright(&store_args(&clean, &["build", "-q", "-t", "k", &c])).ok();
    let want = stored_digest(&clean, "k").unwrap();
    let pctx = t.path().join("pctx");
    pulled_containerfile(&pctx);
    boxwright(&store_args(
        &clean,
        &["build", "-q", "-t", "src", pctx.to_str().unwrap()],
    ))
    .ok();
    let src = format!("{}/kill/src:1", reg.host());
    let src_digest = boxwright(&store_args(&clean, &["push", "src", &src]))
        .ok()
        .stdout
        .trim()
        .to_string();

    let mut bed = Bed {
        store: t.path().join("store").display().to_string(),
        ctx: c,
        reg,
        want,
        src,
        src_digest,
        pushes: 0,
    };
    // Kills land anywhere in a run: delays up to 80% of the fastest of
    // three (one slow run, on a busy machine, must not make most kills
    // land after the end). Each pull is timed into a store without the
    // image, as the kill rounds pull.
    let mut within = BTreeMap::new();
    for kind in KINDS {
        let fastest = (0..3)
            .map(|_| {
                let args = bed.args(kind);
                let started = Instant::now();
                bed.run(&args).ok();
                let ms = started.elapsed().as_millis() as u64;
                if kind == Kind::Pull {
                    bed.forget_pulled();
                    bed.run(&owned(&["gc"])).ok();
                }
                ms
            })
            .min()
            .unwrap();
        within.insert(kind, (fastest * 4 / 5).max(5));
    }
    eprintln!("kill delays drawn below (ms): {within:?}");

    let mut rng = fastrand::Rng::with_seed(0x5eed);
    // Per command: rounds, kills that hit it running, and (push, pull)
    // rounds that got as far as the tag.
    let mut tally: BTreeMap<Kind, (usize, usize, usize)> = BTreeMap::new();
    let mut hits = 0;
    let mut round = 0;
    while hits < kills && round < kills * ATTEMPTS_PER_KILL {
        let kind = KINDS[round % KINDS.len()];
        round += 1;
        let args = bed.args(kind);
        let mut child = Command::new(bin())
            .args(store_args(
                &bed.store,
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(0..within[&kind])));
        let entry = tally.entry(kind).or_default();
        entry.0 += 1;
        if child.try_wait().unwrap().is_none() {
            hits += 1;
            entry.1 += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        if bed.check_after_kill(kind, &format!("round {round} ({kind:?})")) == Some(true) {
            tally.get_mut(&kind).unwrap().2 += 1;
        }
        if round % RERUN_EVERY == 0 {
            bed.rerun(&format!("after round {round}"));
        }
    }
    // One line per command (benches/kill_loop.sh prints them).
    for (k, (rounds, hit, tagged)) in &tally {
        let tag = match k {
            Kind::Push | Kind::Pull => format!(", {tagged} had got as far as the tag"),
            Kind::Build | Kind::Gc => String::new(),
        };
        eprintln!("kills of {k:?}: {hit} of {rounds} hit it running{tag}");
    }
    eprintln!("kills that hit a running process: {hits} in {round} rounds");
    assert!(
        hits >= kills,
        "only {hits} of {round} kills hit a running process: the delays are too long"
    );
    bed.rerun("at the end");
    // The final runs removed what interrupted ones left: nothing to report.
    fsck(Path::new(&bed.store), "the final runs", false);
}

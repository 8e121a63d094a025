//! What listing and archive commands print, as a podman or buildah user
//! expects it: `--format json` and `-q` for `images`, `builds` and `ps`;
//! aligned tables; relative times in English; no colour off a terminal or
//! under NO_COLOR; `df`; `save -o -` into `podman load`, `load` from stdin,
//! and archive files created 0644 under the umask.

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::*;

/// A name longer than any other cell, so it sets the first column's width.
const LONG: &str = "a-rather-long-image-name-that-widens-the-first-column:v1";

/// A store with a small busybox image tagged `box:1` and [`LONG`].
struct Fixture {
    dir: tempfile::TempDir,
    digest: String,
}

impl Drop for Fixture {
    /// Sandboxes a failed test leaves behind go with it.
    fn drop(&mut self) {
        let out = self.bw(&["ps", "-a", "-q"]);
        for name in out.stdout.lines() {
            let _ = self.bw(&["rm", "-f", name]);
        }
    }
}

impl Fixture {
    fn new() -> Fixture {
        let dir = world_tempdir();
        let recipe = write_recipe(
            dir.path(),
            "box.toml",
            &format!(
                "{}[[steps]]\nrun = \"echo hello > /hello\"\n",
                busybox_base()
            ),
        );
        let mut f = Fixture {
            dir,
            digest: String::new(),
        };
        let built = f
            .bw(&["build", recipe.to_str().unwrap(), "-t", "box:1"])
            .ok();
        f.digest = built.stdout.trim().to_string();
        f.bw(&["tag", "box:1", LONG]).ok();
        f
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn bw(&self, args: &[&str]) -> Run {
        self.bw_env(args, &[])
    }

    fn bw_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let store = self.store();
        let mut full = vec!["--store", store.to_str().unwrap()];
        full.extend_from_slice(args);
        boxwright_env(&full, env)
    }

    /// A boxwright command line (for pipes), on this store.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--store").arg(self.store()).args(args);
        c
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.bw(args).ok().stdout;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{out}"))
    }
}

/// The cells of a table line: (first column, one past the last, text),
/// cells being separated by two spaces or more.
fn cells(line: &str) -> Vec<(usize, usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !(chars[i] == ' ' && chars.get(i + 1).is_none_or(|c| *c == ' ')) {
            i += 1;
        }
        out.push((start, i, chars[start..i].iter().collect()));
    }
    out
}

/// Checks a table's columns line up: each left-aligned column's cells
/// start where its title does, each right-aligned one's end where its title
/// ends. `optional` columns may be empty (then they are missing from a row).
fn assert_aligned(table: &str, right: &[&str], optional: &[&str]) {
    let lines: Vec<&str> = table.lines().collect();
    let header = cells(lines[0]);
    assert!(lines.len() > 1, "a table with rows expected:\n{table}");
    for line in &lines[1..] {
        let row = cells(line);
        let mut at = 0;
        for (start, end, title) in &header {
            let cell = row.get(at);
            let placed = cell.is_some_and(|(s, e, _)| {
                if right.contains(&title.as_str()) {
                    e == end
                } else {
                    s == start
                }
            });
            if placed {
                at += 1;
            } else {
                assert!(
                    optional.contains(&title.as_str()),
                    "column {title} is out of line in {line:?}:\n{table}"
                );
            }
        }
        assert_eq!(
            at,
            row.len(),
            "cells beyond the header in {line:?}:\n{table}"
        );
    }
}

/// "less than a second ago", "1 second ago", "N seconds ago", "1 minute
/// ago", "N minutes ago": singular for one, plural otherwise.
fn assert_recent(text: &str) {
    if text == "less than a second ago" {
        return;
    }
    let words: Vec<&str> = text.split(' ').collect();
    assert_eq!(words.len(), 3, "{text:?}");
    let n: u64 = words[0].parse().unwrap_or_else(|_| panic!("{text:?}"));
    let unit = if n == 1 {
        ["second", "minute"]
    } else {
        ["seconds", "minutes"]
    };
    assert!(unit.contains(&words[1]), "{text:?}");
    assert_eq!(words[2], "ago", "{text:?}");
}

fn is_full_digest(d: &str) -> bool {
    d.len() == 71 && d.starts_with("sha256:") && d[7..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn images_as_json_quiet_and_an_aligned_table() {
    let f = Fixture::new();

    let list = f.json(&["images", "--format", "json"]);
    let list = list.as_array().expect("a JSON array");
    let mut names: Vec<&str> = list.iter().map(|i| i["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, [LONG, "box:1"]);
    for i in list {
        assert_eq!(i["digest"], f.digest.as_str(), "{i}");
        assert!(is_full_digest(i["config_digest"].as_str().unwrap()), "{i}");
        assert!(
            i["size"].as_u64().unwrap() > 100_000,
            "busybox is in it: {i}"
        );
        humantime::parse_rfc3339(i["created"].as_str().unwrap()).unwrap();
        assert_eq!(i["default"], false);
    }
    assert!(!serde_json::to_string(&list).unwrap().contains('…'));

    let quiet = f.bw(&["images", "-q"]).ok().stdout;
    let mut quiet: Vec<&str> = quiet.lines().collect();
    quiet.sort();
    assert_eq!(quiet, [LONG, "box:1"], "names only, one per line");

    let table = f.bw(&["images"]).ok().stdout;
    assert_aligned(&table, &["SIZE"], &["DEFAULT"]);
    for line in table.lines().skip(1) {
        let row = cells(line);
        assert_eq!(row[1].2, f.digest[..19], "short digests by default: {line}");
        assert_recent(&row[3].2);
    }
    let full = f.bw(&["images", "--no-trunc"]).ok().stdout;
    assert_aligned(&full, &["SIZE"], &["DEFAULT"]);
    assert_eq!(full.matches(&f.digest).count(), 2, "{full}");

    // -q and --format say different things: a one-line usage error.
    let both = f.bw(&["images", "-q", "--format", "json"]);
    assert_eq!(both.code, 2);
    assert_eq!(both.stderr.lines().count(), 1, "{}", both.stderr);
}

#[test]
fn builds_and_ps_as_json_quiet_and_tables() {
    let f = Fixture::new();
    let failing = write_recipe(
        f.dir.path(),
        "fails.toml",
        &format!("{}[[steps]]\nrun = \"exit 3\"\n", busybox_base()),
    );
    assert_eq!(f.bw(&["build", failing.to_str().unwrap()]).code, 1);

    let builds = f.json(&["builds", "--format", "json"]);
    let builds = builds.as_array().expect("a JSON array");
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[0]["status"], "failed", "newest first");
    assert_eq!(builds[1]["status"], "succeeded");
    assert_eq!(builds[1]["digest"], f.digest.as_str());
    let ids: Vec<&str> = builds.iter().map(|b| b["id"].as_str().unwrap()).collect();
    let quiet = f.bw(&["builds", "-q"]).ok();
    assert_eq!(quiet.stdout, format!("{}\n{}\n", ids[0], ids[1]));
    // The JSON Lines form scripts already use stays.
    let lines = f.bw(&["builds", "--json"]).ok().stdout;
    assert_eq!(lines.lines().count(), 2);

    let table = f.bw(&["builds"]).ok().stdout;
    assert_aligned(&table, &["DURATION"], &[]);
    for line in table.lines().skip(1) {
        assert_recent(&cells(line)[2].2);
    }

    f.bw(&["run", "--name", "first", "box:1", "true"]).ok();
    f.bw(&[
        "run",
        "--name",
        "a-second-sandbox-with-a-long-name",
        LONG,
        "true",
    ])
    .ok();
    let ps = f.json(&["ps", "-a", "--format", "json"]);
    let ps = ps.as_array().expect("a JSON array");
    assert_eq!(ps.len(), 2, "{ps:?}");
    for s in ps {
        assert_eq!(s["image_digest"], f.digest.as_str());
        assert_eq!(s["status"], "exited");
        assert_eq!(s["exit_code"], 0);
        humantime::parse_rfc3339(s["created_at"].as_str().unwrap()).unwrap();
    }
    let quiet = f.bw(&["ps", "-a", "-q"]).ok().stdout;
    let mut names: Vec<&str> = quiet.lines().collect();
    names.sort();
    assert_eq!(names, ["a-second-sandbox-with-a-long-name", "first"]);
    assert_eq!(f.bw(&["ps", "-q"]).ok().stdout, "", "none is running");
    let table = f.bw(&["ps", "-a"]).ok().stdout;
    assert_aligned(&table, &["CHANGES"], &[]);
    for line in table.lines().skip(1) {
        assert_recent(&cells(line)[3].2);
    }
}

#[test]
fn no_colour_off_a_terminal_or_under_no_color() {
    let f = Fixture::new();
    let recipe = f.path("box.toml");
    f.bw(&["run", "--name", "listed", "box:1", "true"]).ok();
    // Pipes: no escape sequence anywhere, whatever the progress mode asked.
    let piped = [
        f.bw(&["images"]),
        f.bw(&["builds"]),
        f.bw(&["ps", "-a"]),
        f.bw(&["df"]),
        f.bw(&["catalog", "runtimes"]),
        f.bw(&["build", recipe.to_str().unwrap(), "--progress", "tty"]),
        f.bw(&["build", "--help"]),
        f.bw(&["images", "--format", "jsn"]),
    ];
    for run in &piped {
        assert!(
            !run.stdout.contains("\x1b[") && !run.stderr.contains("\x1b["),
            "escape sequences in a pipe:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }

    // A terminal (script(1) gives one): help is coloured, unless NO_COLOR.
    require_tool("script", "bsdutils");
    let on_tty = |line: &str, no_color: bool| -> String {
        let mut c = Command::new("script");
        c.args(["-qec", line, "/dev/null"])
            .stdin(Stdio::null())
            .env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        sh(&mut c)
    };
    let exe = bin();
    let store = f.store();
    let help = format!("{} build --help", exe.display());
    assert!(
        on_tty(&help, false).contains("\x1b["),
        "the check can see colour"
    );
    assert!(!on_tty(&help, true).contains("\x1b["));
    for cmd in ["images", "builds", "ps -a", "df", "catalog runtimes"] {
        let line = format!("{} --store {} {cmd}", exe.display(), store.display());
        let out = on_tty(&line, true);
        assert!(!out.contains("\x1b["), "{cmd} under NO_COLOR: {out:?}");
        assert!(out.lines().count() > 1, "{cmd}: {out}");
    }
}

#[test]
fn df_adds_up_and_gc_leaves_nothing_to_reclaim() {
    let f = Fixture::new();
    let images = f.json(&["images", "--format", "json"]);
    let image_size = images[0]["size"].as_u64().unwrap();

    let df = f.json(&["df", "--format", "json"]);
    assert_eq!(df["complete"], true, "{df}");
    let kinds = [
        "blobs",
        "layers",
        "cache_records",
        "cache_mounts",
        "artifacts",
        "build_logs",
        "sandboxes",
        "leftovers",
        "other",
    ];
    let bytes = |df: &Value, k: &str| df[k]["bytes"].as_u64().unwrap();
    let reclaimable = |df: &Value, k: &str| df[k]["reclaimable"].as_u64().unwrap();
    assert!(bytes(&df, "blobs") >= image_size, "{df}");
    assert!(bytes(&df, "layers") >= 1 << 20, "busybox unpacked: {df}");
    assert!(bytes(&df, "build_logs") > 0, "{df}");
    let total: u64 = kinds.iter().map(|k| bytes(&df, k)).sum();
    assert_eq!(df["total"].as_u64().unwrap(), total);
    assert_eq!(df["reclaimable"], 0, "every blob is tagged: {df}");
    assert_eq!(f.json(&["system", "df", "--format", "json"]), df);

    // Another image, then untagged: its blobs and unpacked layer are garbage.
    let more = write_recipe(
        f.dir.path(),
        "more.toml",
        &format!(
            "{}[[steps]]\nrun = \"dd if=/dev/urandom of=/blob bs=1024 count=300\"\n",
            busybox_base()
        ),
    );
    f.bw(&["build", more.to_str().unwrap(), "-t", "more"]).ok();
    f.bw(&["rmi", "more"]).ok();
    let before = f.json(&["df", "--format", "json"]);
    assert!(reclaimable(&before, "blobs") >= 300 * 1024, "{before}");
    assert!(reclaimable(&before, "layers") >= 300 * 1024, "{before}");
    let sum: u64 = kinds.iter().map(|k| reclaimable(&before, k)).sum();
    assert_eq!(before["reclaimable"].as_u64().unwrap(), sum);

    let table = f.bw(&["df"]).ok().stdout;
    assert_aligned(&table, &["SIZE", "RECLAIMABLE"], &["NOTE"]);
    assert!(
        table.lines().last().unwrap().starts_with("total"),
        "{table}"
    );

    f.bw(&["gc"]).ok();
    let after = f.json(&["df", "--format", "json"]);
    assert_eq!(after["reclaimable"], 0, "{after}");
    assert!(
        bytes(&after, "blobs") + reclaimable(&before, "blobs") <= bytes(&before, "blobs"),
        "gc freed what df said: {before}\n{after}"
    );
    assert!(bytes(&after, "blobs") >= image_size);
}

#[test]
fn df_as_a_rootless_user_counts_what_it_can_read_and_says_so() {
    require_user("bwsub");
    let dir = world_tempdir();
    let exe = shared_binary(dir.path());
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    // Owned by a subordinate id and closed to others: bwsub cannot read it.
    let recipe = write_recipe(
        &work,
        "secret.toml",
        &format!(
            "{}[[steps]]\nrun = \"mkdir /secret && echo x > /secret/f && chown -R 1000:1000 /secret && chmod 700 /secret\"\n",
            busybox_base()
        ),
    );
    sh(Command::new("chown").arg("-R").arg("bwsub").arg(&work));
    let store = work.join("store");
    let s = store.to_str().unwrap();
    run_as(
        "bwsub",
        &work,
        &exe,
        &["--store", s, "build", recipe.to_str().unwrap()],
    )
    .ok();
    let df = run_as(
        "bwsub",
        &work,
        &exe,
        &["--store", s, "df", "--format", "json"],
    )
    .ok();
    let v: Value = serde_json::from_str(&df.stdout).unwrap();
    assert_eq!(v["complete"], false, "{v}");
    let unreadable: Vec<&str> = v["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        unreadable.iter().any(|p| p.ends_with("/secret")),
        "{unreadable:?}"
    );
    assert!(
        v["layers"]["bytes"].as_u64().unwrap() >= 1 << 20,
        "the rest is counted: {v}"
    );
    assert_eq!(df.stderr.lines().count(), 1, "{}", df.stderr);
    assert!(df.stderr.contains("could not be read"), "{}", df.stderr);
    assert!(df.stderr.contains("lower bound"), "{}", df.stderr);
}

#[test]
fn save_to_stdout_feeds_podman_load_and_files_get_0644() {
    let f = Fixture::new();
    let pod = f.path("podman");
    let _cleanup = PodmanStorage(&pod);

    let mut save = f
        .command(&["save", "box:1", "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let loaded = podman(&pod)
        .arg("load")
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    let saved = save.wait_with_output().unwrap();
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    assert!(
        loaded.status.success(),
        "podman load: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let said = String::from_utf8_lossy(&loaded.stdout).into_owned();
    let name = said
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .unwrap_or_else(|| panic!("podman load said: {said}"))
        .trim()
        .to_string();
    assert!(name.ends_with("box:1"), "{name}");
    let ran = podman(&pod)
        .args(["run", "--rm", "--network", "none", &name, "cat", "/hello"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "hello\n",
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );

    // Files: 0666 less the umask, as `>` would make them.
    let save_with_umask = |umask: &str, file: &Path| {
        let line = format!("umask {umask} && exec \"$0\" --store \"$1\" save box:1 -o \"$2\"",);
        sh(Command::new("sh")
            .args(["-c", &line])
            .arg(bin())
            .arg(f.store())
            .arg(file));
        fs::metadata(file).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(save_with_umask("022", &f.path("a.tar")), 0o644);
    assert_eq!(save_with_umask("077", &f.path("b.tar")), 0o600);
    assert_eq!(
        fs::read(f.path("a.tar")).unwrap(),
        f.command(&["save", "box:1"]).output().unwrap().stdout,
        "the same bytes through stdout (without -o) and to a file"
    );
}

#[test]
fn load_reads_stdin() {
    let f = Fixture::new();
    let archive = f.path("box.tar");
    f.bw(&["save", "box:1", LONG, "-o", archive.to_str().unwrap()])
        .ok();
    for args in [&["load"][..], &["load", "-"][..]] {
        let other = f.path(&format!("other-{}", args.len()));
        let mut child = Command::new(bin())
            .arg("--store")
            .arg(&other)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&fs::read(&archive).unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("loaded {LONG}\nloaded box:1\n")
        );
        let listed = boxwright(&["--store", other.to_str().unwrap(), "images", "-q"]).ok();
        let mut listed: Vec<&str> = listed.stdout.lines().collect();
        listed.sort();
        assert_eq!(listed, [LONG, "box:1"]);
    }
    // Not an archive on stdin: one line, bad input.
    let empty = f.bw(&["load"]);
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    assert_eq!(empty.stderr.lines().count(), 1, "{}", empty.stderr);
    assert!(
        empty.stderr.starts_with("boxwright: stdin: "),
        "{}",
        empty.stderr
    );
}

/// The unpacked layers under the store, by diff_id hex.
fn unpacked(f: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(f.dir.path().join("store.state/layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn unpacked_layers_stay_within_max_unpacked_least_recently_used_first() {
    let f = Fixture::new();
    let config_home = f.path("config");
    let config_home = config_home.to_str().unwrap();
    let env = [("XDG_CONFIG_HOME", config_home)];
    // A second image on the same base: its step's layer is the newest, the
    // busybox layer was used as its lower after box:1's step layer was made.
    let big = write_recipe(
        f.dir.path(),
        "big.toml",
        &format!(
            "{}[[steps]]\nrun = \"dd if=/dev/urandom of=/big bs=1024 count=2048\"\n",
            busybox_base()
        ),
    );
    f.bw_env(&["build", big.to_str().unwrap(), "-t", "big"], &env)
        .ok();
    let all = unpacked(&f);
    assert_eq!(all.len(), 3, "busybox, box:1's step, big's step: {all:?}");
    let df = f.json(&["df", "--format", "json"]);
    assert_eq!(
        df["layers_limit"].as_u64(),
        Some(10 << 30),
        "the default bound: {df}"
    );
    // What the layer dirs take, as du counts it (df adds the layers dir and
    // the use records).
    let du = |hex: &str| -> u64 {
        let dir = f.dir.path().join("store.state/layers").join(hex);
        let out = sh(Command::new("du").arg("-sB1").arg(&dir));
        out.split_whitespace().next().unwrap().parse().unwrap()
    };
    let layers: u64 = all.iter().map(|d| du(d)).sum();
    assert!(df["layers"]["bytes"].as_u64().unwrap() >= layers, "{df}");

    // One byte too many: gc evicts the least recently used layer only.
    let limit = (layers - 1).to_string();
    let gc = f.bw_env(&["gc", "--max-unpacked", &limit], &env).ok();
    assert!(
        gc.stderr
            .contains("evicted 1 least recently used unpacked layers"),
        "{}",
        gc.stderr
    );
    let left = unpacked(&f);
    assert_eq!(left.len(), 2, "{left:?}");
    let evicted: Vec<&String> = all.iter().filter(|d| !left.contains(d)).collect();
    assert!(left.iter().map(|d| du(d)).sum::<u64>() < layers);
    let df = f.json(&["df", "--max-unpacked", &limit, "--format", "json"]);
    assert_eq!(df["layers_limit"].as_u64(), Some(layers - 1));

    // An evicted layer is only a cache: the store is sound, and running the
    // image unpacks it again from its blob.
    assert!(f.bw(&["fsck"]).ok().stdout.is_empty());
    let out = f
        .bw_env(&["run", "--rm", "box:1", "cat", "/hello"], &env)
        .ok();
    assert_eq!(out.stdout, "hello\n");
    assert!(unpacked(&f).contains(evicted[0]), "unpacked again");

    // A bound in config.toml applies at the end of a build; a sandbox's
    // layers are never evicted.
    f.bw_env(&["run", "--name", "keeper", "box:1", "true"], &env)
        .ok();
    let config = f.path("config/boxwright/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, "max_unpacked = \"1\"\n").unwrap();
    let other = write_recipe(
        f.dir.path(),
        "other.toml",
        &format!(
            "{}[[steps]]\nrun = \"echo other > /other\"\n",
            busybox_base()
        ),
    );
    let built = f
        .bw_env(
            &[
                "--progress",
                "plain",
                "build",
                other.to_str().unwrap(),
                "-t",
                "other",
            ],
            &env,
        )
        .ok();
    assert!(
        built
            .stderr
            .contains("least recently used unpacked layer(s)"),
        "{}",
        built.stderr
    );
    let kept = unpacked(&f);
    assert_eq!(
        kept.len(),
        2,
        "busybox and box:1's step, for the sandbox: {kept:?}"
    );
    let out = f
        .bw_env(&["run", "--rm", "other", "cat", "/other"], &env)
        .ok();
    assert_eq!(out.stdout, "other\n");
    f.bw(&["rm", "keeper"]).ok();
    f.bw_env(&["gc"], &env).ok();
    assert!(unpacked(&f).is_empty(), "{:?}", unpacked(&f));

    // A bad bound is bad input, on one line.
    fs::write(&config, "max_unpacked = \"lots\"\n").unwrap();
    let bad = f.bw_env(&["gc"], &env);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("max_unpacked: 'lots' is not a size"),
        "{}",
        bad.stderr
    );
}

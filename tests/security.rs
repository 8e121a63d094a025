//! Regression tests for the holes an adversarial run found (issue 10): each
//! failed on the main branch before its fix.
//!
//! - a layer whose content is not its claimed diff_id is refused wherever the
//!   image came from (OCI layout, registry pull, `load`), and never poisons
//!   the unpacked layer another image uses;
//! - COPY reads only the build context;
//! - steps run with default signal dispositions, and `timeout` kills a step's
//!   whole process tree;
//! - errors about a foreign file quote none of it;
//! - step env values reach no image, log or cache record;
//! - leftovers of killed builds are cleaned, `gc` reports what it frees, and
//!   `fsck` finds (and `--repair` removes) damage;
//! - decompression bombs stop at a cap, device nodes stay in layers, COPY
//!   follows absolute symlinks inside the image.

#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boxwright::digest::Digest;
use boxwright::media;
use regsupport::layout::Layout;
use regsupport::registry::TestRegistry;
use support::*;

/// A store in a temp dir, and the arguments that name it.
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new() -> Store {
        Store {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("store.state")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs boxwright on this store.
    fn run(&self, args: &[&str]) -> Run {
        let root = self.root();
        let mut full = vec!["--store", root.to_str().unwrap()];
        full.extend_from_slice(args);
        boxwright(&full)
    }

    /// Builds `recipe` (a path) with `--progress plain` and extra args.
    fn build(&self, recipe: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["build", recipe.to_str().unwrap(), "--progress", "plain"];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

/// The last line of stderr that is not empty: a failed build's one-line reason.
fn last_line(r: &Run) -> String {
    r.stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string()
}

/// A gzip tar holding `files` (path, content), every entry root-owned.
fn gzip_tar(files: &[(&str, &[u8])]) -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let diff_id = Digest::of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// Writes an image with one layer (`layer`, gzip) whose config claims
/// `diff_id` into the layout at `dir`, tagged `tag`.
fn image_claiming(dir: &Path, tag: &str, layer: &[u8], diff_id: &Digest) -> Layout {
    let layout = Layout::create(dir);
    layout.put_image(tag, &[(layer, media::OCI_LAYER_GZIP, diff_id)]);
    layout
}

/// The diff_id of the busybox fixture as a `rootfs:` base (its tar, kept as is).
fn busybox_diff_id() -> Digest {
    Digest::of(&fs::read(busybox_tar()).unwrap())
}

/// A recipe on the busybox base whose step fails if `/planted` exists.
fn victim_recipe(dir: &Path) -> PathBuf {
    write_recipe(
        dir,
        "victim.toml",
        &format!(
            "{}[[steps]]\nrun = \"test ! -e /planted\"\n",
            busybox_base()
        ),
    )
}

/// Checks a poisoned build failed naming the diff_id mismatch on one line,
/// and that a later busybox build on the same store does not see the planted file.
fn assert_refused_and_harmless(store: &Store, poisoned: &Run) {
    assert_eq!(poisoned.code, 1, "{}", poisoned.stderr);
    let line = last_line(poisoned);
    assert!(
        line.contains("image claims diff_id") && line.contains(&busybox_diff_id().to_string()),
        "{line}"
    );
    assert!(
        !store
            .state()
            .join("layers")
            .join(busybox_diff_id().hex())
            .exists()
    );
    let victim = store.build(&victim_recipe(store.dir.path()), &[]);
    assert_eq!(
        victim.code, 0,
        "the busybox build saw the planted file: {}",
        victim.stderr
    );
}

#[test]
fn a_forged_diff_id_from_an_oci_layout_is_refused() {
    let store = Store::new();
    let (layer, _) = gzip_tar(&[("planted", b"evil")]);
    image_claiming(&store.path("evil"), "1", &layer, &busybox_diff_id());
    let recipe = write_recipe(
        store.dir.path(),
        "evil.toml",
        &format!(
            "[image]\nbase = \"oci:{}:1\"\n[[steps]]\nrun = \"true\"\n",
            store.path("evil").display()
        ),
    );
    let poisoned = store.build(&recipe, &[]);
    assert_refused_and_harmless(&store, &poisoned);
}

#[test]
fn a_forged_diff_id_from_a_registry_or_an_archive_is_refused() {
    let reg = TestRegistry::start();
    let store = Store::new();
    let (layer, _) = gzip_tar(&[("planted", b"evil")]);
    image_claiming(&store.path("evil"), "1", &layer, &busybox_diff_id());
    let reference = format!("{}/evil/img:1", reg.host());
    regsupport::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:1", store.path("evil").display()),
        &format!("docker://{reference}"),
    ]);
    let conf = store.path("registries.toml");
    fs::write(
        &conf,
        format!("[[registry]]\nhost = \"{}\"\ninsecure = true\n", reg.host()),
    )
    .unwrap();
    let recipe = write_recipe(
        store.dir.path(),
        "evil.toml",
        &format!("[image]\nbase = \"{reference}\"\n[[steps]]\nrun = \"true\"\n"),
    );
    let poisoned = store.build(&recipe, &["--registries-conf", conf.to_str().unwrap()]);
    assert_refused_and_harmless(&store, &poisoned);

    // The same image through an OCI archive and `load`, used from the store.
    let other = Store::new();
    let archive = store.path("evil.tar");
    assert_eq!(
        store
            .run(&["save", &reference, "-o", archive.to_str().unwrap()])
            .code,
        0
    );
    other.run(&["load", archive.to_str().unwrap()]).ok();
    let poisoned = other.build(
        &recipe,
        &["--offline", "--registries-conf", conf.to_str().unwrap()],
    );
    assert_refused_and_harmless(&other, &poisoned);
}

#[test]
fn copy_sources_stay_inside_the_build_context() {
    let store = Store::new();
    let ctx = store.path("ctx");
    fs::create_dir_all(ctx.join("files/tree")).unwrap();
    fs::write(ctx.join("files/tree/a"), "a\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ctx.join("files/passwd-link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", ctx.join("files/tree/host-link")).unwrap();
    let recipe = |src: &str| {
        write_recipe(
            &ctx,
            "r.toml",
            &format!(
                "{}[[steps]]\ncopy = {{ src = \"{src}\", dest = \"/x\" }}\n",
                busybox_base()
            ),
        )
    };
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let first_passwd_line = passwd.lines().next().unwrap().to_string();
    for (src, expected) in [
        ("../../etc/passwd", "leaves the build context"),
        ("/etc/shadow", "No such file or directory"),
        ("files/passwd-link", "outside the build context"),
    ] {
        let r = store.build(&recipe(src), &[]);
        assert_eq!(r.code, 2, "{src}: {}", r.stderr);
        let line = last_line(&r);
        assert!(line.contains(expected), "{src}: {line}");
        assert!(line.contains("r.toml:4: step 1.copy"), "{src}: {line}");
        assert!(!r.stderr.contains(&first_passwd_line), "{src}");
    }
    // An absolute source is relative to the context: /files/tree/a is the
    // context's file, not the host's.
    let r = store.build(&recipe("/files/tree/a"), &["-t", "abs"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = store.run(&["run", "--rm", "abs", "cat", "/x"]).ok().stdout;
    assert_eq!(got, "a\n");
    // A symlink inside a copied directory is copied as a symlink, not followed.
    let r = store.build(&recipe("files/tree"), &["-t", "tree"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let oci = format!("oci:{}:tree:latest", store.root().display());
    let out = store.path("unpacked");
    sh(Command::new("skopeo").args(["copy", &oci, &format!("dir:{}", out.display())]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let top = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let listing = sh(Command::new("tar").arg("-tvzf").arg(out.join(top)));
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('l') && l.contains("x/host-link -> /etc/hostname")),
        "{listing}"
    );
}

#[test]
fn steps_get_default_signals_and_timeouts_kill_the_whole_step() {
    let store = Store::new();
    let recipe = write_recipe(
        store.dir.path(),
        "pipe.toml",
        &format!(
            "{}[[steps]]\nrun = \"grep -E 'SigIgn|SigBlk' /proc/self/status; yes x | head -c 8000000 > /a; test $(wc -c < /a) = 8000000\"\n",
            busybox_base()
        ),
    );
    // The safety net only: without the fix the step spins until this kills it.
    let r = store.build(&recipe, &["--step-timeout", "120s", "-t", "sig"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in ["SigIgn:\t0000000000000000", "SigBlk:\t0000000000000000"] {
        assert!(r.stderr.contains(want), "{want}: {}", r.stderr);
    }
    // The same for a sandbox's command (`run` shares the exec path).
    let r = store
        .run(&[
            "run",
            "--rm",
            "sig",
            "grep",
            "-E",
            "SigIgn|SigBlk",
            "/proc/self/status",
        ])
        .ok();
    assert_eq!(
        r.stdout, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
        "{}",
        r.stderr
    );

    // A step that starts a background process and hangs: the whole tree goes.
    let recipe = write_recipe(
        store.dir.path(),
        "hang.toml",
        &format!(
            "{}[[steps]]\nname = \"hangs\"\nrun = \"sleep 1001 & sleep 1001\"\ntimeout = \"2s\"\n",
            busybox_base()
        ),
    );
    let started = Instant::now();
    let r = store.build(&recipe, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let line = last_line(&r);
    assert!(
        line.contains("step 1 (`hangs: RUN /bin/sh -c sleep 1001 & sleep 1001`)")
            && line.contains("timed out after 2s"),
        "{line}"
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    // No `sleep 1000` of the step outlives it.
    let ps = sh(Command::new("ps").args(["-eo", "args"]));
    assert!(!ps.lines().any(|l| l.trim() == "sleep 1001"), "{ps}");

    // --step-timeout applies to steps without their own.
    let recipe = write_recipe(
        store.dir.path(),
        "slow.toml",
        &format!("{}[[steps]]\nrun = \"sleep 1000\"\n", busybox_base()),
    );
    let r = store.build(&recipe, &["--step-timeout", "1s"]);
    assert_eq!(r.code, 1);
    assert!(last_line(&r).contains("timed out after 1s"), "{}", r.stderr);
    // A bad timeout is an input error.
    let bad = write_recipe(
        store.dir.path(),
        "bad.toml",
        &format!(
            "{}[[steps]]\nrun = \"true\"\ntimeout = \"soon\"\n",
            busybox_base()
        ),
    );
    let r = store.build(&bad, &[]);
    assert_eq!(r.code, 2);
    assert!(
        last_line(&r).contains("bad.toml:5: step 1: 'timeout' must be a duration"),
        "{}",
        r.stderr
    );
}

#[test]
fn errors_quote_none_of_a_foreign_file() {
    let store = Store::new();
    let secret = store.path("secret.txt");
    fs::write(
        &secret,
        "alice:s3cr3t-hash-1:20000:0:99999:7:::\nbob:s3cr3t-hash-2:20000:0:99999:7:::\n",
    )
    .unwrap();
    for path in [secret.clone(), PathBuf::from("/etc/shadow")] {
        let recipe = write_recipe(
            store.dir.path(),
            "r.toml",
            &format!("[image]\nbase = \"rootfs:{}\"\n", path.display()),
        );
        let r = store.build(&recipe, &[]);
        assert_eq!(
            r.code, 2,
            "a base that is no tar is bad input: {}",
            r.stderr
        );
        let text = fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let head = &line[..line.len().min(12)];
            assert!(
                !r.stderr.contains(head),
                "{} quoted: {}",
                path.display(),
                r.stderr
            );
        }
        let line = last_line(&r);
        assert!(line.contains("not a usable tar archive"), "{line}");
        // The message is one line: no continuation lines after the error.
        assert!(r.stderr.trim_end().ends_with(&line));
        assert!(
            r.stderr.lines().filter(|l| l.contains("error:")).count() == 1,
            "{}",
            r.stderr
        );
        // And the build log has none of it either.
        let log = store.run(&["logs"]).stdout;
        assert!(!log.contains("s3cr3t-hash"), "{log}");
    }
}

#[test]
fn step_env_values_reach_no_image_log_or_cache() {
    let store = Store::new();
    let token = "tok-9c1f7d2e4b";
    let recipe = write_recipe(
        store.dir.path(),
        "env.toml",
        &format!(
            "{}[[steps]]\nrun = \"test ${{#TOKEN}} = {} && echo ok > /done\"\nenv = {{ TOKEN = \"{token}\" }}\n",
            busybox_base(),
            token.len()
        ),
    );
    store.build(&recipe, &["-t", "env"]).ok();
    // Everything the store holds: blobs (config, manifest, layers), cache, logs.
    let mut files = Vec::new();
    for dir in [store.root(), store.state()] {
        for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
            if e.file_type().is_file() {
                files.push(e.path().to_path_buf());
            }
        }
    }
    for f in &files {
        let bytes = fs::read(f).unwrap();
        let mut text = bytes.clone();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            text.clear();
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut text,
            )
            .unwrap();
        }
        assert!(
            !String::from_utf8_lossy(&text).contains(token),
            "{} holds the step's env value",
            f.display()
        );
    }
    let config = sh(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{}:env:latest", store.root().display()),
    ]));
    assert!(config.contains("RUN --env=TOKEN /bin/sh -c"), "{config}");
    let inspect = store.run(&["inspect", "env"]).ok().stdout;
    assert!(
        inspect.contains("<not recorded>"),
        "the recipe annotation keeps the name: {inspect}"
    );
    // Build logs and cache records are the user's alone.
    for sub in ["builds", "cache"] {
        for e in fs::read_dir(store.state().join(sub)).unwrap().flatten() {
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", e.path().display());
        }
    }
}

/// Every entry of `dir` (the store's tmp or trash).
fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn leftovers_of_killed_builds_are_cleaned_and_gc_reports_them() {
    let store = Store::new();
    let slow = write_recipe(
        store.dir.path(),
        "slow.toml",
        &format!(
            "{}[[steps]]\nrun = \"dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null; sleep 1002\"\n",
            busybox_base()
        ),
    );
    // kill -9 builds mid-step: their temp dirs (with the step's 8 MiB) stay behind.
    for _ in 0..2 {
        let mut child = Command::new(bin())
            .args([
                "--store",
                store.root().to_str().unwrap(),
                "build",
                slow.to_str().unwrap(),
                "--progress",
                "plain",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        // Wait until the step runs, then kill.
        for l in lines.by_ref() {
            if l.unwrap().contains("STEP 1/1") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Its workers die with it (parent-death signal); wait for that.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !entries(&store.state().join("tmp")).is_empty(),
        "the kills left nothing to clean"
    );
    // A disk-full write leaves a temp file too; stand it in by hand.
    fs::write(
        store.state().join("tmp/.boxwright-tmp-partial"),
        vec![7u8; 3 << 20],
    )
    .unwrap();

    // The next successful build cleans up first, and says how much.
    let ok = write_recipe(
        store.dir.path(),
        "ok.toml",
        &format!("{}[[steps]]\nrun = \"true\"\n", busybox_base()),
    );
    let r = store.build(&ok, &["-t", "ok"]).ok();
    assert!(
        r.stderr.contains("left in the store by interrupted runs"),
        "{}",
        r.stderr
    );
    assert!(
        entries(&store.state().join("tmp")).is_empty(),
        "{:?}",
        entries(&store.state().join("tmp"))
    );
    assert!(entries(&store.state().join("trash")).is_empty());

    // gc counts what it really frees, the unpacked layers it trashes included.
    store.run(&["rmi", "ok"]).ok();
    fs::write(
        store.state().join("tmp/.boxwright-tmp-x"),
        vec![1u8; 2 << 20],
    )
    .unwrap();
    let gc = store.run(&["gc"]).ok();
    let freed = gc
        .stderr
        .split("freed ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or_default()
        .to_string();
    assert!(freed.ends_with("MiB"), "{}", gc.stderr);
    let mib: f64 = freed.trim_end_matches(" MiB").parse().unwrap();
    assert!(mib >= 2.0, "gc says it freed {freed}: {}", gc.stderr);
    assert!(entries(&store.state().join("trash")).is_empty());
    assert!(entries(&store.state().join("layers")).is_empty());
}

#[test]
fn commands_besides_build_clear_what_killed_runs_left() {
    let store = Store::new();
    let recipe = write_recipe(
        store.dir.path(),
        "r.toml",
        &format!("{}[[steps]]\nrun = \"true\"\n", busybox_base()),
    );
    store.build(&recipe, &["-t", "img"]).ok();
    // What a killed pull or load leaves: a partial blob and a temp dir.
    let tmp = store.state().join("tmp");
    fs::write(tmp.join(".boxwright-tmp-partial"), vec![7u8; 1 << 20]).unwrap();
    fs::create_dir_all(tmp.join(".boxwright-tmp-dir/sub")).unwrap();
    fs::write(tmp.join(".boxwright-tmp-dir/sub/f"), b"x").unwrap();
    store.run(&["tag", "img", "img2"]).ok();
    assert!(entries(&tmp).is_empty(), "{:?}", entries(&tmp));
    assert!(entries(&store.state().join("trash")).is_empty());
    let clean = store.run(&["fsck"]);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
}

#[test]
fn fsck_finds_damage_and_repair_removes_only_what_is_broken() {
    let store = Store::new();
    let recipe = write_recipe(
        store.dir.path(),
        "r.toml",
        &format!("{}[[steps]]\nrun = \"echo hi > /hello\"\n", busybox_base()),
    );
    store.build(&recipe, &["-t", "img"]).ok();
    let clean = store.run(&["fsck"]);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    assert!(clean.stderr.contains("no problems"), "{}", clean.stderr);

    // Damage: a layer blob's bytes, a file of an unpacked layer, a cache record.
    let inspect: serde_json::Value =
        serde_json::from_str(&store.run(&["inspect", "img"]).ok().stdout).unwrap();
    let top: Digest = inspect["manifest"]["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let base_diff = busybox_diff_id();
    let blob = store.root().join("blobs/sha256").join(top.hex());
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    let tampered = store
        .state()
        .join("layers")
        .join(base_diff.hex())
        .join("bin/busybox");
    fs::OpenOptions::new()
        .append(true)
        .open(&tampered)
        .unwrap()
        .write_all(b"x")
        .unwrap();
    let cache = entries(&store.state().join("cache"));
    fs::write(&cache[0], "{not json").unwrap();

    let found = store.run(&["fsck"]);
    assert_eq!(found.code, 1, "{}", found.stderr);
    let out = &found.stdout;
    assert!(out.contains(&format!("blob {top} is corrupt")), "{out}");
    assert!(out.contains("tag img:latest"), "{out}");
    assert!(
        out.contains(&format!("unpacked layer {}", base_diff.short()))
            && out.contains("bin/busybox differs"),
        "{out}"
    );
    assert!(out.contains("not a cache record"), "{out}");

    let repaired = store.run(&["fsck", "--repair"]);
    // The tag's image stays damaged (its blob is gone): that is reported, not hidden.
    assert_eq!(repaired.code, 1, "{}", repaired.stderr);
    assert!(!blob.exists());
    assert!(!store.state().join("layers").join(base_diff.hex()).exists());
    assert!(store.run(&["inspect", "img"]).code == 0, "the tag is kept");
    // Rebuilding restores the image; then everything checks out.
    store.build(&recipe, &["-t", "img"]).ok();
    let after = store.run(&["fsck"]);
    assert_eq!(after.code, 0, "{}{}", after.stdout, after.stderr);
}

#[test]
fn a_decompression_bomb_stops_at_the_cap() {
    let store = Store::new();
    // 64 MiB of zeros gzip to about 64 KiB.
    let zeros = vec![0u8; 64 << 20];
    let (layer, diff_id) = gzip_tar(&[("zeros", &zeros)]);
    assert!(layer.len() < 1 << 20);
    image_claiming(&store.path("bomb"), "1", &layer, &diff_id);
    let recipe = write_recipe(
        store.dir.path(),
        "bomb.toml",
        &format!(
            "[image]\nbase = \"oci:{}:1\"\n[[steps]]\nrun = [\"/zeros\"]\n",
            store.path("bomb").display()
        ),
    );
    let r = store.build(&recipe, &["--max-layer-size", "16m"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let line = last_line(&r);
    assert!(
        line.contains("expands to more than 16.0 MiB (the cap set by --max-layer-size"),
        "{line}"
    );
    // Nothing of it is kept as an unpacked layer, and no temp dir stays behind.
    assert!(entries(&store.state().join("layers")).is_empty());
    let bad = store.run(&["--max-layer-size", "lots", "images"]);
    assert_eq!(bad.code, 2);
}

#[test]
fn device_nodes_stay_in_layers_with_a_warning() {
    let store = Store::new();
    // The busybox fixture plus /dev/console (c 5 1) and /dev/null (c 1 3).
    let base = store.path("devs.tar");
    {
        let mut b = tar::Builder::new(fs::File::create(&base).unwrap());
        let mut a = tar::Archive::new(fs::File::open(busybox_tar()).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let mut h = e.header().clone();
            let path = e.path().unwrap().into_owned();
            if h.entry_type() == tar::EntryType::Symlink || h.entry_type() == tar::EntryType::Link {
                let target = e.link_name().unwrap().unwrap().into_owned();
                b.append_link(&mut h, &path, &target).unwrap();
            } else {
                b.append_data(&mut h, &path, &mut e).unwrap();
            }
        }
        for (name, major, minor) in [("dev/console", 5, 1), ("dev/null", 1, 3)] {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Char);
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
            h.set_mode(0o600);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(0);
            b.append_data(&mut h, name, std::io::empty()).unwrap();
        }
        b.finish().unwrap();
    }
    let recipe = write_recipe(
        store.dir.path(),
        "r.toml",
        &format!(
            "[image]\nbase = \"rootfs:{}\"\n[[steps]]\nrun = \"echo hi > /hi\"\n",
            base.display()
        ),
    );
    let r = store.build(&recipe, &["-t", "devs"]).ok();
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("warning: layer") && l.contains("device node(s) not created"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the one layer: {}",
        r.stderr
    );
    assert!(warnings[0].contains("2 device node(s)"), "{}", warnings[0]);
    // The image's base layer still holds both nodes (checked by umoci's unpack as root).
    require_root("umoci unpack keeps device nodes only as root");
    let bundle = store.path("bundle");
    sh(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:devs:latest", store.root().display()),
        bundle.to_str().unwrap(),
    ]));
    use std::os::unix::fs::FileTypeExt;
    for name in ["console", "null"] {
        let m = fs::symlink_metadata(bundle.join("rootfs/dev").join(name)).unwrap();
        assert!(m.file_type().is_char_device(), "{name}");
    }
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/hi")).unwrap(),
        "hi\n"
    );
}

#[test]
fn copy_follows_absolute_symlinks_inside_the_image() {
    let store = Store::new();
    let ctx = store.path("ctx");
    fs::create_dir_all(ctx.join("tree")).unwrap();
    fs::write(ctx.join("file"), "hello\n").unwrap();
    fs::write(ctx.join("tree/t"), "tree\n").unwrap();
    let recipe = write_recipe(
        &ctx,
        "r.toml",
        &format!(
            "{}[[steps]]\nrun = \"ln -s /srv /dl && ln -s /opt/data /data\"\n\
             [[steps]]\ncopy = {{ src = \"file\", dest = \"/dl/sub/x\" }}\n\
             [[steps]]\ncopy = {{ src = \"tree\", dest = \"/data\" }}\n\
             [[steps]]\nrun = \"test $(cat /srv/sub/x) = hello && test $(cat /opt/data/t) = tree && test -L /dl && test -L /data\"\n",
            busybox_base()
        ),
    );
    let r = store.build(&recipe, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

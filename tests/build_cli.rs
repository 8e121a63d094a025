//! The build command end to end: real namespaces, a real store, checked by
//! oci-image-tool, umoci, skopeo and podman.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use support::*;

/// A recipe that creates, deletes, links and copies, with config changes.
fn sample_recipe(dir: &Path) -> std::path::PathBuf {
    fs::create_dir_all(dir.join("files/sub")).unwrap();
    fs::write(dir.join("files/motd"), "welcome to the sample\n").unwrap();
    fs::write(dir.join("files/sub/note"), "a note\n").unwrap();
    let text = format!(
        r#"{base}
[[steps]]
run = "echo hello from step 1 > /hello && mkdir -p /opt/app && echo x > /opt/app/data"

[[steps]]
run = ["/bin/sh", "-c", "rm /etc/hostname && rm -r /opt/app && ln -s /hello /hello-link"]

[[steps]]
copy = {{ src = "files", dest = "/etc/sample/", mode = "0640", owner = "1:2" }}

[config]
env = {{ GREETING = "hi" }}
workdir = "/root"
cmd = ["/bin/cat", "/hello"]
expose = [8080]
labels = {{ "org.example.team" = "platform" }}
"#,
        base = busybox_base()
    );
    write_recipe(dir, "recipe.toml", &text)
}

fn build(store: &Path, recipe: &Path, tag: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "build",
        "--store",
        store.to_str().unwrap(),
        "-t",
        tag,
        recipe.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    boxwright(&args)
}

fn is_digest(s: &str) -> bool {
    s.len() == 71 && s.starts_with("sha256:") && s[7..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn build_prints_only_the_digest_and_passes_independent_checks() {
    require_tool("oci-image-tool", "oci-image-tool");
    require_tool("umoci", "umoci");
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let recipe = sample_recipe(t.path());
    let run = build(&store, &recipe, "sample", &[]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stdout must be the digest only: {:?}",
        run.stdout
    );
    assert!(is_digest(lines[0]), "not a digest: {}", lines[0]);
    assert!(
        run.stderr.contains("id mapping:"),
        "the id mode is reported: {}",
        run.stderr
    );

    // The tag is the name as given plus :latest, readable by the OCI tools.
    sh(Command::new("oci-image-tool").args([
        "validate",
        "--type",
        "image",
        "--ref",
        "name=sample:latest",
        store.to_str().unwrap(),
    ]));
    oci_validate(&store, "sample:latest");

    // umoci (Go, independent) unpacks what the steps made, not what they deleted.
    require_root("umoci unpack keeps ownership only as root");
    let bundle = t.path().join("bundle");
    sh(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:sample:latest", store.display()),
        bundle.to_str().unwrap(),
    ]));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("hello")).unwrap(),
        "hello from step 1\n"
    );
    assert!(rootfs.join("bin/busybox").exists(), "base layer present");
    assert!(
        !rootfs.join("etc/hostname").exists(),
        "deleted file must be gone"
    );
    assert!(!rootfs.join("opt/app").exists(), "deleted dir must be gone");
    assert_eq!(
        fs::read_link(rootfs.join("hello-link")).unwrap(),
        Path::new("/hello")
    );
    let motd = fs::metadata(rootfs.join("etc/sample/motd")).unwrap();
    assert_eq!(motd.mode() & 0o7777, 0o640);
    assert_eq!((motd.uid(), motd.gid()), (1, 2));
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/sample/sub/note")).unwrap(),
        "a note\n"
    );
    // Nothing of the sandbox's own mounts lands in the image.
    for p in ["run/boxwright", "etc/resolv.conf"] {
        assert!(!rootfs.join(p).exists(), "{p} must not be in the image");
    }

    let inspect = boxwright(&["inspect", "--store", store.to_str().unwrap(), "sample"]).ok();
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let cfg = &v["config"]["config"];
    assert!(
        cfg["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hi")
    );
    assert_eq!(cfg["WorkingDir"], "/root");
    assert_eq!(cfg["Cmd"], serde_json::json!(["/bin/cat", "/hello"]));
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some());
    assert_eq!(cfg["Labels"]["org.example.team"], "platform");
    assert_eq!(v["digest"], lines[0]);
    let history = v["config"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 5, "base + 3 steps + config: {history:?}");
    assert_eq!(history[4]["empty_layer"], true);
    assert_eq!(
        v["config"]["rootfs"]["diff_ids"].as_array().unwrap().len(),
        4
    );
}

#[test]
fn podman_runs_the_built_image() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let recipe = sample_recipe(t.path());
    build(&store, &recipe, "sample", &[]).ok();
    let pod = t.path().join("podman");
    let out = podman_run(&pod, &store, "sample:latest", &[]);
    podman_cleanup(&pod);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from step 1\n");
}

#[test]
fn same_recipe_in_fresh_stores_gives_the_same_digest_for_each_compression() {
    let t = tempfile::tempdir().unwrap();
    let recipe = sample_recipe(t.path());
    for c in ["gzip", "zstd", "none"] {
        let a = build(
            &t.path().join(format!("a-{c}")),
            &recipe,
            "x",
            &["--compression", c],
        )
        .ok();
        let b = build(
            &t.path().join(format!("b-{c}")),
            &recipe,
            "x",
            &["--compression", c],
        )
        .ok();
        assert_eq!(a.stdout, b.stdout, "{c}: two fresh builds differ");
    }
    let gz = fs::read_to_string(t.path().join("a-gzip/index.json")).unwrap();
    let zs = fs::read_to_string(t.path().join("a-zstd/index.json")).unwrap();
    assert_ne!(gz, zs, "compression must change the image");
}

#[test]
fn second_build_is_fully_cached_and_a_changed_step_rebuilds_from_there() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let steps = |second: &str| {
        format!(
            "{}\n[[steps]]\nrun = \"echo one > /one\"\n[[steps]]\nrun = \"{second}\"\n[[steps]]\nrun = \"echo three > /three\"\n[[steps]]\nrun = \"echo four > /four\"\n[[steps]]\nrun = \"echo five > /five\"\n",
            busybox_base()
        )
    };
    let recipe = write_recipe(t.path(), "r.toml", &steps("echo two > /two"));
    let first = build(&store, &recipe, "c", &[]).ok();
    assert_eq!(first.stderr.matches("(cached").count(), 0);
    let second = build(&store, &recipe, "c", &[]).ok();
    assert_eq!(first.stdout, second.stdout);
    assert!(
        second.stderr.contains("all 5 steps cached"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("step 1 done"),
        "no step may run: {}",
        second.stderr
    );

    let recipe = write_recipe(t.path(), "r.toml", &steps("echo TWO > /two"));
    let third = build(&store, &recipe, "c", &[]).ok();
    assert_ne!(third.stdout, first.stdout);
    assert!(third.stderr.contains("STEP 1/5: RUN"), "{}", third.stderr);
    assert_eq!(
        third.stderr.matches("(cached").count(),
        1,
        "only step 1 is cached: {}",
        third.stderr
    );
    for n in 2..=5 {
        assert!(
            third.stderr.contains(&format!("step {n} done")),
            "step {n} must run: {}",
            third.stderr
        );
    }

    let forced = build(&store, &recipe, "c", &["--no-cache"]).ok();
    assert_eq!(forced.stderr.matches("(cached").count(), 0);
    assert_eq!(
        forced.stdout, third.stdout,
        "a rebuild gives the same digest"
    );
}

#[test]
fn overlay_and_snapshot_diffs_give_the_same_image() {
    let t = tempfile::tempdir().unwrap();
    let recipe = sample_recipe(t.path());
    let overlay = build(&t.path().join("o"), &recipe, "x", &["--diff", "overlay"]).ok();
    let snapshot = build(&t.path().join("s"), &recipe, "x", &["--diff", "snapshot"]).ok();
    assert!(snapshot.stderr.contains("snapshot"), "{}", snapshot.stderr);
    assert_eq!(overlay.stdout, snapshot.stdout);
}

#[test]
fn failing_step_names_step_command_and_exit_code() {
    let t = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[[steps]]\nrun = \"true\"\n[[steps]]\nrun = \"echo fine\"\n[[steps]]\nrun = \"echo about to fail; echo on stderr >&2; exit 3\"\n[[steps]]\nrun = \"echo never\"\n",
        busybox_base()
    );
    let recipe = write_recipe(t.path(), "r.toml", &text);
    let run = build(&t.path().join("s"), &recipe, "x", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let last = run.stderr.lines().last().unwrap();
    assert!(last.contains("step 3"), "{last}");
    assert!(
        last.contains("echo about to fail; echo on stderr >&2; exit 3"),
        "{last}"
    );
    assert!(last.contains("code 3"), "{last}");
    assert!(
        run.stderr.contains("on stderr"),
        "the step's output is shown: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("never"));
}

#[test]
fn network_none_leaves_only_loopback_and_host_ca_and_proxies_reach_steps_only() {
    let t = tempfile::tempdir().unwrap();
    let ca = t.path().join("ca.pem");
    fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let text = format!(
        r#"{}
[[steps]]
run = "test $(grep -c : /proc/net/dev) = 1 && echo only-loopback"
[[steps]]
run = "cat $SSL_CERT_FILE $NODE_EXTRA_CA_CERTS $REQUESTS_CA_BUNDLE $PIP_CERT $CURL_CA_BUNDLE $GIT_SSL_CAINFO | grep -c BEGIN && echo proxy=$HTTPS_PROXY,$no_proxy"
"#,
        busybox_base()
    );
    let recipe = write_recipe(t.path(), "r.toml", &text);
    let store = t.path().join("s");
    let run = boxwright_env(
        &[
            "build",
            "--store",
            store.to_str().unwrap(),
            "--network",
            "none",
            "-t",
            "n",
            recipe.to_str().unwrap(),
        ],
        &[
            ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ("HTTPS_PROXY", "http://127.0.0.1:3128"),
            ("no_proxy", "localhost"),
        ],
    )
    .ok();
    assert!(run.stderr.contains("only-loopback"), "{}", run.stderr);
    assert!(
        run.stderr.contains("| 6"),
        "all six CA variables name the bundle: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("proxy=http://127.0.0.1:3128,localhost"),
        "{}",
        run.stderr
    );
    let inspect = boxwright(&["inspect", "--store", store.to_str().unwrap(), "n"]).ok();
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let env = v["config"]["config"]["Env"].to_string();
    for leak in ["3128", "SSL_CERT_FILE", "CA_BUNDLE", "PROXY", "proxy"] {
        assert!(!env.contains(leak), "{leak} leaked into the config: {env}");
    }

    let off = format!(
        "{}\n[[steps]]\nrun = \"test -z \\\"$SSL_CERT_FILE\\\" && echo no-ca\"\n",
        busybox_base()
    );
    let recipe = write_recipe(t.path(), "off.toml", &off);
    let run = boxwright_env(
        &[
            "build",
            "--store",
            store.to_str().unwrap(),
            "--no-host-ca",
            recipe.to_str().unwrap(),
        ],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    )
    .ok();
    assert!(run.stderr.contains("no-ca"), "{}", run.stderr);
}

#[test]
fn bad_input_gets_one_line_and_exit_code_2() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("s");
    let s = store.to_str().unwrap();
    let check = |run: Run, needle: &str| {
        assert_eq!(run.code, 2, "stderr: {}", run.stderr);
        let last = run.stderr.lines().last().unwrap_or_default();
        assert!(
            last.contains(needle),
            "expected '{needle}' in: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked") && !run.stderr.contains("backtrace"));
    };
    check(
        boxwright(&["build", "--store", s, "/nonexistent/recipe.toml"]),
        "recipe.toml",
    );
    let bad = write_recipe(
        t.path(),
        "bad.toml",
        "[image]\nbase = \"scratch\"\n[[steps]]\nrun = 5\n",
    );
    check(
        boxwright(&["build", "--store", s, bad.to_str().unwrap()]),
        "bad.toml:4",
    );
    let syntax = write_recipe(t.path(), "syntax.toml", "[image\nbase = 1\n");
    check(
        boxwright(&["build", "--store", s, syntax.to_str().unwrap()]),
        "syntax.toml:1",
    );
    let base = write_recipe(
        t.path(),
        "base.toml",
        "[image]\nbase = \"oci:/nonexistent/layout:t\"\n",
    );
    check(
        boxwright(&["build", "--store", s, base.to_str().unwrap()]),
        "nonexistent",
    );
    let copy = write_recipe(
        t.path(),
        "copy.toml",
        "[image]\nbase = \"scratch\"\n[[steps]]\ncopy = { src = \"missing-file\", dest = \"/x\" }\n",
    );
    check(
        boxwright(&["build", "--store", s, copy.to_str().unwrap()]),
        "missing-file",
    );
    check(boxwright(&["build", "--bogus-flag"]), "--bogus-flag");
    check(
        boxwright(&[
            "build",
            "--store",
            s,
            "--compression",
            "lz4",
            copy.to_str().unwrap(),
        ]),
        "lz4",
    );
    check(
        boxwright(&["inspect", "--store", s, "no-such-image"]),
        "no-such-image",
    );
}

#[test]
fn images_tag_save_load_rmi_and_gc() {
    require_tool("skopeo", "skopeo");
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    let recipe = sample_recipe(t.path());
    let digest = build(&store, &recipe, "sample:1", &[])
        .ok()
        .stdout
        .trim()
        .to_string();

    // Global options are accepted before the command too.
    boxwright(&["--store", s, "tag", "sample:1", "other"]).ok();
    let list = boxwright(&["images", "--store", s]).ok().stdout;
    assert!(
        list.contains("sample:1") && list.contains("other:latest"),
        "{list}"
    );
    assert_eq!(list.matches(&digest[..19]).count(), 2, "{list}");

    let archive = t.path().join("sample.tar");
    boxwright(&[
        "save",
        "--store",
        s,
        "sample:1",
        "-o",
        archive.to_str().unwrap(),
    ])
    .ok();
    let inspected = sh(Command::new("skopeo").args([
        "inspect",
        &format!("oci-archive:{}:sample:1", archive.display()),
    ]));
    assert!(inspected.contains("\"Layers\""), "{inspected}");

    boxwright(&["rmi", "--store", s, "sample:1", "other"]).ok();
    assert!(
        !boxwright(&["images", "--store", s])
            .ok()
            .stdout
            .contains("sample")
    );
    let gc = boxwright(&["gc", "--store", s]).ok();
    assert!(!gc.stderr.is_empty());
    let blobs = fs::read_dir(store.join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 0, "gc leaves no blob when no image is tagged");

    let loaded = boxwright(&["load", "--store", s, archive.to_str().unwrap()]).ok();
    assert!(loaded.stdout.contains("sample:1"), "{}", loaded.stdout);
    let inspect = boxwright(&["inspect", "--store", s, "sample:1"]).ok();
    assert!(inspect.stdout.contains(&digest));
    // The loaded image works as a base, and its cache is rebuilt from scratch.
    oci_validate(&store, "sample:1");
}

#[test]
fn two_builds_at_once_on_one_store_both_land() {
    require_tool("oci-image-tool", "oci-image-tool");
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let mut children = Vec::new();
    for i in 0..2 {
        let text = format!(
            "{}\n[[steps]]\nrun = \"echo {i} > /who && sleep 0.3\"\n[[steps]]\nrun = \"echo shared > /shared\"\n",
            busybox_base()
        );
        let recipe = write_recipe(t.path(), &format!("r{i}.toml"), &text);
        children.push(
            Command::new(bin())
                .args([
                    "build",
                    "--store",
                    store.to_str().unwrap(),
                    "-t",
                    &format!("p{i}"),
                ])
                .arg(&recipe)
                .output()
                .unwrap(),
        );
    }
    // Run them truly concurrently as well.
    let spawn = |i: usize| {
        Command::new(bin())
            .args([
                "build",
                "--store",
                store.to_str().unwrap(),
                "--no-cache",
                "-t",
                &format!("q{i}"),
            ])
            .arg(t.path().join(format!("r{i}.toml")))
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(0), spawn(1));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    for c in children {
        assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    }
    for tag in ["p0:latest", "p1:latest", "q0:latest", "q1:latest"] {
        oci_validate(&store, tag);
    }
}

#[test]
fn repeated_tags_all_name_the_image() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let recipe = write_recipe(
        t.path(),
        "r.toml",
        &format!("{}[[steps]]\nrun = \"echo hi > /hi\"\n", busybox_base()),
    );
    let s = store.display().to_string();
    let r = recipe.display().to_string();
    boxwright(&["--store", &s, "build", "-q", "-t", "one", "-t", "two:2", &r]).ok();
    let names = boxwright(&["--store", &s, "images", "-q"]).ok().stdout;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["one:latest", "two:2"]);
    let bad = boxwright(&[
        "--store", &s, "build", "-q", "-t", "ok", "-t", "bad name", &r,
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

/// tag and rmi beside builds. A starting build clears the store's temp dir
/// whenever it can lock the store exclusively, so a command that writes the
/// index through a temp file there must hold the shared lock, or the file
/// goes from under it ("index.json: No such file or directory"; schemathesis
/// found it through serve, which runs both at once).
#[test]
fn tag_and_rmi_beside_builds_keep_their_index_writes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store").display().to_string();
    let recipe = write_recipe(t.path(), "r.toml", "[image]\nbase = \"scratch\"\n")
        .display()
        .to_string();
    boxwright(&["--store", &store, "build", &recipe, "-t", "one"]).ok();
    let stop = Arc::new(AtomicBool::new(false));
    let builder = {
        let (stop, store, recipe) = (stop.clone(), store.clone(), recipe.clone());
        std::thread::spawn(move || {
            let mut builds = 0;
            while !stop.load(Ordering::Relaxed) {
                boxwright(&["--store", &store, "build", &recipe]).ok();
                builds += 1;
            }
            builds
        })
    };
    for _ in 0..60 {
        boxwright(&["--store", &store, "tag", "one", "two"]).ok();
        boxwright(&["--store", &store, "rmi", "two"]).ok();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(builder.join().unwrap() > 0);
}

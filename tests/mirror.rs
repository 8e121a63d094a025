//! Download mirrors end to end. A logging reverse proxy on 127.0.0.1
//! (tests/support/mirror_proxy.py) stands in for the internal mirrors of
//! deb.debian.org, security.debian.org, the npm registry and PyPI, and
//! forwards to the real ones. A Debian minbase build installs apt packages,
//! a package with npm and one with pip through it, `--offline`: the proxy
//! must see every download, and neither the layers nor the config may hold
//! the mirror's address or password; the image keeps its apt sources.
//! Without mirrors, `--offline` fails before any step, naming what it needs.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::*;

/// The proxy, killed when dropped.
struct Proxy {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Proxy {
    fn start(dir: &Path) -> Proxy {
        require_tool("python3", "python3");
        let log = dir.join("proxy.log");
        let mut child = Command::new("python3")
            .arg(repo().join("tests/support/mirror_proxy.py"))
            .arg(&log)
            .args([
                "deb=http://deb.debian.org",
                "debsec=http://security.debian.org",
                "npm=https://registry.npmjs.org",
                "pypi=https://pypi.org",
                "pyfiles=https://files.pythonhosted.org",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the mirror proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the mirror proxy printed no port: {line:?}")
        });
        Proxy { child, port, log }
    }

    fn url(&self, route: &str) -> String {
        format!("http://127.0.0.1:{}/{route}/", self.port)
    }

    /// The requests it has seen, as `GET /path`.
    fn requests(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PASSWORD: &str = "hunter2-mirror-secret";

/// apt packages, npm itself from the registry (Debian's npm package drags in
/// some 390 packages) then a package with it, and a package with pip.
const RECIPE: &str = r#"[image]
base = "rootfs:minbase.tar"
dev_access = false

[packages]
apt = ["jq", "nodejs", "python3-pip"]

[[steps]]
run = """
set -e
node -e 'fetch(process.env.NPM_CONFIG_REGISTRY + "npm/-/npm-10.9.2.tgz").then(r => { if (!r.ok) throw new Error("HTTP " + r.status); return r.arrayBuffer(); }).then(b => require("fs").writeFileSync("/tmp/npm.tgz", Buffer.from(b)))'
mkdir -p /opt/npm && tar -xzf /tmp/npm.tgz -C /opt/npm --strip-components=1 --no-same-owner && rm /tmp/npm.tgz
npm() { node /opt/npm/bin/npm-cli.js "$@"; }
npm install -g --no-fund --no-audit --update-notifier=false is-number@7.0.0
test -f "$(npm root -g)/is-number/package.json"
"""

[[steps]]
run = "pip install --break-system-packages six==1.17.0 && python3 -c 'import six; print(six.__version__)'"
"#;

fn debian_recipe(dir: &Path) -> PathBuf {
    let base = debian_base();
    // A copy, not a hard link: the shared file may be replaced meanwhile.
    let local = dir.join("minbase.tar");
    fs::copy(&base, &local).unwrap();
    fs::set_permissions(&local, fs::Permissions::from_mode(0o644)).unwrap();
    write_recipe(dir, "mirror.toml", RECIPE)
}

/// The manifest and config of `tag`, as `boxwright inspect` prints them.
fn inspect(store: &Path, tag: &str) -> (String, serde_json::Value) {
    let out = boxwright(&["inspect", "--store", store.to_str().unwrap(), tag]).ok();
    let v = serde_json::from_str(&out.stdout).unwrap();
    (out.stdout, v)
}

/// Whether a shell pipeline over a layer blob (`$1`) finds `$2` (grep's
/// exit code), e.g. `gzip -dc "$1" | grep -aqF "$2"`.
fn found(pipeline: &str, blob: &Path, needle: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(pipeline)
        .arg("sh")
        .arg(blob)
        .arg(needle)
        .status()
        .expect("sh")
        .success()
}

#[test]
fn downloads_go_through_the_mirrors_and_leave_no_trace_in_the_image() {
    require_tool("tar", "tar");
    require_tool("gzip", "gzip");
    require_tool("xz", "xz-utils");
    let t = world_tempdir();
    let recipe = debian_recipe(t.path());
    let proxy = Proxy::start(t.path());
    let store = t.path().join("store");
    let store_arg = store.to_str().unwrap();
    // PyPI's mirror needs a login: it must never show.
    let pypi = proxy
        .url("pypi")
        .replace("http://", &format!("http://bw:{PASSWORD}@"));
    let mirrors = [
        format!("http://deb.debian.org/={}", proxy.url("deb")),
        format!("http://security.debian.org={}", proxy.url("debsec")),
        format!("https://registry.npmjs.org/={}", proxy.url("npm")),
        format!("https://pypi.org/={pypi}"),
    ];
    let mut args = vec![
        "build",
        "--progress",
        "plain",
        "--store",
        store_arg,
        "-t",
        "mirrored",
        "--offline",
    ];
    for m in &mirrors {
        args.extend(["--mirror", m]);
    }
    args.push(recipe.to_str().unwrap());
    let run = boxwright(&args).ok();
    assert!(
        run.stderr.contains("download mirrors: "),
        "the mirrors are reported: {}",
        run.stderr
    );

    // Every download went through the proxy.
    let seen = proxy.requests();
    for (prefix, what) in [
        ("GET /deb/debian/dists/bookworm/InRelease", "Debian's index"),
        ("GET /deb/debian/pool/main/", "Debian packages"),
        (
            "GET /debsec/debian-security/dists/bookworm-security/InRelease",
            "the security index",
        ),
        ("GET /npm/npm/-/npm-10.9.2.tgz", "npm itself"),
        ("GET /npm/is-number", "npm metadata"),
        (
            "GET /npm/is-number/-/is-number-7.0.0.tgz",
            "the npm package",
        ),
        ("GET /pypi/simple/six/", "PyPI's index"),
        ("GET /pyfiles/packages/", "the wheel"),
    ] {
        assert!(
            seen.iter().any(|r| r.starts_with(prefix)),
            "the proxy never saw {what} ({prefix}): {seen:#?}"
        );
    }
    assert!(run.stderr.contains("Setting up jq"), "{}", run.stderr);

    // Nothing of the mirrors in the config, the layers or the output.
    let address = format!("127.0.0.1:{}", proxy.port);
    let (text, v) = inspect(&store, "mirrored");
    for needle in [address.as_str(), PASSWORD] {
        assert!(!text.contains(needle), "inspect shows {needle}: {text}");
    }
    let env = v["config"]["config"]["Env"].to_string();
    for var in [
        "NPM_CONFIG_REGISTRY",
        "PIP_INDEX_URL",
        "PIP_TRUSTED_HOST",
        "APT_CONFIG",
    ] {
        assert!(!env.contains(var), "the image's env has {var}: {env}");
    }
    let blobs: Vec<PathBuf> = v["manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap();
            store
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
        })
        .collect();
    assert_eq!(blobs.len(), 4, "base, packages, npm step, pip step");
    for blob in &blobs[1..] {
        for needle in [address.as_str(), PASSWORD] {
            assert!(
                !found(r#"gzip -dc "$1" | grep -aqF "$2""#, blob, needle),
                "layer {} holds {needle}",
                blob.display()
            );
            // apt's planner log is compressed: look inside it too.
            assert!(
                !found(
                    r#"tar -xzOf "$1" --wildcards '*var/log/apt/eipp.log.xz' 2>/dev/null | xz -dc 2>/dev/null | grep -aqF "$2""#,
                    blob,
                    needle
                ),
                "eipp.log of layer {} holds {needle}",
                blob.display()
            );
        }
        // The image keeps its sources: no step layer touches them.
        let entries = sh(Command::new("tar").arg("-tzf").arg(blob));
        assert!(
            !entries.lines().any(|e| e.contains("etc/apt/sources.list")),
            "layer {} changes the apt sources",
            blob.display()
        );
    }
    // The searches do find what is there.
    assert!(found(
        r#"gzip -dc "$1" | grep -aqF "$2""#,
        &blobs[1],
        "usr/bin/jq"
    ));
    assert!(found(
        r#"tar -xzOf "$1" --wildcards '*var/log/apt/eipp.log.xz' 2>/dev/null | xz -dc 2>/dev/null | grep -aqF "$2""#,
        &blobs[1],
        "python3-pip"
    ));
    let base_entries = sh(Command::new("tar")
        .arg("-xzOf")
        .arg(&blobs[0])
        .args(["--wildcards", "*etc/apt/sources.list"]));
    assert!(
        base_entries.contains("deb http://deb.debian.org/debian bookworm main"),
        "{base_entries}"
    );
    assert!(!run.stderr.contains(PASSWORD) && !run.stdout.contains(PASSWORD));
    let logs = boxwright(&["logs", "--store", store_arg]).ok();
    assert!(logs.stdout.contains("import six") || logs.stdout.contains("1.17.0"));
    assert!(
        !logs.stdout.contains(PASSWORD),
        "the build log shows the password"
    );

    // Cached steps download nothing: offline without mirrors is fine.
    let again = boxwright(&[
        "build",
        "--progress",
        "plain",
        "--store",
        store_arg,
        "--offline",
        recipe.to_str().unwrap(),
    ])
    .ok();
    assert!(
        again.stderr.contains("(all 3 steps cached)"),
        "{}",
        again.stderr
    );
}

/// A toolbox recipe on busybox whose steps use apt, npm and pip.
fn needy_recipe(dir: &Path) -> PathBuf {
    write_recipe(
        dir,
        "needy.toml",
        &format!(
            "{}dev_access = false\n[packages]\napt = [\"jq\"]\n\n\
             [[steps]]\nrun = \"echo no downloads\"\n\n\
             [[steps]]\nrun = \"npm install -g is-number\"\n\n\
             [[steps]]\nrun = \"python3 -m pip install six\"\n",
            busybox_base()
        ),
    )
}

#[test]
fn offline_without_mirrors_fails_before_any_step_naming_what_it_needs() {
    let t = tempfile::tempdir().unwrap();
    let recipe = needy_recipe(t.path());
    let store = t.path().join("store");
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "--progress",
            "plain",
            "--store",
            store.to_str().unwrap(),
            "--offline",
        ];
        args.extend_from_slice(extra);
        args.push(recipe.to_str().unwrap());
        boxwright(&args)
    };
    let run = build(&[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let expected = "--offline: these steps would download from the network, and no download mirror covers it: \
        apt packages for step 1 (packages) need a mirror of http://deb.debian.org/ (or of the image's Debian or Ubuntu archive); \
        npm packages for step 3 (recipe step 2) need a mirror of https://registry.npmjs.org/; \
        pip packages for step 4 (recipe step 3) need a mirror of https://pypi.org/simple/; \
        give internal mirrors with --mirror FROM=TO (or [mirrors] in registries.toml), or build without --offline";
    assert!(
        run.stderr.lines().any(|l| l.ends_with(expected)),
        "one line naming every need: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("STEP "),
        "no step may start: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty());

    // Mirrors for some indexes: the others are still named. The config
    // file's [mirrors] count as well as --mirror.
    let conf = t.path().join("registries.toml");
    fs::write(
        &conf,
        "[mirrors]\n\"https://registry.npmjs.org/\" = \"http://127.0.0.1:9/npm/\"\n",
    )
    .unwrap();
    let run = build(&[
        "--registries-conf",
        conf.to_str().unwrap(),
        "--mirror",
        "https://pypi.org/=http://127.0.0.1:9/pypi/",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("no download mirror covers it: apt packages for step 1 (packages) need a mirror of http://deb.debian.org/ (or of the image's Debian or Ubuntu archive); give internal mirrors"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("STEP "), "{}", run.stderr);
}

#[test]
fn bad_mirrors_are_input_errors_that_hide_passwords() {
    let t = tempfile::tempdir().unwrap();
    let recipe = needy_recipe(t.path());
    let store = t.path().join("store");
    for (mirror, needle) in [
        ("http://deb.debian.org/", "is not FROM=TO"),
        (
            "deb.debian.org=http://u:hunter2-pw@m.internal/",
            "FROM must be an http:// or https:// URL",
        ),
    ] {
        let run = boxwright(&[
            "build",
            "--store",
            store.to_str().unwrap(),
            "--mirror",
            mirror,
            recipe.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(needle), "{}", run.stderr);
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    }
    // The same mistake in registries.toml.
    let conf = t.path().join("registries.toml");
    fs::write(
        &conf,
        "[mirrors]\n\"http://a/\" = \"ftp://u:hunter2-pw@b/\"\n",
    )
    .unwrap();
    let run = boxwright(&[
        "build",
        "--progress",
        "plain",
        "--store",
        store.to_str().unwrap(),
        "--registries-conf",
        conf.to_str().unwrap(),
        recipe.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("[mirrors]: mirror http://a/=ftp://***@b/: TO must be"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[test]
fn offline_registry_bases_come_from_the_store_or_not_at_all() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let store_arg = store.to_str().unwrap();
    // Nothing listens on port 1: a pull attempt would fail differently.
    let base = "127.0.0.1:1/team/base:1";
    let child = write_recipe(
        t.path(),
        "child.toml",
        &format!("[image]\nbase = \"{base}\"\n\n[[steps]]\nrun = \"echo child > /child\"\n"),
    );
    let run = boxwright(&[
        "build",
        "--store",
        store_arg,
        "--offline",
        child.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "--offline: the base image {base} is not in the store and registry 127.0.0.1:1 has no mirror_only mirrors in registries.toml: pull it first (boxwright pull {base})"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("STEP "), "{}", run.stderr);

    // Once in the store (as a pull leaves it), it is used as it is.
    let parent = write_recipe(
        t.path(),
        "parent.toml",
        &format!(
            "{}\n[[steps]]\nrun = \"echo parent > /parent\"\n",
            busybox_base()
        ),
    );
    boxwright(&[
        "build",
        "--store",
        store_arg,
        "-t",
        base,
        parent.to_str().unwrap(),
    ])
    .ok();
    let run = boxwright(&[
        "build",
        "--progress",
        "plain",
        "--store",
        store_arg,
        "--offline",
        "-t",
        "child",
        child.to_str().unwrap(),
    ])
    .ok();
    assert!(
        run.stderr
            .contains(&format!("--offline: using {base} as pulled before")),
        "{}",
        run.stderr
    );
}

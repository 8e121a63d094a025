//! Fork: a sandbox's changes as one more layer on its image.
//!
//! On a Debian toolbox image (Python and Node.js from Debian, the dev access
//! layer): apt, pip and npm installs and a VS Code extension are detected
//! against the boot inventory and nothing else is listed; planted secrets,
//! histories, caches and the workspace stay out of the layer; podman runs
//! the forked image; the `--recipe-out` recipe rebuilds it. On a busybox
//! image: whiteouts, opaque directories, a fork of a fork, no change, dry
//! runs, and a fork of a container podman ran (`--upper`).

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use support::*;

struct Store {
    dir: tempfile::TempDir,
}

/// Sandboxes a test leaves running (a failed assertion) are removed with it.
impl Drop for Store {
    fn drop(&mut self) {
        let root = self.root();
        let Ok(out) = std::process::Command::new(bin())
            .arg("--store")
            .arg(&root)
            .args(["ps", "-a", "--json"])
            .output()
        else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(name) = v["name"].as_str()
            {
                let _ = std::process::Command::new(bin())
                    .arg("--store")
                    .arg(&root)
                    .args(["rm", "-f", name])
                    .output();
            }
        }
    }
}

impl Store {
    fn new() -> Store {
        Store {
            dir: world_tempdir(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn bw(&self, args: &[&str]) -> Run {
        let root = self.root();
        let mut full = vec!["--store", root.to_str().unwrap()];
        full.extend_from_slice(args);
        boxwright(&full)
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.bw(&["inspect", name]).ok().stdout).unwrap()
    }

    fn layers(&self, name: &str) -> Vec<String> {
        self.inspect(name)["manifest"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    }

    /// The entries (`tar -tv` lines' names, with `-> target` for links) of a layer blob.
    fn layer_entries(&self, digest: &str) -> Vec<String> {
        let path = self
            .root()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        let mut bytes = Vec::new();
        flate2::read::MultiGzDecoder::new(fs::File::open(path).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                e.path().unwrap().to_string_lossy().into_owned()
            })
            .collect()
    }

    fn blobs(&self) -> BTreeSet<String> {
        fs::read_dir(self.root().join("blobs/sha256"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every path fork must leave out, planted in the sandbox (one per rule of
/// the catalog's list, root's and a user's), plus a repo in the workspace.
const PLANT: &str = r#"set -e
mkdir -p /root/.ssh /home/dev/.ssh /root/.config/gh /root/.claude /home/dev/.codex /root/.gemini \
  /root/.local/share/opencode /root/.aws /root/.docker /root/.cache/pip /root/.npm/_cacache \
  /workspace/app/.git /home/dev/projects/x /root/.config/code-server \
  /root/.local/share/code-server/User/globalStorage /var/lib/boxwright
echo PRIVATE-KEY > /root/.ssh/id_ed25519
echo ssh-ed25519-AAAA > /home/dev/.ssh/authorized_keys
echo HOSTKEY > /etc/ssh/ssh_host_planted_key
echo 'https://user:tok@github.com' > /root/.git-credentials
echo 'oauth_token: gho_x' > /root/.config/gh/hosts.yml
echo '{"token":"x"}' > /root/.claude/.credentials.json
echo '{"oauthAccount":1}' > /root/.claude.json
echo key > /home/dev/.codex/auth.json
echo key > /root/.gemini/oauth_creds.json
echo key > /root/.local/share/opencode/auth.json
echo 'machine x password y' > /root/.netrc
echo '//registry.npmjs.org/:_authToken=npm_x' > /root/.npmrc
echo '[pypi]' > /root/.pypirc
echo '[default]' > /root/.aws/credentials
echo '{"auths":{}}' > /root/.docker/config.json
echo 'ls -la' > /root/.bash_history
echo 'import os' > /root/.python_history
echo cached > /root/.cache/pip/x
echo cached > /root/.npm/_cacache/x
echo 'password: x' > /root/.config/code-server/config.yaml
echo state > /root/.local/share/code-server/User/globalStorage/state.vscdb
echo tmp > /tmp/scratch
echo code > /workspace/app/main.py
echo ref > /workspace/app/.git/HEAD
echo code > /home/dev/projects/x/main.rs
echo 00000000000000000000000000000000 > /etc/machine-id
echo '{}' > /var/lib/boxwright/boot-inventory.json
"#;

/// One file at (or, for a directory, inside) a concrete path of every
/// pattern of the fork exclusion list, each holding its own marker: the
/// script that plants them and the markers. `/home/*` is `/home/dev`, `**`
/// is `/root`; the resolver files are left out (the sandbox's run-time
/// mounts of host files, never part of its upperdir), and so is the boot
/// inventory (fork reads it; PLANT stands one in).
fn plant_every_excluded_path() -> (String, Vec<String>) {
    let text = fs::read_to_string(repo().join("recipes/catalog/fork-exclude.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let mut script = String::from("set -e\n");
    let mut markers = Vec::new();
    let patterns = doc["exclude"].as_array().unwrap().iter().flat_map(|e| {
        e["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
    });
    for (i, pattern) in patterns.enumerate() {
        if [
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/var/lib/boxwright/boot-inventory.json",
        ]
        .contains(&pattern.as_str())
        {
            continue;
        }
        let path = pattern
            .replace("/home/*/", "/home/dev/")
            .replace("**/", "/root/")
            .replace('*', "planted");
        let marker = format!("BWSECRET{i:03}X");
        script.push_str(&format!(
            "p='{path}'; mkdir -p \"$(dirname \"$p\")\"; if [ -d \"$p\" ]; then echo {marker} > \"$p/bw-planted\"; else echo {marker} > \"$p\"; fi\n"
        ));
        markers.push(marker);
    }
    assert!(markers.len() > 80, "{} patterns", markers.len());
    (script, markers)
}

/// The planted secrets' distinctive contents: none may be in the layer.
const SECRETS: [&str; 14] = [
    "PRIVATE-KEY",
    "ssh-ed25519-AAAA",
    "HOSTKEY",
    "user:tok@",
    "gho_x",
    "\"token\"",
    "oauthAccount",
    "npm_x",
    "password: x",
    "machine x password",
    "ls -la",
    "import os",
    "state",
    "code",
];

#[test]
fn fork_of_a_debian_toolbox_sandbox_keeps_the_installs_and_no_secret() {
    require_root("root mode, podman");
    let s = Store::new();
    debian_base_in(s.dir.path());
    let recipe = write_recipe(
        s.dir.path(),
        "toolbox.toml",
        r#"[image]
base = "rootfs:minbase.tar"

[dev_access]
skip = ["code-server", "ttyd", "gh", "claude-code"]

[runtimes]
python = "3.11"
node = "18"

[[steps]]
run = "useradd -m dev && mkdir -p /srv/app && echo a > /srv/app/a && echo b > /srv/app/b && rm -f /var/lib/apt/extended_states.tmp"
"#,
    );
    s.bw(&["build", recipe.to_str().unwrap(), "-t", "toolbox"])
        .ok();
    s.bw(&["run", "-d", "--name", "dev", "toolbox", "sleep", "100000"])
        .ok();
    let install = r#"set -e
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cowsay >/dev/null
python3 -m pip install -q --break-system-packages toml==0.10.2
npm install -g --silent semver@7.6.3
ext=/root/.local/share/code-server/extensions
mkdir -p $ext/boxwright-test.hello-1.2.3
echo '{"name":"hello","publisher":"boxwright-test","version":"1.2.3","engines":{"vscode":"^1.80.0"}}' > $ext/boxwright-test.hello-1.2.3/package.json
echo '[{"identifier":{"id":"boxwright-test.hello"},"version":"1.2.3","relativeLocation":"boxwright-test.hello-1.2.3"}]' > $ext/extensions.json
rm /etc/motd
rm -rf /srv/app && mkdir /srv/app && echo new > /srv/app/new
"#;
    let r = s.bw(&["exec", "dev", "sh", "-c", install]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = s.bw(&["exec", "dev", "sh", "-c", PLANT]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (plant_all, markers) = plant_every_excluded_path();
    let r = s.bw(&["exec", "dev", "sh", "-c", &plant_all]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // The report lists exactly the four installs (apt dependencies apart).
    let dry = s.bw(&["fork", "dev", "--dry-run", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(names(&report["apt"]["added"]), ["cowsay"], "{report}");
    assert_eq!(names(&report["pip"]["added"]), ["toml"], "{report}");
    assert_eq!(names(&report["npm"]["added"]), ["semver"], "{report}");
    assert_eq!(
        names(&report["vscode_extensions"]["added"]),
        ["boxwright-test.hello"],
        "{report}"
    );
    for k in ["apt", "pip", "npm", "vscode_extensions"] {
        assert!(
            report[k]["removed"].as_array().unwrap().is_empty(),
            "{k}: {report}"
        );
    }
    assert!(
        report["excluded"]["paths"].as_u64().unwrap() >= 20,
        "{report}"
    );
    assert!(report["other"]["files"].as_u64().unwrap() > 0);

    let before = s.blobs();
    let recipe_out = s.dir.path().join("forked.toml");
    let r = s
        .bw(&[
            "fork",
            "dev",
            "-t",
            "forked",
            "--recipe-out",
            recipe_out.to_str().unwrap(),
        ])
        .ok();
    assert!(
        r.stdout.contains("apt: 1 added") && r.stdout.contains("+ cowsay"),
        "{}",
        r.stdout
    );
    assert!(s.blobs().len() > before.len());

    // The parent's layers are reused byte for byte, plus one.
    let parent = s.layers("toolbox");
    let forked = s.layers("forked");
    assert_eq!(forked.len(), parent.len() + 1);
    assert_eq!(&forked[..parent.len()], &parent[..]);
    let config = &s.inspect("forked")["config"];
    let history = config["history"].as_array().unwrap();
    assert!(
        history.iter().any(|h| h["created_by"] == "fork of dev"),
        "{config}"
    );
    assert_eq!(config["config"]["Labels"]["io.boxwright.fork.of"], "dev");

    // The layer: no secret, history, cache or workspace; whiteouts and opaque dirs kept.
    let entries = s.layer_entries(forked.last().unwrap());
    for e in &entries {
        for banned in [
            "root/.ssh",
            ".git-credentials",
            "config/gh",
            ".claude",
            ".codex",
            ".gemini",
            "opencode",
            ".netrc",
            ".npmrc",
            ".pypirc",
            ".aws",
            ".docker",
            "bash_history",
            "python_history",
            ".cache",
            "root/.npm/",
            "User/globalStorage",
            "config/code-server",
            "workspace",
            "projects",
            "tmp/",
            "machine-id",
            "boot-inventory",
            "ssh_host_",
            "var/lib/apt/lists",
            "var/cache/apt/archives/",
        ] {
            assert!(!e.contains(banned), "{e} is in the layer");
        }
    }
    assert!(
        entries.iter().any(|e| e == "usr/games/cowsay"),
        "{entries:?}"
    );
    assert!(
        entries.iter().any(|e| e == "etc/.wh.motd"),
        "a deletion is a whiteout"
    );
    assert!(
        entries.iter().any(|e| e == "srv/app/.wh..wh..opq"),
        "a replaced dir stays opaque"
    );
    let blob = s
        .root()
        .join("blobs/sha256")
        .join(forked.last().unwrap().trim_start_matches("sha256:"));
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(fs::File::open(&blob).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    for secret in SECRETS.iter().take(11) {
        assert!(!text.contains(secret), "{secret} leaked into the layer");
    }
    for marker in &markers {
        assert!(
            !text.contains(marker.as_str()),
            "{marker} leaked into the layer"
        );
    }

    // podman runs the forked image: cowsay, the pip package, the npm binary.
    let pod = s.dir.path().join("podman");
    let _guard = PodmanStorage(&pod);
    let out = podman_run(
        &pod,
        &s.root(),
        "forked:latest",
        &[
            "sh",
            "-c",
            "/usr/games/cowsay moo >/dev/null && python3 -c 'import toml; print(toml.__version__)' && semver 1.2.3",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0.10.2\n1.2.3\n");

    // The recipe rebuilds an image with the same packages.
    let text = fs::read_to_string(&recipe_out).unwrap();
    assert!(
        text.contains("cowsay") && text.contains("toml==0.10.2") && text.contains("semver@7.6.3"),
        "{text}"
    );
    // code-server is skipped here, so the extension cannot be installed at rebuild.
    let text = text.replace(
        "\n[vscode]\nextensions = [\"boxwright-test.hello@1.2.3\"]\n",
        "\n",
    );
    fs::write(&recipe_out, text).unwrap();
    let r = s.bw(&["build", recipe_out.to_str().unwrap(), "-t", "rebuilt"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = podman_run(
        &pod,
        &s.root(),
        "rebuilt:latest",
        &[
            "sh",
            "-c",
            "/usr/games/cowsay moo >/dev/null && python3 -c 'import toml' && semver 1.2.3",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.bw(&["rm", "-f", "dev"]).ok();
}

/// A busybox image whose step makes /srv/app with two files.
fn busybox_store() -> Store {
    let s = Store::new();
    let r = write_recipe(
        s.dir.path(),
        "b.toml",
        &format!(
            "{}[[steps]]\nrun = \"mkdir -p /srv/app && echo a > /srv/app/a && echo b > /srv/app/b\"\n",
            busybox_base()
        ),
    );
    s.bw(&["build", r.to_str().unwrap(), "-t", "bb"]).ok();
    s
}

#[test]
fn deletions_opaque_dirs_forks_of_forks_no_change_and_dry_runs() {
    let s = busybox_store();
    s.bw(&["run", "--name", "one", "bb", "sh", "-c",
        "rm /etc/group && rm -rf /srv/app && mkdir /srv/app && echo n > /srv/app/new && echo t > /opt-tool"]).ok();
    // A dry run writes nothing.
    let before = s.blobs();
    let dry = s.bw(&["fork", "one", "--dry-run"]).ok();
    assert!(dry.stdout.contains("deleted: 2 paths"), "{}", dry.stdout);
    assert_eq!(s.blobs(), before);
    assert!(s.bw(&["inspect", "one-fork"]).code != 0);
    s.bw(&["fork", "one", "-t", "one-fork"]).ok();
    let layers = s.layers("one-fork");
    let entries = s.layer_entries(layers.last().unwrap());
    assert!(
        entries.contains(&"etc/.wh.group".to_string()),
        "{entries:?}"
    );
    assert!(
        entries.contains(&"srv/app/.wh..wh..opq".to_string()),
        "{entries:?}"
    );
    assert!(entries.contains(&"srv/app/new".to_string()));
    assert!(entries.contains(&"opt-tool".to_string()));
    // The forked image runs with the changes: /srv/app holds only the new file.
    let r = s
        .bw(&[
            "run",
            "--rm",
            "one-fork",
            "sh",
            "-c",
            "ls /srv/app; test ! -e /etc/group && cat /opt-tool",
        ])
        .ok();
    assert_eq!(r.stdout, "new\nt\n");

    // A fork of a fork: one more layer on top, the rest identical.
    s.bw(&[
        "run",
        "--name",
        "two",
        "one-fork",
        "sh",
        "-c",
        "echo 2 > /second",
    ])
    .ok();
    s.bw(&["fork", "two", "-t", "two-fork"]).ok();
    let two = s.layers("two-fork");
    assert_eq!(two.len(), layers.len() + 1);
    assert_eq!(&two[..layers.len()], &layers[..]);
    let r = s
        .bw(&[
            "run",
            "--rm",
            "two-fork",
            "sh",
            "-c",
            "cat /second /opt-tool",
        ])
        .ok();
    assert_eq!(r.stdout, "2\nt\n");

    // No change (only excluded paths touched): no image, a clear message.
    s.bw(&[
        "run",
        "--name",
        "idle",
        "bb",
        "sh",
        "-c",
        "echo x > /tmp/scratch; echo h > /root/.ash_history",
    ])
    .ok();
    let r = s.bw(&["fork", "idle", "-t", "idle-fork"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("nothing changed in idle") && r.stderr.contains("--allow-empty"),
        "{}",
        r.stderr
    );
    assert!(s.bw(&["inspect", "idle-fork"]).code != 0);
    s.bw(&["fork", "idle", "-t", "idle-fork", "--allow-empty"])
        .ok();
    assert_eq!(s.layers("idle-fork").len(), s.layers("bb").len() + 1);
    // --exclude leaves more out; a relative glob is an input error.
    let r = s
        .bw(&[
            "fork",
            "one",
            "--dry-run",
            "--json",
            "--exclude",
            "/opt-tool",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        v["excluded"]["matched"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "/opt-tool"),
        "{v}"
    );
    assert_eq!(
        s.bw(&["fork", "one", "--dry-run", "--exclude", "opt"]).code,
        2
    );
    assert_eq!(s.bw(&["fork", "nosuch", "-t", "x"]).code, 2);
}

/// Where overlay cannot be mounted a sandbox runs on a copy of the image's
/// tree, as builds fall back; `--diff snapshot` forces it, as it does for
/// `build`. Its changes live in the tree, survive a restart, and fork finds
/// them by the snapshot diff.
#[test]
fn a_sandbox_on_the_copied_tree_fallback_keeps_and_forks_its_changes() {
    let s = busybox_store();
    let r = s
        .bw(&[
            "run",
            "-d",
            "--diff",
            "snapshot",
            "--name",
            "copy",
            "bb",
            "sh",
            "-c",
            "while true; do sleep 1; done",
        ])
        .ok();
    assert_eq!(r.stdout.trim(), "copy");
    let dir = s.dir.path().join("store.state/sandboxes/copy");
    assert!(dir.join("tree/bin/busybox").is_file(), "no copied tree");
    assert!(dir.join("snapshot.json").is_file());
    assert!(!dir.join("upper").exists(), "an overlay upperdir was made");
    s.bw(&[
        "exec",
        "copy",
        "sh",
        "-c",
        "mkdir -p /opt/tool && echo v1 > /opt/tool/bin && rm /etc/group && rm -rf /srv/app && mkdir /srv/app && echo n > /srv/app/new",
    ])
    .ok();
    // The change is made in the tree itself, and ps sizes it.
    assert_eq!(
        fs::read_to_string(dir.join("tree/opt/tool/bin")).unwrap(),
        "v1\n"
    );
    let ps = s.bw(&["ps", "-a", "--json"]).ok().stdout;
    let row: serde_json::Value = serde_json::from_str(ps.lines().next().unwrap()).unwrap();
    assert_eq!(row["changes_bytes"], 5, "{row}");

    // Stopped and started again, it keeps its changes.
    s.bw(&["stop", "-t", "1", "copy"]).ok();
    s.bw(&["start", "copy"]).ok();
    let r = s
        .bw(&["exec", "copy", "sh", "-c", "cat /opt/tool/bin; ls /srv/app"])
        .ok();
    assert_eq!(r.stdout, "v1\nnew\n");

    // Fork: exactly the change (mountpoints made for the sandbox are not
    // one), with the whiteout and opaque directory an overlay would give.
    let r = s.bw(&["fork", "copy", "-t", "copy-fork", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["deletions"], 2, "{v}");
    assert_eq!(v["other"]["files"], 2, "{v}");
    let layers = s.layers("copy-fork");
    assert_eq!(&layers[..layers.len() - 1], &s.layers("bb")[..]);
    let entries: BTreeSet<String> = s
        .layer_entries(layers.last().unwrap())
        .into_iter()
        .map(|e| e.trim_end_matches('/').to_string())
        .collect();
    let want: BTreeSet<String> = [
        "etc",
        "etc/.wh.group",
        "opt",
        "opt/tool",
        "opt/tool/bin",
        "srv",
        "srv/app",
        "srv/app/.wh..wh..opq",
        "srv/app/new",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(entries, want);
    s.bw(&["rm", "-f", "copy"]).ok();
    assert!(!dir.exists());

    // The forked image has the change (and runs on an overlay again).
    let r = s
        .bw(&[
            "run",
            "--rm",
            "copy-fork",
            "sh",
            "-c",
            "cat /opt/tool/bin; ls /srv/app; test ! -e /etc/group && echo no-group",
        ])
        .ok();
    assert_eq!(r.stdout, "v1\nnew\nno-group\n");
}

/// What each package manager writes for an install, without the managers
/// (busybox has none): the files the inventory reads.
const FAKE_INSTALLS: &str = r#"set -e
mkdir -p /var/lib/dpkg /var/lib/apt /etc/apt/keyrings /usr/lib/python3/dist-packages/toml-0.10.2.dist-info \
  /usr/lib/node_modules/semver /root/.local/share/code-server/extensions/boxwright-test.hello-1.2.3
printf 'Package: hello\nStatus: install ok installed\nVersion: 2.10-3\nArchitecture: amd64\n\nPackage: libhello\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n' > /var/lib/dpkg/status
printf 'Package: libhello\nArchitecture: amd64\nAuto-Installed: 1\n' > /var/lib/apt/extended_states
echo 'deb http://deb.debian.org/debian bookworm main' > /etc/apt/sources.list
echo key > /etc/apt/keyrings/x.gpg
printf 'Metadata-Version: 2.1\nName: toml\nVersion: 0.10.2\n' > /usr/lib/python3/dist-packages/toml-0.10.2.dist-info/METADATA
echo '{"name":"semver","version":"7.6.3"}' > /usr/lib/node_modules/semver/package.json
echo '{"name":"hello","publisher":"boxwright-test","version":"1.2.3"}' > /root/.local/share/code-server/extensions/boxwright-test.hello-1.2.3/package.json
"#;

/// `snapshot --sandbox NAME`: the inventory of a sandbox's tree as it is
/// now (its changes over its image), running or stopped, on an overlay or
/// on the copied-tree fallback.
#[test]
fn snapshot_of_a_sandbox_reads_its_changes_running_or_stopped() {
    let s = busybox_store();
    let snapshot = |name: &str| -> serde_json::Value {
        let r = s.bw(&["snapshot", "--sandbox", name]).ok();
        serde_json::from_str(&r.stdout).unwrap()
    };
    for diff in ["overlay", "snapshot"] {
        let name = format!("inv-{diff}");
        s.bw(&[
            "run", "-d", "--diff", diff, "--name", &name, "bb", "sleep", "1005",
        ])
        .ok();
        // Nothing installed yet: every section, each empty.
        let before = snapshot(&name);
        assert_eq!(before["format"], "boxwright-inventory/1");
        for k in [
            "dpkg",
            "apt_sources",
            "apt_keyrings",
            "apk",
            "pip",
            "npm",
            "vscode_extensions",
        ] {
            assert_eq!(before[k], serde_json::json!([]), "{diff} {k}: {before}");
        }
        s.bw(&["exec", &name, "sh", "-c", FAKE_INSTALLS]).ok();
        let running = snapshot(&name);
        assert_eq!(
            running["dpkg"],
            serde_json::json!([
                {"name": "hello", "version": "2.10-3", "arch": "amd64", "manual": true},
                {"name": "libhello", "version": "1.0", "arch": "amd64", "manual": false},
            ]),
            "{diff}: {running}"
        );
        assert_eq!(
            running["apt_sources"],
            serde_json::json!([{"file": "/etc/apt/sources.list", "entry": "deb http://deb.debian.org/debian bookworm main"}])
        );
        assert_eq!(
            running["apt_keyrings"],
            serde_json::json!(["/etc/apt/keyrings/x.gpg"])
        );
        assert_eq!(running["pip"][0]["name"], "toml", "{running}");
        assert_eq!(running["pip"][0]["version"], "0.10.2");
        assert_eq!(running["pip"][0]["site"], "/usr/lib/python3/dist-packages");
        assert_eq!(
            running["npm"],
            serde_json::json!([{"name": "semver", "version": "7.6.3", "prefix": "/usr/lib/node_modules"}])
        );
        assert_eq!(
            running["vscode_extensions"],
            serde_json::json!([{"id": "boxwright-test.hello", "version": "1.2.3", "dir": "/root/.local/share/code-server/extensions"}])
        );
        // Paused only while read: it still runs.
        s.bw(&["exec", &name, "true"]).ok();
        // Stopped, it reads the same.
        s.bw(&["stop", "-t", "1", &name]).ok();
        assert_eq!(snapshot(&name), running, "{diff}");
        s.bw(&["rm", &name]).ok();
    }
    // A missing sandbox is an input error; --root and --sandbox exclude each other.
    let r = s.bw(&["snapshot", "--sandbox", "nosuch"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nosuch"), "{}", r.stderr);
    assert_eq!(s.bw(&["snapshot", "--sandbox", "x", "--root", "/"]).code, 2);
}

#[test]
fn a_running_sandbox_is_paused_while_it_is_forked() {
    let s = busybox_store();
    // A writer that never stops: the fork still makes a consistent layer.
    s.bw(&[
        "run",
        "-d",
        "--name",
        "busy",
        "bb",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /c.tmp && mv /c.tmp /counter; done",
    ])
    .ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.bw(&["fork", "busy", "-t", "busy-fork"]).ok();
    // It runs on afterwards.
    let a = s.bw(&["exec", "busy", "cat", "/counter"]).ok().stdout;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let b = s.bw(&["exec", "busy", "cat", "/counter"]).ok().stdout;
    assert_ne!(a, b, "the sandbox was left paused");
    let r = s
        .bw(&[
            "run",
            "--rm",
            "--entrypoint",
            "",
            "busy-fork",
            "cat",
            "/counter",
        ])
        .ok();
    assert!(r.stdout.trim().parse::<u64>().is_ok(), "{:?}", r.stdout);
    s.bw(&["rm", "-f", "busy"]).ok();
}

/// A container podman ran, with the dev access entrypoint writing its
/// first-boot inventory: that inventory holds no apt sources or keyrings,
/// so the image's own are not reported as new.
#[test]
fn fork_of_a_container_podman_ran() {
    require_root("podman with the test configuration");
    let s = busybox_store();
    let apt = write_recipe(
        s.dir.path(),
        "apt.toml",
        "[image]\nbase = \"bb\"\n[[steps]]\nrun = \"mkdir -p /etc/apt/keyrings && echo 'deb http://deb.debian.org/debian bookworm main' > /etc/apt/sources.list && echo key > /etc/apt/keyrings/k.gpg\"\n",
    );
    s.bw(&["build", apt.to_str().unwrap(), "-t", "bbapt"]).ok();
    let pod = s.dir.path().join("podman");
    let _guard = PodmanStorage(&pod);
    let id = podman_pull(&pod, &s.root(), "bbapt:latest");
    let entrypoint = format!(
        "{}:/bw-entrypoint:ro",
        repo().join("recipes/scripts/entrypoint.sh").display()
    );
    sh(podman(&pod).args([
        "run",
        "--name",
        "c1",
        "--network",
        "none",
        "-v",
        &entrypoint,
        &id,
        "sh",
        "/bw-entrypoint",
        "sh",
        "-c",
        "echo from-podman > /usr/bin/podman-made && rm /etc/group && echo h > /root/.ash_history",
    ]));
    let upper = sh(podman(&pod).args([
        "inspect",
        "--format",
        "{{.GraphDriver.Data.UpperDir}}",
        "c1",
    ]));
    let upper = upper.trim();
    assert!(Path::new(upper).is_dir(), "{upper}");
    // What this image's entrypoint could tell: no package manager's files,
    // so empty lists; no apt sources or keyrings.
    let boot: serde_json::Value = serde_json::from_slice(
        &fs::read(Path::new(upper).join("var/lib/boxwright/boot-inventory.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        boot,
        serde_json::json!({"format": "boxwright-inventory/1", "dpkg": [], "pip": [], "npm": [], "vscode_extensions": []})
    );
    let r = s
        .bw(&["fork", "--upper", upper, "--image", "bbapt", "--dry-run"])
        .ok();
    assert!(r.stdout.contains("packages: no change\n"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("not compared (the boot inventory lacks them): apt_sources, apt_keyrings\n"),
        "{}",
        r.stdout
    );
    let r = s
        .bw(&[
            "fork",
            "--upper",
            upper,
            "--image",
            "bbapt",
            "-t",
            "from-podman",
            "--json",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["deletions"], 1, "{v}");
    assert_eq!(v["apt"]["new_sources"], serde_json::json!([]), "{v}");
    assert_eq!(v["apt"]["new_keyrings"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["not_compared"],
        serde_json::json!(["apt_sources", "apt_keyrings"])
    );
    let layers = s.layers("from-podman");
    assert_eq!(&layers[..layers.len() - 1], &s.layers("bbapt")[..]);
    let entries = s.layer_entries(layers.last().unwrap());
    assert!(
        entries.contains(&"usr/bin/podman-made".to_string()),
        "{entries:?}"
    );
    assert!(
        entries.contains(&"etc/.wh.group".to_string()),
        "{entries:?}"
    );
    assert!(
        !entries.iter().any(|e| e.contains("ash_history")),
        "{entries:?}"
    );
    let r = s
        .bw(&["run", "--rm", "from-podman", "cat", "/usr/bin/podman-made"])
        .ok();
    assert_eq!(r.stdout, "from-podman\n");
    sh(podman(&pod).args(["rm", "-f", "c1"]));
}

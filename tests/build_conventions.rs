//! What BuildKit, buildah and podman users expect of a build: secrets and
//! build args, labels, annotations, --iidfile, -q, component history lines,
//! COPY of a whole root filesystem, and one base resolver for recipes and
//! `--byoi` (registry names, local names, `oci:`, `oci-archive:`).

mod support;

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use support::*;

struct Store {
    dir: tempfile::TempDir,
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

    fn bw_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let root = self.root();
        let mut full = vec!["--store", root.to_str().unwrap()];
        full.extend_from_slice(args);
        boxwright_env(&full, env)
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.bw(&["inspect", name]).ok().stdout).unwrap()
    }

    /// Every file of the store and its state, decompressed when gzip.
    fn all_text(&self) -> String {
        let mut out = String::new();
        for dir in [self.root(), self.dir.path().join("store.state")] {
            for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
                if !e.file_type().is_file() {
                    continue;
                }
                let bytes = fs::read(e.path()).unwrap_or_default();
                let mut text = bytes.clone();
                if bytes.starts_with(&[0x1f, 0x8b]) {
                    text.clear();
                    let _ = flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut text);
                }
                out.push_str(&String::from_utf8_lossy(&text));
            }
        }
        out
    }
}

#[test]
fn secrets_reach_only_the_steps_that_ask_and_nothing_else() {
    let s = Store::new();
    let file_secret = s.dir.path().join("npmrc");
    fs::write(&file_secret, "file-secret-7f3a91\n").unwrap();
    let recipe = write_recipe(
        s.dir.path(),
        "r.toml",
        &format!(
            "{}[[steps]]\nrun = \"wc -c < /run/secrets/npmrc > /proof; echo ${{#TOKEN}} >> /proof; cat /run/secrets/npmrc; echo $TOKEN\"\n\
             secrets = [\"npmrc\", {{ id = \"tok\", env = \"TOKEN\" }}]\n\
             [[steps]]\nrun = \"test ! -e /run/secrets/npmrc && test -z \\\"$TOKEN\\\" && echo other > /other\"\n",
            busybox_base()
        ),
    );
    let secret_args = [
        "--secret",
        &format!("id=npmrc,src={}", file_secret.display()),
        "--secret",
        "id=tok,env=MY_TOKEN",
    ];
    let mut args = vec![
        "build",
        recipe.to_str().unwrap(),
        "-t",
        "sec",
        "--progress",
        "plain",
    ];
    args.extend_from_slice(&secret_args);
    let r = s.bw_env(&args, &[("MY_TOKEN", "env-secret-c0ffee")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The step saw both (19 bytes with the newline, 17 characters).
    let r = s.bw(&["run", "--rm", "sec", "cat", "/proof"]).ok();
    assert_eq!(r.stdout, "19\n17\n", "the step saw the values");
    // It printed them: its log shows them masked, and nothing stored has them.
    let log = s.bw(&["logs"]).ok().stdout;
    assert!(log.contains("1| ***") && !log.contains("c0ffee"), "{log}");
    let all = s.all_text();
    for v in ["file-secret-7f3a91", "env-secret-c0ffee"] {
        assert!(!all.contains(v), "{v} is stored in the store");
    }
    // A changed secret does not bust the cache.
    fs::write(&file_secret, "another-secret-value\n").unwrap();
    let r = s.bw_env(&args, &[("MY_TOKEN", "env-secret-c0ffee")]);
    assert!(r.stderr.contains("(all 2 steps cached)"), "{}", r.stderr);
    // A step asking for a secret nobody gave fails up front, naming it.
    let mut no_secret = vec!["build", recipe.to_str().unwrap(), "--no-cache"];
    no_secret.push("--secret");
    let npm = format!("id=npmrc,src={}", file_secret.display());
    no_secret.push(&npm);
    let r = s.bw(&no_secret);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("asks for the secret 'tok'"),
        "{}",
        r.stderr
    );
    assert_eq!(
        s.bw(&["build", recipe.to_str().unwrap(), "--secret", "nonsense"])
            .code,
        2
    );
}

#[test]
fn build_args_labels_annotations_iidfile_quiet_and_history() {
    let s = Store::new();
    let recipe = write_recipe(
        s.dir.path(),
        "r.toml",
        &format!(
            "{}[args]\nVERSION = \"1.0\"\nFLAVOR = \"plain\"\n[[steps]]\nrun = \"echo $VERSION-$FLAVOR > /v\"\n",
            busybox_base()
        ),
    );
    let iid = s.dir.path().join("iid");
    let r = s.bw(&[
        "build",
        recipe.to_str().unwrap(),
        "-t",
        "args",
        "-q",
        "--build-arg",
        "VERSION=2.5",
        "--label",
        "org.example.team=platform",
        "--annotation",
        "org.example.note=hello",
        "--iidfile",
        iid.to_str().unwrap(),
        "--no-recipe-annotation",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // -q: the digest alone on stdout, nothing on stderr.
    assert!(
        r.stdout.trim().starts_with("sha256:") && r.stdout.lines().count() == 1,
        "{}",
        r.stdout
    );
    assert_eq!(r.stderr, "");
    let v = s.bw(&["run", "--rm", "args", "cat", "/v"]).ok().stdout;
    assert_eq!(v, "2.5-plain\n");
    let inspect = s.inspect("args");
    let config = &inspect["config"];
    assert_eq!(config["config"]["Labels"]["org.example.team"], "platform");
    assert_eq!(
        inspect["manifest"]["annotations"]["org.example.note"],
        "hello"
    );
    assert!(
        inspect["manifest"]["annotations"]
            .get("io.boxwright.recipe")
            .is_none()
    );
    // The image id is the config digest, as podman's --iidfile writes it.
    assert_eq!(
        fs::read_to_string(&iid).unwrap(),
        inspect["manifest"]["config"]["digest"].as_str().unwrap()
    );
    // History names build args, never their values.
    let history = config["history"].to_string();
    assert!(
        history.contains("RUN --build-arg=FLAVOR,VERSION /bin/sh -c echo $VERSION-$FLAVOR"),
        "{history}"
    );
    assert!(!history.contains("2.5"), "{history}");
    // A build arg is part of the cache key; an undeclared one is ignored with a warning.
    let r = s
        .bw(&[
            "build",
            recipe.to_str().unwrap(),
            "--build-arg",
            "VERSION=3",
            "--build-arg",
            "NOPE=1",
            "--progress",
            "plain",
        ])
        .ok();
    assert!(r.stderr.contains("(0 of 1 step cached)"), "{}", r.stderr);
    assert!(
        r.stderr.contains("--build-arg NOPE is not declared"),
        "{}",
        r.stderr
    );
    assert_eq!(
        s.bw(&["build", recipe.to_str().unwrap(), "--label", "novalue"])
            .code,
        2
    );
}

#[test]
fn components_are_named_in_history_by_title_and_digest() {
    let s = Store::new();
    debian_base_in(s.dir.path());
    let recipe = write_recipe(
        s.dir.path(),
        "r.toml",
        "[image]\nbase = \"rootfs:minbase.tar\"\ndev_access = false\n[packages]\napt = [\"jq\"]\n",
    );
    s.bw(&[
        "build",
        recipe.to_str().unwrap(),
        "-t",
        "comp",
        "--network",
        "host",
    ])
    .ok();
    let history = s.inspect("comp")["config"]["history"].clone();
    let lines: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .collect();
    let pkgs = lines
        .iter()
        .find(|l| l.contains("system packages"))
        .expect("a packages step");
    assert!(
        pkgs.starts_with("RUN [boxwright] component system packages"),
        "{pkgs}"
    );
    assert!(pkgs.contains(" sha256:") && pkgs.len() < 200, "{pkgs}");
    assert!(
        lines.iter().all(|l| !l.contains("bw_pkg_install()")),
        "no shell library in history: {lines:?}"
    );
}

#[test]
fn copy_of_a_whole_root_filesystem_writes_the_layer() {
    require_root("extracting a tree with device nodes");
    let s = Store::new();
    let tree = s.dir.path().join("rootfs");
    fs::create_dir_all(&tree).unwrap();
    sh(Command::new("tar")
        .arg("-xf")
        .arg(debian_base())
        .arg("-C")
        .arg(&tree));
    fs::write(tree.join("etc/resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
    let recipe = write_recipe(
        s.dir.path(),
        "r.toml",
        "[image]\nbase = \"scratch\"\n[[steps]]\ncopy = { src = \"rootfs\", dest = \"/\" }\n",
    );
    let r = s
        .bw(&[
            "build",
            recipe.to_str().unwrap(),
            "-t",
            "tree",
            "--progress",
            "plain",
        ])
        .ok();
    assert!(
        r.stderr.contains("COPY left out") && r.stderr.contains("/dev/null"),
        "one warning names the devices: {}",
        r.stderr
    );
    let inspect = s.inspect("tree");
    let layer = inspect["manifest"]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let listing = sh(Command::new("tar")
        .arg("-tzf")
        .arg(s.root().join("blobs/sha256").join(&layer)));
    let mut in_layer: Vec<String> = listing
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    in_layer.sort();
    let found = sh(Command::new("find")
        .arg(".")
        .args([
            "-mindepth",
            "1",
            "!",
            "-type",
            "c",
            "!",
            "-type",
            "b",
            "!",
            "-type",
            "s",
        ])
        .current_dir(&tree));
    let mut in_tree: Vec<String> = found
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect();
    in_tree.sort();
    assert_eq!(in_layer, in_tree, "the layer holds the tree's files");
    // The copied resolver file is the layer's, not the build host's.
    let r = s
        .bw(&[
            "run",
            "--rm",
            "--network",
            "none",
            "tree",
            "cat",
            "/etc/resolv.conf",
        ])
        .ok();
    assert_eq!(r.stdout, "nameserver 192.0.2.53\n");
}

#[test]
fn one_base_resolver_for_recipes_and_byoi() {
    let s = Store::new();
    let made = write_recipe(
        s.dir.path(),
        "base.toml",
        &format!(
            "{}[[steps]]\nrun = \"echo base > /base-marker\"\n",
            busybox_base()
        ),
    );
    s.bw(&["build", made.to_str().unwrap(), "-t", "localbase"])
        .ok();
    let layout = s.dir.path().join("layout");
    let archive = s.dir.path().join("base.tar");
    sh(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:localbase:latest", s.root().display()),
        &format!("oci:{}:v1", layout.display()),
    ]));
    s.bw(&["save", "localbase", "-o", archive.to_str().unwrap()])
        .ok();
    let marker = |name: &str| {
        s.bw(&["run", "--rm", name, "cat", "/base-marker"])
            .ok()
            .stdout
    };
    let layers = |name: &str| s.inspect(name)["manifest"]["layers"].clone();
    // Recipes: a local name, oci:DIR:TAG, oci-archive:FILE.
    for (i, base) in [
        "localbase".to_string(),
        format!("oci:{}:v1", layout.display()),
        format!("oci-archive:{}", archive.display()),
    ]
    .iter()
    .enumerate()
    {
        let r = write_recipe(
            s.dir.path(),
            &format!("c{i}.toml"),
            &format!("[image]\nbase = \"{base}\"\n[[steps]]\nrun = \"echo child > /child\"\n"),
        );
        s.bw(&["build", r.to_str().unwrap(), "-t", &format!("child{i}")])
            .ok();
        assert_eq!(marker(&format!("child{i}")), "base\n", "{base}");
        assert_eq!(
            layers(&format!("child{i}")),
            layers("child0"),
            "{base}: the same image"
        );
    }
    // --byoi takes the same forms and means a recipe with that base: it
    // reaches the dev access step (which needs a package manager busybox lacks).
    for base in [
        "localbase".to_string(),
        format!("oci:{}:v1", layout.display()),
        format!("oci-archive:{}", archive.display()),
    ] {
        let r = s.bw(&[
            "build",
            "--byoi",
            &base,
            "--progress",
            "plain",
            "--skip",
            "code-server",
            "--skip",
            "ttyd",
            "--skip",
            "gh",
            "--skip",
            "claude-code",
        ]);
        assert_eq!(r.code, 1, "{base}: {}", r.stderr);
        assert!(
            r.stderr.contains("has no supported package manager"),
            "{base}: {}",
            r.stderr
        );
    }
    let r = s.bw(&["build", "--byoi", "scratch"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = s.bw(&["build", "--byoi", "oci-archive:/no/such.tar"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

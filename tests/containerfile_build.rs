//! `boxwright build` of Containerfiles against buildah: every case under
//! tests/containerfiles/build/ is built by both tools from the same context,
//! and the two images must hold the same file tree (path, type, permission
//! bits, owner, symlink target, content digest; not mtimes) and the same
//! config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes,
//! Labels, StopSignal, Healthcheck, OnBuild).
//!
//! A case is a directory with a `Containerfile` and its context files, and
//! optionally:
//! - `args`: extra arguments for both tools, one per line; `@CASE@` is the
//!   case directory (for `--secret id=X,src=@CASE@/file`);
//! - `buildah.Containerfile`: the same build written for buildah 1.28 (the
//!   Debian bookworm one, which lacks heredocs, `--link`, `--parents`,
//!   `--exclude`, `RUN --network`, secret `env=` and `ADD --checksum`),
//!   used by buildah only; its header says what it works around;
//! - `buildah.args`: extra arguments for buildah only;
//! - `served/`: files served over HTTP on 127.0.0.1, whose address both
//!   tools get as `--build-arg HTTP=http://127.0.0.1:PORT`.
//!
//! Bases: the busybox fixture and the Debian minbase are pushed once to the
//! test registry (`$BOXWRIGHT_TEST_REGISTRY`, 127.0.0.1:5000 by default;
//! `scripts/testbed.sh registries` starts it) as `cf/busybox:1` and
//! `cf/debian:1`, and given as `--build-arg BASE=...` / `DEBIAN=...`.
//!
//! Differences that are only tool artifacts are dropped by the named rules in
//! [`ARTIFACT_RULES`]; anything else is reported as a difference.
//!
//! The file also holds the multi-stage C build (`--target`, stages that are
//! never needed are never run) and the error cases (one `FILE:LINE:COL:`
//! line, exit code 2, nothing stored).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use support::*;

// ---------------------------------------------------------------------------
// The cases

macro_rules! cases {
    ($($test:ident => $dir:literal,)*) => {
        /// Every case directory, in order (checked against the corpus).
        const CASES: &[&str] = &[$($dir),*];
        $(
            #[test]
            fn $test() {
                compare_case($dir);
            }
        )*
    };
}

cases! {
    cf01_directives_escape_syntax => "01-directives-escape-syntax",
    cf02_arg_scopes => "02-arg-scopes",
    cf03_platform_args => "03-platform-args",
    cf04_from_scratch => "04-from-scratch",
    cf05_copy_from_image_ref => "05-copy-from-image-ref",
    cf06_multistage_named_index => "06-multistage-named-index",
    cf07_run_shell_exec_forms => "07-run-shell-exec-forms",
    cf08_run_cache_mount => "08-run-cache-mount",
    cf09_run_secret_mount => "09-run-secret-mount",
    cf10_run_bind_mount => "10-run-bind-mount",
    cf11_dockerignore => "11-dockerignore",
    cf12_copy_globs_multi => "12-copy-globs-multi",
    cf13_chown_chmod => "13-chown-chmod",
    cf14_add_local_archives => "14-add-local-archives",
    cf15_env_forms => "15-env-forms",
    cf16_workdir => "16-workdir",
    cf17_user_home => "17-user-home",
    cf18_expose_label => "18-expose-label",
    cf19_cmd_entrypoint_exec => "19-cmd-entrypoint-exec",
    cf20_entrypoint_shell_form => "20-entrypoint-shell-form",
    cf21_cmd_shell_form => "21-cmd-shell-form",
    cf22_shell_instruction => "22-shell-instruction",
    cf23_volume_stopsignal => "23-volume-stopsignal",
    cf24_healthcheck => "24-healthcheck",
    cf25_healthcheck_none => "25-healthcheck-none",
    cf26_onbuild => "26-onbuild",
    cf27_variable_expansion => "27-variable-expansion",
    cf28_heredocs => "28-heredocs",
    cf29_copy_link_parents_exclude => "29-copy-link-parents-exclude",
    cf30_run_network_none_secret_env => "30-run-network-none-secret-env",
    cf31_add_url_checksum => "31-add-url-checksum",
    cf32_copy_dir_symlink_semantics => "32-copy-dir-symlink-semantics",
    cf33_whiteouts => "33-whiteouts",
    cf34_debian_apt_install => "34-debian-apt-install",
    cf35_debian_apt_cache_mount => "35-debian-apt-cache-mount",
}

fn corpus() -> PathBuf {
    repo().join("tests/containerfiles/build")
}

#[test]
fn every_case_directory_is_listed() {
    let mut dirs: Vec<String> = fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs, CASES,
        "the cases! list must name every case directory"
    );
    for d in &dirs {
        assert!(
            corpus().join(d).join("Containerfile").is_file(),
            "{d} has no Containerfile"
        );
    }
}

// ---------------------------------------------------------------------------
// Environment: registry, bases, buildah

fn registry() -> &'static str {
    static REG: OnceLock<String> = OnceLock::new();
    REG.get_or_init(|| {
        let host =
            std::env::var("BOXWRIGHT_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
        require_tool("curl", "curl");
        let code = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://{host}/v2/"))
            .output()
            .expect("curl");
        assert_eq!(
            String::from_utf8_lossy(&code.stdout),
            "200",
            "no registry answers on {host}: start it with `sudo scripts/testbed.sh registries`"
        );
        host
    })
}

/// `REGISTRY/cf/busybox:1`, pushed once per test process.
fn busybox_ref() -> &'static str {
    static REF: OnceLock<String> = OnceLock::new();
    REF.get_or_init(|| {
        let dest = format!("{}/cf/busybox:1", registry());
        let t = tempfile::tempdir().unwrap();
        push_umoci_image(t.path(), &busybox_tar(), &[], &dest);
        dest
    })
}

/// `REGISTRY/cf/debian:1`, pushed once per test process.
fn debian_ref() -> &'static str {
    static REF: OnceLock<String> = OnceLock::new();
    REF.get_or_init(|| {
        let dest = format!("{}/cf/debian:1", registry());
        let t = tempfile::tempdir().unwrap();
        push_umoci_image(t.path(), &debian_base(), &[], &dest);
        dest
    })
}

/// The directory of buildah's private configuration and storage: kept
/// between runs under the test cache (like the Debian base), pruned of
/// dangling images once per process so it does not grow.
fn buildah_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require_root("buildah with private storage");
        require_tool("buildah", "buildah");
        let cache = PathBuf::from(
            std::env::var("BOXWRIGHT_TEST_CACHE")
                .unwrap_or_else(|_| "/var/tmp/boxwright-test-cache".into()),
        );
        let dir = cache.join("buildah-containerfiles");
        fs::create_dir_all(&dir).unwrap();
        let conf = fs::read_to_string(repo().join("tests/testbed/containers.conf"))
            .unwrap()
            .replace("/tmp/boxwright-test-podman", &dir.display().to_string());
        fs::write(dir.join("containers.conf"), conf).unwrap();
        fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/runroot\"\n",
                dir.display()
            ),
        )
        .unwrap();
        let _ = buildah_in(&dir).args(["rmi", "--prune", "--force"]).output();
        dir
    })
}

fn buildah_in(dir: &Path) -> Command {
    let mut cmd = Command::new("buildah");
    cmd.env("CONTAINERS_CONF", dir.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
        .env(
            "CONTAINERS_REGISTRIES_CONF",
            repo().join("tests/testbed/registries.conf"),
        );
    cmd
}

fn buildah() -> Command {
    buildah_in(buildah_dir())
}

/// Runs a command; on failure panics with what it printed.
fn run_ok(what: &str, cmd: &mut Command) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{cmd:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// One case

struct Case {
    name: String,
    dir: PathBuf,
    /// Arguments for both tools (build args, secrets, ...).
    common: Vec<String>,
    buildah_file: PathBuf,
    buildah_extra: Vec<String>,
    /// buildah drops HEALTHCHECK, ONBUILD and SHELL from OCI-format images.
    docker_format: bool,
}

fn lines_of(path: &Path, case_dir: &Path) -> Vec<String> {
    match fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.replace("@CASE@", &case_dir.display().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn uses_arg(text: &str, arg: &str) -> bool {
    text.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next().is_some_and(|k| k.eq_ignore_ascii_case("ARG"))
            && w.next().is_some_and(|a| a.split('=').next() == Some(arg))
    })
}

impl Case {
    fn load(name: &str, http: Option<&str>) -> Case {
        let dir = corpus().join(name);
        let text = fs::read_to_string(dir.join("Containerfile")).unwrap();
        let mut common = Vec::new();
        if uses_arg(&text, "BASE") {
            common.extend(["--build-arg".into(), format!("BASE={}", busybox_ref())]);
        }
        if uses_arg(&text, "DEBIAN") {
            common.extend(["--build-arg".into(), format!("DEBIAN={}", debian_ref())]);
        }
        if let Some(h) = http {
            common.extend(["--build-arg".into(), format!("HTTP={h}")]);
        }
        common.extend(lines_of(&dir.join("args"), &dir));
        let own = dir.join("buildah.Containerfile");
        let buildah_file = if own.exists() {
            own
        } else {
            dir.join("Containerfile")
        };
        let btext = fs::read_to_string(&buildah_file).unwrap();
        let docker_format = btext.lines().any(|l| {
            let k = l
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            k == "HEALTHCHECK" || k == "ONBUILD" || k == "SHELL"
        });
        Case {
            name: name.into(),
            buildah_extra: lines_of(&dir.join("buildah.args"), &dir),
            dir,
            common,
            buildah_file,
            docker_format,
        }
    }
}

/// An image as both tools' results are compared: the merged file tree and
/// the config.
struct Image {
    tree: Tree,
    config: Value,
}

fn buildah_side(case: &Case, work: &Path) -> Result<Image, String> {
    let tag = format!("localhost/cf-{}:latest", case.name);
    let mut cmd = buildah();
    cmd.args(["build", "--layers", "--pull", "-q"]);
    if !case.buildah_extra.iter().any(|a| a == "--isolation") {
        cmd.args(["--isolation", "chroot"]);
    }
    cmd.args([
        "--format",
        if case.docker_format { "docker" } else { "oci" },
    ]);
    cmd.arg("-f").arg(&case.buildah_file);
    cmd.args(&case.common).args(&case.buildah_extra);
    cmd.args(["-t", &tag]).arg(&case.dir);
    let o = cmd.output().expect("buildah build");
    if !o.status.success() {
        return Err(format!(
            "buildah build failed ({}):\n{cmd:?}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let layout = work.join("buildah-oci");
    run_ok(
        "buildah push",
        buildah()
            .args(["push", "-q", &tag])
            .arg(format!("oci:{}:img", layout.display())),
    );
    // The config from buildah's own record: an OCI layout cannot carry the
    // Docker-only fields (Healthcheck, OnBuild, Shell).
    let inspect: Value = serde_json::from_str(&run_ok(
        "buildah inspect",
        buildah().args(["inspect", "--type", "image", &tag]),
    ))
    .unwrap();
    let config = if case.docker_format {
        inspect["Docker"]["config"].clone()
    } else {
        inspect["OCIv1"]["config"].clone()
    };
    let (tree, _) = read_layout(&layout, "img")?;
    Ok(Image { tree, config })
}

fn boxwright_side(case: &Case, work: &Path) -> Result<Image, String> {
    let store = work.join("store");
    let tag = format!("cf-{}", case.name);
    let mut args: Vec<String> = vec![
        "--store".into(),
        store.display().to_string(),
        "build".into(),
        "-t".into(),
        tag.clone(),
        "--progress".into(),
        "plain".into(),
    ];
    args.extend(case.common.iter().cloned());
    args.push(case.dir.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = boxwright(&argv);
    if run.code != 0 {
        return Err(format!(
            "boxwright build failed (exit {}):\nboxwright {}\nstdout:\n{}\nstderr:\n{}",
            run.code,
            args.join(" "),
            run.stdout,
            tail(&run.stderr, 60)
        ));
    }
    let (tree, config) = read_layout(&store, &format!("{tag}:latest"))?;
    Ok(Image {
        tree,
        config: config["config"].clone(),
    })
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn compare_case(name: &str) {
    let served = corpus().join(name).join("served");
    let server = served.is_dir().then(|| {
        let mut files = BTreeMap::new();
        for e in fs::read_dir(&served).unwrap() {
            let e = e.unwrap();
            files.insert(
                format!("/{}", e.file_name().to_string_lossy()),
                fs::read(e.path()).unwrap(),
            );
        }
        file_server::Server::start(files)
    });
    let case = Case::load(name, server.as_ref().map(|s| s.addr.as_str()));
    let mut work = tempfile::Builder::new()
        .prefix(&format!("boxwright-cf-{name}-"))
        .tempdir_in("/tmp")
        .unwrap();
    // BOXWRIGHT_CF_KEEP=1 keeps the layouts and both trees (buildah.tree,
    // boxwright.tree) for a closer look.
    let keep = std::env::var_os("BOXWRIGHT_CF_KEEP").is_some();
    work.disable_cleanup(keep);
    let (theirs, ours) = std::thread::scope(|s| {
        let b = s.spawn(|| buildah_side(&case, work.path()));
        let o = s.spawn(|| boxwright_side(&case, work.path()));
        (b.join().unwrap(), o.join().unwrap())
    });
    let theirs = theirs.unwrap_or_else(|e| panic!("{name}: the reference side failed: {e}"));
    let ours = ours.unwrap_or_else(|e| panic!("{name}: {e}"));
    if keep {
        for (file, tree) in [
            ("buildah.tree", &theirs.tree),
            ("boxwright.tree", &ours.tree),
        ] {
            let text: String = tree.iter().map(|(p, n)| format!("{p}  {n}\n")).collect();
            fs::write(work.path().join(file), text).unwrap();
        }
        eprintln!("{name}: kept {}", work.path().display());
    }
    let mut texts = fs::read_to_string(case.dir.join("Containerfile")).unwrap();
    texts.push_str(&fs::read_to_string(&case.buildah_file).unwrap());
    let cx = RuleContext {
        mount_paths: mount_paths(&texts),
        buildah: &theirs.tree,
    };
    let mut report = Vec::new();
    let mut dropped = BTreeMap::new();
    compare_trees(&theirs.tree, &ours.tree, &cx, &mut report, &mut dropped);
    compare_configs(&theirs.config, &ours.config, &mut report);
    for (rule, paths) in &dropped {
        eprintln!("{name}: artifact rule {rule} dropped {}", paths.join(" "));
    }
    assert!(
        report.is_empty(),
        "{name}: boxwright's image differs from buildah's ({} difference(s); \
         `-` buildah, `+` boxwright):\n{}",
        report.len(),
        report.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Reading an OCI layout into a merged tree

/// One path of an image's file system once all layers are applied.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Node {
    /// file, dir, symlink, char, block, fifo
    kind: &'static str,
    /// permission bits (with setuid, setgid, sticky)
    mode: u32,
    uid: u64,
    gid: u64,
    /// sha256 of a file's content, a symlink's target, a device's numbers
    detail: String,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:04o} {}:{}",
            self.kind, self.mode, self.uid, self.gid
        )?;
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        Ok(())
    }
}

type Tree = BTreeMap<String, Node>;

fn blob(layout: &Path, digest: &str) -> Result<Vec<u8>, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("not a sha256 digest: {digest}"))?;
    fs::read(layout.join("blobs/sha256").join(hex))
        .map_err(|e| format!("{}: blob {digest}: {e}", layout.display()))
}

fn json_blob(layout: &Path, digest: &str) -> Result<Value, String> {
    serde_json::from_slice(&blob(layout, digest)?).map_err(|e| format!("blob {digest}: {e}"))
}

/// The merged file tree and the config of image `tag` in the OCI layout.
fn read_layout(layout: &Path, tag: &str) -> Result<(Tree, Value), String> {
    let index: Value = serde_json::from_slice(
        &fs::read(layout.join("index.json"))
            .map_err(|e| format!("{}/index.json: {e}", layout.display()))?,
    )
    .map_err(|e| e.to_string())?;
    let desc = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .ok_or_else(|| format!("no {tag} in {}: {index}", layout.display()))?;
    let mut manifest = json_blob(layout, desc["digest"].as_str().unwrap_or(""))?;
    if manifest.get("manifests").is_some() {
        // An index: the linux/amd64 manifest.
        let inner = manifest["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["platform"]["architecture"] == "amd64" || d.get("platform").is_none())
            .cloned()
            .ok_or_else(|| format!("{tag}: no amd64 manifest in {manifest}"))?;
        manifest = json_blob(layout, inner["digest"].as_str().unwrap_or(""))?;
    }
    let config = json_blob(layout, manifest["config"]["digest"].as_str().unwrap_or(""))?;
    let mut tree = Tree::new();
    for l in manifest["layers"].as_array().into_iter().flatten() {
        let bytes = blob(layout, l["digest"].as_str().unwrap_or(""))?;
        apply_layer(&mut tree, &bytes).map_err(|e| format!("{tag}: layer {}: {e}", l["digest"]))?;
    }
    Ok((tree, config))
}

fn decompress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| format!("gunzip: {e}"))?;
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(bytes)
            .and_then(|mut d| d.read_to_end(&mut out))
            .map_err(|e| format!("unzstd: {e}"))?;
    } else {
        out = bytes.to_vec();
    }
    Ok(out)
}

/// `/a/b` from a tar member name (`./a/b/`, `a/b`, ...); `/` for the root.
fn clean(name: &str) -> String {
    let mut parts = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn remove_below(tree: &mut Tree, dir: &str, including: bool) {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = tree
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        tree.remove(&k);
    }
    if including {
        tree.remove(dir);
    }
}

/// Applies one layer (OCI whiteouts: `.wh.NAME` and `.wh..wh..opq` act on
/// the lower layers only, so they go first).
fn apply_layer(tree: &mut Tree, compressed: &[u8]) -> Result<(), String> {
    let bytes = decompress(compressed)?;
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut entries: Vec<(String, Option<Node>, Option<String>)> = Vec::new();
    let mut whiteouts = Vec::new();
    for e in archive.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let path = clean(&raw);
        let base = path.rsplit('/').next().unwrap_or("");
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let dir = parent(&path).to_string();
            if hidden == ".wh..opq" {
                whiteouts.push((dir, None));
            } else {
                let target = if dir == "/" {
                    format!("/{hidden}")
                } else {
                    format!("{dir}/{hidden}")
                };
                whiteouts.push((dir, Some(target)));
            }
            continue;
        }
        let h = e.header();
        let mode = h.mode().map_err(|e| e.to_string())? & 0o7777;
        let uid = h.uid().map_err(|e| e.to_string())?;
        let gid = h.gid().map_err(|e| e.to_string())?;
        let et = h.entry_type();
        let link = e
            .link_name()
            .map_err(|e| e.to_string())?
            .map(|l| l.to_string_lossy().into_owned());
        let (kind, detail, hardlink) = if et.is_dir() {
            ("dir", String::new(), None)
        } else if et.is_symlink() {
            ("symlink", format!("-> {}", link.unwrap_or_default()), None)
        } else if et.is_hard_link() {
            (
                "file",
                String::new(),
                Some(clean(&link.unwrap_or_default())),
            )
        } else if et.is_character_special() || et.is_block_special() {
            let dev = format!(
                "{}:{}",
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0)
            );
            (
                if et.is_character_special() {
                    "char"
                } else {
                    "block"
                },
                dev,
                None,
            )
        } else if et.is_fifo() {
            ("fifo", String::new(), None)
        } else if et.is_file() || et == tar::EntryType::Continuous {
            let mut hasher = Sha256::new();
            let mut buf = [0u8; 65536];
            loop {
                let n = e.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            (
                "file",
                format!("sha256:{}", hex::encode(hasher.finalize())),
                None,
            )
        } else {
            // PAX/GNU extension records are consumed by the tar reader.
            continue;
        };
        entries.push((
            path,
            Some(Node {
                kind,
                mode,
                uid,
                gid,
                detail,
            }),
            hardlink,
        ));
    }
    for (dir, target) in whiteouts {
        match target {
            None => remove_below(tree, &dir, false),
            Some(t) => remove_below(tree, &t, true),
        }
    }
    for (path, node, hardlink) in entries {
        let mut node = node.unwrap();
        if let Some(target) = hardlink {
            match tree.get(&target) {
                Some(t) => node = t.clone(),
                None => {
                    node.kind = "dangling-hardlink";
                    node.detail = format!("=> {target}");
                }
            }
        }
        if path != "/" {
            // Parents an unpacker would have to make (0755 root).
            let mut p = parent(&path).to_string();
            let mut missing = Vec::new();
            while p != "/" && !tree.contains_key(&p) {
                missing.push(p.clone());
                p = parent(&p).to_string();
            }
            for m in missing {
                tree.insert(
                    m,
                    Node {
                        kind: "dir",
                        mode: 0o755,
                        uid: 0,
                        gid: 0,
                        detail: String::new(),
                    },
                );
            }
        }
        if node.kind != "dir" {
            // A non-directory replaces a directory and all it held.
            if tree.get(&path).is_some_and(|n| n.kind == "dir") {
                remove_below(tree, &path, true);
            }
        }
        tree.insert(path, node);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Comparison

/// What the artifact rules know of a case besides the two trees.
struct RuleContext<'a> {
    /// The targets of the `RUN --mount`s of both Containerfiles (a secret's
    /// default one too) and all their ancestors.
    mount_paths: BTreeSet<String>,
    buildah: &'a Tree,
}

/// A difference that comes from how buildah builds, not from what the
/// Containerfile asks for. A rule only ever drops a path one image does not
/// have (boxwright's, except for the documented package-cache rule).
struct ArtifactRule {
    name: &'static str,
    /// Whether the difference at `path` (buildah's node, boxwright's node)
    /// is this artifact.
    applies:
        fn(cx: &RuleContext, path: &str, buildah: Option<&Node>, boxwright: Option<&Node>) -> bool,
}

fn empty_file(n: &Node) -> bool {
    n.kind == "file" && n.detail == EMPTY_SHA256
}

const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const ARTIFACT_RULES: &[ArtifactRule] = &[
    // buildah bind-mounts its own /etc/hosts and /etc/resolv.conf (and
    // /etc/hostname) into every RUN and leaves the empty files it mounted
    // over in the layer; Docker's builders write none (so: leave them
    // out of tree comparisons).
    ArtifactRule {
        name: "buildah-run-etc-stubs",
        applies: |_, path, buildah, boxwright| {
            matches!(path, "/etc/hosts" | "/etc/resolv.conf" | "/etc/hostname")
                && buildah.is_some_and(empty_file)
                && boxwright.is_none()
        },
    },
    // buildah 1.28 makes the mount point of each RUN --mount (an empty file
    // or directory, and the missing directories above it) and leaves it in
    // the layer; BuildKit removes the stubs it made. Dropped only when it is
    // a mount target or above one, and holds nothing else.
    ArtifactRule {
        name: "buildah-mount-stubs",
        applies: |cx, path, buildah, boxwright| {
            let Some(n) = buildah else { return false };
            if boxwright.is_some() || !cx.mount_paths.contains(path) {
                return false;
            }
            if n.kind == "file" {
                return empty_file(n);
            }
            let prefix = format!("{path}/");
            n.kind == "dir"
                && cx
                    .buildah
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .all(|(k, _)| cx.mount_paths.contains(k))
        },
    },
    // boxwright mounts the package-manager caches (apt's lists and
    // downloads, npm's, pip's) into every RUN, as it does for recipes
    // (README, "Coming from a Dockerfile"): a RUN that empties them
    // (`rm -rf /var/lib/apt/lists/*`) empties the cache, and what the base
    // had there stays. Only base files buildah's image removed are dropped.
    ArtifactRule {
        name: "boxwright-package-cache-mounts",
        applies: |_, path, buildah, boxwright| {
            const CACHES: [&str; 4] = [
                "/var/cache/apt/",
                "/var/lib/apt/lists/",
                "/root/.npm/",
                "/root/.cache/pip/",
            ];
            buildah.is_none() && boxwright.is_some() && CACHES.iter().any(|c| path.starts_with(c))
        },
    },
];

/// The mount targets of every `--mount=` flag in `text`, with their
/// ancestors.
fn mount_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for word in text.split_whitespace() {
        let Some(spec) = word.strip_prefix("--mount=") else {
            continue;
        };
        let mut target = None;
        let mut secret_id = None;
        let mut is_secret = false;
        for kv in spec.split(',') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "target" | "dst" | "destination" => target = Some(v.to_string()),
                "id" => secret_id = Some(v.to_string()),
                "type" => is_secret = v == "secret",
                _ => {}
            }
        }
        if target.is_none() && is_secret {
            target = secret_id.map(|id| format!("/run/secrets/{id}"));
        }
        if let Some(t) = target {
            let mut p = clean(&t);
            while p != "/" {
                out.insert(p.clone());
                p = parent(&p).to_string();
            }
        }
    }
    out
}

fn compare_trees(
    theirs: &Tree,
    ours: &Tree,
    cx: &RuleContext,
    report: &mut Vec<String>,
    dropped: &mut BTreeMap<&'static str, Vec<String>>,
) {
    let paths: BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
    for p in paths {
        let (a, b) = (theirs.get(p), ours.get(p));
        if a == b {
            continue;
        }
        if let Some(rule) = ARTIFACT_RULES.iter().find(|r| (r.applies)(cx, p, a, b)) {
            dropped.entry(rule.name).or_default().push(p.clone());
            continue;
        }
        match (a, b) {
            (Some(a), None) => report.push(format!("- {p}  {a}")),
            (None, Some(b)) => report.push(format!("+ {p}  {b}")),
            (Some(a), Some(b)) => {
                report.push(format!("- {p}  {a}"));
                report.push(format!("+ {p}  {b}"));
            }
            (None, None) => unreachable!(),
        }
    }
}

/// The config fields compared, with absent, null, empty list, empty map and
/// empty string all meaning "not set".
const CONFIG_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
];

fn normalized(config: &Value, field: &str) -> Value {
    let mut v = config.get(field).cloned().unwrap_or(Value::Null);
    if field == "Labels" {
        // buildah stamps its own version on every image it makes.
        if let Some(m) = v.as_object_mut() {
            m.remove("io.buildah.version");
        }
    }
    let empty = match &v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    if empty { Value::Null } else { v }
}

fn compare_configs(theirs: &Value, ours: &Value, report: &mut Vec<String>) {
    for f in CONFIG_FIELDS {
        let (a, b) = (normalized(theirs, f), normalized(ours, f));
        if a != b {
            report.push(format!("- config.{f}: {a}"));
            report.push(format!("+ config.{f}: {b}"));
        }
    }
}

// ---------------------------------------------------------------------------
// Multi-stage: a C program built on Debian, shipped on busybox

const HELLO_C: &str = r#"#include <stdio.h>
int main(void) { puts("hello from a static C binary"); return 0; }
"#;

const MULTISTAGE: &str = r#"ARG DEBIAN
ARG BASE
FROM ${DEBIAN} AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY hello.c /src/hello.c
RUN mkdir /out && gcc -static -O2 -o /out/hello /src/hello.c

# Needed by no stage that is built: it must never run.
FROM ${BASE} AS unused
RUN touch /marker-unused && echo "the unused stage ran" >&2 && exit 1

FROM ${BASE}
COPY --from=builder /out/hello /usr/local/bin/hello
CMD ["/usr/local/bin/hello"]
"#;

fn build_in(store: &Path, ctx: &Path, tag: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--store",
        store.to_str().unwrap(),
        "build",
        "-t",
        tag,
        "--progress",
        "plain",
    ];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    boxwright(&args)
}

#[test]
fn multistage_c_program_target_and_unused_stage() {
    let t = tempfile::Builder::new()
        .prefix("boxwright-cf-multistage-")
        .tempdir_in("/tmp")
        .unwrap();
    let ctx = t.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Containerfile"), MULTISTAGE).unwrap();
    fs::write(ctx.join("hello.c"), HELLO_C).unwrap();
    let store = t.path().join("store");
    let base = format!("BASE={}", busybox_ref());
    let debian = format!("DEBIAN={}", debian_ref());
    let args = ["--build-arg", base.as_str(), "--build-arg", debian.as_str()];

    // The final image: the binary and nothing of the builder.
    let run = build_in(&store, &ctx, "hello-c", &args);
    assert_eq!(
        run.code,
        0,
        "the build must succeed without running the unused stage:\n{}",
        tail(&run.stderr, 60)
    );
    assert!(
        !run.stderr.contains("the unused stage ran"),
        "the unused stage ran:\n{}",
        run.stderr
    );
    let (tree, config) = read_layout(&store, "hello-c:latest").unwrap();
    let bin = tree
        .get("/usr/local/bin/hello")
        .expect("the binary is copied");
    assert_eq!(bin.kind, "file");
    assert_eq!(
        bin.mode & 0o111,
        0o111,
        "the binary stays executable: {bin}"
    );
    for p in ["/usr/bin/gcc", "/src/hello.c", "/out", "/marker-unused"] {
        assert!(!tree.contains_key(p), "{p} must not be in the final image");
    }
    assert!(
        tree.contains_key("/bin/busybox"),
        "the final stage is busybox"
    );
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["/usr/local/bin/hello"])
    );

    // podman runs it.
    let pod = t.path().join("podman");
    let _guard = PodmanStorage(&pod);
    let out = podman_run(&pod, &store, "hello-c:latest", &[]);
    assert!(
        out.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from a static C binary\n"
    );

    // --target builder: the builder only, with its compiler.
    let mut targeted = args.to_vec();
    targeted.extend(["--target", "builder"]);
    let run = build_in(&store, &ctx, "hello-c-builder", &targeted);
    assert_eq!(run.code, 0, "--target builder:\n{}", tail(&run.stderr, 60));
    assert!(
        !run.stderr.contains("the unused stage ran"),
        "{}",
        run.stderr
    );
    let (tree, _) = read_layout(&store, "hello-c-builder:latest").unwrap();
    assert!(
        tree.contains_key("/usr/bin/gcc"),
        "the builder stage has gcc"
    );
    assert!(
        tree.contains_key("/out/hello"),
        "the builder has its output"
    );
    assert!(
        !tree.contains_key("/usr/local/bin/hello"),
        "--target builder must not build the final stage"
    );
    assert!(!tree.contains_key("/marker-unused"));
}

// ---------------------------------------------------------------------------
// Independent stages run at once (--jobs)

/// Stages `a` and `b` need nothing of each other; each leaves a mark in a
/// shared cache mount and waits (15 s at most) for the other's: they both
/// finish only when they run at the same time. A third stage, failing,
/// stops the others before their next step.
const RENDEZVOUS: &str = r#"ARG BASE
FROM ${BASE} AS a
RUN --mount=type=cache,target=/rv,id=rendezvous \
    touch /rv/a && i=0 && until [ -e /rv/b ]; do i=$((i+1)); [ $i -lt 150 ] || exit 7; sleep 0.1; done
RUN echo a > /from-a

FROM ${BASE} AS b
RUN --mount=type=cache,target=/rv,id=rendezvous \
    touch /rv/b && i=0 && until [ -e /rv/a ]; do i=$((i+1)); [ $i -lt 150 ] || exit 7; sleep 0.1; done
RUN echo b > /from-b

FROM ${BASE}
COPY --from=a /from-a /a
COPY --from=b /from-b /b
"#;

#[test]
fn independent_stages_run_at_once_and_jobs_1_runs_them_in_turn() {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Containerfile"), RENDEZVOUS).unwrap();
    let base = format!("BASE={}", busybox_ref());
    let args = ["--build-arg", base.as_str()];

    // --jobs 2: both stages wait for each other and finish.
    let store = t.path().join("store");
    let mut two = args.to_vec();
    two.extend(["--jobs", "2"]);
    let run = build_in(&store, &ctx, "rv", &two);
    assert_eq!(run.code, 0, "{}", tail(&run.stderr, 60));
    let (tree, _) = read_layout(&store, "rv:latest").unwrap();
    for p in ["/a", "/b"] {
        assert!(tree.contains_key(p), "{p} is copied from its stage");
    }
    // Steps keep their numbers whatever ran first: 1-2 are stage a's,
    // 3-4 stage b's, 5-6 the final stage's.
    for n in 1..=6 {
        assert!(
            run.stderr.contains(&format!("STEP {n}/6")),
            "step {n}:\n{}",
            run.stderr
        );
    }

    // --jobs 1 runs one stage after the other: stage a waits for a mark
    // that never comes and fails; stage b never starts.
    let store1 = t.path().join("store1");
    let mut one = args.to_vec();
    one.extend(["--jobs", "1"]);
    let run = build_in(&store1, &ctx, "rv", &one);
    assert_eq!(run.code, 1, "{}", tail(&run.stderr, 60));
    assert!(
        run.stderr.contains("step 1 failed") && run.stderr.contains("exited with code 7"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("STEP 3/6"), "{}", run.stderr);

    // A failing stage beside a slow one: the build fails with the failing
    // stage's error, and the slow one's next step never starts.
    let failing = "ARG BASE\nFROM ${BASE} AS slow\nRUN sleep 5\nRUN echo slow-second-step-ran\n\n\
         FROM ${BASE} AS bad\nRUN echo failing-now && exit 9\n\n\
         FROM ${BASE}\nCOPY --from=slow /etc/passwd /x\nCOPY --from=bad /etc/passwd /y\n";
    fs::write(ctx.join("Containerfile"), failing).unwrap();
    let store2 = t.path().join("store2");
    let run = build_in(&store2, &ctx, "bad", &two);
    assert_eq!(run.code, 1, "{}", tail(&run.stderr, 60));
    assert!(
        run.stderr.contains("step 3 failed") && run.stderr.contains("exited with code 9"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("slow-second-step-ran"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("another stage of the build failed"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------
// Errors: one `FILE:LINE:COL: message` line, exit code 2, nothing stored

/// Builds `text` as `-f FILE` in a fresh store with `extra` arguments and
/// checks the error contract; `lines` are the acceptable line numbers.
fn assert_build_error(what: &str, text: &str, lines: &[usize], extra: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    for f in ["a", "b", "x"] {
        fs::write(ctx.join(f), f).unwrap();
    }
    let file = ctx.join("Containerfile");
    fs::write(&file, text).unwrap();
    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    let base = format!("BASE={}", busybox_ref());
    let mut args = vec![
        "--store",
        s,
        "build",
        "-f",
        file.to_str().unwrap(),
        "-t",
        "should-not-exist",
        "--build-arg",
        base.as_str(),
    ];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let run = boxwright(&args);
    assert_eq!(
        run.code, 2,
        "{what}: exit code 2 expected, got {}\nstdout:\n{}\nstderr:\n{}",
        run.code, run.stdout, run.stderr
    );
    let err: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        err.len(),
        1,
        "{what}: exactly one line on stderr expected:\n{}",
        run.stderr
    );
    let prefix = format!("{}:", file.display());
    let rest = err[0].strip_prefix(&prefix).unwrap_or_else(|| {
        panic!(
            "{what}: the error must start with `{prefix}LINE:COL: `: {}",
            err[0]
        )
    });
    let mut parts = rest.splitn(3, ':');
    let line: usize = parts
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no line number: {}", err[0]));
    let col: usize = parts
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no column number: {}", err[0]));
    let message = parts.next().unwrap_or("");
    assert!(
        message.starts_with(' ') && message.trim().len() > 3,
        "{what}: `FILE:LINE:COL: message` expected: {}",
        err[0]
    );
    assert!(col >= 1, "{what}: columns count from 1: {}", err[0]);
    assert!(
        lines.contains(&line),
        "{what}: the error must point at line {lines:?}: {}",
        err[0]
    );
    // Nothing stored under the tag.
    let index = store.join("index.json");
    if index.exists() {
        let v: Value = serde_json::from_slice(&fs::read(&index).unwrap()).unwrap();
        let tagged = v["manifests"].as_array().into_iter().flatten().any(|d| {
            d["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|n| n.starts_with("should-not-exist"))
        });
        assert!(!tagged, "{what}: an image was stored: {v}");
        let listed = boxwright(&["--store", s, "images"]).ok().stdout;
        assert!(
            !listed.contains("should-not-exist"),
            "{what}: boxwright images lists it:\n{listed}"
        );
    }
}

#[test]
fn error_unknown_instruction() {
    assert_build_error(
        "unknown instruction",
        "ARG BASE\nFROM ${BASE}\nRUN true\nFROBNICATE the widgets\n",
        &[4],
        &[],
    );
}

#[test]
fn error_unknown_flag() {
    assert_build_error(
        "COPY --bogus",
        "ARG BASE\nFROM ${BASE}\nCOPY --bogus=1 a b\n",
        &[3],
        &[],
    );
}

#[test]
fn error_copy_from_unknown_stage() {
    // Not a stage of the file and not pullable: the build stops at this line
    // and stores nothing.
    assert_build_error(
        "COPY --from=missing",
        "ARG BASE\nFROM ${BASE} AS first\nRUN true\nCOPY --from=missing /x /y\n",
        &[4],
        &[],
    );
}

#[test]
fn error_copy_from_stage_index_out_of_range() {
    assert_build_error(
        "COPY --from=5",
        "ARG BASE\nFROM ${BASE}\nCOPY --from=5 /x /y\n",
        &[3],
        &[],
    );
}

#[test]
fn error_stage_cycle_through_from() {
    // `FROM a AS b` then `FROM b AS a`: each stage is built on the other.
    assert_build_error(
        "FROM cycle",
        "FROM a AS b\nRUN true\nFROM b AS a\nRUN true\n",
        &[1, 3],
        &[],
    );
}

#[test]
fn error_stage_cycle_through_copy_from() {
    assert_build_error(
        "COPY --from cycle",
        "ARG BASE\nFROM ${BASE} AS a\nCOPY --from=b /x /x\nFROM ${BASE} AS b\nCOPY --from=a /x /y\n",
        &[2, 3, 4, 5],
        &["--target", "b"],
    );
}

#[test]
fn error_arg_in_from_declared_only_after_it() {
    // A FROM line sees only the ARGs declared before the first FROM; this
    // one is declared after it (and given on the command line, which does not
    // make it visible there): the base name is empty.
    assert_build_error(
        "ARG after FROM",
        "FROM ${LATE_BASE}\nARG LATE_BASE\nRUN true\n",
        &[1],
        &["--build-arg", "LATE_BASE=127.0.0.1:5000/cf/busybox:1"],
    );
}

// ---------------------------------------------------------------------------
// Where the context is, and build args from the environment (podman's rules)

const CONTEXT_RULES: &str = r#"ARG BASE
FROM ${BASE}
ARG FROM_ENV=unset
COPY . /ctx/
RUN echo "$FROM_ENV" > /arg
"#;

fn sha(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

#[test]
fn the_context_defaults_to_the_files_directory_and_bare_build_args_read_the_environment() {
    let t = tempfile::tempdir().unwrap();
    let proj = t.path().join("proj");
    let sub = proj.join("sub");
    fs::create_dir_all(&sub).unwrap();
    fs::write(sub.join("Containerfile"), CONTEXT_RULES).unwrap();
    fs::write(sub.join("hello.txt"), "in-sub").unwrap();
    fs::write(sub.join("ignored.txt"), "left out").unwrap();
    // .containerignore wins over .dockerignore, as in buildah.
    fs::write(sub.join(".containerignore"), "ignored.txt\n").unwrap();
    fs::write(sub.join(".dockerignore"), "hello.txt\n").unwrap();
    fs::write(proj.join("hello.txt"), "in-cwd").unwrap();
    let store = t.path().join("store");
    let base = format!("BASE={}", busybox_ref());
    let build = |cwd: &Path, tag: &str, file: Option<&str>, env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxwright"));
        cmd.current_dir(cwd)
            .args(["--store", store.to_str().unwrap(), "build", "-t", tag])
            .args(["--progress", "plain", "--build-arg", &base])
            .args(["--build-arg", "FROM_ENV"]);
        if let Some(f) = file {
            cmd.args(["-f", f]);
        }
        match env {
            Some(v) => cmd.env("FROM_ENV", v),
            None => cmd.env_remove("FROM_ENV"),
        };
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // -f FILE with no CONTEXT: the context is the file's directory, not the
    // current one; a bare --build-arg takes the environment's value.
    build(&proj, "ctx-a", Some("sub/Containerfile"), Some("from-env"));
    let (tree, _) = read_layout(&store, "ctx-a:latest").unwrap();
    let file = |tree: &Tree, p: &str| {
        tree.get(p)
            .unwrap_or_else(|| panic!("{p} missing: {:?}", tree.keys().collect::<Vec<_>>()))
            .detail
            .clone()
    };
    assert_eq!(file(&tree, "/ctx/hello.txt"), sha("in-sub"));
    assert!(
        !tree.contains_key("/ctx/ignored.txt"),
        ".containerignore is read"
    );
    assert_eq!(file(&tree, "/arg"), sha("from-env\n"));

    // Neither -f nor CONTEXT: ./Containerfile in ./; a bare --build-arg
    // that the environment lacks leaves the ARG's default.
    build(&sub, "ctx-b", None, None);
    let (tree, _) = read_layout(&store, "ctx-b:latest").unwrap();
    assert_eq!(file(&tree, "/ctx/hello.txt"), sha("in-sub"));
    assert_eq!(file(&tree, "/arg"), sha("unset\n"));
}

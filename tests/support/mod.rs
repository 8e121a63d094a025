//! Shared helpers for boxwright's integration tests: the binary, fixtures,
//! independent tools, unprivileged users and podman.
#![allow(dead_code)]

pub mod file_server;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The boxwright binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_boxwright"))
}

/// Fails the test with an install hint when a tool is missing: a test that
/// lacks a tool must not pass silently.
pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: install it with `apt-get install {package}` (or run scripts/install-deps.sh)"
    );
}

/// Fails unless the tests run as root (CI does): some checks (podman, umoci
/// unpack, switching to the test users) need it.
pub fn require_root(why: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root ({why}): run the suite with `sudo ./scripts/test`"
    );
}

/// The busybox rootfs tarball fixture, made on first use.
pub fn busybox_tar() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let out = repo().join("rootfs-fixtures/busybox.tar");
        if !out.exists() {
            require_tool("busybox", "busybox-static");
            let st = Command::new(repo().join("rootfs-fixtures/make-busybox.sh"))
                .status()
                .expect("run make-busybox.sh");
            assert!(st.success(), "make-busybox.sh failed");
        }
        out
    })
    .clone()
}

/// A temporary directory that other users can enter (0755 all the way), for
/// tests that run boxwright as an unprivileged user.
pub fn world_tempdir() -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("boxwright-test-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    t
}

/// The result of running boxwright.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the command succeeded.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "boxwright failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs boxwright with `args` (as the current user).
pub fn boxwright(args: &[&str]) -> Run {
    boxwright_env(args, &[])
}

/// Runs boxwright with `args` and extra environment.
pub fn boxwright_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().expect("run boxwright"))
}

/// Runs a program as `user` (via runuser) with HOME set to `home`.
pub fn run_as(user: &str, home: &Path, program: &Path, args: &[&str]) -> Run {
    require_root("switching to the test users");
    let out = Command::new("runuser")
        .arg("-u")
        .arg(user)
        .arg("--")
        .arg("env")
        .arg(format!("HOME={}", home.display()))
        .arg("XDG_DATA_HOME=")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runuser");
    Run::from(out)
}

/// Checks a test user exists (CI creates them with scripts/testbed.sh users).
pub fn require_user(user: &str) {
    let ok = Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "test user {user} does not exist: create it with `sudo scripts/testbed.sh users`"
    );
}

/// Copies the boxwright binary somewhere every user can run it.
pub fn shared_binary(dir: &Path) -> PathBuf {
    let dest = dir.join("boxwright");
    fs::copy(bin(), &dest).expect("copy boxwright");
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
    dest
}

/// Runs a command, panicking with its output unless it succeeds.
pub fn sh(cmd: &mut Command) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes a recipe file into `dir` and returns its path.
pub fn write_recipe(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

/// A recipe header using the busybox fixture as base.
pub fn busybox_base() -> String {
    format!("[image]\nbase = \"rootfs:{}\"\n", busybox_tar().display())
}

/// `podman` configured for this machine (runc, cgroupfs, file events) with
/// private storage under `dir`.
pub fn podman(dir: &Path) -> Command {
    require_tool("podman", "podman");
    require_root("podman with the test configuration");
    let conf = dir.join("containers.conf");
    if !conf.exists() {
        fs::create_dir_all(dir).unwrap();
        // Each test's podman gets its own tmp_dir too: the default,
        // /run/libpod, is shared, and one test's `system reset` would pull
        // it from under another's running container.
        let text = fs::read_to_string(repo().join("tests/testbed/containers.conf"))
            .unwrap()
            .replace("/tmp/boxwright-test-podman", &dir.display().to_string())
            .replace(
                "[engine]\n",
                &format!("[engine]\ntmp_dir = \"{}/libpod-tmp\"\n", dir.display()),
            );
        fs::write(&conf, text).unwrap();
        let storage = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/runroot\"\n",
            dir.display()
        );
        fs::write(dir.join("storage.conf"), storage).unwrap();
    }
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", &conf)
        .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
        .env(
            "CONTAINERS_REGISTRIES_CONF",
            repo().join("tests/testbed/registries.conf"),
        );
    cmd
}

/// Removes podman's private storage (podman leaves overlay mounts and
/// read-only dirs that a plain remove cannot take).
pub fn podman_cleanup(dir: &Path) {
    if dir.join("containers.conf").exists() {
        let _ = podman(dir).args(["system", "reset", "--force"]).output();
    }
}

/// A Debian bookworm minbase rootfs tarball made by mmdebstrap, built once
/// and reused by every test and run (it is bit-identical for a given
/// SOURCE_DATE_EPOCH and archive state).
pub fn debian_base() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        require_tool("mmdebstrap", "mmdebstrap");
        let dir = PathBuf::from(
            std::env::var("BOXWRIGHT_TEST_CACHE")
                .unwrap_or_else(|_| "/var/tmp/boxwright-test-cache".into()),
        );
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join("minbase.tar");
        // Another test binary may be making it right now.
        let lock = fs::File::create(dir.join("minbase.lock")).unwrap();
        lock.lock().unwrap();
        // An empty or cut file (a test that once copied it onto itself) is made again.
        let usable = fs::metadata(&out).is_ok_and(|m| m.len() > 10 << 20);
        if !usable {
            let tmp = dir.join("minbase.tmp.tar");
            sh(Command::new("mmdebstrap")
                .env("SOURCE_DATE_EPOCH", "0")
                .env("TMPDIR", &dir)
                .args(["--variant=minbase", "bookworm"])
                .arg(&tmp));
            fs::rename(&tmp, &out).unwrap();
        }
        out
    })
    .clone()
}

/// [`debian_base`] as `DIR/minbase.tar` (for `base = "rootfs:minbase.tar"`):
/// a hard link when possible (it is 170 MB), else a copy; left alone when
/// already there, since copying the cache onto a link to itself would empty it.
pub fn debian_base_in(dir: &Path) -> PathBuf {
    let base = debian_base();
    let local = dir.join("minbase.tar");
    if !local.exists() && fs::hard_link(&base, &local).is_err() {
        let tmp = dir.join("minbase.tar.tmp");
        fs::copy(&base, &tmp).unwrap();
        fs::rename(&tmp, &local).unwrap();
    }
    fs::set_permissions(&local, fs::Permissions::from_mode(0o644)).unwrap();
    local
}

/// Runs an image from an OCI layout with podman (`podman run` cannot take
/// an `oci:` reference directly: pull it, then run its id). Returns the
/// command's output; `dir` holds podman's private storage.
pub fn podman_run(dir: &Path, layout: &Path, tag: &str, args: &[&str]) -> Output {
    let id = podman_pull(dir, layout, tag);
    podman(dir)
        .args(["run", "--rm", "--network", "none", &id])
        .args(args)
        .output()
        .expect("podman run")
}

/// Removes podman's storage under `dir` when dropped, so a failed test
/// leaves nothing behind either.
pub struct PodmanStorage<'a>(pub &'a Path);

impl Drop for PodmanStorage<'_> {
    fn drop(&mut self) {
        podman_cleanup(self.0);
    }
}

/// A container started with `podman run -d`, removed when dropped.
pub struct Container<'a> {
    pod: &'a Path,
    pub id: String,
}

impl<'a> Container<'a> {
    /// Starts image `id` detached, without a network, with `args` as its command.
    pub fn start(pod: &'a Path, id: &str, args: &[&str]) -> Container<'a> {
        let started = podman(pod)
            .args(["run", "-d", "--network", "none", id])
            .args(args)
            .output()
            .expect("podman run -d");
        assert!(
            started.status.success(),
            "podman run -d: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        Container {
            pod,
            id: String::from_utf8_lossy(&started.stdout).trim().to_string(),
        }
    }

    /// stdout of `podman exec` of `args` in the container.
    pub fn exec(&self, args: &[&str]) -> String {
        let out = podman(self.pod)
            .arg("exec")
            .arg(&self.id)
            .args(args)
            .output()
            .expect("podman exec");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = podman(self.pod)
            .args(["rm", "-f", "-t", "0", &self.id])
            .output();
    }
}

/// A one-layer image that another tool made: umoci builds it from the
/// root filesystem tar `rootfs` with `config` (umoci config flags), and
/// skopeo pushes it to `dest` (`HOST/REPO:TAG`, plain HTTP).
pub fn push_umoci_image(dir: &Path, rootfs: &Path, config: &[&str], dest: &str) {
    require_tool("umoci", "umoci");
    require_tool("skopeo", "skopeo");
    let layout = dir.join(format!("umoci-{}", dest.replace(['/', ':'], "_")));
    let image = format!("{}:t", layout.display());
    sh(Command::new("umoci").args(["init", "--layout", layout.to_str().unwrap()]));
    sh(Command::new("umoci").args(["new", "--image", &image]));
    sh(Command::new("umoci")
        .args(["raw", "add-layer", "--image", &image])
        .arg(rootfs));
    sh(Command::new("umoci")
        .args(["config", "--image", &image])
        .args(config)
        .args(["--os", "linux", "--architecture", "amd64"]));
    sh(Command::new("umoci").args(["gc", "--layout", layout.to_str().unwrap()]));
    sh(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{image}"),
        &format!("docker://{dest}"),
    ]));
}

/// Pulls `tag` of the OCI layout `layout` into podman's storage under `dir`;
/// returns the image id.
pub fn podman_pull(dir: &Path, layout: &Path, tag: &str) -> String {
    // podman names the pulled image after the layout's path and refuses
    // upper-case letters, which temp dir names have: pull through a
    // lower-case symlink.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    fs::create_dir_all(dir).unwrap();
    let link = PathBuf::from(format!("/tmp/boxwright-oci-{}-{n}", std::process::id()));
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(layout, &link).unwrap();
    let pulled = podman(dir)
        .args(["pull", "-q", &format!("oci:{}:{tag}", link.display())])
        .output()
        .expect("podman pull");
    let _ = fs::remove_file(&link);
    assert!(
        pulled.status.success(),
        "podman pull failed: {}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let pulled = String::from_utf8_lossy(&pulled.stdout).into_owned();
    let id = pulled.lines().last().unwrap_or_default().trim().to_string();
    assert!(!id.is_empty(), "podman pull printed no image id");
    id
}

/// `oci-image-tool validate --type image --ref name=TAG` on the store's
/// image TAG.
///
/// oci-image-tool 1.x filters index.json's descriptors by removing from a
/// slice while it walks it, so with three or more tags some names that do
/// not match survive and it reports "not unique". The check therefore runs
/// on a layout holding exactly our blobs (hard links) and an index.json
/// reduced to that tag.
pub fn oci_validate(store: &Path, tag: &str) {
    require_tool("oci-image-tool", "oci-image-tool");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(store.join("index.json")).unwrap()).unwrap();
    let mut reduced = index.clone();
    let kept: Vec<serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .cloned()
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "{tag} must be in index.json exactly once: {index}"
    );
    reduced["manifests"] = serde_json::Value::Array(kept);
    let t = tempfile::tempdir().unwrap();
    sh(Command::new("cp")
        .arg("-al")
        .arg(store.join("blobs"))
        .arg(t.path()));
    fs::copy(store.join("oci-layout"), t.path().join("oci-layout")).unwrap();
    fs::write(
        t.path().join("index.json"),
        serde_json::to_vec(&reduced).unwrap(),
    )
    .unwrap();
    sh(Command::new("oci-image-tool").args([
        "validate",
        "--type",
        "image",
        "--ref",
        &format!("name={tag}"),
        t.path().to_str().unwrap(),
    ]));
}

//! Support for the sandbox integration tests: the test binary re-executes
//! itself as the helper (the `helper_entry` test does the work when an
//! environment variable carries a job), fixtures built from busybox-static,
//! and readers of what landed in an upperdir.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxwright::sandbox::{
    Action, HostEnv, IdMapping, Network, Rootfs, RunSpec, SandboxError, Userns, probe_overlay,
    run_in_namespace,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Carries the job of a re-executed test binary.
pub const JOB_VAR: &str = "BOXWRIGHT_SANDBOX_TEST_JOB";
/// Prefix of the line on which a re-executed helper prints its result.
const MARK: &str = "BOXWRIGHT-SANDBOX-TEST-RESULT:";
/// A helper that runs longer than this is killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(120);

/// What a re-executed test binary does. (One is sent per helper process,
/// so the size of its largest variant does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Job {
    /// `run_in_namespace(spec)` (run inside a user namespace).
    Run(RunSpec),
    /// `probe_overlay(scratch)` (run inside a user namespace).
    Probe(PathBuf),
    /// `IdMapping::detect()` and its description (run as the user).
    Detect,
    /// `HostEnv::capture(use_host_ca)` (run without namespaces).
    Capture(bool),
    /// Inside a user namespace: forbid further user namespaces (a
    /// per-namespace sysctl), then try `Userns::spawn`.
    NoMoreUserns,
    /// As the user: spawn the inner job in a user namespace with `mapping`
    /// (detected if absent) and relay its result.
    Spawn {
        mapping: Option<IdMapping>,
        inner: Box<Job>,
    },
}

/// What a helper printed, and the step output it wrote to stderr.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Value, SandboxError>,
    pub stderr: String,
}

impl Outcome {
    /// The step's exit code; panics with the error otherwise.
    pub fn code(&self) -> i64 {
        match &self.result {
            Ok(v) => v
                .as_i64()
                .unwrap_or_else(|| panic!("not an exit code: {v}")),
            Err(e) => panic!("the helper failed: {e}\nstderr:\n{}", self.stderr),
        }
    }

    /// The error the helper returned; panics if it succeeded.
    pub fn error(&self) -> &SandboxError {
        match &self.result {
            Ok(v) => panic!("expected an error, got {v}\nstderr:\n{}", self.stderr),
            Err(e) => e,
        }
    }
}

/// Called by the `helper_entry` test: does the job from the environment, if any.
pub fn helper_entry() {
    let Ok(text) = std::env::var(JOB_VAR) else {
        return;
    };
    let job: Job = serde_json::from_str(&text).expect("the parent test wrote a valid job");
    let line = match job {
        Job::Run(spec) => to_line(run_in_namespace(&spec)),
        Job::Probe(scratch) => to_line(probe_overlay(&scratch)),
        Job::Detect => to_line(IdMapping::detect().map(|m| {
            let text = m.describe();
            (m, text)
        })),
        Job::Capture(use_host_ca) => to_line::<HostEnv>(Ok(HostEnv::capture(use_host_ca))),
        Job::NoMoreUserns => {
            std::fs::write("/proc/sys/user/max_user_namespaces", "0")
                .expect("limit user namespaces inside this one");
            let spawned = IdMapping::detect()
                .and_then(|m| Userns::new(m).spawn(Command::new("/bin/true")))
                .map(|mut child| child.wait().map(|s| s.to_string()).unwrap_or_default());
            to_line(spawned)
        }
        Job::Spawn { mapping, inner } => {
            let spawned = mapping
                .map(Ok)
                .unwrap_or_else(IdMapping::detect)
                .and_then(|m| Userns::new(m).spawn(helper_command(&self_exe(), &inner)));
            match spawned {
                Ok(child) => {
                    let (status, stdout, _) = collect(child, false);
                    match result_line(&stdout) {
                        Some(line) => line.to_string(),
                        None => panic!("inner helper printed no result ({status}): {stdout}"),
                    }
                }
                Err(e) => to_line::<()>(Err(e)),
            }
        }
    };
    println!("{MARK}{line}");
}

fn to_line<T: Serialize>(result: Result<T, SandboxError>) -> String {
    serde_json::to_string(&result).expect("results serialize")
}

fn result_line(stdout: &str) -> Option<&str> {
    stdout.lines().find_map(|l| l.strip_prefix(MARK))
}

fn self_exe() -> PathBuf {
    std::env::current_exe().expect("the test binary knows its path")
}

/// The command that re-executes `exe` (a copy of this test binary) with `job`.
fn helper_command(exe: &Path, job: &Job) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "helper_entry",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(JOB_VAR, serde_json::to_string(job).expect("jobs serialize"))
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    cmd
}

/// Waits (at most [`DEADLINE`]) for `child` and returns its status, stdout
/// and (if piped) stderr.
fn collect(mut child: Child, stderr_piped: bool) -> (std::process::ExitStatus, String, String) {
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(if stderr_piped {
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>)
    } else {
        None
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the helper") {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the helper ran for more than {DEADLINE:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, out.join().unwrap(), err.join().unwrap())
}

fn parse_outcome(status: std::process::ExitStatus, stdout: &str, stderr: String) -> Outcome {
    let Some(line) = result_line(stdout) else {
        panic!("the helper printed no result ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    let result = serde_json::from_str(line).expect("a helper result line is JSON");
    Outcome { result, stderr }
}

/// Runs `job` in a user namespace spawned directly from this (root) test process.
pub fn as_root(job: &Job) -> Outcome {
    let mapping = IdMapping::detect().expect("detect ids as root");
    let mut cmd = helper_command(&self_exe(), job);
    cmd.stderr(Stdio::piped());
    let child = Userns::new(mapping)
        .spawn(cmd)
        .expect("spawn the helper in a user namespace");
    let (status, stdout, stderr) = collect(child, true);
    parse_outcome(status, &stdout, stderr)
}

/// Runs `job` in a plain child (no namespaces) with an environment of
/// exactly `env` (plus `PATH`).
pub fn plain(job: &Job, env: &[(&str, &str)]) -> Outcome {
    let mut cmd = helper_command(&self_exe(), job);
    cmd.env_clear()
        .env(JOB_VAR, serde_json::to_string(job).expect("jobs serialize"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start the helper");
    let (status, stdout, stderr) = collect(child, true);
    parse_outcome(status, &stdout, stderr)
}

/// A world-readable temporary directory holding a copy of this test binary,
/// so other users can run it even if the checkout is closed to them.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub exe: PathBuf,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("boxwright-sandbox-test-")
            .tempdir()
            .expect("create a temporary directory");
        chmod(dir.path(), 0o755);
        let exe = dir.path().join("sandbox-test");
        std::fs::copy(self_exe(), &exe).expect("copy the test binary");
        chmod(&exe, 0o755);
        Workspace { dir, exe }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `job` as `user` (through runuser); the job decides about namespaces.
    pub fn as_user(&self, user: &str, job: &Job) -> Outcome {
        let runuser = Path::new("/usr/sbin/runuser");
        assert!(
            runuser.exists(),
            "runuser is missing: apt-get install util-linux"
        );
        let inner = helper_command(&self.exe, job);
        let mut cmd = Command::new(runuser);
        cmd.args(["-u", user, "--"])
            .arg(inner.get_program())
            .args(inner.get_args())
            .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("start runuser");
        let (status, stdout, stderr) = collect(child, true);
        parse_outcome(status, &stdout, stderr)
    }

    /// Runs `job` as `user` inside a user namespace spawned by that user.
    pub fn in_userns_as(&self, user: &str, mapping: Option<IdMapping>, job: Job) -> Outcome {
        self.as_user(
            user,
            &Job::Spawn {
                mapping,
                inner: Box::new(job),
            },
        )
    }
}

/// An overlay's directories in a temporary (or given) parent.
pub struct Layers {
    _dir: Option<tempfile::TempDir>,
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl Layers {
    /// A busybox lower layer, an empty upper and work dir in a fresh temp dir.
    pub fn new() -> Layers {
        let dir = tempfile::Builder::new()
            .prefix("boxwright-sandbox-layers-")
            .tempdir()
            .expect("create a temporary directory");
        let mut layers = Layers::inside(dir.path());
        layers._dir = Some(dir);
        layers
    }

    /// The same inside `parent` (which the caller cleans up).
    pub fn inside(parent: &Path) -> Layers {
        let lower = parent.join("lower");
        let upper = parent.join("upper");
        let work = parent.join("work");
        busybox_tree(&lower);
        for d in [&upper, &work] {
            std::fs::create_dir(d).expect("create an overlay directory");
        }
        chmod(parent, 0o755);
        Layers {
            _dir: None,
            lower,
            upper,
            work,
        }
    }

    pub fn rootfs(&self) -> Rootfs {
        Rootfs::Overlay {
            lowerdirs: vec![self.lower.clone()],
            upperdir: self.upper.clone(),
            workdir: self.work.clone(),
        }
    }

    /// A spec running `script` with `sh -c` as root in `/`.
    pub fn shell(&self, script: &str) -> RunSpec {
        spec(self.rootfs(), script)
    }

    /// Every path in the upperdir, relative.
    pub fn upper_entries(&self) -> BTreeSet<String> {
        tree_entries(&self.upper)
    }
}

/// A spec running `script` with `sh -c` as root in `/`, host network, nothing borrowed.
pub fn spec(rootfs: Rootfs, script: &str) -> RunSpec {
    RunSpec {
        rootfs,
        action: Action::Exec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            user: None,
        },
        network: Network::Host,
        host: HostEnv::default(),
        fake_root: false,
        mounts: vec![],
        image_mounts: vec![],
        timeout_secs: None,
        stdio: Default::default(),
        hostname: None,
        pid_file: None,
        no_new_privs: false,
    }
}

/// A root filesystem of busybox-static and its applet symlinks in `dir/bin`.
pub fn busybox_tree(dir: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("create bin");
    std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("list busybox applets");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("link an applet");
        }
    }
}

/// Every path under `root`, relative, sorted.
pub fn tree_entries(root: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.expect("walk the tree");
            e.path()
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// `(uid, gid, mode)` of `path`, not following symlinks.
pub fn owner_mode(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    (m.uid(), m.gid(), m.mode())
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `chown -R uid:gid path` without following symlinks.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    for entry in walkdir::WalkDir::new(path) {
        let entry = entry.expect("walk the tree");
        std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid)).expect("chown");
    }
}

/// The uid and gid of a local user.
pub fn user_ids(name: &str) -> (u32, u32) {
    let user = nix::unistd::User::from_name(name)
        .expect("read the password database")
        .unwrap_or_else(|| panic!("test user {name} is missing: useradd -m {name}"));
    (user.uid.as_raw(), user.gid.as_raw())
}

//! Named sandboxes: an image's layers as overlay lowerdirs plus a persistent
//! upperdir under the store, run daemonless. Where an overlay cannot be
//! mounted (the probe builds use), a sandbox runs on a copy of the image's
//! tree instead, and its changes are found by the snapshot diff builds use
//! in that mode.
//!
//! ```text
//! ROOT.state/sandboxes/NAME/
//!   sandbox.json   what it is: image, command, env, user, volumes, network
//!   state.json     created | running | exited (code), times, the runner's pid
//!   lock           flock held by the process running it (foreground `run`
//!                  or the detached monitor): a free lock with state
//!                  "running" means that process was killed
//!   init.pid       host pid of the sandbox's pid 1 (exec, stop, freeze)
//!   upper/ work/   the overlay upperdir (the sandbox's changes) and workdir
//!   tree/          instead of upper/ and work/ (snapshot fallback): the
//!                  copied tree it runs on, changed in place
//!   snapshot.json  with tree/: the tree's stat snapshot when it was made,
//!                  what fork compares it with
//!   output.log     a detached sandbox's output
//!   boot.json      the boot inventory fork compares against
//! ```
//!
//! A foreground `run` runs the sandbox itself; `run -d` and `start` leave it
//! to a small monitor process (boxwright re-executed, no daemon) that keeps
//! the lock, the output and the exit code.

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::image::{ImageConfig, load_image};
use crate::media::{Descriptor, LayerInfo};
use crate::progress::{Event, Sink};
use crate::sandbox::{
    Action, BindMount, EnterSpec, HostEnv, IdMapping, Network, Rootfs, RunSpec, StdioMode, Userns,
};
use crate::store::Store;

use super::SessionError;
use super::lowers::Unpacker;
use super::pty;
use super::steps::{Chosen, DiffMethod, choose_method};
use super::worker::{Answer, Op, Unpack, Workers};

/// The first argument that makes boxwright a sandbox monitor.
pub const MONITOR_ARG: &str = "__monitor";
/// The first argument that makes boxwright enter a running sandbox (`exec`).
pub const ENTER_ARG: &str = "__enter";

/// What a sandbox is: written once, when it is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub name: String,
    /// The image as the user named it.
    pub image_ref: String,
    /// Its manifest: kept alive by `gc` while the sandbox exists.
    pub image: Descriptor,
    /// Its layers, bottom first: the sandbox's lowerdirs.
    pub layers: Vec<LayerInfo>,
    /// The program and its arguments (entrypoint + cmd).
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    /// As the image's `User` (empty: root).
    pub user: String,
    pub volumes: Vec<BindMount>,
    pub network: Network,
    pub tty: bool,
    pub interactive: bool,
    /// The host's proxies and CA bundle are given to the sandbox, as to
    /// build steps (`/run/boxwright/ca-certificates.crt`, `SSL_CERT_FILE`…).
    #[serde(default)]
    pub host_ca: bool,
    /// Removed once its program ends (`run --rm`, also with `-d`).
    #[serde(default)]
    pub auto_remove: bool,
    /// How its root filesystem is made (records from before the fallback
    /// existed are overlays).
    #[serde(default)]
    pub rootfs: SandboxRootfs,
    /// Seconds since the epoch.
    pub created: u64,
}

/// How a sandbox's root filesystem is made, chosen when it is created as a
/// build chooses its diff method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxRootfs {
    /// The image's layers as overlay lowerdirs, its changes in `upper/`.
    #[default]
    Overlay,
    /// A copy of the image's tree (`tree/`), changed in place; its changes
    /// are what differs from `snapshot.json`.
    Snapshot,
}

/// Where a sandbox's files are, for reading them from outside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SandboxFiles {
    /// An overlay upperdir over the image's layers.
    Upper(PathBuf),
    /// The whole tree, and the file holding its snapshot when it was made.
    Tree { tree: PathBuf, snapshot: PathBuf },
}

/// Where a sandbox is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Exited,
    /// It was running and the process running it is gone without saying
    /// how it ended (killed).
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Stopped => "stopped",
        }
    }
}

/// What is happening to a sandbox: rewritten as it changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxState {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    /// The process running it (foreground `run` or the monitor).
    pub runner_pid: Option<u32>,
}

/// A sandbox as `ps` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SandboxInfo {
    pub record: SandboxRecord,
    pub state: SandboxState,
    /// Bytes of disk its upperdir uses (its changes).
    pub changes_bytes: u64,
}

/// What `run` asks for.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    pub name: Option<String>,
    pub image_ref: String,
    /// `--entrypoint`: replaces the image's entrypoint (and drops its cmd).
    pub entrypoint: Option<Vec<String>>,
    /// Arguments after the image: replace the image's cmd.
    pub cmd: Vec<String>,
    /// `-e K=V`, on top of the image's environment.
    pub env: Vec<(String, String)>,
    pub volumes: Vec<BindMount>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub network: Option<Network>,
    pub tty: bool,
    pub interactive: bool,
    /// Give the sandbox the host's CA bundle (`--no-host-ca` turns it off).
    pub host_ca: bool,
    /// Remove the sandbox once its program ends (`--rm`).
    pub auto_remove: bool,
    /// Overlay or the copied-tree fallback, as a build's `--diff` (`Auto`
    /// probes overlay and falls back).
    pub diff: DiffMethod,
}

/// What `exec` asks for.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    /// `-e K=V`, on top of the sandbox's environment.
    pub env: Vec<(String, String)>,
    pub interactive: bool,
    pub tty: bool,
    /// Instead of the sandbox's user.
    pub user: Option<String>,
    /// Instead of the sandbox's working directory.
    pub workdir: Option<String>,
}

/// The sandboxes of a store.
pub struct Sandboxes<'a> {
    store: &'a Store,
    workers: Workers,
    mapping: IdMapping,
    max_layer_size: u64,
    sink: &'a dyn Sink,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks a sandbox name: podman's rule, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn check_name(name: &str) -> Result<(), SessionError> {
    let ok = name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SessionError::BadInput(format!(
            "'{}' is not a valid sandbox name: use letters, digits, '_', '.' and '-', starting with a letter or digit",
            crate::quote::excerpt(name)
        )))
    }
}

/// A fresh name in podman's style (`brave_turing`), not yet taken.
fn generate_name(taken: impl Fn(&str) -> bool) -> String {
    const ADJ: [&str; 16] = [
        "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nimble", "quiet", "sharp", "swift", "tidy", "witty",
    ];
    const NOUN: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "knuth", "lovelace",
        "meitner", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak",
    ];
    loop {
        let name = format!(
            "{}_{}",
            ADJ[fastrand::usize(..ADJ.len())],
            NOUN[fastrand::usize(..NOUN.len())]
        );
        if !taken(&name) {
            return name;
        }
        let numbered = format!("{name}_{}", fastrand::u16(..));
        if !taken(&numbered) {
            return numbered;
        }
    }
}

impl<'a> Sandboxes<'a> {
    /// The sandboxes of `store`, run with boxwright's executable `exe`.
    pub fn new(
        store: &'a Store,
        exe: PathBuf,
        max_layer_size: u64,
        sink: &'a dyn Sink,
    ) -> Result<Sandboxes<'a>, SessionError> {
        let mapping = IdMapping::detect()?;
        Ok(Sandboxes {
            store,
            workers: Workers::new(exe, Userns::new(mapping.clone())),
            mapping,
            max_layer_size,
            sink,
        })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.store.sandboxes_dir().join(name)
    }

    fn unpacker(&self) -> Unpacker<'_> {
        Unpacker {
            store: self.store,
            workers: &self.workers,
            max_layer_size: self.max_layer_size,
            sink: self.sink,
        }
    }

    /// The workers this store's sandboxes run in.
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// The record of sandbox `name`.
    pub fn record(&self, name: &str) -> Result<SandboxRecord, SessionError> {
        check_name(name)?;
        let path = self.dir(name).join("sandbox.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SessionError::NoSuchSandbox(name.to_string()));
            }
            Err(e) => return Err(SessionError::io(format!("{}", path.display()), e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            SessionError::io(
                format!("{}", path.display()),
                std::io::Error::other(e.to_string()),
            )
        })
    }

    /// The state of sandbox `name`, with a killed runner shown as stopped.
    pub fn state(&self, name: &str) -> Result<SandboxState, SessionError> {
        let dir = self.dir(name);
        let mut state: SandboxState = fs::read(dir.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if state.status == Status::Running && !self.lock_held(name) {
            state.status = Status::Stopped;
        }
        Ok(state)
    }

    fn write_state(&self, name: &str, state: &SandboxState) -> Result<(), SessionError> {
        let path = self.dir(name).join("state.json");
        let bytes = serde_json::to_vec(state).map_err(|e| SessionError::Worker(e.to_string()))?;
        crate::store::replace_file(&path, &bytes, Some(0o600))
            .map_err(|e| SessionError::io(format!("{}", path.display()), e))
    }

    /// Whether a process holds the sandbox's run lock.
    fn lock_held(&self, name: &str) -> bool {
        match fs::File::open(self.dir(name).join("lock")) {
            Ok(f) => matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }

    /// Takes the run lock, or says the sandbox is already running.
    fn take_lock(&self, name: &str) -> Result<fs::File, SessionError> {
        let path = self.dir(name).join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SessionError::io(format!("{}", path.display()), e))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => Err(SessionError::WrongState {
                name: name.to_string(),
                status: "running".into(),
                hint: format!("stop it first (boxwright stop {name}) or use boxwright exec"),
            }),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(SessionError::io(format!("{}", path.display()), e))
            }
        }
    }

    /// Creates a sandbox of the image `desc` (already in the store): unpacks
    /// its layers, makes the upperdir, records what `req` asks for.
    pub fn create(
        &self,
        req: &RunRequest,
        desc: &Descriptor,
    ) -> Result<SandboxRecord, SessionError> {
        // What killed runs left is cleared here too, as builds do (best
        // effort: skipped while another process uses the store).
        let _ = super::clean_stale(self.store, &self.workers);
        let _store = self.store.lock_shared()?;
        let name = match &req.name {
            Some(n) => {
                check_name(n)?;
                n.clone()
            }
            None => generate_name(|n| self.dir(n).exists()),
        };
        let image = load_image(self.store.layout(), desc)
            .map_err(|e| SessionError::BadInput(format!("{}: {e}", req.image_ref)))?;
        let layers = image
            .layers()
            .map_err(|e| SessionError::BadInput(format!("{}: {e}", req.image_ref)))?;
        let mut record = record_for(&name, req, desc, layers, &image.config);
        if record.argv.is_empty() {
            return Err(SessionError::BadInput(format!(
                "{} has no entrypoint or command: give one after the image, such as `boxwright run {} sh`",
                req.image_ref, req.image_ref
            )));
        }
        // Overlay where the kernel mounts one here, else a copied tree: the
        // same choice (and the same `--diff`) as builds, so `run` works
        // wherever `build` does.
        let chosen = choose_method(self.store, &self.workers, req.diff)?;
        if let Chosen::Snapshot { why: Some(why) } = &chosen {
            self.sink.emit(&Event::Warning {
                message: format!(
                    "overlay not available ({why}): sandbox {name} runs on a copy of the image's tree (slower to create; takes the image's size on disk)"
                ),
            });
        }
        record.rootfs = match chosen {
            Chosen::Overlay => SandboxRootfs::Overlay,
            Chosen::Snapshot { .. } => SandboxRootfs::Snapshot,
        };
        // Fail before anything is made when a layer cannot be unpacked; the
        // image's inventory is what fork compares against.
        let scratch = self.store.temp_dir()?;
        let boot = match record.rootfs {
            SandboxRootfs::Overlay => self
                .unpacker()
                .lowerdirs(&record.layers, &scratch)
                .and_then(|lowers| self.inventory(lowers)),
            SandboxRootfs::Snapshot => self.copy_tree(&record, &scratch),
        };
        let boot = match boot {
            Ok(b) => b,
            Err(e) => {
                self.unpacker().remove(scratch);
                return Err(e);
            }
        };
        let dir = self.dir(&name);
        let made = self.make_dir(&dir, &name, record.rootfs, &scratch);
        self.unpacker().remove(scratch);
        made?;
        let bytes =
            serde_json::to_vec_pretty(&record).map_err(|e| SessionError::Worker(e.to_string()))?;
        crate::store::replace_file(&dir.join("sandbox.json"), &bytes, Some(0o600))
            .map_err(|e| SessionError::io("sandbox.json", e))?;
        let bytes = serde_json::to_vec(&boot).map_err(|e| SessionError::Worker(e.to_string()))?;
        crate::store::replace_file(&dir.join("boot.json"), &bytes, Some(0o600))
            .map_err(|e| SessionError::io("boot.json", e))?;
        self.write_state(&name, &SandboxState::default())?;
        Ok(record)
    }

    /// The snapshot fallback's tree: the image's layers applied in order to
    /// `scratch/tree`, its mountpoints made and its stat snapshot written to
    /// `scratch/snapshot.json`. Returns its inventory.
    fn copy_tree(
        &self,
        record: &SandboxRecord,
        scratch: &Path,
    ) -> Result<crate::inventory::Inventory, SessionError> {
        let tree = scratch.join("tree");
        fs::create_dir_all(&tree)
            .map_err(|e| SessionError::io(format!("{}", tree.display()), e))?;
        for l in &record.layers {
            self.unpacker().unpack(l, Unpack::Flatten, &tree)?;
        }
        let spec = self.spec_on(
            record,
            Rootfs::Directory(tree.clone()),
            StdioMode::Inherit,
            scratch,
        );
        match self.workers.run(
            &Op::SnapshotTree {
                root: tree.clone(),
                spec: Box::new(spec),
                dest: scratch.join("snapshot.json"),
            },
            &mut |_| {},
        )? {
            Answer::Ok => {}
            Answer::Failed { message } => return Err(SessionError::Worker(message)),
            other => {
                return Err(SessionError::Worker(format!(
                    "unexpected worker answer {other:?}"
                )));
            }
        }
        self.inventory(vec![tree])
    }

    /// Makes the directory of new sandbox `name`: its overlay's upperdir and
    /// workdir, or the tree and snapshot [`Self::copy_tree`] left in `scratch`
    /// (moved: the same file system, and inode numbers stay as the snapshot
    /// saw them).
    fn make_dir(
        &self,
        dir: &Path,
        name: &str,
        rootfs: SandboxRootfs,
        scratch: &Path,
    ) -> Result<(), SessionError> {
        fs::create_dir_all(self.store.sandboxes_dir())
            .map_err(|e| SessionError::io("the sandboxes dir", e))?;
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(SessionError::NameTaken(name.to_string()));
            }
            Err(e) => return Err(SessionError::io(format!("{}", dir.display()), e)),
        }
        let made = match rootfs {
            SandboxRootfs::Overlay => ["upper", "work"].iter().try_for_each(|sub| {
                fs::create_dir(dir.join(sub))
                    .map_err(|e| SessionError::io(format!("{}/{sub}", dir.display()), e))
            }),
            SandboxRootfs::Snapshot => ["tree", "snapshot.json"].iter().try_for_each(|sub| {
                fs::rename(scratch.join(sub), dir.join(sub))
                    .map_err(|e| SessionError::io(format!("{}/{sub}", dir.display()), e))
            }),
        };
        if made.is_err() {
            // No record yet: nothing would ever name this half-made sandbox.
            if let Ok(gone) = self.store.move_to_trash(dir) {
                self.unpacker().remove(gone);
            }
        }
        made
    }

    /// The package inventory of the overlay of `layers` (topmost first).
    fn inventory(&self, layers: Vec<PathBuf>) -> Result<crate::inventory::Inventory, SessionError> {
        match self
            .workers
            .run(&super::worker::Op::Inventory { layers }, &mut |_| {})?
        {
            super::worker::Answer::Inventory { inventory } => Ok(inventory),
            super::worker::Answer::Failed { message } => Err(SessionError::Worker(message)),
            other => Err(SessionError::Worker(format!(
                "unexpected worker answer {other:?}"
            ))),
        }
    }

    /// The package inventory of sandbox `name` as it is now: its upperdir
    /// over its image's layers, or its copied tree. A running sandbox is
    /// paused while it is read, as for a fork.
    pub fn current_inventory(
        &self,
        name: &str,
    ) -> Result<crate::inventory::Inventory, SessionError> {
        let record = self.record(name)?;
        // As for a fork: no gc evicts the layers while they are read.
        let _store = self.store.lock_shared()?;
        let scratch = self.store.temp_dir()?;
        let read = (|| {
            let layers = match self.files_of(&record) {
                SandboxFiles::Upper(upper) => {
                    let mut layers = vec![upper];
                    layers.extend(self.unpacker().lowerdirs(&record.layers, &scratch)?);
                    layers
                }
                SandboxFiles::Tree { tree, .. } => vec![tree],
            };
            let _paused = self.pause(name)?;
            self.inventory(layers)
        })();
        self.unpacker().remove(scratch);
        read
    }

    /// The inventory taken when sandbox `name` was created.
    pub fn boot_inventory(&self, name: &str) -> Option<crate::inventory::Inventory> {
        let bytes = fs::read(self.dir(name).join("boot.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The spec that runs sandbox `record` (its overlay or tree, its command).
    fn run_spec(&self, record: &SandboxRecord, stdio: StdioMode) -> Result<RunSpec, SessionError> {
        let dir = self.dir(&record.name);
        let rootfs = match record.rootfs {
            SandboxRootfs::Overlay => Rootfs::Overlay {
                lowerdirs: self.unpacker().lowerdirs(&record.layers, &dir)?,
                upperdir: dir.join("upper"),
                workdir: dir.join("work"),
            },
            SandboxRootfs::Snapshot => Rootfs::Directory(dir.join("tree")),
        };
        Ok(self.spec_on(record, rootfs, stdio, &dir))
    }

    /// The spec that runs `record`'s command on `rootfs`; `dir` gets its
    /// init's pid file.
    fn spec_on(
        &self,
        record: &SandboxRecord,
        rootfs: Rootfs,
        stdio: StdioMode,
        dir: &Path,
    ) -> RunSpec {
        RunSpec {
            rootfs,
            action: Action::Exec {
                argv: record.argv.clone(),
                env: record.env.clone(),
                cwd: record.workdir.clone(),
                uid: 0,
                gid: 0,
                user: Some(record.user.clone()).filter(|u| !u.is_empty()),
            },
            network: record.network,
            host: HostEnv::capture(record.host_ca),
            fake_root: self.mapping.fake_root(),
            mounts: record.volumes.clone(),
            image_mounts: Vec::new(),
            timeout_secs: None,
            stdio,
            hostname: Some(record.name.clone()),
            pid_file: Some(dir.join("init.pid")),
            no_new_privs: false,
        }
    }

    /// Runs sandbox `name` in this process, attached to this process's
    /// stdin (with `interactive`), stdout and stderr, or a terminal (its
    /// `tty`); returns the program's exit status.
    pub fn run_attached(&self, name: &str) -> Result<i32, SessionError> {
        let record = self.record(name)?;
        let lock = self.take_lock(name)?;
        let stdio = if record.tty {
            StdioMode::Tty
        } else {
            StdioMode::Inherit
        };
        let spec = self.run_spec(&record, stdio)?;
        let dir = self.dir(name);
        let _ = fs::remove_file(dir.join("init.pid"));
        self.write_state(
            name,
            &SandboxState {
                status: Status::Running,
                started: Some(now()),
                runner_pid: Some(std::process::id()),
                ..SandboxState::default()
            },
        )?;
        let request = dir.join("request.json");
        let code = if record.tty {
            let pty::ConsoleSocket { ours, theirs } = pty::console_socket()?;
            let mut child = self.workers.spawn_attached(
                &spec,
                &request,
                Stdio::null(),
                Stdio::inherit(),
                Stdio::inherit(),
                Some(&theirs),
            )?;
            // Only the sandbox may hold the other end, so its exit is seen.
            drop(theirs);
            pty::relay_console(&ours, record.interactive)?;
            wait_code(&mut child)?
        } else {
            let stdin = if record.interactive {
                Stdio::inherit()
            } else {
                Stdio::null()
            };
            let mut child = self.workers.spawn_attached(
                &spec,
                &request,
                stdin,
                Stdio::inherit(),
                Stdio::inherit(),
                None,
            )?;
            wait_code(&mut child)?
        };
        let _ = fs::remove_file(&request);
        self.write_state(
            name,
            &SandboxState {
                status: Status::Exited,
                exit_code: Some(code),
                started: self.state(name).ok().and_then(|s| s.started),
                finished: Some(now()),
                runner_pid: None,
            },
        )?;
        drop(lock);
        Ok(code)
    }

    /// Starts sandbox `name` detached: a monitor process runs it, its output
    /// goes to `output.log`. Returns once it runs (or failed to start).
    pub fn start_detached(&self, name: &str, exe: &Path) -> Result<(), SessionError> {
        let record = self.record(name)?;
        if self.lock_held(name) {
            return Err(SessionError::WrongState {
                name: name.into(),
                status: "running".into(),
                hint: "it is already running".into(),
            });
        }
        let dir = self.dir(&record.name);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("output.log"))
            .map_err(|e| SessionError::io("output.log", e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| SessionError::io("output.log", e))?;
        let mut cmd = Command::new(exe);
        cmd.arg(MONITOR_ARG)
            .arg(self.store.root())
            .arg(name)
            .arg(self.max_layer_size.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        // SAFETY: setsid is async-signal-safe; the monitor leaves the
        // caller's session, so closing the terminal does not stop it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| SessionError::io("start the sandbox monitor", e))?;
        let started = Instant::now();
        loop {
            let state = self.state(name)?;
            if state.status == Status::Running
                && state.runner_pid == Some(child.id())
                && dir.join("init.pid").exists()
            {
                return Ok(());
            }
            if let Some(status) = child
                .try_wait()
                .map_err(|e| SessionError::io("the monitor", e))?
            {
                if state.status == Status::Exited || !dir.exists() {
                    // It ran and ended already (a short command), and with
                    // --rm it is gone too.
                    return Ok(());
                }
                let tail = fs::read_to_string(dir.join("output.log")).unwrap_or_default();
                let last = tail
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                return Err(SessionError::Worker(format!(
                    "sandbox {name} did not start ({status}): {}",
                    crate::quote::excerpt_n(last, 200)
                )));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(SessionError::Worker(format!(
                    "sandbox {name} did not start within 60s: see boxwright logs --sandbox {name}"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Host pid of the running sandbox's init.
    fn init_pid(&self, name: &str) -> Result<i32, SessionError> {
        let state = self.state(name)?;
        if state.status != Status::Running {
            return Err(SessionError::WrongState {
                name: name.into(),
                status: state.status.as_str().into(),
                hint: format!("start it first: boxwright start {name}"),
            });
        }
        let text = fs::read_to_string(self.dir(name).join("init.pid"))
            .map_err(|e| SessionError::io("init.pid", e))?;
        text.trim()
            .parse()
            .map_err(|_| SessionError::io("init.pid", std::io::Error::other("not a pid")))
    }

    /// Runs `req.argv` in running sandbox `name` (`exec`), attached; returns its status.
    pub fn exec(&self, name: &str, exe: &Path, req: &ExecRequest) -> Result<i32, SessionError> {
        let record = self.record(name)?;
        let pid = self.init_pid(name)?;
        let mut all_env = record.env.clone();
        for (k, v) in &req.env {
            set_env(&mut all_env, k, v);
        }
        let (interactive, tty) = (req.interactive, req.tty);
        let spec = EnterSpec {
            pid,
            argv: req.argv.clone(),
            env: all_env,
            cwd: req.workdir.clone().unwrap_or(record.workdir.clone()),
            user: req.user.clone().unwrap_or(record.user.clone()),
            stdio: if tty {
                StdioMode::Tty
            } else {
                StdioMode::Inherit
            },
            fake_root: self.mapping.fake_root(),
            host: HostEnv::capture(record.host_ca),
        };
        let request = self
            .dir(name)
            .join(format!("exec-{}.json", std::process::id()));
        let bytes = serde_json::to_vec(&spec).map_err(|e| SessionError::Worker(e.to_string()))?;
        crate::store::replace_file(&request, &bytes, Some(0o600))
            .map_err(|e| SessionError::io("the exec request", e))?;
        let mut cmd = Command::new(exe);
        cmd.arg(ENTER_ARG).arg(&request);
        let code = if tty {
            let pty::ConsoleSocket { ours, theirs } = pty::console_socket()?;
            super::worker::inherit_as_console(&mut cmd, &theirs);
            cmd.stdin(Stdio::null());
            let mut child = cmd
                .spawn()
                .map_err(|e| SessionError::io("enter the sandbox", e))?;
            drop(theirs);
            pty::relay_console(&ours, interactive)?;
            wait_code(&mut child)?
        } else {
            cmd.stdin(if interactive {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
            let mut child = cmd
                .spawn()
                .map_err(|e| SessionError::io("enter the sandbox", e))?;
            wait_code(&mut child)?
        };
        let _ = fs::remove_file(&request);
        Ok(code)
    }

    /// Stops sandbox `name`: SIGTERM to its program, SIGKILL to everything
    /// in it after `grace`. A sandbox that is not running is left as it is.
    pub fn stop(&self, name: &str, grace: Duration) -> Result<(), SessionError> {
        self.record(name)?;
        let Ok(pid) = self.init_pid(name) else {
            return Ok(());
        };
        for child in children(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + grace;
        while self.lock_held(name) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.lock_held(name) {
            // pid 1 of its namespace: its death takes every process there.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.lock_held(name) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Pauses every process of running sandbox `name` (SIGSTOP) until the
    /// returned guard is dropped (SIGCONT), so its files hold still while
    /// they are read; `None` when it is not running.
    pub fn pause(&self, name: &str) -> Result<Option<Paused>, SessionError> {
        let Ok(init) = self.init_pid(name) else {
            return Ok(None);
        };
        let ns = match fs::read_link(format!("/proc/{init}/ns/pid")) {
            Ok(ns) => ns,
            // It ended since its state was read (a short command): with its
            // init gone, nothing of it runs that could be paused.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SessionError::io("the sandbox's pid namespace", e)),
        };
        let mut pids = Vec::new();
        // Stopped processes can still fork between two passes' reads of
        // /proc: go over it until a pass finds no new one.
        loop {
            let mut found = false;
            for e in fs::read_dir("/proc")
                .map_err(|e| SessionError::io("/proc", e))?
                .flatten()
            {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                    continue;
                };
                if pids.contains(&pid)
                    || fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() != Some(&ns)
                {
                    continue;
                }
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGSTOP,
                );
                pids.push(pid);
                found = true;
            }
            if !found {
                break;
            }
        }
        Ok(Some(Paused { pids }))
    }

    /// Removes sandbox `name` and its changes; a running one only with `force`
    /// (it is killed first).
    pub fn remove(&self, name: &str, force: bool) -> Result<(), SessionError> {
        self.record(name)?;
        if self.lock_held(name) {
            if !force {
                return Err(SessionError::WrongState {
                    name: name.into(),
                    status: "running".into(),
                    hint: format!("stop it first (boxwright stop {name}) or use rm --force"),
                });
            }
            self.stop(name, Duration::ZERO)?;
        }
        let dir = self.dir(name);
        let gone = self.store.move_to_trash(&dir)?;
        self.unpacker().remove(gone);
        Ok(())
    }

    /// Every sandbox, oldest first.
    pub fn list(&self) -> Result<Vec<SandboxInfo>, SessionError> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.store.sandboxes_dir()) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(record) = self.record(&name) else {
                continue;
            };
            let state = self.state(&name)?;
            let changes_bytes = match record.rootfs {
                SandboxRootfs::Overlay => du(&e.path().join("upper")),
                SandboxRootfs::Snapshot => tree_changes(&e.path()),
            };
            out.push(SandboxInfo {
                record,
                state,
                changes_bytes,
            });
        }
        out.sort_by(|a, b| {
            (a.record.created, &a.record.name).cmp(&(b.record.created, &b.record.name))
        });
        Ok(out)
    }

    /// The output log of a detached sandbox.
    pub fn log_path(&self, name: &str) -> Result<PathBuf, SessionError> {
        self.record(name)?;
        Ok(self.dir(name).join("output.log"))
    }

    /// The directory of sandbox `name` (see the module's documentation).
    pub fn path(&self, name: &str) -> Result<PathBuf, SessionError> {
        self.record(name)?;
        Ok(self.dir(name))
    }

    /// Where the files of sandbox `name` are.
    pub fn files(&self, name: &str) -> Result<SandboxFiles, SessionError> {
        Ok(self.files_of(&self.record(name)?))
    }

    /// Where the files of the sandbox `record` describes are.
    fn files_of(&self, record: &SandboxRecord) -> SandboxFiles {
        let dir = self.dir(&record.name);
        match record.rootfs {
            SandboxRootfs::Overlay => SandboxFiles::Upper(dir.join("upper")),
            SandboxRootfs::Snapshot => SandboxFiles::Tree {
                tree: dir.join("tree"),
                snapshot: dir.join("snapshot.json"),
            },
        }
    }
}

/// Processes stopped by [`Sandboxes::pause`]; continued when dropped.
pub struct Paused {
    pids: Vec<i32>,
}

impl Paused {
    /// How many processes were paused.
    pub fn count(&self) -> usize {
        self.pids.len()
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        for pid in &self.pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGCONT,
            );
        }
    }
}

/// The record `req` makes for an image with `config`: podman's rules for
/// the command (an `--entrypoint` drops the image's cmd; arguments replace
/// the cmd), the environment (the image's, then `-e`), workdir and user.
fn record_for(
    name: &str,
    req: &RunRequest,
    desc: &Descriptor,
    layers: Vec<LayerInfo>,
    config: &ImageConfig,
) -> SandboxRecord {
    let c = config.config.clone().unwrap_or_default();
    let entrypoint = match &req.entrypoint {
        Some(e) => e.clone(),
        None => c.entrypoint.clone().unwrap_or_default(),
    };
    let cmd = if !req.cmd.is_empty() {
        req.cmd.clone()
    } else if req.entrypoint.is_some() {
        Vec::new()
    } else {
        c.cmd.clone().unwrap_or_default()
    };
    let mut argv = entrypoint;
    argv.extend(cmd);
    let mut env = config.env();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), crate::sandbox::DEFAULT_PATH.into()));
    }
    for (k, v) in &req.env {
        set_env(&mut env, k, v);
    }
    SandboxRecord {
        name: name.to_string(),
        image_ref: req.image_ref.clone(),
        image: desc.clone(),
        layers,
        argv,
        env,
        workdir: req
            .workdir
            .clone()
            .or(c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: req.user.clone().or(c.user.clone()).unwrap_or_default(),
        volumes: req.volumes.clone(),
        network: req.network.unwrap_or(Network::Host),
        tty: req.tty,
        interactive: req.interactive,
        host_ca: req.host_ca,
        auto_remove: req.auto_remove,
        rootfs: SandboxRootfs::default(),
        created: now(),
    }
}

fn set_env(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    match env.iter_mut().find(|(ek, _)| ek == k) {
        Some(e) => e.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    }
}

/// The exit status of a child, as a shell reports it.
fn wait_code(child: &mut std::process::Child) -> Result<i32, SessionError> {
    use std::os::unix::process::ExitStatusExt;
    let status = child
        .wait()
        .map_err(|e| SessionError::io("wait for the sandbox", e))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// The children of process `pid` (host pids).
fn children(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Bytes of the files a copied-tree sandbox (in `dir`) added or changed.
/// Read from outside its user namespace, like [`du`] of an upperdir: a
/// tree this user cannot read all of (subordinate ids' private
/// directories) shows no size rather than a wrong one.
fn tree_changes(dir: &Path) -> u64 {
    let Some(before) = fs::read(dir.join("snapshot.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::layer::Snapshot>(&b).ok())
    else {
        return 0;
    };
    crate::layer::changed_bytes(&dir.join("tree"), &before).unwrap_or(0)
}

/// Bytes of disk a tree uses (what can be read of it).
pub(crate) fn du(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.nlink() <= 1 || seen.insert((m.dev(), m.ino())))
        .map(|m| m.blocks() * 512)
        .sum()
}

/// The monitor of a detached sandbox: `boxwright __monitor STORE NAME MAX`.
/// Runs the sandbox with its output on this process's stdout/stderr (the
/// log) and exits with its status.
pub fn monitor_main() -> i32 {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let (Some(store), Some(name)) = (args.first(), args.get(1)) else {
        eprintln!("boxwright: the monitor needs STORE and NAME");
        return 125;
    };
    let max: u64 = args
        .get(2)
        .and_then(|m| m.parse().ok())
        .unwrap_or(crate::layer::DEFAULT_MAX_LAYER_SIZE);
    let result = (|| -> Result<i32, SessionError> {
        let store = Store::open(Path::new(store))?;
        let exe = std::env::current_exe()
            .map_err(|e| SessionError::io("boxwright's own executable", e))?;
        let sink = crate::progress::NullSink;
        let sandboxes = Sandboxes::new(&store, exe, max, &sink)?;
        let code = sandboxes.run_attached(name)?;
        if sandboxes.record(name)?.auto_remove {
            sandboxes.remove(name, true)?;
        }
        Ok(code)
    })();
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "boxwright: {e}");
            125
        }
    }
}

/// `boxwright __enter REQUEST`: joins a running sandbox and runs a program
/// (see [`crate::sandbox::enter_and_run`]); exits with its status.
pub fn enter_main() -> i32 {
    let Some(path) = std::env::args_os().nth(2) else {
        return 125;
    };
    let spec = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<EnterSpec>(&b).ok());
    let _ = fs::remove_file(&path);
    let Some(spec) = spec else {
        eprintln!("boxwright: cannot read the exec request");
        return 125;
    };
    match crate::sandbox::enter_and_run(&spec) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("boxwright: {e}");
            match e {
                crate::sandbox::SandboxError::Exec { .. } => 127,
                _ => 125,
            }
        }
    }
}

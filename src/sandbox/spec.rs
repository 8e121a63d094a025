//! What a sandboxed step is: its root filesystem, its action, its network,
//! and what it borrows from the host. Serializable so the driver can hand it
//! to a helper process.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::SandboxError;
use crate::mirror::Mirrors;

/// Where a step's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rootfs {
    /// An overlay: read-only layers plus a fresh upperdir that becomes the diff.
    Overlay {
        /// Unpacked parent layers, topmost first.
        lowerdirs: Vec<PathBuf>,
        /// Receives every change the step makes.
        upperdir: PathBuf,
        /// Empty directory on the upperdir's file system, for the kernel's use.
        workdir: PathBuf,
    },
    /// The snapshot fallback: a full copied tree, used and changed in place.
    Directory(PathBuf),
}

/// What the step does inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Runs a program (a `RUN` step).
    Exec {
        /// Program and arguments; a program without `/` is looked up in the step's `PATH`.
        argv: Vec<String>,
        /// Environment of the step; it wins over proxies and CA variables.
        env: Vec<(String, String)>,
        /// Working directory inside the container, created if missing.
        cwd: String,
        /// Uid the program runs as.
        uid: u32,
        /// Gid the program runs as.
        gid: u32,
        /// A user as an image's `User` names it (`name`, `uid`, `name:group`,
        /// `uid:gid`), looked up in the image's /etc/passwd and /etc/group
        /// inside the root; when set it replaces `uid` and `gid`.
        #[serde(default)]
        user: Option<String>,
    },
    /// Copies a host file or directory into the container (a `COPY` step).
    Copy {
        /// Host path of the source.
        src: PathBuf,
        /// Container path: a file lands at `dest` (or `dest/NAME` if `dest` ends
        /// in `/` or is a directory); a directory's contents land in `dest`.
        dest: String,
        /// Permission bits for every copied file and directory.
        mode: Option<u32>,
        /// Owner of everything copied; root by default.
        owner: Option<(u32, u32)>,
    },
    /// Copies what glob sources select from a tree (a Containerfile's
    /// `COPY`/`ADD`): the build context, or another stage's file system.
    CopyFiles(CopyFiles),
}

/// A Containerfile `COPY`/`ADD`, run with the tree as the working directory
/// and the image as the root, so sources resolve in the tree and
/// destinations in the image (see [`crate::context`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyFiles {
    /// The host directory sources are read in (the build context, or, with
    /// `source_layers`, an empty directory the source image is mounted on).
    pub root: PathBuf,
    /// Unpacked layers (topmost first) mounted read-only on `root` for the
    /// copy: `COPY --from=stage|image`.
    #[serde(default)]
    pub source_layers: Vec<PathBuf>,
    /// Sources as written after expansion: paths or glob patterns.
    pub sources: Vec<String>,
    /// `.dockerignore` patterns (`!` for exceptions), relative to `root`.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// `--exclude` patterns, relative to each source.
    #[serde(default)]
    pub source_excludes: Vec<String>,
    /// Absolute container path; a directory when it ends in `/`.
    pub dest: String,
    /// `--chmod`: permission bits for everything copied.
    pub mode: Option<u32>,
    /// `--chown`: a user as `USER` names one, resolved in the image.
    pub chown: Option<String>,
    /// `--parents`: keep each source's path below `dest`.
    #[serde(default)]
    pub parents: bool,
    /// `ADD`: unpack tar archives (plain, gzip or zstd) into `dest`.
    #[serde(default)]
    pub extract: bool,
}

/// Another image's file system, mounted read-only where a step runs
/// (`RUN --mount=type=bind,from=stage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMount {
    /// Unpacked layers, topmost first.
    pub lowerdirs: Vec<PathBuf>,
    /// The path inside the image that is mounted (`/` for all of it),
    /// resolved inside the image.
    #[serde(default)]
    pub source: String,
    /// Absolute, normalized container path.
    pub target: String,
    /// Writes allowed, to `scratch` (or to the lowerdir itself when it is
    /// a private flattened copy); discarded after the step.
    #[serde(default)]
    pub writable: bool,
    /// A directory on the upperdir's file system holding `upper` and
    /// `work` for a writable overlay.
    #[serde(default)]
    pub scratch: Option<PathBuf>,
}

/// What the program's standard streams are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StdioMode {
    /// A build step: stdin is /dev/null, stdout joins stderr (the helper's
    /// stdout carries its answer).
    #[default]
    Step,
    /// The helper's own stdin, stdout and stderr, as they are (`run`).
    Inherit,
    /// A terminal made inside the sandbox: its slave is the program's
    /// controlling terminal and standard streams, its master is sent over
    /// the console socket the helper inherited as
    /// [`CONSOLE_FD`](super::CONSOLE_FD) (see `console`).
    Tty,
}

/// The network a step sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// The host's network, with its resolv.conf and hosts (read-only).
    Host,
    /// A network namespace with only a loopback interface.
    None,
}

/// What a step borrows from the host: proxy settings, a CA bundle and the
/// build's download mirrors. None of it is part of the image config, and
/// what it puts in the container lives on the step's /run tmpfs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEnv {
    /// Proxy variables (name, value), both spellings as set on the host.
    pub proxies: Vec<(String, String)>,
    /// Host CA bundle, exposed read-only at [`CA_BUNDLE_PATH`] inside.
    pub ca_bundle: Option<PathBuf>,
    /// Download mirrors: package-manager variables, and rewritten copies of
    /// the image's apt sources for apt (see [`crate::mirror`]).
    #[serde(default)]
    pub mirrors: Mirrors,
    /// `--offline`: steps see `BOXWRIGHT_OFFLINE=1`, so boxwright's own
    /// component scripts refuse package managers they cannot send to a mirror.
    #[serde(default)]
    pub offline: bool,
}

/// Where the host CA bundle appears inside the container.
pub const CA_BUNDLE_PATH: &str = "/run/boxwright/ca-certificates.crt";

/// Proxy variable names passed through from the host.
const PROXY_VARS: [&str; 5] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "ALL_PROXY",
];

/// Where distributions keep their CA bundle, in order of preference.
const CA_CANDIDATES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

impl HostEnv {
    /// Reads proxy variables (upper- and lower-case) from this process's
    /// environment and, if `use_host_ca`, finds the host CA bundle:
    /// `$SSL_CERT_FILE`, else the Debian or the Red Hat bundle, whichever exists.
    pub fn capture(use_host_ca: bool) -> HostEnv {
        let mut proxies = Vec::new();
        for name in PROXY_VARS {
            for spelling in [name.to_string(), name.to_lowercase()] {
                if let Ok(value) = std::env::var(&spelling) {
                    proxies.push((spelling, value));
                }
            }
        }
        let ca_bundle = if use_host_ca {
            std::env::var_os("SSL_CERT_FILE")
                .map(PathBuf::from)
                .into_iter()
                .chain(CA_CANDIDATES.iter().map(PathBuf::from))
                .find(|p| p.is_file())
        } else {
            None
        };
        HostEnv {
            proxies,
            ca_bundle,
            mirrors: Mirrors::default(),
            offline: false,
        }
    }
}

/// A host file or directory bound into the step: a package-manager cache
/// (read-write, kept across builds) or an input such as a verified artifact
/// (read-only). Nothing under a bind mount reaches the layer; a mountpoint the
/// image lacks is created for the step and removed afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// Absolute host path (an existing directory or file).
    pub source: PathBuf,
    /// Absolute, normalized container path. Targets under `/run` land on the
    /// step's /run tmpfs.
    pub target: String,
    pub readonly: bool,
}

/// Where apt keeps its downloads and lists. Cache mounts there are only made
/// on images with dpkg, and make apt keep what it downloads (see `environment`).
pub(crate) const APT_CACHE_DIRS: [&str; 2] = ["/var/cache/apt", "/var/lib/apt"];

impl BindMount {
    /// Whether this is a cache of apt's.
    pub(crate) fn is_apt_cache(&self) -> bool {
        APT_CACHE_DIRS
            .iter()
            .any(|d| self.target == *d || self.target.starts_with(&format!("{d}/")))
    }
}

/// Everything `run_in_namespace` needs to run one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The step's root filesystem.
    pub rootfs: Rootfs,
    /// What the step does.
    pub action: Action,
    /// The network it sees.
    pub network: Network,
    /// Proxies and CA bundle from the host.
    pub host: HostEnv,
    /// Single-id mode: fake chown/setuid/device mknod with seccomp and tell
    /// apt not to drop privileges.
    pub fake_root: bool,
    /// Cache mounts and read-only inputs.
    #[serde(default)]
    pub mounts: Vec<BindMount>,
    /// Other images' file systems, read-only (after `mounts`).
    #[serde(default)]
    pub image_mounts: Vec<ImageMount>,
    /// Seconds the step may run; then every process of its pid namespace is
    /// killed and the run fails with [`super::SandboxError::TimedOut`].
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The program's standard streams.
    #[serde(default)]
    pub stdio: StdioMode,
    /// The hostname inside (default `boxwright`).
    #[serde(default)]
    pub hostname: Option<String>,
    /// `no_new_privs` for the program: setuid and file capabilities give
    /// it nothing (build steps; an interactive sandbox keeps `sudo`).
    #[serde(default)]
    pub no_new_privs: bool,
    /// Where the set-up process writes the host pid of the container's init
    /// (pid 1 inside) once it runs: `exec` joins its namespaces, `stop`
    /// signals its child.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
}

impl RunSpec {
    /// Rejects specs that cannot be run, before any namespace is created.
    pub(crate) fn validate(&self) -> Result<(), SandboxError> {
        match &self.rootfs {
            Rootfs::Overlay {
                lowerdirs,
                upperdir,
                workdir,
            } => {
                if lowerdirs.is_empty() {
                    return Err(invalid(
                        "an overlay needs at least one lowerdir (use an empty directory for scratch)",
                    ));
                }
                for dir in lowerdirs.iter().chain([upperdir, workdir]) {
                    require_dir(dir)?;
                }
            }
            Rootfs::Directory(dir) => require_dir(dir)?,
        }
        match &self.action {
            Action::Exec { argv, env, cwd, .. } => {
                if argv.is_empty() {
                    return Err(invalid("the step has an empty command line"));
                }
                let texts = argv
                    .iter()
                    .chain(env.iter().flat_map(|(k, v)| [k, v]))
                    .chain([cwd]);
                if texts.clone().any(|t| t.contains('\0')) {
                    return Err(invalid(
                        "the command, environment or cwd contains a NUL byte",
                    ));
                }
                if env.iter().any(|(k, _)| k.is_empty() || k.contains('=')) {
                    return Err(invalid(
                        "an environment variable name is empty or contains '='",
                    ));
                }
            }
            Action::CopyFiles(c) => {
                require_dir(&c.root)?;
                for dir in &c.source_layers {
                    require_dir(dir)?;
                }
                if !c.dest.starts_with('/') || c.dest.contains('\0') {
                    return Err(invalid("the copy destination must be an absolute path"));
                }
                if c.sources.is_empty() {
                    return Err(invalid("the copy has no source"));
                }
            }
            Action::Copy { src, dest, .. } => {
                if std::fs::metadata(src).is_err() {
                    return Err(invalid(format!(
                        "the copy source {} does not exist",
                        src.display()
                    )));
                }
                if dest.is_empty() || dest.contains('\0') {
                    return Err(invalid(
                        "the copy destination is empty or contains a NUL byte",
                    ));
                }
            }
        }
        if let Some(ca) = &self.host.ca_bundle
            && !ca.is_file()
        {
            return Err(invalid(format!(
                "the CA bundle {} is not a file",
                ca.display()
            )));
        }
        for m in &self.image_mounts {
            if m.lowerdirs.is_empty() {
                return Err(invalid(format!(
                    "the image mount at {} has no layer directory",
                    m.target
                )));
            }
            for dir in &m.lowerdirs {
                require_dir(dir)?;
            }
            check_target(&m.target)?;
        }
        for m in &self.mounts {
            if !m.source.is_absolute() || std::fs::metadata(&m.source).is_err() {
                return Err(invalid(format!(
                    "the mount source {} does not exist (or is not absolute)",
                    m.source.display()
                )));
            }
            check_target(&m.target)?;
        }
        Ok(())
    }

    /// Whether the step gets boxwright's apt snippet (`APT_CONFIG`): in
    /// fake-root mode, and whenever apt's caches are mounted.
    pub(crate) fn apt_conf(&self) -> bool {
        self.fake_root || self.mounts.iter().any(BindMount::is_apt_cache)
    }
}

/// A mount target must be a normalized absolute path, not one of the
/// sandbox's own mounts.
fn check_target(target: &str) -> Result<(), SandboxError> {
    let parts: Vec<&str> = target.split('/').skip(1).collect();
    let normalized = target.starts_with('/')
        && !parts.is_empty()
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != "..");
    if !normalized || target.contains('\0') {
        return Err(invalid(format!(
            "the mount target '{target}' must be a normalized absolute path below /"
        )));
    }
    if ["proc", "dev", "sys"].contains(&parts[0]) || target == "/run" {
        return Err(invalid(format!(
            "the mount target '{target}' is a mount of the sandbox itself"
        )));
    }
    Ok(())
}

fn require_dir(dir: &Path) -> Result<(), SandboxError> {
    if !dir.is_absolute() {
        return Err(invalid(format!(
            "{} is not an absolute path",
            dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(invalid(format!("{} is not a directory", dir.display())));
    }
    Ok(())
}

/// Why a spec is refused, as the sandbox's error (it crosses the helper's
/// JSON pipe, so the reason is text).
fn invalid(reason: impl Into<String>) -> SandboxError {
    SandboxError::InvalidSpec {
        reason: reason.into(),
    }
}

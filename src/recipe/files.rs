//! Step kinds a Containerfile lowers into beyond a recipe's `run` and
//! `copy`: a multi-source COPY/ADD ([`FilesSpec`]) and an image config
//! change that makes no layer ([`ConfigChange`]), plus the options of a
//! `RUN` that a recipe has no words for ([`StepOptions`]).

/// Where a [`FilesSpec`] reads its sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesFrom {
    /// The build context directory (with its `.dockerignore`).
    Context(std::path::PathBuf),
    /// A directory the front end prepared (heredoc bodies, downloads).
    Staged(std::path::PathBuf),
    /// The file system of an earlier stage (by index).
    Stage(usize),
    /// The file system of an image (a reference as a base would be written).
    Image(String),
    /// `ADD URL`: downloaded when the step runs (or when its key needs
    /// the content: without `checksum`), saved as `name` (mode 0600).
    Url {
        url: String,
        /// `--checksum=sha256:...`: the content's digest, checked.
        checksum: Option<crate::digest::Digest>,
        name: String,
    },
    /// `ADD` of a git repository: cloned with the host's `git` (the
    /// clone's files are the step's content and its key).
    Git {
        url: String,
        /// A branch, tag or commit (`URL#REF`).
        reference: Option<String>,
        keep_git_dir: bool,
    },
}

/// `COPY`/`ADD` of a Containerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesSpec {
    pub from: FilesFrom,
    /// Source paths or glob patterns, after variable expansion.
    pub sources: Vec<String>,
    /// `.dockerignore` patterns (for the context), relative to its root.
    pub excludes: Vec<String>,
    /// `--exclude` patterns, relative to each source.
    pub source_excludes: Vec<String>,
    /// Absolute destination (a directory when it ends in `/`).
    pub dest: String,
    pub mode: Option<u32>,
    /// `--chown` as written after expansion (`user[:group]`).
    pub chown: Option<String>,
    /// Owned by the image's `USER` at this point (WORKDIR's directory).
    pub chown_user: bool,
    pub parents: bool,
    /// `ADD` of a local archive: unpack it.
    pub extract: bool,
    /// The instruction for the history and progress lines.
    pub text: String,
}

/// An image config change (`ENV`, `WORKDIR`, `CMD`...): no layer, one
/// history entry, applied in order so later steps see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Workdir(String),
    User(String),
    /// Normalized `PORT/PROTO` keys.
    Expose(Vec<String>),
    Cmd(Vec<String>),
    /// `reset_cmd`: the base's `CMD` goes (none was set in this stage).
    Entrypoint {
        argv: Vec<String>,
        reset_cmd: bool,
    },
    Shell(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    /// Docker's `Healthcheck` object (`{"Test": [...], "Interval": ns, ...}`).
    Healthcheck(serde_json::Value),
    OnBuild(String),
    Maintainer(String),
    /// `ARG`: changes no config, recorded in the history as Docker does.
    Arg,
}

/// What a Containerfile `RUN` adds to a step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepOptions {
    /// `--network=none`: loopback only, whatever the build's network.
    pub no_network: bool,
    /// `--mount=type=bind`: read-only views of the context or a stage.
    pub binds: Vec<StepBind>,
    /// Run as the image's `USER` at this point (a Containerfile's rule),
    /// rather than as root (a recipe's).
    pub image_user: bool,
    /// The instruction text for the history (`RUN ...` as Docker writes it).
    pub text: Option<String>,
    /// `--mount=type=cache,id=ID,target=T`: (target, id); caches with the
    /// same id are one directory whatever their targets (by default a
    /// cache is named by its target).
    pub cache_ids: Vec<(String, String)>,
    /// `--mount=type=cache,sharing=locked|private`: (target, sharing) of the
    /// cache mounts that are not `shared` (BuildKit's default, which steps
    /// use at the same time).
    pub cache_sharing: Vec<(String, CacheSharing)>,
    /// `--mount=type=tmpfs,target=T`: an empty writable directory for the
    /// step alone (`size=` is not enforced).
    pub tmpfs: Vec<String>,
    /// Context binds mounted writable (`rw`): their sources are copies
    /// made for the step, so writes are discarded with them.
    pub rw_targets: Vec<String>,
}

/// How steps running at the same time share a cache mount (BuildKit's
/// `sharing=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    /// Every step uses the one directory at once.
    #[default]
    Shared,
    /// One step at a time: the others wait.
    Locked,
    /// A step finds the directory busy and takes another copy of the cache
    /// (made empty the first time), so none waits. The package managers'
    /// caches are private: apt refuses to share its lists and archives.
    Private,
}

/// `RUN --mount=type=bind,target=T,source=S[,from=F]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepBind {
    pub target: String,
    /// Path inside `from` (the context when `from` is a context).
    pub source: String,
    pub from: FilesFrom,
    /// `rw`: writes allowed, and discarded after the step.
    pub writable: bool,
}

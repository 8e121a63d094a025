//! The syntax tree of a Containerfile: what the parser reads, before any
//! variable is expanded. Words keep their quotes and `$` references;
//! [`super::words`] processes them (quote removal and expansion) when the
//! stage is lowered, because their values depend on build arguments and on
//! the base image's environment.

use std::path::PathBuf;

/// A position in the file: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A parsed Containerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Containerfile {
    /// The file as the caller named it, for messages.
    pub path: PathBuf,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// `# syntax=` (ignored, with a note): BuildKit front-end images are not run.
    pub syntax: Option<String>,
    /// `# check=` and other directives that are recognized but have no effect.
    pub ignored_directives: Vec<(String, String)>,
    /// `ARG`s before the first `FROM`: visible to every `FROM` line, and
    /// to a stage's instructions only when the stage declares them again.
    pub global_args: Vec<Located<ArgDecl>>,
    /// The stages in order; never empty for a parsed file.
    pub stages: Vec<Stage>,
}

/// Something with the position where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub pos: Pos,
    pub value: T,
}

/// `ARG NAME[=default]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// The default as written (quotes and references unprocessed).
    pub default: Option<String>,
}

/// A `FROM` and the instructions up to the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// 0-based position among the stages (`COPY --from=0`).
    pub index: usize,
    /// `AS name`, lowercased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The image as written (`debian:bookworm`, `${BASE}`, `scratch`, a stage name).
    pub base: String,
    /// `FROM --platform=...` as written.
    pub platform: Option<String>,
    /// Where `FROM` is.
    pub pos: Pos,
    /// Position of the image word (for errors about it).
    pub base_pos: Pos,
    pub instructions: Vec<Instruction>,
}

/// One instruction of a stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// Where its keyword is.
    pub pos: Pos,
    /// The instruction as written, continuations joined by a space and
    /// comments inside them removed, heredoc bodies left out: for history
    /// (`created_by`) and messages.
    pub text: String,
    pub kind: InstructionKind,
}

/// What an instruction is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstructionKind {
    Arg(Vec<ArgDecl>),
    /// `ENV K=V ...` (or the legacy `ENV K V`): names and raw values.
    Env(Vec<(String, String)>),
    /// `LABEL K=V ...`: raw keys and values.
    Label(Vec<(String, String)>),
    Run(Run),
    /// `COPY` and `ADD`.
    Copy(Copy),
    /// Raw path.
    Workdir(String),
    /// Raw `user[:group]`.
    User(String),
    /// Raw port words (`80`, `53/udp`, `8000-8010/tcp`, `$PORT`).
    Expose(Vec<String>),
    Cmd(Command),
    Entrypoint(Command),
    /// JSON form only, as Docker requires.
    Shell(Vec<String>),
    /// Raw paths (JSON or space-separated form).
    Volume(Vec<String>),
    /// Raw signal (`SIGTERM`, `15`, `$SIG`).
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The trigger instruction, as written after `ONBUILD`; recorded, never run.
    OnBuild(String),
    /// `MAINTAINER name` (deprecated): recorded as the image's author.
    Maintainer(String),
}

/// The command of `RUN`, `CMD`, `ENTRYPOINT` and `HEALTHCHECK CMD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// JSON array form: run as is, no shell, no expansion.
    Exec(Vec<String>),
    /// Shell form: the text (continuations joined as Docker joins them: the
    /// escape and newline removed), run by the stage's `SHELL`.
    Shell(String),
}

/// `RUN [--mount=...]... [--network=...] command`, with its heredocs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub command: Command,
    pub mounts: Vec<Located<RunMount>>,
    pub network: Option<RunNetwork>,
    /// Heredocs in the order their `<<WORD` appear on the line.
    pub heredocs: Vec<Heredoc>,
}

/// `RUN --network=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunNetwork {
    /// `default`: the build's network.
    Default,
    /// `none`: loopback only.
    None,
    /// `host`: the host's (the build's default here).
    Host,
}

/// `RUN --mount=type=...,...`. Option values are raw (expanded at lowering).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunMount {
    /// `type=cache,target=...[,id=...][,sharing=shared|private|locked][,from=...][,source=...][,mode=...][,uid=...][,gid=...][,ro]`.
    Cache {
        target: String,
        id: Option<String>,
        sharing: Option<String>,
        readonly: bool,
        mode: Option<String>,
        uid: Option<String>,
        gid: Option<String>,
        /// `from=`: a stage or image whose `source` seeds an empty cache.
        from: Option<String>,
        /// `source=`: the path in `from` that seeds the cache.
        source: Option<String>,
    },
    /// `type=secret,id=...[,target=...|dst=...][,env=...][,required=true][,mode=...][,uid=..][,gid=..]`.
    /// Without `target` and `env`, the secret is at `/run/secrets/ID`.
    Secret {
        id: String,
        target: Option<String>,
        env: Option<String>,
        required: bool,
        /// File mode of the secret file (default `0400`).
        mode: Option<String>,
        /// Owner of the secret file (default root).
        uid: Option<String>,
        gid: Option<String>,
    },
    /// `type=bind,target=...[,source=...][,from=stage|image][,rw]`: the
    /// context (or `from`'s file system) at `target`, read-only unless `rw`
    /// (whose writes are then discarded).
    Bind {
        target: String,
        source: Option<String>,
        from: Option<String>,
        readwrite: bool,
    },
    /// `type=tmpfs,target=...[,size=...]`.
    Tmpfs {
        target: String,
        size: Option<String>,
    },
}

/// A heredoc: `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, without quotes or `-`.
    pub name: String,
    /// The body: the lines between the instruction and the delimiter, each
    /// ending in `\n`; with `<<-`, leading tabs already removed.
    pub content: String,
    /// Unquoted delimiter: `$VAR` in the body is expanded (by the shell for
    /// `RUN`, from args and env for `COPY`).
    pub expand: bool,
    /// `<<-`.
    pub strip_tabs: bool,
}

/// `COPY`/`ADD [flags] src... dest` (or the JSON form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// `ADD` rather than `COPY`.
    pub add: bool,
    /// Raw source words; a heredoc source is written `<<NAME` and its body is in `heredocs`.
    pub sources: Vec<String>,
    /// Raw destination.
    pub dest: String,
    /// `--from=stage|index|image`.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    /// `--exclude=pattern` (repeatable).
    pub excludes: Vec<String>,
    /// `ADD --checksum=sha256:...`.
    pub checksum: Option<String>,
    /// `ADD --keep-git-dir` (accepted; git sources are not supported).
    pub keep_git_dir: bool,
    /// `ADD --unpack[=bool]`: `None` when absent (archives from the context
    /// are unpacked, downloads are not); `Some(false)` keeps a local archive
    /// packed, `Some(true)` unpacks a downloaded one too.
    pub unpack: Option<bool>,
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check {
        test: Command,
        /// Raw durations (`30s`, `1m30s`) and count, as written.
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<String>,
    },
}

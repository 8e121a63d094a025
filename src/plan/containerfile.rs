//! Lowering: a parsed stage, its build arguments and its base image's
//! environment turned into plan steps — the same [`PlannedStep`]s a recipe
//! makes, so both front ends share the driver, the cache and the layers.
//!
//! Words are processed here, in order, as Docker does: `ARG` and `ENV`
//! change what later instructions expand `$VAR` to; a `RUN` sees the
//! arguments in scope as environment variables (so they are part of its
//! cache key, as in BuildKit) and its command text is left to the shell.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::containerfile::ContainerfileError;
use crate::containerfile::ast::{
    ArgDecl, Command, Containerfile, Copy, Healthcheck, Instruction, InstructionKind, Pos,
    RunMount, RunNetwork, Stage,
};
use crate::containerfile::words::{WordError, process_word, process_words, references};
use crate::digest::Digest;
use crate::plan::{HostInput, PlannedStep, hash_tree};
use crate::recipe::{
    CacheSharing, ConfigChange, FilesFrom, FilesSpec, RunCommand, SecretUse, Step, StepBind,
    StepKind, StepOptions,
};

/// Everything a stage's lowering needs besides the stage.
pub struct LowerInput<'a> {
    pub file: &'a Containerfile,
    /// The build context directory.
    pub context: &'a Path,
    /// `.dockerignore` patterns of the context.
    pub dockerignore: &'a [String],
    /// `--build-arg` values.
    pub build_args: &'a BTreeMap<String, String>,
    /// The base image's environment (or the parent stage's).
    pub base_env: Vec<(String, String)>,
    /// The base's `SHELL` (Docker keeps it in the config), else `/bin/sh -c`.
    pub base_shell: Option<Vec<String>>,
    /// Stage names (lowercase) and indexes.
    pub stages: &'a HashMap<String, usize>,
    /// A directory for heredoc files (`COPY <<EOF`), kept until the build ends.
    pub staging: &'a Path,
    /// The predefined platform arguments (`TARGETARCH`…).
    pub platform_args: &'a [(String, String)],
    /// Check only (before the bases are known): sources are looked up but
    /// not hashed or copied, so the real lowering does that work once.
    pub check_only: bool,
}

/// A stage as plan steps.
#[derive(Clone, Debug)]
pub struct LoweredStage {
    pub steps: Vec<PlannedStep>,
    /// `--build-arg` names this stage declares (the others are reported unused).
    pub used_args: BTreeSet<String>,
}

/// The platform arguments Docker predefines, for platform `p` (the host's:
/// builds do not cross platforms).
pub fn platform_args(p: &crate::media::Platform) -> Vec<(String, String)> {
    let os = p.os.clone();
    let arch = p.architecture.clone();
    let variant = p.variant.clone().unwrap_or_default();
    let platform = if variant.is_empty() {
        format!("{os}/{arch}")
    } else {
        format!("{os}/{arch}/{variant}")
    };
    let mut out = Vec::new();
    for prefix in ["TARGET", "BUILD"] {
        out.push((format!("{prefix}PLATFORM"), platform.clone()));
        out.push((format!("{prefix}OS"), os.clone()));
        out.push((format!("{prefix}ARCH"), arch.clone()));
        out.push((format!("{prefix}VARIANT"), variant.clone()));
    }
    out
}

/// The values global `ARG`s have for `FROM` lines: defaults (which may
/// refer to earlier global args) overridden by `--build-arg`.
pub fn global_args(
    file: &Containerfile,
    build_args: &BTreeMap<String, String>,
    platform: &[(String, String)],
) -> Result<Vec<(String, String)>, ContainerfileError> {
    let mut scope: Vec<(String, String)> = platform.to_vec();
    for decl in &file.global_args {
        let value = arg_value(file, &decl.value, decl.pos, &scope, build_args)?;
        set(&mut scope, &decl.value.name, value);
    }
    Ok(scope)
}

/// The image word of `FROM`, expanded with the global arguments.
pub fn stage_base(
    file: &Containerfile,
    stage: &Stage,
    globals: &[(String, String)],
) -> Result<String, ContainerfileError> {
    let lookup = |n: &str| get(globals, n);
    let base = process_word(&stage.base, file.escape, &lookup).map_err(|e| {
        ContainerfileError::at(file, stage.base_pos, format!("FROM: {}", e.message))
    })?;
    if base.is_empty() {
        return Err(ContainerfileError::at(
            file,
            stage.base_pos,
            format!(
                "FROM '{}' expands to nothing: declare the argument before the first FROM with a default (ARG NAME=image) or give --build-arg",
                stage.base
            ),
        ));
    }
    Ok(base)
}

/// The stages a stage needs first (its base if a stage, `COPY --from` and
/// `RUN --mount=from=` naming stages), as indexes.
pub fn stage_deps(
    file: &Containerfile,
    stage: &Stage,
    stages: &HashMap<String, usize>,
    globals: &[(String, String)],
) -> Result<Vec<(usize, Pos)>, ContainerfileError> {
    let mut deps = Vec::new();
    let base = stage_base(file, stage, globals)?;
    if let Some(i) = stage_ref(&base, stages, stage.index) {
        deps.push((i, stage.base_pos));
    }
    let lookup = |n: &str| get(globals, n);
    for ins in &stage.instructions {
        let mut froms: Vec<&str> = Vec::new();
        match &ins.kind {
            InstructionKind::Copy(c) => froms.extend(c.from.as_deref()),
            InstructionKind::Run(r) => {
                for m in &r.mounts {
                    match &m.value {
                        RunMount::Bind { from: Some(f), .. }
                        | RunMount::Cache { from: Some(f), .. } => froms.push(f),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        for raw in froms {
            let name = process_word(raw, file.escape, &lookup).unwrap_or_else(|_| raw.to_string());
            if let Some(i) = stage_ref(&name, stages, usize::MAX) {
                deps.push((i, ins.pos));
            } else if name.parse::<usize>().is_ok() {
                return Err(ContainerfileError::at(
                    file,
                    ins.pos,
                    format!("--from={name}: there is no stage {name} (stages are numbered from 0)"),
                ));
            } else if !looks_like_image(&name) {
                return Err(ContainerfileError::at(
                    file,
                    ins.pos,
                    format!(
                        "--from={name}: no stage is named '{name}': name a stage with FROM image AS {name}, or give an image reference"
                    ),
                ));
            }
        }
    }
    Ok(deps)
}

/// Stage names (lowercase) and `#INDEX` for every stage, as [`LowerInput::stages`] wants them.
pub fn stage_names(file: &Containerfile) -> Result<HashMap<String, usize>, ContainerfileError> {
    let mut names = HashMap::new();
    for s in &file.stages {
        names.insert(format!("#{}", s.index), s.index);
        if let Some(n) = &s.name
            && names.insert(n.clone(), s.index).is_some()
        {
            return Err(ContainerfileError::at(
                file,
                s.pos,
                format!("two stages are named '{n}': stage names must be unique"),
            ));
        }
    }
    Ok(names)
}

/// A stage by name or index. `FROM NAME` may only name another stage (an
/// index is an image there); `limit` excludes the stage itself.
fn stage_ref(name: &str, stages: &HashMap<String, usize>, this: usize) -> Option<usize> {
    if let Some(&i) = stages.get(&name.to_lowercase()) {
        return (i != this).then_some(i);
    }
    if this == usize::MAX && name.parse::<usize>().is_ok() {
        // Every stage is also filed under `#INDEX` (see [`stage_names`]).
        return stages.get(&format!("#{name}")).copied();
    }
    None
}

/// Whether `--from=NAME` that names no stage is meant as an image: it has
/// a registry, a tag, a digest or a path, as references usually do. A bare
/// word is a stage name with a typo far more often than an image.
fn looks_like_image(name: &str) -> bool {
    name.contains(['/', ':', '@']) || name.starts_with("oci:")
}

/// Lowers stage `stage`.
pub fn lower_stage(
    input: &LowerInput<'_>,
    stage: &Stage,
) -> Result<LoweredStage, ContainerfileError> {
    let file = input.file;
    let mut l = Lowering {
        input,
        env: input.base_env.clone(),
        args: Vec::new(),
        shell: input
            .base_shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]),
        steps: Vec::new(),
        used_args: BTreeSet::new(),
        heredoc_count: 0,
        cmd_set: false,
    };
    // Every ARG the stage declares, with where: a reference to one of them
    // before its declaration is an error (the value would silently be empty).
    let declared: Vec<(String, Pos)> = stage
        .instructions
        .iter()
        .filter_map(|i| match &i.kind {
            InstructionKind::Arg(decls) => Some(
                decls
                    .iter()
                    .map(|d| (d.name.clone(), i.pos))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    for ins in &stage.instructions {
        l.check_refs(ins, &declared)?;
        l.instruction(ins)
            .map_err(|e| ContainerfileError::at(file, ins.pos, e.to_string()))?;
    }
    Ok(LoweredStage {
        steps: l.steps,
        used_args: l.used_args,
    })
}

/// Why an instruction cannot be lowered. [`lower_stage`] puts the message
/// at the instruction's position in a [`ContainerfileError`]; the variants
/// keep the underlying errors (word processing, the context, the staging
/// directory) as their sources.
#[derive(Debug, thiserror::Error)]
enum LowerError {
    /// A word (quotes, escapes, `$VAR`) does not process.
    #[error("{0}")]
    Word(#[from] WordError),
    #[error("cannot make a staging directory: {0}")]
    StagingDir(#[source] std::io::Error),
    #[error("cannot stage a heredoc: {0}")]
    Heredoc(#[source] std::io::Error),
    #[error("RUN <<EOF: the #! line names no interpreter")]
    NoInterpreter,
    /// A `--mount` source that does not resolve or copy.
    #[error("--mount source '{path}': {err}")]
    MountSource {
        path: String,
        #[source]
        err: std::io::Error,
    },
    #[error("--mount source '{path}' is not in the build context ({err})")]
    MountMissing {
        path: String,
        #[source]
        err: std::io::Error,
    },
    #[error("{verb} --chmod={mode}: give octal permission bits such as 0644 or 755")]
    Chmod { verb: &'static str, mode: String },
    #[error("{verb}: the heredoc <<{name} has no body")]
    HeredocBody { verb: &'static str, name: String },
    #[error("{verb}: a heredoc copied as a file needs a plain file name, not '{name}'")]
    HeredocName { verb: &'static str, name: String },
    /// `url` is already redacted: it goes into messages.
    #[error(
        "ADD {url}: a git source must be a network URL (https://, git://, ssh:// or git@host:path); a local repository is outside the build context: copy it into the context instead"
    )]
    GitLocal { url: String },
    #[error("ADD of a git repository takes one source per instruction: split it")]
    GitSources,
    #[error(
        "ADD git: a subdirectory after the reference (#REF:DIR) is not supported: copy the directory in a later step"
    )]
    GitSubdir,
    /// `url` is already redacted: it goes into messages.
    #[error("COPY cannot read a URL ({url}): use ADD, or download it in a RUN step")]
    CopyUrl { url: String },
    #[error("ADD of a URL takes one source per instruction: split it")]
    UrlSources,
    #[error("{verb}: heredoc and file sources cannot be mixed: use two instructions")]
    MixedSources { verb: &'static str },
    #[error(
        "{verb} with more than one source needs a directory destination ending in '/': write {dest}/"
    )]
    NotADirDest { verb: &'static str, dest: String },
    #[error("ADD --checksum={text}: give sha256:<64 hex digits>")]
    Checksum {
        text: String,
        #[source]
        err: crate::digest::DigestError,
    },
    #[error("ADD --checksum is for a URL source: the context's files need none")]
    ChecksumNotUrl,
    #[error(".dockerignore: {0}")]
    Dockerignore(#[source] crate::context::ExcludesError),
    #[error("{verb} --exclude: {err}")]
    Exclude {
        verb: &'static str,
        #[source]
        err: crate::context::ExcludesError,
    },
    /// A source that selects nothing in (or cannot be read from) the context.
    #[error("{verb}: {err}")]
    Select {
        verb: &'static str,
        #[source]
        err: crate::context::SelectError,
    },
    #[error("{verb}: cannot read the build context: {err}")]
    Context {
        verb: &'static str,
        #[source]
        err: std::io::Error,
    },
    #[error("HEALTHCHECK: '{text}' is not a duration such as 30s or 1m30s")]
    HealthDuration {
        text: String,
        #[source]
        err: humantime::DurationError,
    },
    #[error("HEALTHCHECK --retries={text}: give a whole number")]
    HealthRetries {
        text: String,
        #[source]
        err: std::num::ParseIntError,
    },
    #[error("EXPOSE {word}: the protocol must be tcp, udp or sctp")]
    ExposeProtocol { word: String },
    #[error("EXPOSE {word}: give a port (1-65535) or a range such as 8000-8010")]
    ExposePort { word: String },
}

struct Lowering<'a, 'b> {
    input: &'b LowerInput<'a>,
    /// The image's environment so far.
    env: Vec<(String, String)>,
    /// Arguments in scope, with values.
    args: Vec<(String, String)>,
    shell: Vec<String>,
    steps: Vec<PlannedStep>,
    used_args: BTreeSet<String>,
    heredoc_count: usize,
    /// A `CMD` came earlier in this stage.
    cmd_set: bool,
}

impl Lowering<'_, '_> {
    fn lookup(&self, name: &str) -> Option<String> {
        // ENV wins over ARG of the same name, as in Docker.
        get(&self.env, name).or_else(|| get(&self.args, name))
    }

    fn word(&self, raw: &str) -> Result<String, LowerError> {
        Ok(process_word(raw, self.input.file.escape, &|n| {
            self.lookup(n)
        })?)
    }

    fn words(&self, raw: &str) -> Result<Vec<String>, LowerError> {
        Ok(process_words(raw, self.input.file.escape, &|n| {
            self.lookup(n)
        })?)
    }

    /// `$NAME` before the stage's `ARG NAME` (and no value from elsewhere).
    fn check_refs(
        &self,
        ins: &Instruction,
        declared: &[(String, Pos)],
    ) -> Result<(), ContainerfileError> {
        if matches!(ins.kind, InstructionKind::Arg(_)) {
            return Ok(());
        }
        for (name, _) in references(&ins.text, self.input.file.escape) {
            if self.lookup(&name).is_some() {
                continue;
            }
            if let Some((_, at)) = declared.iter().find(|(n, p)| *n == name && *p > ins.pos) {
                return Err(ContainerfileError::at(
                    self.input.file,
                    ins.pos,
                    format!(
                        "${name} is used before 'ARG {name}' (line {}) declares it, so it would be empty here: move the ARG above this line",
                        at.line
                    ),
                ));
            }
        }
        Ok(())
    }

    fn instruction(&mut self, ins: &Instruction) -> Result<(), LowerError> {
        match &ins.kind {
            InstructionKind::Arg(decls) => {
                for d in decls {
                    let value = self.arg_value(d)?;
                    if self.input.build_args.contains_key(&d.name) {
                        self.used_args.insert(d.name.clone());
                    }
                    set(&mut self.args, &d.name, value);
                }
                self.config(ins, ConfigChange::Arg);
            }
            InstructionKind::Env(pairs) => {
                let mut out = Vec::new();
                for (k, raw) in pairs {
                    let v = self.word(raw)?;
                    set(&mut self.env, k, v.clone());
                    out.push((k.clone(), v));
                }
                self.config(ins, ConfigChange::Env(out));
            }
            InstructionKind::Label(pairs) => {
                let mut out = Vec::new();
                for (k, v) in pairs {
                    out.push((self.word(k)?, self.word(v)?));
                }
                self.config(ins, ConfigChange::Label(out));
            }
            InstructionKind::Workdir(raw) => {
                let dir = self.word(raw)?;
                self.config(ins, ConfigChange::Workdir(dir));
                // The directory is made (owned by the current USER) if the
                // image lacks it, as buildah and BuildKit do: a copy of an
                // empty directory onto it, which changes nothing otherwise.
                let empty = self.input.staging.join("empty");
                std::fs::create_dir_all(&empty).map_err(LowerError::StagingDir)?;
                let spec = FilesSpec {
                    from: FilesFrom::Staged(empty),
                    sources: vec![".".into()],
                    excludes: Vec::new(),
                    source_excludes: Vec::new(),
                    dest: "./".into(),
                    mode: None,
                    chown: None,
                    chown_user: true,
                    parents: false,
                    extract: false,
                    text: history_text(ins),
                };
                self.push_files(ins, spec, None);
            }
            InstructionKind::User(raw) => {
                let user = self.word(raw)?;
                self.config(ins, ConfigChange::User(user));
            }
            InstructionKind::Expose(raws) => {
                let mut ports = Vec::new();
                for raw in raws {
                    for w in self.words(raw)? {
                        ports.extend(expose_ports(&w)?);
                    }
                }
                self.config(ins, ConfigChange::Expose(ports));
            }
            InstructionKind::Cmd(c) => {
                self.cmd_set = true;
                let argv = self.command(c);
                self.config(ins, ConfigChange::Cmd(argv));
            }
            InstructionKind::Entrypoint(c) => {
                let argv = self.command(c);
                // Docker: a new ENTRYPOINT drops a CMD the base set, not one of this stage.
                let reset_cmd = !self.cmd_set;
                self.config(ins, ConfigChange::Entrypoint { argv, reset_cmd });
            }
            InstructionKind::Shell(argv) => {
                self.shell = argv.clone();
                self.config(ins, ConfigChange::Shell(argv.clone()));
            }
            InstructionKind::Volume(raws) => {
                let mut vols = Vec::new();
                for raw in raws {
                    vols.push(self.word(raw)?);
                }
                self.config(ins, ConfigChange::Volume(vols));
            }
            InstructionKind::StopSignal(raw) => {
                let sig = self.word(raw)?;
                self.config(ins, ConfigChange::StopSignal(sig));
            }
            InstructionKind::Healthcheck(h) => {
                let value = self.healthcheck(h)?;
                self.config(ins, ConfigChange::Healthcheck(value));
            }
            InstructionKind::OnBuild(text) => {
                self.config(ins, ConfigChange::OnBuild(text.clone()));
            }
            InstructionKind::Maintainer(name) => {
                self.config(ins, ConfigChange::Maintainer(name.clone()));
            }
            InstructionKind::Run(run) => self.run(ins, run)?,
            InstructionKind::Copy(copy) => self.copy(ins, copy)?,
        }
        Ok(())
    }

    fn arg_value(&self, d: &ArgDecl) -> Result<Option<String>, LowerError> {
        if let Some(v) = self.input.build_args.get(&d.name) {
            return Ok(Some(v.clone()));
        }
        // A stage's `ARG NAME` without a default takes the global value.
        let global = global_value(self.input, &d.name);
        match &d.default {
            Some(raw) => Ok(Some(self.word(raw)?)),
            None => Ok(global),
        }
    }

    /// A shell-form command runs through the stage's `SHELL`.
    fn command(&self, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(argv) => argv.clone(),
            Command::Shell(text) => {
                let mut argv = self.shell.clone();
                argv.push(text.clone());
                argv
            }
        }
    }

    fn config(&mut self, ins: &Instruction, change: ConfigChange) {
        let text = history_text(ins);
        let step = self.step(
            ins,
            StepKind::Config(change),
            StepOptions {
                text: Some(text),
                ..StepOptions::default()
            },
        );
        self.push(step, None, Vec::new(), Vec::new());
    }

    /// A COPY/ADD step (also WORKDIR's directory): run as the image's
    /// user, recorded as the instruction's text.
    fn push_files(&mut self, ins: &Instruction, spec: FilesSpec, inputs: Option<Digest>) {
        let options = StepOptions {
            image_user: true,
            text: Some(spec.text.clone()),
            ..StepOptions::default()
        };
        let step = self.step(ins, StepKind::Files(spec), options);
        self.push(step, inputs, Vec::new(), Vec::new());
    }

    fn step(&self, ins: &Instruction, kind: StepKind, options: StepOptions) -> Step {
        Step {
            index: self.steps.len(),
            line: ins.pos.line,
            name: None,
            kind,
            cache: Vec::new(),
            timeout: None,
            secrets: Vec::new(),
            options,
        }
    }

    fn push(
        &mut self,
        step: Step,
        inputs: Option<Digest>,
        caches: Vec<String>,
        host_inputs: Vec<HostInput>,
    ) {
        let created_by = step.describe();
        self.steps.push(PlannedStep {
            number: 0,
            component: format!("line {}", step.line),
            created_by,
            step,
            inputs,
            artifacts: Vec::new(),
            host_inputs,
            caches,
            path: Vec::new(),
            env: BTreeMap::new(),
        });
    }

    fn run(
        &mut self,
        ins: &Instruction,
        run: &crate::containerfile::ast::Run,
    ) -> Result<(), LowerError> {
        // Heredocs: `RUN <<EOF` alone runs the body as the script (a `#!`
        // line picks another interpreter); heredocs inside a command line
        // (`RUN <<A cat > /a && python3 <<B`) are the shell's own: the
        // command and the bodies go to it together, as BuildKit does.
        let mut heredoc_inputs = Vec::new();
        let alone = |text: &str, name: &str| {
            let t = text.trim();
            [
                format!("<<{name}"),
                format!("<<-{name}"),
                format!("<<\"{name}\""),
                format!("<<'{name}'"),
                format!("<<-\"{name}\""),
                format!("<<-'{name}'"),
            ]
            .contains(&t.to_string())
        };
        let command = match (&run.command, run.heredocs.first()) {
            (Command::Shell(text), Some(doc))
                if run.heredocs.len() == 1 && alone(text, &doc.name) =>
            {
                let body = doc.content.clone();
                if let Some(shebang) = body.lines().next().and_then(|l| l.strip_prefix("#!")) {
                    // Run by its interpreter, from a read-only file.
                    let (src, name) = self.stage_file(&body)?;
                    let target = format!("/run/boxwright/heredoc/{name}");
                    let digest = hash_tree(&src).map_err(LowerError::Heredoc)?;
                    heredoc_inputs.push(HostInput {
                        src,
                        target: target.clone(),
                        digest,
                    });
                    let mut argv: Vec<String> =
                        shebang.split_whitespace().map(String::from).collect();
                    if argv.is_empty() {
                        return Err(LowerError::NoInterpreter);
                    }
                    argv.push(target);
                    RunCommand::Exec(argv)
                } else {
                    let mut argv = self.shell.clone();
                    argv.push(body);
                    RunCommand::Exec(argv)
                }
            }
            (Command::Shell(text), Some(_)) => {
                let mut script = format!("{text}\n");
                for doc in &run.heredocs {
                    script.push_str(&doc.content);
                    script.push_str(&doc.name);
                    script.push('\n');
                }
                let mut argv = self.shell.clone();
                argv.push(script);
                RunCommand::Exec(argv)
            }
            (Command::Shell(text), None) => {
                if self.shell == ["/bin/sh", "-c"] {
                    RunCommand::Shell(text.clone())
                } else {
                    let mut argv = self.shell.clone();
                    argv.push(text.clone());
                    RunCommand::Exec(argv)
                }
            }
            (Command::Exec(argv), _) => RunCommand::Exec(argv.clone()),
        };
        let mut options = StepOptions {
            no_network: run.network == Some(RunNetwork::None),
            image_user: true,
            text: Some(history_text(ins)),
            ..StepOptions::default()
        };
        let mut caches = Vec::new();
        let mut secrets = Vec::new();
        let mut host_inputs = heredoc_inputs;
        for m in &run.mounts {
            match &m.value {
                RunMount::Cache {
                    target,
                    id,
                    sharing,
                    ..
                } => {
                    let target = clean_abs(&self.word(target)?, "/");
                    if let Some(id) = id {
                        options.cache_ids.push((target.clone(), self.word(id)?));
                    }
                    let sharing = match sharing.as_deref() {
                        Some("locked") => CacheSharing::Locked,
                        Some("private") => CacheSharing::Private,
                        _ => CacheSharing::Shared,
                    };
                    if sharing != CacheSharing::Shared {
                        options.cache_sharing.push((target.clone(), sharing));
                    }
                    caches.push(target);
                }
                RunMount::Secret {
                    id,
                    target,
                    env,
                    required,
                    ..
                } => {
                    let id = self.word(id)?;
                    let target = match target {
                        Some(t) => Some(clean_abs(&self.word(t)?, "/")),
                        None => None,
                    };
                    let env = match env {
                        Some(e) => Some(self.word(e)?),
                        None => None,
                    };
                    let target = match (&target, &env) {
                        (None, None) => Some(format!("/run/secrets/{id}")),
                        _ => target,
                    };
                    if let Some(t) = target.clone() {
                        secrets.push(SecretUse {
                            id: id.clone(),
                            target: Some(t),
                            env: None,
                            required: *required,
                        });
                    }
                    if let Some(e) = env {
                        secrets.push(SecretUse {
                            id,
                            target: None,
                            env: Some(e),
                            required: *required,
                        });
                    }
                }
                RunMount::Bind {
                    target,
                    source,
                    from,
                    readwrite,
                } => {
                    let target = clean_abs(&self.word(target)?, &self.workdir());
                    let source = match source {
                        Some(s) => self.word(s)?,
                        None => String::new(),
                    };
                    match from {
                        None => {
                            let rel = crate::context::resolve_in_root(
                                self.input.context,
                                Path::new(&source),
                                true,
                            )
                            .map_err(|e| LowerError::MountSource {
                                path: source.clone(),
                                err: e,
                            })?;
                            let mut src = self.input.context.join(&rel);
                            let missing = |e: std::io::Error| LowerError::MountMissing {
                                path: source.clone(),
                                err: e,
                            };
                            if self.input.check_only {
                                std::fs::symlink_metadata(&src).map_err(missing)?;
                                continue;
                            }
                            let digest = hash_tree(&src).map_err(missing)?;
                            if *readwrite {
                                // Writes go to a copy of the step's own, discarded with it.
                                let copy = self.input.staging.join(format!(
                                    "bind-{}-{}",
                                    self.steps.len(),
                                    host_inputs.len()
                                ));
                                copy_tree(&src, &copy).map_err(|e| LowerError::MountSource {
                                    path: source.clone(),
                                    err: e,
                                })?;
                                src = copy;
                                options.rw_targets.push(target.clone());
                            }
                            host_inputs.push(HostInput {
                                src,
                                target,
                                digest,
                            });
                        }
                        Some(f) => {
                            let name = self.word(f)?;
                            options.binds.push(StepBind {
                                target,
                                source,
                                from: self.from(&name),
                                writable: *readwrite,
                            });
                        }
                    }
                }
                RunMount::Tmpfs { target, .. } => {
                    let target = clean_abs(&self.word(target)?, &self.workdir());
                    options.tmpfs.push(target);
                }
            }
        }
        // Package-manager caches (apt, npm, pip) are cache mounts for every
        // RUN, as for a recipe's run steps: an image never carries them,
        // whether or not the file cleans them up.
        let all_caches = crate::recipe::with_standard_caches(&caches);
        let env: BTreeMap<String, String> = self
            .args
            .iter()
            .filter(|(k, _)| get(&self.env, k).is_none())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut step = self.step(ins, StepKind::Run { command, env }, options);
        step.cache = caches;
        step.secrets = secrets;
        self.push(step, None, all_caches, host_inputs);
        Ok(())
    }

    /// A file under the staging directory holding `content`; its name.
    fn stage_file(&mut self, content: &str) -> Result<(PathBuf, String), LowerError> {
        self.heredoc_count += 1;
        let dir = self
            .input
            .staging
            .join(format!("heredoc-{}", self.steps.len()));
        std::fs::create_dir_all(&dir).map_err(LowerError::Heredoc)?;
        let name = format!("h{}", self.heredoc_count);
        let path = dir.join(&name);
        std::fs::write(&path, content).map_err(LowerError::Heredoc)?;
        Ok((path, name))
    }

    fn workdir(&self) -> String {
        // The last WORKDIR of this stage, else the base's (resolved by the
        // driver); relative paths here are relative to it.
        let mut dir = String::from("/");
        for ps in &self.steps {
            if let StepKind::Config(ConfigChange::Workdir(w)) = &ps.step.kind {
                dir = clean_abs(w, &dir);
            }
        }
        dir
    }

    fn from(&self, name: &str) -> FilesFrom {
        match stage_ref(name, self.input.stages, usize::MAX) {
            Some(i) => FilesFrom::Stage(i),
            None => FilesFrom::Image(name.to_string()),
        }
    }

    fn copy(&mut self, ins: &Instruction, c: &Copy) -> Result<(), LowerError> {
        let verb = if c.add { "ADD" } else { "COPY" };
        let dest_raw = self.word(&c.dest)?;
        let dest_is_dir = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        let mut dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            // Relative to WORKDIR; the driver knows the base's, so it is
            // marked with a leading "./" and resolved there.
            format!("./{dest_raw}")
        };
        if dest_is_dir && !dest.ends_with('/') {
            dest.push('/');
        }
        let mode = match &c.chmod {
            Some(raw) => {
                let m = self.word(raw)?;
                Some(parse_chmod(&m).ok_or_else(|| LowerError::Chmod {
                    verb,
                    mode: m.clone(),
                })?)
            }
            None => None,
        };
        let chown = match &c.chown {
            Some(raw) => Some(self.word(raw)?),
            None => None,
        };
        let mut excludes: Vec<String> = Vec::new();
        for e in &c.excludes {
            excludes.push(self.word(e)?);
        }
        let mut sources = Vec::new();
        let mut staged: Option<PathBuf> = None;
        let mut url: Option<String> = None;
        let mut git: Option<String> = None;
        for raw in &c.sources {
            if let Some(name) = raw.strip_prefix("<<") {
                let name = name.trim_start_matches('-').trim_matches(['"', '\'']);
                let doc = c.heredocs.iter().find(|h| h.name == name).ok_or_else(|| {
                    LowerError::HeredocBody {
                        verb,
                        name: name.to_string(),
                    }
                })?;
                // The name is the file's name in the staging directory.
                if name.contains('/') || name == "." || name == ".." {
                    return Err(LowerError::HeredocName {
                        verb,
                        name: name.to_string(),
                    });
                }
                let body = if doc.expand {
                    expand_heredoc(&doc.content, self.input.file.escape, &|n| self.lookup(n))?
                } else {
                    doc.content.clone()
                };
                let dir = staged.get_or_insert_with(|| {
                    self.input
                        .staging
                        .join(format!("copy-{}", self.steps.len()))
                });
                std::fs::create_dir_all(&*dir).map_err(LowerError::Heredoc)?;
                let path = dir.join(name);
                std::fs::write(&path, body).map_err(LowerError::Heredoc)?;
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o644),
                )
                .map_err(LowerError::Heredoc)?;
                sources.push(name.to_string());
                continue;
            }
            let src = self.word(raw)?;
            if c.add
                && (src.starts_with("git@")
                    || src.starts_with("git://")
                    || src.ends_with(".git")
                    || src.contains(".git#"))
            {
                // A repository on the network only: a local path or file://
                // would read the build host outside the build context.
                let remote = ["https://", "http://", "git://", "ssh://"]
                    .iter()
                    .any(|s| src.starts_with(s))
                    || (src.starts_with("git@") && src.contains(':'));
                if !remote {
                    return Err(LowerError::GitLocal {
                        url: crate::mirror::redact(&src),
                    });
                }
                if c.sources.len() > 1 {
                    return Err(LowerError::GitSources);
                }
                git = Some(src.clone());
            }
            if git.is_none() && (src.starts_with("http://") || src.starts_with("https://")) {
                if !c.add {
                    return Err(LowerError::CopyUrl {
                        url: crate::mirror::redact(&src),
                    });
                }
                if c.sources.len() > 1 {
                    return Err(LowerError::UrlSources);
                }
                url = Some(src.clone());
            }
            sources.push(src);
        }
        if staged.is_some() && sources.len() != c.sources.len() {
            return Err(LowerError::MixedSources { verb });
        }
        let multiple = sources.len() > 1 || sources.iter().any(|s| crate::context::has_magic(s));
        if sources.len() > 1 && !dest.ends_with('/') {
            return Err(LowerError::NotADirDest {
                verb,
                dest: dest_raw,
            });
        }
        let _ = multiple;
        let checksum = match &c.checksum {
            Some(raw) => {
                let text = self.word(raw)?;
                let d: Digest = text.parse().map_err(|e| LowerError::Checksum {
                    text: text.clone(),
                    err: e,
                })?;
                Some(d)
            }
            None => None,
        };
        if checksum.is_some() && url.is_none() {
            return Err(LowerError::ChecksumNotUrl);
        }
        if let Some(g) = &git {
            let (repo, reference) = match g.split_once('#') {
                Some((r, f)) if !f.is_empty() => (r.to_string(), Some(f.to_string())),
                _ => (g.trim_end_matches('#').to_string(), None),
            };
            if reference.as_deref().is_some_and(|r| r.contains(':')) {
                return Err(LowerError::GitSubdir);
            }
            let spec = FilesSpec {
                from: FilesFrom::Git {
                    url: repo,
                    reference,
                    keep_git_dir: c.keep_git_dir,
                },
                sources: vec![".".into()],
                excludes: Vec::new(),
                source_excludes: Vec::new(),
                dest: if dest.ends_with('/') {
                    dest
                } else {
                    format!("{dest}/")
                },
                mode,
                chown,
                chown_user: false,
                parents: false,
                extract: false,
                text: history_text(ins),
            };
            self.push_files(ins, spec, None);
            return Ok(());
        }
        if let Some(u) = &url {
            let name = u
                .split(['?', '#'])
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .filter(|n| !["", ".", ".."].contains(n))
                .unwrap_or("download")
                .to_string();
            let spec = FilesSpec {
                from: FilesFrom::Url {
                    url: u.clone(),
                    checksum,
                    name: name.clone(),
                },
                sources: vec![name],
                excludes: Vec::new(),
                source_excludes: Vec::new(),
                dest,
                // Docker's mode for a downloaded file.
                mode: mode.or(Some(0o600)),
                chown,
                chown_user: false,
                parents: false,
                extract: c.unpack == Some(true),
                text: history_text(ins),
            };
            self.push_files(ins, spec, None);
            return Ok(());
        }
        let (from, inputs) = match (&c.from, &staged) {
            (_, Some(dir)) => (FilesFrom::Staged(dir.clone()), None),
            (Some(raw), None) => {
                let name = self.word(raw)?;
                (self.from(&name), None)
            }
            (None, None) => {
                let ctx = self.input.context;
                let ex = crate::context::Excludes::new(
                    self.input.dockerignore.iter().map(String::as_str),
                )
                .map_err(LowerError::Dockerignore)?;
                let extra = crate::context::Excludes::new(excludes.iter().map(String::as_str))
                    .map_err(|e| LowerError::Exclude { verb, err: e })?;
                let mut selected = Vec::new();
                for s in &sources {
                    selected.extend(
                        crate::context::select(ctx, s, &ex, &extra)
                            .map_err(|e| LowerError::Select { verb, err: e })?,
                    );
                }
                let digest = if self.input.check_only {
                    None
                } else {
                    Some(
                        crate::context::digest(ctx, &selected, &ex, &extra)
                            .map_err(|e| LowerError::Context { verb, err: e })?,
                    )
                };
                (FilesFrom::Context(ctx.to_path_buf()), digest)
            }
        };
        let mut ignore = Vec::new();
        if matches!(from, FilesFrom::Context(_)) {
            ignore.extend(self.input.dockerignore.iter().cloned());
        }
        let extract = c.add && c.unpack != Some(false) && !matches!(from, FilesFrom::Staged(_));
        let spec = FilesSpec {
            from,
            sources,
            excludes: ignore,
            source_excludes: excludes,
            dest,
            mode,
            chown,
            chown_user: false,
            parents: c.parents,
            extract,
            text: history_text(ins),
        };
        self.push_files(ins, spec, inputs);
        Ok(())
    }

    fn healthcheck(&self, h: &Healthcheck) -> Result<serde_json::Value, LowerError> {
        match h {
            Healthcheck::None => Ok(json!({ "Test": ["NONE"] })),
            Healthcheck::Check {
                test,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            } => {
                let test = match test {
                    Command::Exec(argv) => {
                        let mut t = vec!["CMD".to_string()];
                        t.extend(argv.iter().cloned());
                        t
                    }
                    Command::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
                };
                let mut v = serde_json::Map::new();
                v.insert("Test".into(), json!(test));
                for (key, raw) in [
                    ("Interval", interval),
                    ("Timeout", timeout),
                    ("StartPeriod", start_period),
                    ("StartInterval", start_interval),
                ] {
                    if let Some(raw) = raw {
                        let text = self.word(raw)?;
                        let d = humantime::parse_duration(&text).map_err(|e| {
                            LowerError::HealthDuration {
                                text: text.clone(),
                                err: e,
                            }
                        })?;
                        v.insert(key.into(), json!(d.as_nanos() as u64));
                    }
                }
                if let Some(raw) = retries {
                    let text = self.word(raw)?;
                    let n: u64 = text.parse().map_err(|e| LowerError::HealthRetries {
                        text: text.clone(),
                        err: e,
                    })?;
                    v.insert("Retries".into(), json!(n));
                }
                Ok(serde_json::Value::Object(v))
            }
        }
    }
}

/// A global arg's value (for a stage's value-less `ARG NAME`).
fn global_value(input: &LowerInput<'_>, name: &str) -> Option<String> {
    let globals = global_args(input.file, input.build_args, input.platform_args).ok()?;
    if input.file.global_args.iter().any(|d| d.value.name == name)
        || input.platform_args.iter().any(|(k, _)| k == name)
    {
        return get(&globals, name);
    }
    None
}

fn arg_value(
    file: &Containerfile,
    decl: &ArgDecl,
    pos: Pos,
    scope: &[(String, String)],
    build_args: &BTreeMap<String, String>,
) -> Result<Option<String>, ContainerfileError> {
    if let Some(v) = build_args.get(&decl.name) {
        return Ok(Some(v.clone()));
    }
    match &decl.default {
        Some(raw) => process_word(raw, file.escape, &|n| get(scope, n))
            .map(Some)
            .map_err(|e| {
                ContainerfileError::at(file, pos, format!("ARG {}: {}", decl.name, e.message))
            }),
        None => Ok(get(scope, &decl.name)),
    }
}

/// The history text of an instruction, as BuildKit writes it for config
/// instructions (`ENV A=b`, `CMD ["x"]`); `RUN` adds `/bin/sh -c`.
///
/// A URL's `user:password@` is masked (`ADD https://u:p@host/f`, a `curl`
/// in a RUN): the text goes into the image history and progress lines.
fn history_text(ins: &Instruction) -> String {
    let text = match &ins.kind {
        // The command alone, as BuildKit records it: flags (mounts,
        // network) are how it ran, not what it is.
        InstructionKind::Run(r) => match &r.command {
            Command::Shell(cmd) => format!("RUN /bin/sh -c {cmd}"),
            Command::Exec(argv) => {
                format!("RUN {}", serde_json::to_string(argv).unwrap_or_default())
            }
        },
        _ => ins.text.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    redact_urls(&text)
}

/// `text` with the `user:password@` of every URL in it masked, spacing kept.
fn redact_urls(text: &str) -> String {
    let mask = |w: &str| {
        if w.contains("://") {
            crate::mirror::redact(w)
        } else {
            w.to_string()
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for ch in text.chars() {
        if ch.is_whitespace() {
            out.push_str(&mask(&word));
            word.clear();
            out.push(ch);
        } else {
            word.push(ch);
        }
    }
    out.push_str(&mask(&word));
    out
}

/// `80` → `80/tcp`, `53/udp`, `8000-8002` → three ports.
fn expose_ports(word: &str) -> Result<Vec<String>, LowerError> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(LowerError::ExposeProtocol {
            word: word.to_string(),
        });
    }
    let bad = || LowerError::ExposePort {
        word: word.to_string(),
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo == 0 || hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// Octal bits, at most 0o7777.
fn parse_chmod(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o7777)
}

/// Copies a tree (files, directories, symlinks as symlinks, modes kept).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in walkdir::WalkDir::new(from).follow_links(false) {
        let e = e.map_err(std::io::Error::other)?;
        let rel = e.path().strip_prefix(from).map_err(std::io::Error::other)?;
        let dest = to.join(rel);
        let ft = e.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dest)?;
            std::fs::set_permissions(
                &dest,
                e.metadata().map_err(std::io::Error::other)?.permissions(),
            )?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &dest)?;
        } else if ft.is_file() {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// `path` made absolute against `base` and lexically cleaned.
pub fn clean_abs(path: &str, base: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", base.trim_end_matches('/'))
    };
    format!("/{}", crate::context::lexical(&joined).join("/"))
}

/// A heredoc body with `$VAR` expanded (quotes kept, as Docker does for an
/// unquoted `COPY <<EOF`).
fn expand_heredoc(
    body: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        let (text, nl) = match line.strip_suffix('\n') {
            Some(t) => (t, "\n"),
            None => (line, ""),
        };
        // Quotes are literal in a heredoc: protect them from word processing.
        let mut protected = String::new();
        for ch in text.chars() {
            if ch == '"' || ch == '\'' {
                protected.push(escape);
            }
            protected.push(ch);
        }
        out.push_str(&process_word(&protected, escape, lookup)?);
        out.push_str(nl);
    }
    Ok(out)
}

fn get(scope: &[(String, String)], name: &str) -> Option<String> {
    scope
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn set(scope: &mut Vec<(String, String)>, name: &str, value: impl Into<Option<String>>) {
    let value: Option<String> = value.into();
    scope.retain(|(k, _)| k != name);
    if let Some(v) = value {
        scope.push((name.to_string(), v));
    } else {
        // Declared without a value: in scope, empty in RUN's environment?
        // Docker leaves it unset; so do we.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_history_lose_their_credentials_and_spacing_stays() {
        assert_eq!(
            redact_urls("ADD https://u:secret@host/f  /dest \"git://x:y@h/r\""),
            "ADD https://***@host/f  /dest \"git://***@h/r\""
        );
        assert_eq!(redact_urls("echo 'a   b'"), "echo 'a   b'");
    }
}

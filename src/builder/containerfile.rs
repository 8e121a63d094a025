//! A Containerfile build: parse, check every stage that will run (so an
//! error stops the build before anything runs or is stored), then build
//! the stages the target needs — in dependency order, each with the step
//! loop recipes use — and write the target stage as the image.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use super::host::{Host, Names};
use super::steps::Sources;
use super::{BuildError, BuildOptions, BuildOutcome, ContainerfileOptions, base, secrets};
use crate::containerfile::{Containerfile, ContainerfileError, Pos};
use crate::image::Derived;
use crate::plan::LayerSettings;
use crate::plan::containerfile::{self as lower, LowerInput};
use crate::progress::{Event, Phase, Sink};
use crate::store::Store;

pub(super) fn build(
    opts: &BuildOptions,
    cf: &ContainerfileOptions,
    sink: &dyn Sink,
) -> Result<BuildOutcome, BuildError> {
    sink.emit(&Event::Phase {
        phase: Phase::Creating,
    });
    let p = prepare(opts, cf)?;
    let (file, build_args, platform) = (&p.file, &p.build_args, &p.platform);
    let total = p.total;
    let path = &opts.recipe;
    if let Some(syntax) = &file.syntax {
        sink.emit(&Event::Info {
            message: format!(
                "# syntax={syntax} is ignored: boxwright reads the Dockerfile language itself"
            ),
        });
    }
    let declared: Vec<&str> = file
        .global_args
        .iter()
        .map(|a| a.value.name.as_str())
        .chain(file.stages.iter().flat_map(|s| {
            s.instructions.iter().flat_map(|i| match &i.kind {
                crate::containerfile::InstructionKind::Arg(d) => {
                    d.iter().map(|a| a.name.as_str()).collect()
                }
                _ => Vec::new(),
            })
        }))
        .collect();
    for k in build_args.keys() {
        if !declared.contains(&k.as_str()) && !platform.iter().any(|(p, _)| p == k) {
            sink.emit(&Event::Warning {
                message: format!(
                    "--build-arg {k} is not declared by any ARG in {}; ignored",
                    path.display()
                ),
            });
        }
    }

    let host = Host::open(opts, sink)?;
    let epoch = crate::plan::source_date_epoch(opts.source_date_epoch_env.as_deref(), 0)?;
    let settings = host.settings(opts, epoch);
    let store = &host.store;
    let secrets = secrets::Secrets::load(&opts.secrets, store)?;
    let mut cx = host.step_cx(opts, settings, &secrets, sink, total)?;
    let keep_remote = host.keep_remote_on(opts, p.image_names.first.as_deref());
    sink.emit(&Event::Phase {
        phase: Phase::Building,
    });
    let mut sources = Sources {
        stages: vec![None; file.stages.len()],
        images: Vec::new(),
    };
    let bases = Bases {
        file,
        store,
        settings: &settings,
        opts,
        offline: opts.offline.then_some(&host.registries),
        sink,
    };
    let mut built: Vec<Option<Derived>> = vec![None; file.stages.len()];
    let mut pending: Vec<usize> = p.order.clone();
    let stop = AtomicBool::new(false);
    while !pending.is_empty() {
        // The stages whose every dependency is built run together, up to
        // --jobs of them, in build order.
        let mut wave: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|&i| p.deps[i].iter().all(|&d| built[d].is_some()))
            .collect();
        if wave.is_empty() {
            // build_order puts every dependency first; never loop on a bug.
            return Err(BuildError::BadInput(
                "no stage is ready to build: a bug in boxwright's stage order".into(),
            ));
        }
        if cf.jobs > 0 {
            wave.truncate(cf.jobs);
        }
        pending.retain(|i| !wave.contains(i));
        // Bases, ONBUILD triggers, lowering and `--from` images on this
        // thread, one stage after another: pulls and errors keep their
        // order, and step numbers are given out in build order.
        let mut ready = Vec::with_capacity(wave.len());
        for &i in &wave {
            let (image, steps) = ready_stage(i, &p, &built, &mut sources, &bases)?;
            ready.push((i, image, steps));
        }
        if let [(i, image, steps)] = ready.as_mut_slice() {
            // Only the target stage's layers may stay in the registry it
            // is pushed to; the others are read by later stages.
            cx.keep_remote_on = (*i == p.target).then(|| keep_remote.clone()).flatten();
            cx.run_steps(image, steps, &[], &sources, epoch)?;
            sources.stages[*i] = Some(image.layers.clone());
        } else {
            let mut first = cx.next_number;
            let mut stage_cxs = Vec::with_capacity(ready.len());
            for (_, _, steps) in &ready {
                stage_cxs.push(cx.for_stage(first, &stop));
                first += steps.len();
            }
            cx.next_number = first;
            let sources_now = &sources;
            let stop = &stop;
            let results: Vec<_> = std::thread::scope(|scope| {
                let handles: Vec<_> = ready
                    .iter_mut()
                    .zip(stage_cxs)
                    .map(|((_, image, steps), mut scx)| {
                        scope.spawn(move || {
                            let r = scx.run_steps(image, steps, &[], sources_now, epoch);
                            if r.is_err() {
                                stop.store(true, Ordering::SeqCst);
                            }
                            (scx, r)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join()).collect()
            });
            // The first stage (in build order) that failed for itself.
            let mut failure = None;
            for joined in results {
                let (scx, r) = joined.map_err(|_| {
                    BuildError::BadInput(
                        "a stage's thread panicked; this is a bug in boxwright".into(),
                    )
                })?;
                cx.absorb(scx);
                match r {
                    Err(BuildError::Stopped) | Ok(()) => {}
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e);
            }
            for (i, image, _) in &ready {
                sources.stages[*i] = Some(image.layers.clone());
            }
        }
        for (i, image, _) in ready {
            built[i] = Some(image);
        }
    }
    host.after_steps(&cx);
    let cached_steps = cx.cached_steps;
    drop(cx);

    let mut image = built[p.target]
        .take()
        .ok_or_else(|| BuildError::BadInput("the target stage was not built".into()))?;
    super::host::labels_and_annotations(&mut image, opts, epoch);
    let manifest = image.write_to_store(store, epoch)?;
    drop(secrets);
    host.finish(opts, manifest, &p.image_names, cached_steps, total, sink)
}

/// One stage made ready to run: its base image (another stage's result, or
/// resolved into the store) with the base's ONBUILD triggers in front of
/// its instructions, lowered to steps; images its steps read by reference
/// are resolved into `sources`.
fn ready_stage(
    i: usize,
    p: &Prepared,
    built: &[Option<Derived>],
    sources: &mut Sources,
    bases: &Bases<'_>,
) -> Result<(Derived, Vec<crate::plan::PlannedStep>), BuildError> {
    let file = &p.file;
    let stage = &file.stages[i];
    let written = lower::stage_base(file, stage, &p.globals)?;
    let mut image = match p.names.get(&written.to_lowercase()).filter(|&&j| j != i) {
        Some(&j) => built[j].clone().ok_or_else(|| {
            BuildError::BadInput(format!("stage {j} was not built before stage {i}"))
        })?,
        None => {
            let b = bases.resolve(&written, stage.base_pos)?;
            let mut d = Derived::new(b.config, b.layers);
            // Docker and buildah give an image without PATH the default one.
            let c = d.config.config.get_or_insert_with(Default::default);
            if !c.env.iter().any(|e| e.starts_with("PATH=")) {
                c.env
                    .insert(0, format!("PATH={}", crate::sandbox::DEFAULT_PATH));
            }
            d
        }
    };
    // ONBUILD triggers of the base run first, and do not pass on.
    let triggers: Vec<String> = image
        .config
        .config
        .as_mut()
        .and_then(|c| c.extra.remove("OnBuild"))
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let with_triggers;
    let stage = if triggers.is_empty() {
        stage
    } else {
        let text = format!("FROM scratch\n{}\n", triggers.join("\n"));
        let origin = std::path::PathBuf::from(format!(
            "{} (ONBUILD triggers of {written})",
            bases.opts.recipe.display()
        ));
        let parsed = crate::containerfile::parse(&text, &origin)?;
        let mut s = stage.clone();
        let mut instructions = parsed.stages[0].instructions.clone();
        instructions.extend(s.instructions);
        s.instructions = instructions;
        with_triggers = s;
        &with_triggers
    };
    let c = image.config.config.clone().unwrap_or_default();
    let base_shell = c
        .extra
        .get("Shell")
        .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok());
    let input = p.input(image.config.env(), base_shell, false);
    let lowered = lower::lower_stage(&input, stage)?;
    // Images named by `COPY --from=IMAGE` or `--mount=from=IMAGE`.
    for ps in &lowered.steps {
        let mut froms = Vec::new();
        if let crate::recipe::StepKind::Files(f) = &ps.step.kind {
            froms.push(&f.from);
        }
        froms.extend(ps.step.options.binds.iter().map(|b| &b.from));
        for from in froms {
            if let crate::recipe::FilesFrom::Image(r) = from
                && !sources.images.iter().any(|(n, _)| n == r)
            {
                let b = bases.resolve(r, stage.pos)?;
                sources.images.push((r.clone(), b.layers));
            }
        }
    }
    Ok((image, lowered.steps))
}

/// A Containerfile checked and planned as far as it can be before any
/// base is pulled: every error of the file shows here.
struct Prepared {
    file: Containerfile,
    context: std::path::PathBuf,
    dockerignore: Vec<String>,
    build_args: BTreeMap<String, String>,
    platform: Vec<(String, String)>,
    globals: Vec<(String, String)>,
    names: HashMap<String, usize>,
    target: usize,
    order: Vec<usize>,
    /// The stages each stage reads (its base, `COPY --from`, mounts).
    deps: Vec<Vec<usize>>,
    image_names: Names,
    total: usize,
    staging: tempfile::TempDir,
}

/// Checks a Containerfile build without running anything or writing to
/// the store: the CLI calls it first, so a bad file is one line on stderr.
pub fn check_containerfile(opts: &BuildOptions) -> Result<(), BuildError> {
    match &opts.containerfile {
        Some(cf) => prepare(opts, cf).map(drop),
        None => Ok(()),
    }
}

fn prepare(opts: &BuildOptions, cf: &ContainerfileOptions) -> Result<Prepared, BuildError> {
    let path = &opts.recipe;
    let text = std::fs::read_to_string(path).map_err(|e| {
        BuildError::BadInput(format!(
            "cannot read the Containerfile {}: {e}",
            path.display()
        ))
    })?;
    let file = crate::containerfile::parse(&text, path)?;
    let context = cf.context.canonicalize().ok().filter(|c| c.is_dir()).ok_or_else(|| {
        BuildError::BadInput(format!(
            "the build context {} is not a directory: give the directory that holds the files COPY reads",
            cf.context.display()
        ))
    })?;
    let dockerignore = read_dockerignore(&context, path)?;
    let build_args: BTreeMap<String, String> = opts.build_args.iter().cloned().collect();
    let platform = lower::platform_args(&crate::image::host_platform());
    let globals = lower::global_args(&file, &build_args, &platform)?;
    let names = lower::stage_names(&file)?;
    let target = match &cf.target {
        Some(t) => *names.get(&t.to_lowercase()).ok_or_else(|| {
            let known: Vec<&str> = file
                .stages
                .iter()
                .filter_map(|s| s.name.as_deref())
                .collect();
            BuildError::BadInput(format!(
                "--target {t}: no stage is named '{t}' in {} (its stages: {})",
                path.display(),
                if known.is_empty() {
                    "none named".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?,
        None => file.stages.len() - 1,
    };
    let (order, deps) = build_order(&file, &names, &globals, target)?;
    let image_names = Names::from_opts(opts)?;

    // Every stage that will run is lowered once now, so its errors stop
    // the build before a step runs; the real lowering (with the base's
    // environment) happens when the stage is built.
    let staging = tempfile::Builder::new()
        .prefix("boxwright-containerfile-")
        .tempdir()
        .map_err(|e| BuildError::BadInput(format!("cannot make a staging directory: {e}")))?;
    let mut p = Prepared {
        file,
        context,
        dockerignore,
        build_args,
        platform,
        globals,
        names,
        target,
        order,
        deps,
        image_names,
        total: 0,
        staging,
    };
    for &i in &p.order {
        let input = p.input(Vec::new(), None, true);
        p.total += lower::lower_stage(&input, &p.file.stages[i])?.steps.len();
    }
    Ok(p)
}

impl Prepared {
    /// What lowering a stage needs, on a base with `base_env` and `base_shell`.
    fn input(
        &self,
        base_env: Vec<(String, String)>,
        base_shell: Option<Vec<String>>,
        check_only: bool,
    ) -> LowerInput<'_> {
        LowerInput {
            file: &self.file,
            context: &self.context,
            dockerignore: &self.dockerignore,
            build_args: &self.build_args,
            base_env,
            base_shell,
            stages: &self.names,
            staging: self.staging.path(),
            platform_args: &self.platform,
            check_only,
        }
    }
}

/// Resolves `FROM` and `--from` images into the store for one build.
struct Bases<'a> {
    file: &'a Containerfile,
    store: &'a Store,
    settings: &'a LayerSettings,
    opts: &'a BuildOptions,
    offline: Option<&'a crate::registry::RegistriesConfig>,
    sink: &'a dyn Sink,
}

impl Bases<'_> {
    /// The image `written` (as the file wrote it, at `pos`) in the store.
    fn resolve(&self, written: &str, pos: Pos) -> Result<base::BaseImage, BuildError> {
        let dir = self
            .opts
            .recipe
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let parsed = crate::recipe::parse_base_ref(written, dir).map_err(|why| {
            ContainerfileError::at(
                self.file,
                pos,
                format!("'{written}' is not an image reference: {why}"),
            )
        })?;
        base::resolve_base(
            &parsed,
            self.settings.source_date_epoch,
            self.store,
            self.settings,
            &self.opts.registry,
            self.offline,
            self.sink,
        )
    }
}

/// The stages `target` needs, each after the stages it reads, and the
/// stages each stage reads; a cycle is an error at the reference that
/// closes it.
fn build_order(
    file: &Containerfile,
    names: &HashMap<String, usize>,
    globals: &[(String, String)],
    target: usize,
) -> Result<(Vec<usize>, Vec<Vec<usize>>), ContainerfileError> {
    let mut deps = Vec::with_capacity(file.stages.len());
    for s in &file.stages {
        deps.push(lower::stage_deps(file, s, names, globals)?);
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    fn visit(
        i: usize,
        deps: &[Vec<(usize, Pos)>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
        file: &Containerfile,
    ) -> Result<(), ContainerfileError> {
        marks[i] = Mark::Visiting;
        path.push(i);
        for &(d, pos) in &deps[i] {
            match marks[d] {
                Mark::Done => {}
                Mark::Visiting => {
                    let start = path.iter().position(|&p| p == d).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[start..].iter().map(|&p| stage_name(file, p)).collect();
                    cycle.push(stage_name(file, d));
                    return Err(ContainerfileError::at(
                        file,
                        pos,
                        format!(
                            "the stages form a cycle ({}): a stage cannot use itself, even through others",
                            cycle.join(" → ")
                        ),
                    ));
                }
                Mark::New => visit(d, deps, marks, path, order, file)?,
            }
        }
        path.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; file.stages.len()];
    let mut order = Vec::new();
    visit(target, &deps, &mut marks, &mut Vec::new(), &mut order, file)?;
    let deps = deps
        .into_iter()
        .map(|d| d.into_iter().map(|(i, _)| i).collect())
        .collect();
    Ok((order, deps))
}

fn stage_name(file: &Containerfile, i: usize) -> String {
    file.stages[i].name.clone().unwrap_or_else(|| i.to_string())
}

/// The first ignore file found of: `FILE.containerignore` and
/// `FILE.dockerignore` beside the Containerfile (BuildKit's per-file
/// ignore), then the context's `.containerignore` (buildah and podman read
/// it before `.dockerignore`) and `.dockerignore`.
fn read_dockerignore(
    context: &std::path::Path,
    file: &std::path::Path,
) -> Result<Vec<String>, BuildError> {
    let candidates = [
        std::path::PathBuf::from(format!("{}.containerignore", file.display())),
        std::path::PathBuf::from(format!("{}.dockerignore", file.display())),
        context.join(".containerignore"),
    ];
    let path = candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| context.join(".dockerignore"));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let patterns: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect();
            crate::context::Excludes::new(patterns.iter().map(String::as_str))
                .map_err(|e| BuildError::BadInput(format!("{}: {e}", path.display())))?;
            Ok(patterns)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(BuildError::BadInput(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

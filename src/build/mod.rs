//! The build driver: walks a plan step by step (cache lookup → sandbox →
//! layer → store), assembles the image and tags it, reporting progress all
//! along. The CLI and any other front end call [`build`].

mod base;
mod error;
mod log;
mod offline;
mod remote;
mod remote_cache;
mod secrets;
mod template;
mod toolbox;
mod transfer;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use crate::digest::Digest;
use crate::image::{ConfigOverrides, Derived, ImageConfig};
use crate::media::{Compression, Descriptor, LayerInfo};
use crate::mirror::{Mirrors, Rule};
use crate::plan::{LayerSettings, Plan, chain_id};
use crate::progress::{Event, Phase, Sink, Tee};
use crate::recipe::{Recipe, StepKind};
use crate::sandbox::{Action, HostEnv, IdMapping, Network, Userns};
use crate::store::{CacheEntry, Store};

pub use crate::session::DiffMethod;
use crate::session::{StepResult, StepRunner, Workers, clean_stale};
pub use base::BaseImage;
pub use error::BuildError;
pub use remote::{
    RegistryOptions, client as registry_client, template_namespace, transfer_reporter,
};
pub use remote_cache::{ARTIFACT_TYPE, PruneReport, TAG_PREFIX, prune_remote};
pub use secrets::{BuildSecret, SecretSource, SecretSyntax};
pub use transfer::transfer_event;

pub use crate::image::RECIPE_ANNOTATION;

/// Everything a build needs besides the recipe.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub recipe: PathBuf,
    /// The name to tag the image with, as given (`:latest` added if untagged).
    pub tag: Option<String>,
    pub store: PathBuf,
    pub no_cache: bool,
    pub compression: Compression,
    pub network: Network,
    pub host_ca: bool,
    pub diff: DiffMethod,
    /// boxwright's own executable, re-executed as the namespace worker.
    pub worker_exe: PathBuf,
    /// The `SOURCE_DATE_EPOCH` environment value, if set.
    pub source_date_epoch_env: Option<String>,
    pub registry: RegistryOptions,
    /// Push the image to the registry its tag names once built.
    pub push: bool,
    /// `--artifact-mirror DIR_OR_URL`: where upstream artifacts are looked up
    /// (as `MIRROR/<component>/<version>/<file>`) instead of upstream.
    pub artifact_mirror: Option<String>,
    /// `--offline`: fetch nothing from upstream (only from caches and
    /// mirrors); fail up front naming every download the build would need.
    pub offline: bool,
    /// `--mirror FROM=TO`, in order; they add to and override the
    /// `[mirrors]` of registries.toml.
    pub mirrors: Vec<Rule>,
    /// The most bytes one layer may expand to when it is unpacked (also
    /// capped by the store's free space); see [`crate::layer::DEFAULT_MAX_LAYER_SIZE`].
    pub max_layer_size: u64,
    /// `--step-timeout`: seconds any run step may take, unless the step sets
    /// its own `timeout`.
    pub step_timeout: Option<u64>,
    /// `--build-arg K=V`: values for the recipe's `[args]`.
    pub build_args: Vec<(String, String)>,
    /// `--secret`: given to the steps that ask for them, nowhere else.
    pub secrets: Vec<BuildSecret>,
    /// `--label K=V`: image labels, on top of the recipe's.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--annotation K=V`: manifest annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// `--no-recipe-annotation`: do not record the recipe in the image.
    pub no_recipe_annotation: bool,
    /// `--cache-from REPO`: registry step caches looked up on a local miss.
    pub cache_from: Vec<String>,
    /// `--cache-to REPO`: where every step's layer and record go.
    pub cache_to: Option<String>,
}

/// What a build produced.
#[derive(Clone, Debug)]
pub struct BuildOutcome {
    pub manifest: Descriptor,
    pub name: Option<String>,
    pub cached_steps: usize,
    pub total_steps: usize,
    /// The build's id (`boxwright logs ID`).
    pub build_id: String,
}

/// Keeps the last lines of a step's output for the failure report.
struct Tail {
    lines: VecDeque<String>,
    cap: usize,
}

impl Tail {
    fn new(cap: usize) -> Tail {
        Tail {
            lines: VecDeque::with_capacity(cap),
            cap,
        }
    }

    fn push(&mut self, line: &str) {
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_string());
    }
}

/// Builds the image a recipe describes into the store. Its events go to
/// `sink` and to the build's log in the store, starting with its id.
pub fn build(opts: &BuildOptions, sink: &dyn Sink) -> Result<BuildOutcome, BuildError> {
    let log = log::BuildLog::start(opts, sink);
    let tee = Tee::new(vec![sink, log.sink()]);
    let sink: &dyn Sink = &tee;
    let result = run_build(opts, sink).map(|mut o| {
        o.build_id = log.id().to_string();
        o
    });
    if let Err(e) = &result {
        let (step, command, exit_code, last_lines) = match e {
            BuildError::StepFailed {
                step,
                command,
                exit_code,
                last_lines,
            } => (
                Some(*step),
                Some(command.clone()),
                Some(*exit_code),
                last_lines.clone(),
            ),
            BuildError::StepError { step, command, .. } => {
                (Some(*step), Some(command.clone()), None, Vec::new())
            }
            _ => (None, None, None, Vec::new()),
        };
        sink.emit(&Event::Failed {
            step,
            command,
            exit_code,
            message: e.to_string(),
            last_lines,
        });
    }
    result
}

fn run_build(opts: &BuildOptions, sink: &dyn Sink) -> Result<BuildOutcome, BuildError> {
    sink.emit(&Event::Phase {
        phase: Phase::Creating,
    });
    let recipe = Recipe::load(&opts.recipe)?;
    let plan = Plan::with_args(
        recipe,
        opts.source_date_epoch_env.as_deref(),
        &opts.build_args,
    )?;
    let name = opts.tag.as_deref().map(normalize_tag).transpose()?;
    if opts.push && name.is_none() {
        return Err(BuildError::BadInput(
            "--push needs -t REGISTRY/NAME[:TAG] to know where to push".into(),
        ));
    }
    for warning in &plan.toolbox.warnings {
        sink.emit(&Event::Warning {
            message: warning.clone(),
        });
    }

    let registries = opts.registry.load_config()?;
    let mirrors = download_mirrors(&registries, &opts.mirrors)?;
    if !mirrors.is_empty() {
        let rules: Vec<String> = mirrors.rules().iter().map(Rule::to_string).collect();
        sink.emit(&Event::Info {
            message: format!("download mirrors: {}", rules.join(", ")),
        });
    }
    let network = offline::step_network(opts.network, opts.offline, &mirrors);

    let store = Store::open(&opts.store)?;
    let mapping = IdMapping::detect()?;
    sink.emit(&Event::Info {
        message: format!("id mapping: {}", mapping.describe()),
    });
    let workers = Workers::new(opts.worker_exe.clone(), Userns::new(mapping.clone()));
    if let Some(freed) = clean_stale(&store, &workers)?
        && freed > 0
    {
        sink.emit(&Event::Info {
            message: format!(
                "removed {} left in the store by interrupted runs",
                crate::units::human_bytes(freed)
            ),
        });
    }
    let _lock = store.lock_shared()?;
    let fetcher = toolbox::fetcher(opts, &store, &mirrors);
    toolbox::check_offline(&plan, &fetcher)?;

    let settings = LayerSettings {
        compression: opts.compression,
        source_date_epoch: plan.source_date_epoch,
        fake_root: mapping.fake_root(),
    };

    let offline_base = opts.offline.then_some(&registries);
    let base = base::resolve(&plan, &store, &settings, &opts.registry, offline_base, sink)?;
    let mut image = Derived::new(base.config.clone(), base.layers.clone());
    let mut run_env = env_for_steps(&image.config, &plan.args);
    let secrets = secrets::Secrets::load(&opts.secrets, &store)?;

    sink.emit(&Event::Phase {
        phase: Phase::Building,
    });
    let total = plan.steps.len();
    // The registry caches: looked up on a local miss, filled at the end.
    // `--cache-from` adds to registries.toml's `cache_from`; `--cache-to` wins over its `cache_to`.
    let mut cache_from = opts.cache_from.clone();
    for r in &registries.cache_from {
        if !cache_from.contains(r) {
            cache_from.push(r.clone());
        }
    }
    let cache_to = opts.cache_to.clone().or(registries.cache_to.clone());
    let cache_client = if cache_from.is_empty() && cache_to.is_none() {
        None
    } else {
        Some(remote::client(&opts.registry, &store).map_err(BuildError::Push)?)
    };
    let cached_layer = |key: &Digest| -> Result<Option<CacheEntry>, BuildError> {
        if opts.no_cache {
            return Ok(None);
        }
        if let Some(hit) = store.cache_get(key)? {
            return Ok(Some(hit));
        }
        for repo in &cache_from {
            if let Some(client) = &cache_client
                && let Some(hit) = remote_cache::lookup(client, &store, repo, key, sink)
            {
                sink.emit(&Event::Info {
                    message: format!("step cache: layer {} from {repo}", hit.layer.digest.short()),
                });
                store.cache_put(key, &hit)?;
                return Ok(Some(hit));
            }
        }
        Ok(None)
    };
    let mut records: Vec<(Digest, CacheEntry)> = Vec::new();
    let mut cached_steps = 0;
    let mut checked_offline = false;
    let mut runner: Option<StepRunner> = None;
    for (i, ps) in plan.steps.iter().enumerate() {
        let parent = chain_id(&diff_ids(&image.layers));
        let step_env = step_env(&run_env, &ps.step.kind);
        let key = ps.cache_key(parent.as_ref(), &step_env, &settings);
        // Another build of this store running the same step holds its
        // lock: wait, then take its layer from the cache.
        let mut key_lock = None;
        let mut hit = cached_layer(&key)?;
        if hit.is_none() && !opts.no_cache {
            key_lock = Some(match store.try_lock_key(&key)? {
                Some(l) => l,
                None => {
                    sink.emit(&Event::Info {
                        message: format!(
                            "step {}: another build is running the same step; waiting for it",
                            ps.number
                        ),
                    });
                    store.lock_key(&key)?
                }
            });
            hit = store.cache_get(&key)?;
        }
        if let Some(hit) = hit {
            sink.emit(&Event::StepCached {
                step: ps.number,
                total,
                description: ps.step.summary(),
                layer: hit.layer.digest.clone(),
            });
            records.push((key, hit.clone()));
            image.add_layer(hit.layer, &ps.created_by, plan.source_date_epoch);
            toolbox::apply_step_env(&mut image.config, ps);
            run_env = env_for_steps(&image.config, &plan.args);
            cached_steps += 1;
            continue;
        }
        if opts.offline && !checked_offline {
            offline::check(&plan.steps[i..], &mirrors)?;
            checked_offline = true;
        }
        let description = ps.step.summary();
        let r = match &mut runner {
            Some(r) => r,
            None => runner.insert(StepRunner::new(
                &store,
                &workers,
                opts.diff,
                opts.max_layer_size,
                sink,
            )?),
        };
        sink.emit(&Event::StepStarted {
            step: ps.number,
            total,
            description: description.clone(),
        });
        let started = Instant::now();
        // Secret env values go to the step alone: not into `step_env`, which
        // makes the cache key.
        let given = secrets.for_step(ps)?;
        let mut action_env = step_env.clone();
        action_env.extend(given.env);
        let action = match &ps.step.kind {
            StepKind::Run { command, .. } => Action::Exec {
                argv: command.argv(),
                env: action_env,
                cwd: working_dir(&image.config),
                uid: 0,
                gid: 0,
                user: None,
            },
            StepKind::Copy(c) => Action::Copy {
                src: c.src.clone(),
                dest: c.dest.clone(),
                mode: c.mode,
                owner: c.owner,
            },
        };
        let mut mounts = toolbox::step_mounts(ps, &store, &fetcher)?;
        mounts.extend(given.mounts);
        let mut tail = Tail::new(20);
        let number = ps.number;
        let mut on_line = |line: &str| {
            let line = secrets.scrub(&mirrors.scrub(line));
            tail.push(&line);
            sink.emit(&Event::Log { step: number, line });
        };
        let host = HostEnv {
            mirrors: mirrors.clone(),
            offline: opts.offline,
            ..HostEnv::capture(opts.host_ca)
        };
        let outcome = r.run_step(
            &image.layers,
            action,
            mounts,
            &[],
            network,
            host,
            &settings,
            ps.step.timeout.or(opts.step_timeout),
            &mut on_line,
        );
        let layer = match outcome {
            Ok(StepResult::Layer(l)) => l,
            Ok(StepResult::Exit(code)) => {
                return Err(BuildError::StepFailed {
                    step: ps.number,
                    command: description,
                    exit_code: code,
                    last_lines: tail.lines.into_iter().collect(),
                });
            }
            Err(e) => {
                return Err(BuildError::StepError {
                    step: ps.number,
                    command: description,
                    message: e.to_string(),
                });
            }
        };
        let entry = CacheEntry {
            layer: layer.clone(),
            created_by: ps.created_by.clone(),
            created: plan.source_date_epoch,
        };
        store.cache_put(&key, &entry)?;
        drop(key_lock);
        records.push((key, entry));
        sink.emit(&Event::StepFinished {
            step: ps.number,
            total,
            duration_ms: started.elapsed().as_millis() as u64,
            layer: layer.digest.clone(),
            size: layer.size,
        });
        image.add_layer(layer, &ps.created_by, plan.source_date_epoch);
        toolbox::apply_step_env(&mut image.config, ps);
        run_env = env_for_steps(&image.config, &plan.args);
    }
    if let Some(r) = runner {
        r.finish();
    }
    // Upperdirs whose layer was already unpacked went to the trash: empty
    // what this build put there, so the next one does not find leftovers.
    crate::session::empty_own_trash(&store, &workers);
    if let (Some(repo), Some(client)) = (&cache_to, &cache_client) {
        let mut pushed = 0;
        for (key, entry) in &records {
            match remote_cache::push_record(client, &store, repo, key, entry, sink) {
                Ok(()) => pushed += 1,
                // The image is built: a cache that cannot be filled is a warning.
                Err(e) => sink.emit(&Event::Warning {
                    message: format!("--cache-to {repo}: {}", crate::quote::excerpt_n(&e, 200)),
                }),
            }
        }
        sink.emit(&Event::Info {
            message: format!("step cache: {pushed} record(s) in {repo}"),
        });
    }

    let epoch = plan.source_date_epoch;
    let components = toolbox::toolbox_overrides(&plan, &image.config);
    image.apply(
        &components,
        "boxwright: dev access config and component labels",
        epoch,
    );
    image.apply(
        &overrides_from(&plan.recipe),
        "boxwright: config from the recipe",
        epoch,
    );
    image.apply(
        &ConfigOverrides {
            labels: opts.labels.clone(),
            ..ConfigOverrides::default()
        },
        "boxwright: --label",
        epoch,
    );
    // The recipe travels with the image, so `clone` can write it out again;
    // its steps' env values stay behind.
    if !opts.no_recipe_annotation
        && let Some(text) = std::fs::read_to_string(&plan.recipe.path)
            .ok()
            .and_then(|t| crate::recipe::redact_step_env(&t))
    {
        image.annotate(RECIPE_ANNOTATION, text);
    }
    for (k, v) in &opts.annotations {
        image.annotate(k, v.clone());
    }
    let manifest = image.write(store.layout(), epoch)?;
    drop(secrets);
    if let Some(n) = &name {
        store.layout().tag(n, manifest.clone())?;
    }
    if let (true, Some(target)) = (opts.push, name.as_deref()) {
        push(&store, &manifest, target, &opts.registry, sink)?;
    }
    sink.emit(&Event::Phase { phase: Phase::Done });
    sink.emit(&Event::Finished {
        digest: manifest.digest.clone(),
        name: name.clone(),
        cached_steps,
        total_steps: total,
    });
    Ok(BuildOutcome {
        manifest,
        name,
        cached_steps,
        total_steps: total,
        build_id: String::new(),
    })
}

/// Pushes a stored image to the registry `target` names (the Pushing phase).
pub fn push(
    store: &Store,
    manifest: &Descriptor,
    target: &str,
    registry: &RegistryOptions,
    sink: &dyn Sink,
) -> Result<Digest, BuildError> {
    let reference: crate::registry::Reference = target
        .parse()
        .map_err(|e| BuildError::BadInput(format!("cannot push to '{target}': {e}")))?;
    sink.emit(&Event::Phase {
        phase: Phase::Pushing,
    });
    let client = remote::client(registry, store).map_err(BuildError::Push)?;
    let report = remote::transfer_reporter(sink);
    let digest =
        crate::registry::push_from_store(&client, store.layout(), manifest, &reference, &report)
            .map_err(|e| BuildError::Push(e.to_string()))?;
    sink.emit(&Event::Info {
        message: format!("pushed {reference}@{digest}"),
    });
    Ok(digest)
}

/// `NAME` → `NAME:latest`; a name that already has a tag or digest stays.
pub fn normalize_tag(name: &str) -> Result<String, BuildError> {
    crate::store::normalize_name(name).map_err(|_| {
        BuildError::BadInput(format!(
            "'{name}' is not a valid image name: use NAME[:TAG], e.g. demo:latest"
        ))
    })
}

/// The download mirrors of a build: registries.toml's `[mirrors]`, then
/// `--mirror` (which wins for the same FROM).
fn download_mirrors(
    registries: &crate::registry::RegistriesConfig,
    cli: &[Rule],
) -> Result<Mirrors, BuildError> {
    let config = registries
        .mirror_rules()
        .map_err(|e| BuildError::BadInput(format!("registries.toml [mirrors]: {e}")))?;
    Ok(Mirrors::new(config.into_iter().chain(cli.iter().cloned())))
}

fn diff_ids(layers: &[LayerInfo]) -> Vec<Digest> {
    layers.iter().map(|l| l.diff_id.clone()).collect()
}

/// Where steps run: the image's working directory, else `/`.
fn working_dir(config: &ImageConfig) -> String {
    config
        .config
        .as_ref()
        .and_then(|c| c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

/// The environment steps run with: the image's, with a default PATH, and
/// the build arguments (which the image's own variables do not override,
/// as Docker's ARG and ENV of the same name behave).
fn env_for_steps(config: &ImageConfig, args: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = config.env();
    for (k, v) in args {
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".to_string(), crate::sandbox::DEFAULT_PATH.to_string()));
    }
    env
}

fn step_env(base: &[(String, String)], kind: &StepKind) -> Vec<(String, String)> {
    let mut env = base.to_vec();
    if let StepKind::Run { env: extra, .. } = kind {
        for (k, v) in extra {
            match env.iter_mut().find(|(ek, _)| ek == k) {
                Some(e) => e.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            }
        }
    }
    env
}

fn overrides_from(recipe: &Recipe) -> ConfigOverrides {
    let c = &recipe.config;
    ConfigOverrides {
        env: c.env.clone(),
        workdir: c.workdir.clone(),
        user: c.user.clone(),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        exposed_ports: c.expose.iter().map(|p| p.to_string()).collect(),
        labels: c.labels.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_get_latest_unless_they_have_one() {
        assert_eq!(normalize_tag("demo").unwrap(), "demo:latest");
        assert_eq!(normalize_tag("demo:1").unwrap(), "demo:1");
        assert_eq!(
            normalize_tag("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(
            normalize_tag("localhost:5000/a/b:x").unwrap(),
            "localhost:5000/a/b:x"
        );
        assert!(normalize_tag("").is_err());
        assert!(normalize_tag("a b").is_err());
        assert!(normalize_tag("demo:").is_err());
    }
}

//! The build driver: walks a plan step by step (cache lookup → sandbox →
//! layer → store), assembles the image and tags it, reporting progress all
//! along. The CLI and any other front end call [`build`].

mod base;
mod containerfile;
pub use containerfile::check_containerfile;
mod error;
mod host;
mod log;
mod offline;
mod remote;
mod remote_cache;
mod secrets;
mod steps;
mod template;
mod toolbox;
mod transfer;

use std::path::PathBuf;

use crate::digest::Digest;
use crate::image::{ConfigOverrides, Derived};
use crate::media::{Compression, Descriptor};
use crate::mirror::{Mirrors, Rule};
use crate::plan::Plan;
use crate::progress::{Event, Phase, Sink, Tee};
use crate::recipe::Recipe;
use crate::sandbox::Network;
use crate::store::Store;

pub use crate::session::DiffMethod;
pub use base::BaseImage;
pub use error::{BaseError, BuildError};
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
    /// The most bytes unpacked layers may take once the build is done
    /// (least recently used ones evicted); see [`crate::store::DEFAULT_MAX_UNPACKED`].
    pub max_unpacked: u64,
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
    /// A Containerfile build: `recipe` is then the Containerfile.
    pub containerfile: Option<ContainerfileOptions>,
    /// More names for the image (`-t` given more than once).
    pub extra_tags: Vec<String>,
}

/// What a Containerfile build needs besides the file.
#[derive(Clone, Debug, Default)]
pub struct ContainerfileOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// `--target STAGE`: build up to that stage.
    pub target: Option<String>,
    /// `--jobs N`: run up to N stages at once when none needs another's
    /// result (0: no limit; 1: one stage after another).
    pub jobs: usize,
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

/// Builds the image a recipe describes into the store. Its events go to
/// `sink` and to the build's log in the store, starting with its id.
pub fn build(opts: &BuildOptions, sink: &dyn Sink) -> Result<BuildOutcome, BuildError> {
    let log = log::BuildLog::start(opts, sink);
    let tee = Tee::new(vec![sink, log.sink()]);
    let sink: &dyn Sink = &tee;
    let result = match &opts.containerfile {
        Some(cf) => containerfile::build(opts, cf, sink),
        None => run_build(opts, sink),
    };
    let result = result.map(|mut o| {
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
    let names = host::Names::from_opts(opts)?;
    for warning in &plan.toolbox.warnings {
        sink.emit(&Event::Warning {
            message: warning.clone(),
        });
    }

    let host = host::Host::open(opts, sink)?;
    toolbox::check_offline(&plan, &host.fetcher)?;
    let epoch = plan.source_date_epoch;
    let settings = host.settings(opts, epoch);
    let offline_base = opts.offline.then_some(&host.registries);
    let base = base::resolve_base(
        &plan.recipe.image.base,
        epoch,
        &host.store,
        &settings,
        &opts.registry,
        offline_base,
        sink,
    )?;
    let mut image = Derived::new(base.config.clone(), base.layers.clone());
    let secrets = secrets::Secrets::load(&opts.secrets, &host.store)?;

    sink.emit(&Event::Phase {
        phase: Phase::Building,
    });
    let total = plan.steps.len();
    let mut cx = host.step_cx(opts, settings, &secrets, sink, total)?;
    cx.keep_remote_on = host.keep_remote_on(opts, names.first.as_deref());
    cx.run_steps(
        &mut image,
        &plan.steps,
        &plan.args,
        &steps::Sources::default(),
        epoch,
    )?;
    host.after_steps(&cx);
    let cached_steps = cx.cached_steps;
    drop(cx);

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
    // The recipe travels with the image, so `clone` can write it out again;
    // its steps' env values stay behind.
    if !opts.no_recipe_annotation
        && let Some(text) = std::fs::read_to_string(&plan.recipe.path)
            .ok()
            .and_then(|t| crate::recipe::redact_step_env(&t))
    {
        image.annotate(RECIPE_ANNOTATION, text);
    }
    host::labels_and_annotations(&mut image, opts, epoch);
    let manifest = image.write_to_store(&host.store, epoch)?;
    drop(secrets);
    host.finish(opts, manifest, &names, cached_steps, total, sink)
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
    let digest = crate::registry::push_from_store(&client, store, manifest, &reference, &report)
        .map_err(BuildError::Push)?;
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

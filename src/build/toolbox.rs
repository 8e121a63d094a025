//! What the driver adds around a toolbox recipe's steps: artifacts fetched on
//! the host and mounted read-only, cache mounts from the store, the PATH and
//! variables each component adds, and the dev access layer's config.

use crate::artifact::{Fetcher, Mirror, Request};
use crate::image::{ConfigOverrides, ImageConfig};
use crate::plan::{Plan, PlannedStep};
use crate::recipe::labels;
use crate::sandbox::BindMount;
use crate::store::Store;

use super::{BuildError, BuildOptions};

/// The PATH a config without one has (Docker's default).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The artifact fetcher of this build.
pub(crate) fn fetcher(opts: &BuildOptions, store: &Store) -> Fetcher {
    Fetcher::new(
        store.artifacts_dir(),
        opts.artifact_mirror.as_deref().map(Mirror::parse),
        opts.offline,
    )
}

fn request(a: &crate::recipe::ArtifactUse) -> Request<'_> {
    Request {
        component: &a.component,
        version: &a.version,
        file: &a.file,
    }
}

/// With `--offline`, fails up front naming every artifact the plan needs
/// that is not at hand.
pub(crate) fn check_offline(plan: &Plan, fetcher: &Fetcher) -> Result<(), BuildError> {
    let reqs: Vec<Request<'_>> = plan
        .steps
        .iter()
        .flat_map(|s| s.artifacts.iter().map(request))
        .collect();
    fetcher.check_offline(&reqs)?;
    Ok(())
}

/// The bind mounts of a step that is about to run: its cache mounts, its
/// artifacts (fetched and verified now) and its host inputs.
pub(crate) fn step_mounts(
    ps: &PlannedStep,
    store: &Store,
    fetcher: &Fetcher,
) -> Result<Vec<BindMount>, BuildError> {
    let mut mounts = Vec::new();
    for c in &ps.caches {
        mounts.push(BindMount {
            source: store.mount_cache_dir(c)?,
            target: c.clone(),
            readonly: false,
        });
    }
    for a in &ps.artifacts {
        mounts.push(BindMount {
            source: fetcher.fetch(&request(a))?,
            target: a.target.clone(),
            readonly: true,
        });
    }
    for i in &ps.host_inputs {
        mounts.push(BindMount {
            source: i.src.clone(),
            target: i.target.clone(),
            readonly: true,
        });
    }
    Ok(mounts)
}

/// Adds the PATH entries and variables of a finished (or cached) step to the
/// config, so later steps and the image see them.
pub(crate) fn apply_step_env(config: &mut ImageConfig, ps: &PlannedStep) {
    if ps.path.is_empty() && ps.env.is_empty() {
        return;
    }
    let mut env = ps.env.clone();
    if !ps.path.is_empty() {
        let current = config
            .env()
            .into_iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v)
            .unwrap_or_else(|| DEFAULT_PATH.to_string());
        let mut parts: Vec<&str> = ps.path.iter().map(String::as_str).collect();
        parts.extend(
            current
                .split(':')
                .filter(|p| !ps.path.iter().any(|x| x == p)),
        );
        env.insert("PATH".to_string(), parts.join(":"));
    }
    config.apply(&ConfigOverrides {
        env,
        ..ConfigOverrides::default()
    });
}

/// The config the components add (ports, labels, entrypoint); the recipe's
/// own `[config]` is applied on top of it. List labels (runtimes, tools,
/// extensions…) extend the base's, so an image built on a template still
/// describes the template's components too.
pub(crate) fn toolbox_overrides(plan: &Plan, config: &ImageConfig) -> ConfigOverrides {
    let t = &plan.toolbox;
    let inherited = config
        .config
        .as_ref()
        .map(|c| c.labels.clone())
        .unwrap_or_default();
    let mut labels = t.labels.clone();
    for (key, value) in labels.iter_mut() {
        let single = [labels::RECIPE_DIGEST, labels::TEMPLATE, labels::DEV_ACCESS];
        if single.contains(&key.as_str()) {
            continue;
        }
        if let Some(old) = inherited.get(key).filter(|o| !o.is_empty()) {
            let mut items: Vec<&str> = old.split(',').collect();
            for item in value.split(',') {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            *value = items.join(",");
        }
    }
    ConfigOverrides {
        exposed_ports: t.ports.iter().map(|p| p.to_string()).collect(),
        labels,
        entrypoint: t.entrypoint.clone(),
        ..ConfigOverrides::default()
    }
}

//! Plans: a recipe turned into ordered steps, each with a cache key.
//!
//! The steps are the recipe's expansion ([`Recipe::expand`]): the toolbox
//! components (dev access layer, packages, runtimes, AI tools, VS Code
//! extensions) first, then the recipe's own steps.
//!
//! A step's cache key is the sha256 of everything that decides the layer it
//! makes: the parent chain (OCI ChainID of the layers below), the step in
//! canonical form, the digests of the files it copies or mounts, the pinned
//! checksums of its artifacts, its cache mounts, the environment it runs with,
//! and the settings that change a layer's bytes (compression, source date
//! epoch, fake-root mode). Same key, same layer.

pub mod containerfile;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::digest::{Digest, Hasher};
use crate::media::Compression;
use crate::recipe::{ArtifactUse, ExpandError, Port, Recipe, Step, StepKind};

pub use crate::context::hash_tree;

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "SOURCE_DATE_EPOCH='{0}' is not a number of seconds since 1970: unset it or set it to an integer such as 0"
    )]
    BadEpoch(String),
    #[error("{recipe}:{line}: step {}: cannot read copy source {path}: {source}", index + 1)]
    CopySource {
        recipe: String,
        line: usize,
        index: usize,
        path: String,
        source: std::io::Error,
    },
    #[error("{recipe}: {source}")]
    Expand { recipe: String, source: ExpandError },
    #[error("{recipe}: cannot read {path} ({component}): {source}")]
    Input {
        recipe: String,
        component: String,
        path: String,
        source: std::io::Error,
    },
}

/// The settings that change the bytes of a layer, so they are part of every key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerSettings {
    pub compression: Compression,
    pub source_date_epoch: u64,
    /// Single-id mode: ownership changes are faked, so layers differ.
    pub fake_root: bool,
}

/// One step of a plan.
#[derive(Clone, Debug)]
pub struct PlannedStep {
    /// 1-based, as users count steps.
    pub number: usize,
    pub step: Step,
    /// What the step installs (`runtime python 3.12`, `step 1`…).
    pub component: String,
    /// The history `created_by` text.
    pub created_by: String,
    /// Digest of a copy step's source tree.
    pub inputs: Option<Digest>,
    /// Upstream files to fetch, verify and mount read-only.
    pub artifacts: Vec<ArtifactUse>,
    /// Host files mounted read-only, with their content digests.
    pub host_inputs: Vec<HostInput>,
    /// Container directories mounted from the store's caches.
    pub caches: Vec<String>,
    /// Directories the image's PATH gains after this step.
    pub path: Vec<String>,
    /// Variables the image's environment gains after this step.
    pub env: BTreeMap<String, String>,
}

/// A host file a step reads through a read-only mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInput {
    pub src: PathBuf,
    pub target: String,
    pub digest: Digest,
}

/// What a toolbox recipe's components add to the image config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolboxConfig {
    pub ports: Vec<Port>,
    pub labels: BTreeMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    /// For the user, one line each (a skipped dev access component…).
    pub warnings: Vec<String>,
}

/// A recipe with its steps ready to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub recipe: Recipe,
    pub steps: Vec<PlannedStep>,
    pub source_date_epoch: u64,
    pub toolbox: ToolboxConfig,
    /// Build arguments: the recipe's `[args]` with `--build-arg` values on
    /// top. Run steps see them as environment variables (so they are part of
    /// their cache keys); the history names them only.
    pub args: Vec<(String, String)>,
}

impl Plan {
    /// Plans `recipe`. `env_epoch` is the `SOURCE_DATE_EPOCH` environment
    /// variable, which overrides the recipe's value; the default is 0.
    pub fn new(recipe: Recipe, env_epoch: Option<&str>) -> Result<Plan, PlanError> {
        Plan::with_args(recipe, env_epoch, &[])
    }

    /// [`Plan::new`] with `--build-arg` values: each must be declared in
    /// the recipe's `[args]` (an undeclared one is ignored with a warning,
    /// as Docker does).
    pub fn with_args(
        recipe: Recipe,
        env_epoch: Option<&str>,
        build_args: &[(String, String)],
    ) -> Result<Plan, PlanError> {
        let source_date_epoch =
            source_date_epoch(env_epoch, recipe.image.source_date_epoch.unwrap_or(0))?;
        let name = recipe.path.display().to_string();
        let expansion = recipe.expand().map_err(|source| PlanError::Expand {
            recipe: name.clone(),
            source,
        })?;
        let mut steps = Vec::with_capacity(expansion.steps.len());
        for (i, x) in expansion.steps.into_iter().enumerate() {
            let step = x.step;
            let inputs = match &step.kind {
                StepKind::Copy(c) => {
                    Some(hash_tree(&c.src).map_err(|source| PlanError::CopySource {
                        recipe: name.clone(),
                        line: step.line,
                        index: step.index,
                        path: c.src_as_written.clone(),
                        source,
                    })?)
                }
                StepKind::Run { .. } | StepKind::Files(_) | StepKind::Config(_) => None,
            };
            let mut host_inputs = Vec::with_capacity(x.inputs.len());
            for input in x.inputs {
                let digest = hash_tree(&input.src).map_err(|source| PlanError::Input {
                    recipe: name.clone(),
                    component: x.component.clone(),
                    path: input.src.display().to_string(),
                    source,
                })?;
                host_inputs.push(HostInput {
                    src: input.src,
                    target: input.target,
                    digest,
                });
            }
            let mut created_by = step.describe();
            if !recipe.args.is_empty()
                && matches!(step.kind, StepKind::Run { .. })
                && let Some(rest) = created_by.strip_prefix("RUN ")
            {
                let names: Vec<&str> = recipe.args.keys().map(String::as_str).collect();
                created_by = format!("RUN --build-arg={} {rest}", names.join(","));
            }
            steps.push(PlannedStep {
                number: i + 1,
                created_by,
                component: x.component,
                step,
                inputs,
                artifacts: x.artifacts,
                host_inputs,
                caches: x.caches,
                path: x.path,
                env: x.env,
            });
        }
        let mut warnings = expansion.warnings;
        let mut args: Vec<(String, String)> = recipe
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in build_args {
            match args.iter_mut().find(|(ak, _)| ak == k) {
                Some(a) => a.1 = v.clone(),
                None => warnings.push(format!(
                    "--build-arg {k} is not declared in the recipe's [args]; ignored (declare it: [args] {k} = \"default\")"
                )),
            }
        }
        let toolbox = ToolboxConfig {
            ports: expansion.ports,
            labels: expansion.labels,
            entrypoint: expansion.entrypoint,
            warnings,
        };
        Ok(Plan {
            recipe,
            steps,
            source_date_epoch,
            toolbox,
            args,
        })
    }

    /// The recipe's directory, against which its relative paths resolve.
    pub fn dir(&self) -> &Path {
        &self.recipe.dir
    }
}

impl PlannedStep {
    /// The step in canonical form: what it does, without where it came from.
    fn canonical(&self) -> serde_json::Value {
        match &self.step.kind {
            StepKind::Run { command, env } => json!({
                "run": command.argv(),
                "env": env,
                // Which secrets, never their values: a changed secret does
                // not make the step run again.
                "secrets": self.step.secrets.iter().map(|s| json!({
                    "id": s.id, "env": s.env, "target": s.target,
                })).collect::<Vec<_>>(),
                "caches": self.caches,
                "artifacts": self.artifacts.iter().map(|a| json!({
                    "target": a.target,
                    "checksum": a.file.checksum.to_string(),
                })).collect::<Vec<_>>(),
                "inputs": self.host_inputs.iter().map(|i| json!({
                    "target": i.target,
                    "digest": i.digest.to_string(),
                })).collect::<Vec<_>>(),
            }),
            StepKind::Copy(c) => json!({
                "copy": {
                    "inputs": self.inputs.as_ref().map(|d| d.to_string()),
                    "dest": c.dest,
                    "mode": c.mode,
                    "owner": c.owner.map(|(u, g)| format!("{u}:{g}")),
                }
            }),
            // The sources' content is `inputs` (the selection's digest, or
            // the source stage's ChainID), so where they came from is not.
            StepKind::Files(f) => json!({
                "files": {
                    "inputs": self.inputs.as_ref().map(|d| d.to_string()),
                    "sources": f.sources,
                    "excludes": f.excludes,
                    "source_excludes": f.source_excludes,
                    "chown_user": f.chown_user,
                    "dest": f.dest,
                    "mode": f.mode,
                    "chown": f.chown,
                    "parents": f.parents,
                    "extract": f.extract,
                }
            }),
            StepKind::Config(c) => json!({ "config": format!("{c:?}") }),
        }
    }

    /// [`PlannedStep::cache_key`] for a step that runs as the image's user
    /// in its working directory (a Containerfile's `RUN` and `COPY`): both
    /// are part of the key. `with` are the stages or images the step
    /// mounts, by ChainID.
    pub fn cache_key_in(
        &self,
        parent: Option<&Digest>,
        env: &[(String, String)],
        settings: &LayerSettings,
        workdir: &str,
        user: &str,
        with: &[Option<Digest>],
    ) -> Digest {
        let base = self.cache_key(parent, env, settings);
        let doc = json!({
            "key": base.to_string(),
            "workdir": workdir,
            "user": user,
            "no_network": self.step.options.no_network,
            "binds": self.step.options.binds.iter().map(|b| json!({
                "target": b.target, "source": b.source, "writable": b.writable,
            })).collect::<Vec<_>>(),
            "tmpfs": self.step.options.tmpfs,
            "rw_targets": self.step.options.rw_targets,
            "with": with.iter().map(|d| d.as_ref().map(|d| d.to_string())).collect::<Vec<_>>(),
        });
        Digest::of(&serde_json::to_vec(&doc).unwrap_or_default())
    }

    /// The cache key of this step on top of `parent` (the ChainID of the
    /// layers below, `None` on an empty base), run with `env`.
    pub fn cache_key(
        &self,
        parent: Option<&Digest>,
        env: &[(String, String)],
        settings: &LayerSettings,
    ) -> Digest {
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let doc = json!({
            "v": 1,
            "parent": parent.map(|d| d.to_string()),
            "step": self.canonical(),
            "env": env,
            "compression": settings.compression.to_string(),
            "source_date_epoch": settings.source_date_epoch,
            "fake_root": settings.fake_root,
        });
        // serde_json's map is sorted by key (no preserve_order feature), so
        // these bytes are canonical.
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        Digest::of(&bytes)
    }
}

/// The build's `SOURCE_DATE_EPOCH`: the environment's value (`env`, which
/// wins when set and not blank), else `default`.
pub fn source_date_epoch(env: Option<&str>, default: u64) -> Result<u64, PlanError> {
    match env.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s.parse().map_err(|_| PlanError::BadEpoch(s.to_string())),
        None => Ok(default),
    }
}

/// The OCI ChainID of a stack of layers given by their diff_ids, bottom first:
/// ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    let mut it = diff_ids.iter();
    let mut chain = it.next()?.clone();
    for d in it {
        let mut h = Hasher::new();
        h.update(format!("{chain} {d}").as_bytes());
        chain = h.finish().0;
    }
    Some(chain)
}

#[cfg(test)]
mod tests;

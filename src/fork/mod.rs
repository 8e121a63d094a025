//! Fork: what a developer changed in a sandbox, captured as one more layer
//! on top of the sandbox's image.
//!
//! The sandbox's overlay upperdir *is* the change, so a fork costs time in
//! proportion to what changed, never to the image's size: the upperdir is
//! walked once to write the layer (whiteouts for deletions, opaque
//! directories kept), minus the exclusions ([`Exclusions`]: secrets,
//! histories, caches, machine state, workspaces). What the package managers
//! installed is told apart by comparing package inventories
//! ([`crate::inventory`]) of the image at boot and of image + upperdir now.
//! The parent's layers are reused byte for byte.
//!
//! Sources: a sandbox of this store (paused while its upperdir is read), or
//! the upperdir of a container another runtime ran (podman, containerd) and
//! the image it came from.

mod exclude;
mod recipe_out;
mod report;

use std::path::PathBuf;

pub use exclude::{Exclusions, all_globs};
pub use recipe_out::recipe_text;
pub use report::{ForkReport, OtherFiles};

use crate::image::{ConfigOverrides, Derived, load_image};
use crate::inventory::{self, Inventory};
use crate::media::{Compression, Descriptor, LayerInfo};
use crate::progress::Sink;
use crate::session::worker::{Answer, Op, Workers};
use crate::session::{SandboxRecord, Sandboxes, SessionError};
use crate::store::Store;

use crate::image::RECIPE_ANNOTATION;

/// Why a fork failed.
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("--exclude '{glob}': {why}")]
    BadExclude { glob: String, why: String },
    #[error("--exclude {0}")]
    Exclude(#[from] crate::layer::ExcludeError),
    #[error(
        "nothing changed in {0} (after the exclusions): no image made; use --allow-empty to make one anyway"
    )]
    NoChange(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Worker(String),
}

impl ForkError {
    /// True when the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ForkError::Session(e) => e.is_bad_input(),
            ForkError::BadExclude { .. } | ForkError::Exclude(_) | ForkError::BadInput(_) => true,
            _ => false,
        }
    }
}

/// Where the change comes from.
pub enum ForkSource<'a> {
    /// A sandbox of this store, by name.
    Sandbox(&'a str),
    /// A container run by another runtime: its overlay upperdir, and the
    /// image (in this store) it was started from.
    Outside {
        upper: PathBuf,
        image: Box<Descriptor>,
    },
}

/// How to fork.
#[derive(Clone, Debug)]
pub struct ForkOptions {
    /// `--exclude` globs, on top of the catalog's list.
    pub exclude: Vec<String>,
    /// Report only: write nothing to the store.
    pub dry_run: bool,
    /// Make an image even when nothing changed.
    pub allow_empty: bool,
    pub compression: Compression,
    /// The fork's history and layer times (seconds since the epoch).
    pub created: u64,
}

/// What a fork did.
#[derive(Clone, Debug)]
pub struct ForkOutcome {
    pub report: ForkReport,
    /// The new image's manifest (none for a dry run).
    pub manifest: Option<Descriptor>,
    /// The recipe that rebuilds the forked image from scratch.
    pub recipe: String,
}

/// Forks `source` into a new image in the store (not tagged: the caller
/// tags it), or only reports with `dry_run`.
pub fn fork(
    store: &Store,
    sandboxes: &Sandboxes<'_>,
    source: ForkSource<'_>,
    opts: &ForkOptions,
    sink: &dyn Sink,
) -> Result<ForkOutcome, ForkError> {
    let globs = all_globs(&opts.exclude)?;
    // Checked here, so a bad glob is an input error before any work.
    Exclusions::new(&globs)?;
    let _lock = store.lock_shared()?;
    let workers = sandboxes.workers();
    let (label, image, upper, record): (String, Descriptor, PathBuf, Option<SandboxRecord>) =
        match &source {
            ForkSource::Sandbox(name) => {
                let record = sandboxes.record(name)?;
                let upper = sandboxes.path(name)?.join("upper");
                (name.to_string(), record.image.clone(), upper, Some(record))
            }
            ForkSource::Outside { upper, image } => {
                if !upper.is_dir() {
                    return Err(ForkError::BadInput(format!(
                        "--upper {}: not a directory (give the container's overlay UpperDir, from podman inspect)",
                        upper.display()
                    )));
                }
                (
                    upper.display().to_string(),
                    (**image).clone(),
                    upper.clone(),
                    None,
                )
            }
        };
    let parent = load_image(store.layout(), &image)?;
    let layers = parent.layers()?;
    let unpacker = crate::session::Unpacker::for_store(store, workers, sink);
    let scratch = store.temp_dir()?;
    let lowerdirs = unpacker.lowerdirs(&layers, &scratch);
    let lowerdirs = match lowerdirs {
        Ok(l) => l,
        Err(e) => {
            unpacker.remove(scratch);
            return Err(e.into());
        }
    };

    // The boot inventory: kept when the sandbox was made, else the one the
    // dev access entrypoint wrote at first boot, else the image's own.
    let boot = match &source {
        ForkSource::Sandbox(name) => sandboxes.boot_inventory(name),
        ForkSource::Outside { upper, .. } => first_boot_inventory(upper),
    };
    let boot = match boot {
        Some(b) => b,
        None => inventory_of(workers, lowerdirs.clone())?,
    };

    // Paused while the upperdir is read, so the layer is one consistent state.
    let paused = match &source {
        ForkSource::Sandbox(name) => sandboxes.pause(name)?,
        ForkSource::Outside { .. } => None,
    };
    let mut merged = vec![upper.clone()];
    merged.extend(lowerdirs.iter().cloned());
    let now = inventory_of(workers, merged);
    let committed = now.and_then(|now| {
        let answer = workers
            .run(
                &Op::CommitUpper {
                    store: store.root().to_path_buf(),
                    upper: upper.clone(),
                    exclude: globs.clone(),
                    compression: opts.compression,
                    source_date_epoch: opts.created,
                    write: !opts.dry_run,
                },
                &mut |_| {},
            )
            .map_err(SessionError::from)?;
        match answer {
            Answer::Committed { layer, stats } => Ok((now, layer, stats)),
            Answer::Failed { message } => Err(ForkError::Worker(message)),
            other => Err(ForkError::Worker(format!(
                "unexpected worker answer {other:?}"
            ))),
        }
    });
    drop(paused);
    unpacker.remove(scratch);
    let (now, layer, stats) = committed?;

    let changes = inventory::compare(&boot, &now);
    let report = ForkReport::new(changes, &stats);
    let parent_recipe = parent.manifest_annotation(RECIPE_ANNOTATION);
    let recipe = recipe_text(
        parent_recipe.as_deref(),
        record.as_ref().map(|r| r.image_ref.as_str()),
        &report.changes,
    );
    if stats.changes == 0 && !opts.allow_empty && !opts.dry_run {
        return Err(ForkError::NoChange(label));
    }
    let manifest = match (opts.dry_run, layer) {
        (true, _) | (false, None) => None,
        (false, Some(layer)) => Some(write_forked(
            store,
            &parent.config,
            layers,
            layer,
            &label,
            &report,
            &recipe,
            opts.created,
        )?),
    };
    Ok(ForkOutcome {
        report,
        manifest,
        recipe,
    })
}

/// The inventory of the overlay of `layers` (topmost first), read in a worker.
fn inventory_of(workers: &Workers, layers: Vec<PathBuf>) -> Result<Inventory, ForkError> {
    match workers
        .run(&Op::Inventory { layers }, &mut |_| {})
        .map_err(SessionError::from)?
    {
        Answer::Inventory { inventory } => Ok(inventory),
        Answer::Failed { message } => Err(ForkError::Worker(message)),
        other => Err(ForkError::Worker(format!(
            "unexpected worker answer {other:?}"
        ))),
    }
}

/// The inventory the dev access entrypoint wrote at first boot, when the
/// upperdir holds one that reads.
fn first_boot_inventory(upper: &std::path::Path) -> Option<Inventory> {
    let bytes = std::fs::read(upper.join("var/lib/boxwright/boot-inventory.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[allow(clippy::too_many_arguments)]
fn write_forked(
    store: &Store,
    parent: &crate::image::ImageConfig,
    layers: Vec<LayerInfo>,
    layer: LayerInfo,
    label: &str,
    report: &ForkReport,
    recipe: &str,
    created: u64,
) -> Result<Descriptor, ForkError> {
    let mut image = Derived::new(parent.clone(), layers);
    // The history names the source only: no env values, no secrets.
    let name = std::path::Path::new(label)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| label.to_string());
    image.add_layer(layer, &format!("fork of {name}"), created);
    let mut labels = inventory::summary_labels(&report.changes);
    labels.insert("io.boxwright.fork.of".into(), name);
    image.apply(
        &ConfigOverrides {
            labels,
            ..ConfigOverrides::default()
        },
        "boxwright: fork labels",
        created,
    );
    image.annotate(RECIPE_ANNOTATION, recipe.to_string());
    Ok(image.write(store.layout(), created)?)
}

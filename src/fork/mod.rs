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
//! The parent's layers are reused byte for byte. A sandbox on the
//! copied-tree fallback (no overlay) has no upperdir: its change is the
//! snapshot diff of its tree against the snapshot taken when it was made,
//! the same layer an upperdir would give.
//!
//! Sources: a sandbox of this store (paused while its files are read), or
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
use crate::layer::CommitStats;
use crate::media::{Compression, Descriptor, LayerInfo};
use crate::progress::Sink;
use crate::session::worker::{Answer, Op, Workers};
use crate::session::{SandboxFiles, SandboxRecord, Sandboxes, SessionError};
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
    let (label, image, files, record): (String, Descriptor, SandboxFiles, Option<SandboxRecord>) =
        match &source {
            ForkSource::Sandbox(name) => {
                let record = sandboxes.record(name)?;
                let files = sandboxes.files(name)?;
                (name.to_string(), record.image.clone(), files, Some(record))
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
                    SandboxFiles::Upper(upper.clone()),
                    None,
                )
            }
        };
    let parent = load_image(store.layout(), &image)?;
    let layers = parent.layers()?;
    let unpacker = crate::session::Unpacker::for_store(store, workers, sink);
    let scratch = store.temp_dir()?;
    let read = read_change(
        sandboxes, &source, &files, &layers, &unpacker, &scratch, &globs, opts, store,
    );
    unpacker.remove(scratch);
    let (boot, now, layer, stats) = read?;

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

/// The boot inventory, the inventory now and the change as a layer (only
/// counted for a dry run) of `files`, over the image of `layers`; a
/// sandbox's processes are paused while its files are read.
#[allow(clippy::too_many_arguments)]
fn read_change(
    sandboxes: &Sandboxes<'_>,
    source: &ForkSource<'_>,
    files: &SandboxFiles,
    layers: &[LayerInfo],
    unpacker: &crate::session::Unpacker<'_>,
    scratch: &std::path::Path,
    globs: &[String],
    opts: &ForkOptions,
    store: &Store,
) -> Result<(Inventory, Inventory, Option<LayerInfo>, CommitStats), ForkError> {
    let workers = sandboxes.workers();
    // An overlay's upperdir is read over the image's layers; a copied tree
    // is the whole file system already and needs them only for a missing
    // boot inventory.
    let lowerdirs = match files {
        SandboxFiles::Upper(_) => Some(unpacker.lowerdirs(layers, scratch)?),
        SandboxFiles::Tree { .. } => None,
    };

    // The boot inventory: kept when the sandbox was made, else the one the
    // dev access entrypoint wrote at first boot, else the image's own.
    let boot = match source {
        ForkSource::Sandbox(name) => sandboxes.boot_inventory(name),
        ForkSource::Outside { upper, .. } => first_boot_inventory(upper),
    };
    let boot = match boot {
        Some(b) => b,
        None => {
            let lowers = match &lowerdirs {
                Some(l) => l.clone(),
                None => unpacker.lowerdirs(layers, scratch)?,
            };
            inventory_of(workers, lowers)?
        }
    };

    // Paused while the files are read, so the layer is one consistent state.
    let _paused = match source {
        ForkSource::Sandbox(name) => sandboxes.pause(name)?,
        ForkSource::Outside { .. } => None,
    };
    let (merged, op) = match files {
        SandboxFiles::Upper(upper) => {
            let mut merged = vec![upper.clone()];
            merged.extend(lowerdirs.into_iter().flatten());
            let op = Op::CommitUpper {
                store: store.root().to_path_buf(),
                upper: upper.clone(),
                exclude: globs.to_vec(),
                compression: opts.compression,
                source_date_epoch: opts.created,
                write: !opts.dry_run,
            };
            (merged, op)
        }
        // The snapshot diff builds use without overlay: the same layer, the
        // same counts as an upperdir holding the same change.
        SandboxFiles::Tree { tree, snapshot } => (
            vec![tree.clone()],
            Op::CommitSnapshot {
                store: store.root().to_path_buf(),
                root: tree.clone(),
                snapshot: snapshot.clone(),
                exclude: globs.to_vec(),
                compression: opts.compression,
                source_date_epoch: opts.created,
                write: !opts.dry_run,
            },
        ),
    };
    let now = inventory_of(workers, merged)?;
    match workers.run(&op, &mut |_| {}).map_err(SessionError::from)? {
        Answer::Committed { layer, stats } => Ok((boot, now, layer, stats)),
        Answer::Failed { message } => Err(ForkError::Worker(message)),
        other => Err(ForkError::Worker(format!(
            "unexpected worker answer {other:?}"
        ))),
    }
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

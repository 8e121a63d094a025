//! `snapshot` and `fork`.

use std::path::PathBuf;

use boxwright::builder::normalize_tag;
use boxwright::fork::{ForkOptions, ForkSource};
use boxwright::inventory::{DirTree, take};
use boxwright::media::Compression;
use boxwright::progress::{Clock, NullSink, sink_for};
use boxwright::session::Sandboxes;

use super::{CliResult, Failure, Global, open_store};

#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    /// The root filesystem to read (an unpacked image, any rootfs).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Read a sandbox of the store instead, stopped or running (paused while it is
    /// read): its changes over its image's layers.
    #[arg(long, value_name = "NAME", conflicts_with = "root")]
    pub sandbox: Option<String>,
    /// Write the JSON here instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ForkArgs {
    /// The sandbox to fork (see boxwright ps -a).
    #[arg(required_unless_present = "upper")]
    pub name: Option<String>,
    /// The new image's name.
    #[arg(
        short = 't',
        long = "tag",
        value_name = "NEWREF",
        required_unless_present = "dry_run"
    )]
    pub tag: Option<String>,
    /// Push the new image to the registry its name names.
    #[arg(long)]
    pub push: bool,
    /// Report what would be forked; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as one JSON object (docs/fork-report.md).
    #[arg(long)]
    pub json: bool,
    /// Write the recipe that rebuilds the forked image from scratch.
    #[arg(long, value_name = "FILE")]
    pub recipe_out: Option<PathBuf>,
    /// Leave these paths out too (absolute globs, repeatable), e.g. /opt/data/**.
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Make an image even when nothing changed.
    #[arg(long)]
    pub allow_empty: bool,
    /// Fork a container another runtime ran: its overlay UpperDir (podman inspect).
    #[arg(long, value_name = "DIR", requires = "image", conflicts_with = "name")]
    pub upper: Option<PathBuf>,
    /// With --upper: the image the container was started from (in the store).
    #[arg(long, value_name = "REF", requires = "upper")]
    pub image: Option<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t)]
    pub compression: super::choices::CompressionArg,
}

pub fn snapshot(global: &Global, a: &SnapshotArgs) -> CliResult {
    let inv = match &a.sandbox {
        Some(name) => {
            let store = open_store(global)?;
            let exe = std::env::current_exe().map_err(|e| {
                Failure::failed(format!("cannot find boxwright's own executable: {e}"))
            })?;
            let null = NullSink;
            let sandboxes = Sandboxes::new(&store, exe, global.max_layer_size, &null)
                .map_err(|e| Failure::failed(e.to_string()))?;
            sandboxes.current_inventory(name).map_err(|e| {
                if e.is_bad_input() {
                    Failure::input(e.to_string())
                } else {
                    Failure::failed(format!("sandbox {name}: {e}"))
                }
            })?
        }
        None => {
            if !a.root.is_dir() {
                return Err(Failure::input(format!(
                    "--root {}: not a directory",
                    a.root.display()
                )));
            }
            take(&DirTree::new(&a.root))
                .map_err(|e| Failure::failed(format!("{}: {e}", a.root.display())))?
        }
    };
    let mut text =
        serde_json::to_string_pretty(&inv).map_err(|e| Failure::failed(e.to_string()))?;
    text.push('\n');
    match &a.output {
        Some(path) => boxwright::store::replace_file(path, text.as_bytes(), Some(0o644))
            .map_err(|e| Failure::failed(format!("{}: {e}", path.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

pub fn fork(global: &Global, a: &ForkArgs) -> CliResult {
    let store = open_store(global)?;
    let name = a
        .tag
        .as_deref()
        .map(normalize_tag)
        .transpose()
        .map_err(|e| Failure::input(e.to_string()))?;
    let compression: Compression = a.compression.into();
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find boxwright's own executable: {e}")))?;
    let null = NullSink;
    let sandboxes = Sandboxes::new(&store, exe, global.max_layer_size, &null)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let source = match (&a.name, &a.upper, &a.image) {
        (Some(n), _, _) => ForkSource::Sandbox(n),
        (None, Some(upper), Some(image)) => {
            let image_name = normalize_tag(image).map_err(|e| Failure::input(e.to_string()))?;
            let desc = store.layout().resolve(&image_name).map_err(|_| {
                Failure::input(format!(
                    "--image {image}: not in the store; pull it first (boxwright pull {image})"
                ))
            })?;
            super::fetch_held_layers(global, &store, &desc)?;
            ForkSource::Outside {
                upper: upper.clone(),
                image: Box::new(desc),
            }
        }
        _ => {
            return Err(Failure::input(
                "give a sandbox name, or --upper DIR --image REF",
            ));
        }
    };
    let opts = ForkOptions {
        exclude: a.exclude.clone(),
        dry_run: a.dry_run,
        allow_empty: a.allow_empty,
        compression,
        created: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            }),
    };
    let outcome = boxwright::fork::fork(&store, &sandboxes, source, &opts, &null).map_err(|e| {
        if e.is_bad_input() {
            Failure::input(e.to_string())
        } else {
            Failure::failed(e.to_string())
        }
    })?;
    if let Some(path) = &a.recipe_out {
        boxwright::store::replace_file(path, outcome.recipe.as_bytes(), Some(0o644))
            .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    }
    let mut pushed = None;
    if let (Some(desc), Some(n)) = (&outcome.manifest, &name) {
        store
            .layout()
            .tag(n, desc.clone())
            .map_err(|e| Failure::failed(e.to_string()))?;
        if a.push {
            let sink = sink_for(global.progress_mode(), Clock::default());
            let r = boxwright::builder::push(
                &store,
                desc,
                n,
                &global.registry_options(),
                sink.as_ref(),
            );
            sink.finish();
            pushed = Some(r.map_err(|e| Failure::failed(e.to_string()))?);
        }
    }
    if a.json {
        let mut v =
            serde_json::to_value(&outcome.report).map_err(|e| Failure::failed(e.to_string()))?;
        if let (Some(desc), Some(map)) = (&outcome.manifest, v.as_object_mut()) {
            map.insert(
                "image".into(),
                serde_json::json!({"name": name, "digest": desc.digest, "pushed": pushed.is_some()}),
            );
        }
        println!("{v}");
    } else {
        print!("{}", outcome.report.to_text());
        match (&outcome.manifest, &name) {
            (Some(desc), Some(n)) => eprintln!("forked into {n} {}", desc.digest),
            _ => eprintln!("dry run: nothing written"),
        }
    }
    Ok(())
}

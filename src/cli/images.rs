//! Commands over the local store: images, inspect, rmi, tag, save, load, gc.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Context;
use boxwright::build::normalize_tag;
use boxwright::image;
use boxwright::progress::human_bytes;
use boxwright::sandbox::{IdMapping, Userns};
use boxwright::session::Workers;
use boxwright::store;

use super::{CliResult, Failure, Global, open_store};

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Print digests in full.
    #[arg(long)]
    pub no_trunc: bool,
    /// List the images of a registry namespace instead (catalog + tags).
    #[arg(long, value_name = "HOST/ORG")]
    pub registry: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Image name (NAME[:TAG]).
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct RmiArgs {
    /// Image names to remove.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Delete the manifests from their registries instead.
    #[arg(long)]
    pub remote: bool,
}

#[derive(clap::Args, Debug)]
pub struct TagArgs {
    /// Existing image name.
    pub source: String,
    /// New name.
    pub target: String,
    /// Both are references in one registry: copy server-side.
    #[arg(long)]
    pub remote: bool,
}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Image names to save.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Output file (an OCI archive).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The OCI archive to read (also -i FILE).
    #[arg(value_name = "FILE", required_unless_present = "input")]
    pub file: Option<PathBuf>,
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    pub input: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct GcArgs {
    /// Also empty the cache mounts kept across builds (apt, npm, pip downloads).
    #[arg(long)]
    pub cache_mounts: bool,
    /// Also remove the upstream artifacts (runtime tarballs…) downloaded for builds.
    #[arg(long)]
    pub artifacts: bool,
}

fn name_arg(name: &str) -> Result<String, Failure> {
    normalize_tag(name).map_err(|e| Failure::input(e.to_string()))
}

pub fn images(global: &Global, a: &ImagesArgs) -> CliResult {
    if let Some(ns) = &a.registry {
        return super::manage::remote_images(global, ns, a.no_trunc);
    }
    let store = open_store(global)?;
    let tags = store.layout().tags().context("reading the store's index")?;
    let default = super::manage::local_default().and_then(|d| normalize_tag(&d).ok());
    println!(
        "{:<40} {:<19} {:>10}  {:<16}  DEFAULT",
        "NAME", "DIGEST", "SIZE", "CREATED"
    );
    for (name, desc) in tags {
        let size = image::load_image(store.layout(), &desc)
            .map(|img| {
                img.manifest.layers.iter().map(|l| l.size).sum::<u64>()
                    + img.manifest.config.size
                    + desc.size
            })
            .map(human_bytes)
            .unwrap_or_else(|_| "?".into());
        let digest = if a.no_trunc {
            desc.digest.to_string()
        } else {
            desc.digest.short()
        };
        // The manifest blob's mtime is when this image was written here;
        // the config's `created` is the source date epoch, not useful for age.
        let age = std::fs::metadata(store.layout().blob_path(&desc.digest))
            .and_then(|m| m.modified())
            .map(age)
            .unwrap_or_else(|_| "?".into());
        let mark = if default.as_deref() == Some(name.as_str()) {
            "*"
        } else {
            ""
        };
        println!("{name:<40} {digest:<19} {size:>10}  {age:<16}  {mark}");
    }
    Ok(())
}

fn age(t: SystemTime) -> String {
    let secs = SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match secs {
        0..=59 => format!("{secs} seconds ago"),
        60..=3599 => format!("{} minutes ago", secs / 60),
        3600..=86399 => format!("{} hours ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

pub fn inspect(global: &Global, a: &InspectArgs) -> CliResult {
    let store = open_store(global)?;
    let name = name_arg(&a.name)?;
    let desc = store
        .layout()
        .resolve(&name)
        .map_err(|e| Failure::input(format!("{e}")))?;
    let img = image::load_image(store.layout(), &desc).context("reading the image")?;
    let manifest: serde_json::Value = serde_json::from_slice(
        &store
            .layout()
            .read_blob(&img.manifest_descriptor.digest)
            .context("reading the manifest")?,
    )
    .context("parsing the manifest")?;
    let config: serde_json::Value =
        serde_json::from_slice(&img.config_bytes).context("parsing the config")?;
    let out = serde_json::json!({
        "name": name,
        "digest": desc.digest.to_string(),
        "manifest": manifest,
        "config": config,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}

pub fn rmi(global: &Global, a: &RmiArgs) -> CliResult {
    if a.remote {
        return super::manage::remote_rmi(global, &a.names);
    }
    let store = open_store(global)?;
    for n in &a.names {
        let name = name_arg(n)?;
        let desc = store
            .layout()
            .untag(&name)
            .map_err(|e| Failure::input(format!("{e}")))?;
        println!("untagged {name} {}", desc.digest);
    }
    Ok(())
}

pub fn tag(global: &Global, a: &TagArgs) -> CliResult {
    if a.remote {
        return super::manage::remote_tag(global, &a.source, &a.target);
    }
    let store = open_store(global)?;
    let src = name_arg(&a.source)?;
    let dst = name_arg(&a.target)?;
    let desc = store
        .layout()
        .resolve(&src)
        .map_err(|e| Failure::input(format!("{e}")))?;
    store
        .layout()
        .tag(&dst, desc)
        .context("writing the store's index")?;
    Ok(())
}

pub fn save(global: &Global, a: &SaveArgs) -> CliResult {
    let store = open_store(global)?;
    let names = a
        .names
        .iter()
        .map(|n| name_arg(n))
        .collect::<Result<Vec<_>, _>>()?;
    for n in &names {
        store
            .layout()
            .resolve(n)
            .map_err(|e| Failure::input(format!("{e}")))?;
    }
    // Write beside the target and rename, so a failed save leaves no half file.
    let dir = a
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let mut out = std::io::BufWriter::new(tmp.as_file());
    store::save_archive(store.layout(), &names, &mut out)
        .with_context(|| format!("writing {}", a.output.display()))?;
    std::io::Write::flush(&mut out).context("writing the archive")?;
    drop(out);
    tmp.as_file().sync_all().context("flushing the archive")?;
    tmp.persist(&a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    Ok(())
}

pub fn load(global: &Global, a: &LoadArgs) -> CliResult {
    let store = open_store(global)?;
    let file = a
        .file
        .clone()
        .or_else(|| a.input.clone())
        .unwrap_or_default();
    let input = std::fs::File::open(&file)
        .map_err(|e| Failure::input(format!("cannot open {}: {e}", file.display())))?;
    let names = store::load_archive(&store, std::io::BufReader::new(input))
        .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
    for n in names {
        println!("loaded {n}");
    }
    Ok(())
}

pub fn gc(global: &Global, a: &GcArgs) -> CliResult {
    let store = open_store(global)?;
    let workers = workers()?;
    let done = boxwright::session::collect_garbage(&store, &workers, a.cache_mounts, a.artifacts)
        .map_err(|e| Failure::failed(format!("collecting garbage: {e}")))?;
    let report = &done.report;
    eprintln!(
        "removed {} blobs, {} cache entries, {} unpacked layers and {} leftovers; freed {}; {} blobs kept",
        report.removed_blobs.len(),
        report.removed_cache_entries.len(),
        report.trashed_layer_dirs.len(),
        report.cleared_strays.len(),
        human_bytes(done.freed_bytes),
        report.kept_blobs
    );
    if a.cache_mounts || a.artifacts {
        eprintln!(
            "emptied {} cache mounts and artifact dirs",
            done.pruned.len()
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct FsckArgs {
    /// Remove what is broken: corrupt blobs, bad cache records, damaged unpacked
    /// layers, leftovers. Tags and valid blobs are never removed.
    #[arg(long)]
    pub repair: bool,
}

pub fn fsck(global: &Global, a: &FsckArgs) -> CliResult {
    let store = open_store(global)?;
    let workers = workers()?;
    let report = boxwright::session::fsck(&store, &workers, a.repair, global.max_layer_size)
        .map_err(|e| Failure::failed(format!("fsck: {e}")))?;
    for p in &report.problems {
        let fixed = if p.repaired { " (removed)" } else { "" };
        println!("{}{fixed}", p.message);
    }
    let broken = report.problems.iter().filter(|p| !p.repaired).count();
    eprintln!(
        "checked {} blobs, {} tags, {} layers, {} cache records, {} unpacked layers: {}",
        report.blobs_checked,
        report.tags_checked,
        report.layers_checked,
        report.cache_records_checked,
        report.layer_dirs_checked,
        match (report.problems.len(), broken) {
            (0, _) => "no problems".to_string(),
            (n, 0) => format!("{n} problem(s), all repaired"),
            (n, b) if a.repair =>
                format!("{n} problem(s), {b} left: pull or build the damaged images again"),
            (n, _) =>
                format!("{n} problem(s): run boxwright fsck --repair to remove what is broken"),
        }
    );
    if report.is_clean() {
        Ok(())
    } else {
        Err(Failure::reported(1))
    }
}

/// Namespace workers for store chores (removing trees of subordinate ids).
fn workers() -> Result<Workers, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find boxwright's own executable: {e}")))?;
    let mapping = IdMapping::detect().map_err(|e| Failure::failed(e.to_string()))?;
    Ok(Workers::new(exe, Userns::new(mapping)))
}

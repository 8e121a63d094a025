//! Commands over the local store: images, inspect, rmi, tag, save, load, gc.

use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use boxwright::builder::normalize_tag;
use boxwright::image;
use boxwright::progress::human_bytes;
use boxwright::store;

use super::output::{Format, ago, emit, emit_json, emit_lines, rfc3339};
use super::table::Table;
use super::{CliResult, Failure, Global, lock_store, open_store, tidy_store, workers};

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Print digests in full.
    #[arg(long)]
    pub no_trunc: bool,
    /// List the images of a registry namespace instead (catalog + tags).
    #[arg(long, value_name = "HOST/ORG", conflicts_with = "quiet")]
    pub registry: Option<String>,
    /// How to print the list: a table, or a JSON array (full digests, sizes
    /// in bytes, RFC 3339 times).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub format: Format,
    /// Print only the image names (NAME:TAG), one per line.
    #[arg(short = 'q', long, conflicts_with = "format")]
    pub quiet: bool,
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
    /// With --remote: delete the manifest even when other tags of its repository point at it (they go too).
    #[arg(long, requires = "remote")]
    pub force: bool,
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
    /// Where to write the OCI archive: a file (mode 0644 under the usual
    /// umask), or `-` for stdout [default: stdout, unless it is a terminal].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The OCI archive to read (plain or gzip-compressed tar); `-` or none
    /// reads stdin (`boxwright save IMG | boxwright load`).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The same as FILE.
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

/// One image of `boxwright images`, as `--format json` prints it.
#[derive(serde::Serialize)]
struct ImageRow {
    /// NAME:TAG.
    name: String,
    /// The manifest digest, in full.
    digest: String,
    /// The config digest (what podman calls the image id), when readable.
    config_digest: Option<String>,
    /// Bytes of the manifest, config and (compressed) layers, when readable.
    size: Option<u64>,
    /// When the image was written into this store (RFC 3339 UTC).
    created: Option<String>,
    /// Whether it is the default image for new sandboxes.
    default: bool,
    #[serde(skip)]
    created_at: Option<SystemTime>,
}

pub fn images(global: &Global, a: &ImagesArgs) -> CliResult {
    if let Some(ns) = &a.registry {
        return super::manage::remote_images(global, ns, a.no_trunc, a.format == Format::Json);
    }
    let store = open_store(global)?;
    let tags = store.layout().tags().context("reading the store's index")?;
    if a.quiet {
        return emit_lines(tags.iter().map(|(name, _)| name));
    }
    let default = super::manage::local_default().and_then(|d| normalize_tag(&d).ok());
    let rows: Vec<ImageRow> = tags
        .into_iter()
        .map(|(name, desc)| {
            let img = image::load_image(store.layout(), &desc).ok();
            // The manifest blob's mtime is when this image was written here;
            // the config's `created` is the source date epoch, not useful for age.
            let created_at = std::fs::metadata(store.layout().blob_path(&desc.digest))
                .and_then(|m| m.modified())
                .ok();
            ImageRow {
                default: default.as_deref() == Some(name.as_str()),
                name,
                digest: desc.digest.to_string(),
                config_digest: img.as_ref().map(|i| i.manifest.config.digest.to_string()),
                size: img.as_ref().map(|i| {
                    i.manifest.layers.iter().map(|l| l.size).sum::<u64>()
                        + i.manifest.config.size
                        + desc.size
                }),
                created: created_at.map(rfc3339),
                created_at,
            }
        })
        .collect();
    if a.format == Format::Json {
        return emit_json(&rows);
    }
    let mut table = Table::new(&["NAME", "DIGEST", "SIZE", "CREATED", "DEFAULT"]).align_right(2);
    for r in &rows {
        let digest = if a.no_trunc {
            r.digest.clone()
        } else {
            short_digest(&r.digest)
        };
        table.row([
            r.name.clone(),
            digest,
            r.size.map(human_bytes).unwrap_or_else(|| "?".into()),
            r.created_at.map(ago).unwrap_or_else(|| "?".into()),
            if r.default { "*" } else { "" }.to_string(),
        ]);
    }
    emit(&table.render())
}

/// `sha256:` and the first 12 hex digits, as `Digest::short` writes them.
fn short_digest(full: &str) -> String {
    full.char_indices()
        .nth("sha256:".len() + 12)
        .map(|(i, _)| full[..i].to_string())
        .unwrap_or_else(|| full.to_string())
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
        return super::manage::remote_rmi_with(global, &a.names, a.force);
    }
    let store = open_store(global)?;
    let _lock = lock_store(&store)?;
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
    let _lock = lock_store(&store)?;
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
    let file = a.output.as_deref().filter(|p| p.as_os_str() != "-");
    if file.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::input(
            "refusing to write an archive to a terminal: give -o FILE or redirect stdout (boxwright save IMG | podman load)",
        ));
    }
    let store = open_store(global)?;
    let names = a
        .names
        .iter()
        .map(|n| name_arg(n))
        .collect::<Result<Vec<_>, _>>()?;
    for n in &names {
        let desc = store
            .layout()
            .resolve(n)
            .map_err(|e| Failure::input(format!("{e}")))?;
        super::fetch_held_layers(global, &store, &desc)?;
    }
    match file {
        None => save_to_stdout(&store, &names),
        Some(path) => save_to_file(&store, &names, path),
    }
}

/// Streams the archive to stdout (`boxwright save IMG | podman load`).
fn save_to_stdout(store: &store::Store, names: &[String]) -> CliResult {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    store::save_archive(store.layout(), names, &mut out)
        .map_err(|e| Failure::failed(format!("writing the archive to stdout: {e}")))?;
    std::io::Write::flush(&mut out)
        .map_err(|e| Failure::failed(format!("writing the archive to stdout: {e}")))
}

/// Writes the archive beside `output` and renames it into place, so a
/// failed save leaves no half file. The file is created 0666 less the umask
/// (0644 usually), as a shell's `>` would create it, not 0600 as temp files are.
fn save_to_file(store: &store::Store, names: &[String], output: &Path) -> CliResult {
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".boxwright-save-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let mut out = std::io::BufWriter::new(tmp.as_file());
    store::save_archive(store.layout(), names, &mut out)
        .with_context(|| format!("writing {}", output.display()))?;
    std::io::Write::flush(&mut out).context("writing the archive")?;
    drop(out);
    tmp.as_file().sync_all().context("flushing the archive")?;
    tmp.persist(output)
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}

pub fn load(global: &Global, a: &LoadArgs) -> CliResult {
    let file = a
        .file
        .as_ref()
        .or(a.input.as_ref())
        .filter(|f| f.as_os_str() != "-");
    if file.is_none() && std::io::stdin().is_terminal() {
        return Err(Failure::input(
            "no archive to load: give FILE, or pipe one into stdin (boxwright save IMG | boxwright load)",
        ));
    }
    let store = open_store(global)?;
    tidy_store(&store);
    let (names, source) = match file {
        Some(file) => {
            let input = std::fs::File::open(file)
                .map_err(|e| Failure::input(format!("cannot open {}: {e}", file.display())))?;
            let names = store::load_archive(&store, std::io::BufReader::new(input));
            (names, file.display().to_string())
        }
        None => (
            store::load_archive(&store, std::io::stdin().lock()),
            "stdin".to_string(),
        ),
    };
    let names = names.map_err(|e| Failure::input(format!("{source}: {e}")))?;
    emit_lines(names.iter().map(|n| format!("loaded {n}")))
}

pub fn gc(global: &Global, a: &GcArgs) -> CliResult {
    let store = open_store(global)?;
    let workers = workers()?;
    let limit = global.max_unpacked()?;
    let done =
        boxwright::session::collect_garbage(&store, &workers, a.cache_mounts, a.artifacts, limit)
            .map_err(|e| Failure::failed(format!("collecting garbage: {e}")))?;
    let report = &done.report;
    if !done.eviction.evicted.is_empty() {
        eprintln!(
            "evicted {} least recently used unpacked layers of kept images ({}) to stay within {} (--max-unpacked)",
            done.eviction.evicted.len(),
            human_bytes(done.eviction.bytes),
            human_bytes(limit)
        );
    }
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
        "checked {} blobs, {} tags, {} layers, {} cache records, {} unpacked layers{}: {}",
        report.blobs_checked,
        report.tags_checked,
        report.layers_checked,
        report.cache_records_checked,
        report.layer_dirs_checked,
        match report.remote_layers {
            0 => String::new(),
            n => format!(" ({n} layer(s) held by a registry, checked when fetched)"),
        },
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

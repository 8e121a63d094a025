//! `boxwright build`.

use std::path::PathBuf;

use boxwright::build::{BuildOptions, DiffMethod};
use boxwright::media::Compression;
use boxwright::progress::{Clock, sink_for};
use boxwright::sandbox::Network;

use super::{CliResult, Failure, Global};

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The recipe file (also accepted as -f RECIPE).
    #[arg(value_name = "RECIPE", required_unless_present = "file")]
    pub recipe: Option<PathBuf>,
    /// The recipe file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "RECIPE",
        conflicts_with = "recipe"
    )]
    pub file: Option<PathBuf>,
    /// Name the image NAME[:TAG] (":latest" when no tag is given).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// Run every step, ignoring the step cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Layer compression.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd", "none"])]
    pub compression: String,
    /// Network for run steps: the host's, or none (loopback only).
    #[arg(long, default_value = "host", value_parser = ["host", "none"])]
    pub network: String,
    /// Do not give steps the host's CA bundle.
    #[arg(long)]
    pub no_host_ca: bool,
    /// Push the image to the registry named by -t once it is built.
    #[arg(long)]
    pub push: bool,
    /// How a step's changes are found: overlay upperdir, snapshot comparison, or auto.
    #[arg(long, default_value = "auto", value_parser = ["auto", "overlay", "snapshot"])]
    pub diff: String,
    /// Look up upstream artifacts (runtimes, code-server, ttyd, gh) in DIR_OR_URL as
    /// <component>/<version>/<file> instead of upstream.
    #[arg(long, value_name = "DIR_OR_URL")]
    pub artifact_mirror: Option<String>,
    /// Download nothing: fail up front naming every artifact the build needs that is not cached.
    #[arg(long)]
    pub offline: bool,
    /// Where `template = "NAME"` is pulled from when it is not in the store:
    /// HOST[/ORG]/boxwright/template-NAME:latest [default: template_registry in registries.toml]
    #[arg(long, value_name = "HOST[/ORG]", env = "BOXWRIGHT_TEMPLATE_REGISTRY")]
    pub template_registry: Option<String>,
}

pub fn run(global: &Global, a: &BuildArgs) -> CliResult {
    let recipe = a
        .file
        .clone()
        .or_else(|| a.recipe.clone())
        .ok_or_else(|| Failure::input("no recipe given: boxwright build RECIPE.toml"))?;
    let compression: Compression = a.compression.parse().map_err(Failure::input)?;
    let worker_exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find boxwright's own executable: {e}")))?;
    let opts = BuildOptions {
        recipe,
        tag: a.tag.clone(),
        store: global.store_root(),
        no_cache: a.no_cache,
        compression,
        network: if a.network == "none" {
            Network::None
        } else {
            Network::Host
        },
        host_ca: !a.no_host_ca,
        diff: match a.diff.as_str() {
            "overlay" => DiffMethod::Overlay,
            "snapshot" => DiffMethod::Snapshot,
            _ => DiffMethod::Auto,
        },
        worker_exe,
        source_date_epoch_env: std::env::var("SOURCE_DATE_EPOCH").ok(),
        registry: boxwright::build::RegistryOptions {
            template_registry: a.template_registry.clone(),
            ..global.registry_options()
        },
        push: a.push,
        artifact_mirror: a.artifact_mirror.clone(),
        offline: a.offline,
    };
    let mode = global.progress_mode();
    let sink = sink_for(mode, Clock::default());
    let result = boxwright::build::build(&opts, sink.as_ref());
    sink.finish();
    match result {
        Ok(outcome) => {
            // In JSON mode stdout is for events only; the last one holds the digest.
            if !mode.uses_stdout() {
                println!("{}", outcome.manifest.digest);
            }
            Ok(())
        }
        // The sink has already printed the failure, ending with its one-line reason.
        Err(e) => Err(Failure::reported(if e.is_bad_input() { 2 } else { 1 })),
    }
}

//! `boxwright cache prune --remote REPO --older-than 7d`: old step-cache
//! records out of a registry.

use boxwright::builder::registry_client;

use super::{CliResult, Failure, Global, open_store};

#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub what: CacheCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {
    /// Remove the step-cache records of a registry repository pushed before a time.
    Prune(PruneArgs),
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// The registry repository of the cache (as given to --cache-to).
    #[arg(long, value_name = "REPO", required = true)]
    pub remote: String,
    /// Remove records pushed longer ago than this (7d, 36h, 90m…).
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub older_than: String,
}

pub fn run(global: &Global, a: &CacheArgs) -> CliResult {
    let CacheCommand::Prune(p) = &a.what;
    let secs = boxwright::units::parse_duration(&p.older_than)
        .map_err(|e| Failure::input(format!("--older-than: {e}")))?;
    let store = open_store(global)?;
    let client = registry_client(&global.registry_options(), &store)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let report = boxwright::builder::prune_remote(&client, &p.remote, secs)
        .map_err(|e| Failure::failed(e.to_string()))?;
    for tag in &report.removed {
        println!("{tag}");
    }
    eprintln!(
        "removed {} cache record(s) from {}; {} kept",
        report.removed.len(),
        p.remote,
        report.kept
    );
    Ok(())
}

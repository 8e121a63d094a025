//! `boxwright df` (also `boxwright system df`): the disk the store takes, by
//! kind, and what `gc` would free.

use boxwright::progress::human_bytes;
use boxwright::store::{KEEP_BUILDS, StoreUsage};

use super::output::{Format, emit, emit_json_object};
use super::table::Table;
use super::{CliResult, Failure, Global, open_store};

#[derive(clap::Args, Debug)]
pub struct DfArgs {
    /// How to print it: a table, or a JSON object (bytes per kind, with
    /// what `gc` would reclaim).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

/// `boxwright system …`, as podman spells its store-wide commands.
#[derive(clap::Subcommand, Debug)]
pub enum SystemCommand {
    /// Show the disk the store takes, by kind, and what `gc` would free (the same as `boxwright df`).
    Df(DfArgs),
}

/// `boxwright df --format json`.
#[derive(serde::Serialize)]
struct DfJson<'a> {
    /// The store's OCI layout.
    store: String,
    /// boxwright's state beside it.
    state: String,
    #[serde(flatten)]
    usage: &'a StoreUsage,
    /// Bytes in all.
    total: u64,
    /// Bytes `boxwright gc` would free.
    reclaimable: u64,
    /// False when some directories could not be read (see `unreadable`):
    /// the numbers are then a lower bound.
    complete: bool,
}

/// What frees a kind that `gc` alone does not, or what it is.
fn note(kind: &str) -> String {
    match kind {
        "cache mounts" => "freed by gc --cache-mounts".into(),
        "artifacts" => "freed by gc --artifacts".into(),
        "build logs" => format!("the last {KEEP_BUILDS} builds are kept"),
        "sandboxes" => "freed by boxwright rm".into(),
        "leftovers" => "interrupted writes and trash".into(),
        _ => String::new(),
    }
}

pub fn df(global: &Global, a: &DfArgs) -> CliResult {
    let store = open_store(global)?;
    let mut usage = store
        .usage()
        .map_err(|e| Failure::failed(format!("measuring the store: {e}")))?;
    usage.layers_limit = Some(global.max_unpacked()?);
    if !usage.is_complete() {
        let first = usage.unreadable[0].display();
        eprintln!(
            "boxwright: {} directories could not be read (such as {first}; files of subordinate ids or permissions): their contents are not counted, so the sizes are a lower bound",
            usage.unreadable.len()
        );
    }
    if a.format == Format::Json {
        return emit_json_object(&DfJson {
            store: store.root().display().to_string(),
            state: store.state_dir().display().to_string(),
            usage: &usage,
            total: usage.total(),
            reclaimable: usage.reclaimable(),
            complete: usage.is_complete(),
        });
    }
    let mut table = Table::new(&["KIND", "SIZE", "RECLAIMABLE", "NOTE"])
        .align_right(1)
        .align_right(2);
    for (kind, u) in usage.kinds() {
        let note = match (kind, usage.layers_limit) {
            ("unpacked layers", Some(limit)) => format!(
                "at most {} kept (--max-unpacked), least recently used evicted",
                human_bytes(limit)
            ),
            _ => note(kind),
        };
        table.row([
            kind.to_string(),
            human_bytes(u.bytes),
            human_bytes(u.reclaimable),
            note,
        ]);
    }
    table.row([
        "total".to_string(),
        human_bytes(usage.total()),
        human_bytes(usage.reclaimable()),
        format!("in {}", store.root().display()),
    ]);
    emit(&table.render())
}

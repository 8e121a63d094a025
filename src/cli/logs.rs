//! `boxwright logs` and `boxwright builds`: the build logs kept in the store.

use std::io::Write;
use std::time::Duration;

use boxwright::progress::{BuildSummary, Event, LogTail, Record, first_and_last, render, stamp};
use boxwright::store::{BuildLogFile, StoreError};

use super::output::{Format, ago, emit, emit_json, emit_lines};
use super::table::Table;
use super::{CliResult, Failure, Global, open_store};

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The build's id, or a unique prefix of it [default: the latest build].
    pub id: Option<String>,
    /// Keep printing while the build runs; stop when it ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Print the raw events (JSON Lines, see docs/progress-events.md).
    #[arg(long)]
    pub json: bool,
    /// Print the output of a detached sandbox instead of a build's log.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["id", "json"])]
    pub sandbox: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct BuildsArgs {
    /// How to print the list: a table, or a JSON array, newest first (full
    /// digests, RFC 3339 start times, durations in milliseconds).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub format: Format,
    /// One JSON object per line (JSON Lines), newest first, instead of a table.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Print only the build ids, newest first, one per line.
    #[arg(short = 'q', long, conflicts_with_all = ["format", "json"])]
    pub quiet: bool,
    /// Print digests in full.
    #[arg(long)]
    pub no_trunc: bool,
}

fn lookup_failure(e: StoreError) -> Failure {
    match e {
        StoreError::NoSuchBuild { .. } | StoreError::AmbiguousBuild { .. } => {
            Failure::input(e.to_string())
        }
        e => Failure::failed(e.to_string()),
    }
}

pub fn logs(global: &Global, a: &LogsArgs) -> CliResult {
    if let Some(name) = &a.sandbox {
        return super::sandbox::sandbox_logs(global, name, a.follow);
    }
    let store = open_store(global)?;
    let builds = store.build_logs();
    let log = match &a.id {
        Some(id) => builds.find(id).map_err(lookup_failure)?,
        None => builds.latest().map_err(lookup_failure)?.ok_or_else(|| {
            Failure::input("no builds yet: `boxwright build RECIPE` writes a build log")
        })?,
    };
    let mut tail = LogTail::open(&log.path)
        .map_err(|e| Failure::failed(format!("{}: {e}", log.path.display())))?;
    let mut out = std::io::stdout().lock();
    loop {
        let lines = tail
            .read_lines()
            .map_err(|e| Failure::failed(format!("{}: {e}", log.path.display())))?;
        let mut ended = false;
        for line in &lines {
            ended |= print_line(&mut out, line, a.json)?;
        }
        if !a.follow || ended {
            return Ok(());
        }
        if lines.is_empty() && !log.is_running() {
            // The writer is gone: take what it wrote last, then stop.
            for line in &tail.read_lines().unwrap_or_default() {
                print_line(&mut out, line, a.json)?;
            }
            if !a.json {
                let _ = writeln!(out, "(the build ended without a final event: interrupted)");
            }
            return Ok(());
        }
        if lines.is_empty() {
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// Prints one log line; true when it was the build's final event.
fn print_line(out: &mut impl Write, line: &str, json: bool) -> Result<bool, Failure> {
    let record = Record::parse(line).ok();
    let ended = record.as_ref().is_some_and(|r| r.event.is_terminal());
    let written = if json {
        writeln!(out, "{line}")
    } else {
        match &record {
            // Byte counts are for live displays; starts and ends are kept.
            Some(Record {
                event: Event::TransferProgress { .. },
                ..
            }) => Ok(()),
            Some(r) => render(&r.event, true)
                .lines()
                .try_for_each(|l| writeln!(out, "{}", stamp(r.elapsed_ms, l))),
            // An event of a newer schema: show it as it is.
            None => writeln!(out, "{line}"),
        }
    };
    // A closed pipe (`logs ID | head`) ends the command quietly.
    written.map_err(|_| Failure::reported(0))?;
    let _ = out.flush();
    Ok(ended)
}

fn summarize(log: &BuildLogFile) -> BuildSummary {
    let (first, last) = first_and_last(&log.path).unwrap_or((None, None));
    BuildSummary::new(&log.id, first.as_ref(), last.as_ref(), log.is_running())
}

pub fn builds(global: &Global, a: &BuildsArgs) -> CliResult {
    let store = open_store(global)?;
    let logs = store
        .build_logs()
        .list()
        .map_err(|e| Failure::failed(e.to_string()))?;
    let mut rows: Vec<BuildSummary> = logs.iter().map(summarize).collect();
    // Newest start first; the RFC 3339 times sort as strings.
    rows.sort_by(|x, y| y.started.cmp(&x.started));
    if a.quiet {
        return emit_lines(rows.iter().map(|r| &r.id));
    }
    if a.format == Format::Json {
        return emit_json(&rows);
    }
    if a.json {
        let mut text = String::new();
        for r in &rows {
            text.push_str(&serde_json::to_string(r).unwrap_or_default());
            text.push('\n');
        }
        return emit(&text);
    }
    let mut table = Table::new(&[
        "BUILD ID", "STATUS", "STARTED", "DURATION", "DIGEST", "RECIPE",
    ])
    .align_right(3);
    for r in &rows {
        let started = r
            .started
            .as_deref()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .map(ago)
            .unwrap_or_else(|| "?".into());
        let duration = r
            .duration_ms
            .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
            .unwrap_or_else(|| "?".into());
        let digest = match &r.digest {
            Some(d) if a.no_trunc => d.to_string(),
            Some(d) => d.short(),
            None => "-".into(),
        };
        let recipe = match (&r.recipe, &r.tag) {
            (Some(p), Some(t)) => format!("{p} ({t})"),
            (Some(p), None) => p.clone(),
            _ => "?".into(),
        };
        table.row([
            r.id.clone(),
            r.status.as_str().to_string(),
            started,
            duration,
            digest,
            recipe,
        ]);
    }
    emit(&table.render())
}

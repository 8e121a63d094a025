//! Sandboxes: `run`, `exec`, `ps`, `stop`, `start`, `rm`, `logs --sandbox`.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use boxwright::builder::{normalize_tag, registry_client, transfer_reporter};
use boxwright::media::Descriptor;
use boxwright::progress::{Clock, Event, NullSink, Sink, human_bytes, sink_for};
use boxwright::registry::{Reference, pull_into_store};
use boxwright::sandbox::BindMount;
use boxwright::session::{ExecRequest, RunRequest, Sandboxes, SessionError, Status};
use boxwright::store::Store;

use super::choices::{DiffArg, NetworkArg};
use super::output::{Format, ago_epoch, emit, emit_json, emit_lines, rfc3339};
use super::table::Table;
use super::{CliResult, Failure, Global, open_store};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Name the sandbox [default: a generated name such as brave_turing].
    #[arg(long)]
    pub name: Option<String>,
    /// Remove the sandbox when its program exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background; print the sandbox's name.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep stdin open for the program.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the program a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable (K=V, or K to take the host's value).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Bind a host path: HOST:CONTAINER[:ro].
    #[arg(short = 'v', long = "volume", value_name = "HOST:CTR[:ro]")]
    pub volumes: Vec<String>,
    /// Working directory inside.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as this user (name, uid, name:group, uid:gid).
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// The network.
    #[arg(long, value_enum, default_value = "host")]
    pub network: NetworkArg,
    /// Do not give the sandbox the host's CA bundle (by default it is mounted at
    /// /run/boxwright/ca-certificates.crt with SSL_CERT_FILE and friends, as for build steps).
    #[arg(long)]
    pub no_host_ca: bool,
    /// Replace the image's entrypoint (its cmd is dropped too, as in podman).
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,
    /// The root filesystem, as `build --diff`: an overlay over the image's layers, a
    /// copy of the image's tree (snapshot), or auto (overlay where it can be mounted).
    #[arg(long, value_enum, default_value_t)]
    pub diff: DiffArg,
    /// The image: a name in the store, or a registry reference (pulled if missing).
    pub image: String,
    /// The command and its arguments [default: the image's cmd].
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// The running sandbox.
    pub name: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Show every sandbox, not only running ones.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// How to print the list: a table, or a JSON array (full digests, exact
    /// sizes, RFC 3339 times).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Table)]
    pub format: Format,
    /// One JSON object per sandbox and per line (JSON Lines).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Print only the sandboxes' names, one per line.
    #[arg(short = 'q', long, conflicts_with_all = ["format", "json"])]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Remove running sandboxes too (they are killed first).
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

fn exe() -> Result<PathBuf, Failure> {
    std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find boxwright's own executable: {e}")))
}

fn session_failure(e: SessionError) -> Failure {
    if e.is_bad_input() {
        Failure::input(e.to_string())
    } else {
        Failure::failed(e.to_string())
    }
}

fn sandboxes<'a>(
    store: &'a Store,
    global: &Global,
    sink: &'a dyn Sink,
) -> Result<Sandboxes<'a>, Failure> {
    Sandboxes::new(store, exe()?, global.max_layer_size, sink).map_err(session_failure)
}

/// Prints warnings (such as the copied-tree fallback) on stderr, as a
/// build's plain progress does; `run`'s stdout stays the program's.
struct WarningSink;

impl Sink for WarningSink {
    fn emit(&self, event: &Event) {
        if let Event::Warning { message } = event {
            eprintln!("warning: {message}");
        }
    }
}

/// `K=V`, or `K` alone for the host's value (podman's rule; unset: skipped).
fn parse_env(items: &[String]) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for item in items {
        match item.split_once('=') {
            Some(("", _)) => {
                return Err(Failure::input(format!(
                    "-e '{item}': the variable needs a name: -e NAME=VALUE"
                )));
            }
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => {
                if let Ok(v) = std::env::var(item) {
                    out.push((item.clone(), v));
                }
            }
        }
    }
    Ok(out)
}

/// `HOST:CTR[:ro|:rw]`: the host path must exist (as podman requires).
fn parse_volume(v: &str) -> Result<BindMount, Failure> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, readonly) = match parts.as_slice() {
        [h, c] => (*h, *c, false),
        [h, c, "ro"] => (*h, *c, true),
        [h, c, "rw"] => (*h, *c, false),
        _ => {
            return Err(Failure::input(format!(
                "-v '{v}': write HOST:CONTAINER[:ro], such as -v $PWD:/work or -v /data:/data:ro"
            )));
        }
    };
    let source = std::fs::canonicalize(host)
        .map_err(|e| Failure::input(format!("-v '{v}': {host}: {e}")))?;
    if !ctr.starts_with('/') {
        return Err(Failure::input(format!(
            "-v '{v}': the container path must be absolute"
        )));
    }
    let target = ctr.trim_end_matches('/').to_string();
    Ok(BindMount {
        source,
        target: if target.is_empty() {
            "/".into()
        } else {
            target
        },
        readonly,
    })
}

/// The image `reference` names in the store, pulled first when it is a
/// registry reference the store lacks (as podman run does).
fn resolve_image(global: &Global, store: &Store, reference: &str) -> Result<Descriptor, Failure> {
    let name = normalize_tag(reference).map_err(|e| Failure::input(e.to_string()))?;
    if let Ok(desc) = store.layout().resolve(&name) {
        return Ok(desc);
    }
    let parsed: Reference = reference.parse().map_err(|_| {
        Failure::input(format!(
            "no image '{reference}' in the store: build it or pull it first"
        ))
    })?;
    if !reference.contains('/') {
        return Err(Failure::input(format!(
            "no image '{reference}' in the store: build it (boxwright build -t {reference}) or give a registry reference"
        )));
    }
    let client = registry_client(&global.registry_options(), store)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let sink = sink_for(global.progress_mode(), Clock::default());
    let report = transfer_reporter(sink.as_ref());
    // The shared lock, as `pull` takes it: a command clearing leftovers
    // meanwhile must not take this pull's temp files for a killed run's.
    let lock = super::lock_store(store)?;
    let pulled = pull_into_store(&client, store, &parsed, None, &report);
    drop(lock);
    sink.finish();
    let (_, desc) = pulled.map_err(|e| Failure::failed(e.to_string()))?;
    Ok(desc)
}

pub fn run(global: &Global, a: &RunArgs) -> CliResult {
    let store = open_store(global)?;
    let desc = resolve_image(global, &store, &a.image)?;
    super::fetch_held_layers(global, &store, &desc)?;
    let volumes = a
        .volumes
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<_>, _>>()?;
    let entrypoint = match &a.entrypoint {
        Some(e) if e.is_empty() => Some(Vec::new()),
        Some(e) => Some(vec![e.clone()]),
        None => None,
    };
    let stdin_tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let stdout_tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let req = RunRequest {
        name: a.name.clone(),
        image_ref: a.image.clone(),
        entrypoint,
        cmd: a.command.clone(),
        env: parse_env(&a.env)?,
        volumes,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        network: Some(a.network.into()),
        // A terminal when asked, or when stdin and stdout are one (then
        // stdin is attached too: `boxwright run IMAGE` typed at a prompt is
        // a shell in the sandbox, as the issue that specified `run` asks;
        // podman would need -it). Output redirected to a file stays plain
        // (no pty's CRLF, no stderr mixed in).
        tty: a.tty || (stdin_tty && stdout_tty && !a.detach),
        interactive: (a.interactive || (stdin_tty && stdout_tty)) && !a.detach,
        host_ca: !a.no_host_ca,
        auto_remove: a.rm,
        diff: a.diff.into(),
    };
    let sink = WarningSink;
    let boxes = sandboxes(&store, global, &sink)?;
    let record = boxes.create(&req, &desc).map_err(session_failure)?;
    if a.detach {
        boxes
            .start_detached(&record.name, &exe()?)
            .map_err(session_failure)?;
        println!("{}", record.name);
        return Ok(());
    }
    let code = boxes.run_attached(&record.name).map_err(session_failure);
    if a.rm {
        boxes.remove(&record.name, true).map_err(session_failure)?;
    }
    let code = code?;
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::reported(code))
    }
}

pub fn exec(global: &Global, a: &ExecArgs) -> CliResult {
    let store = open_store(global)?;
    let sink = NullSink;
    let boxes = sandboxes(&store, global, &sink)?;
    let req = ExecRequest {
        argv: a.command.clone(),
        env: parse_env(&a.env)?,
        interactive: a.interactive,
        tty: a.tty,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
    };
    let code = boxes
        .exec(&a.name, &exe()?, &req)
        .map_err(session_failure)?;
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::reported(code))
    }
}

/// One sandbox of `boxwright ps`, as `--format json` and `--json` print it.
#[derive(serde::Serialize)]
struct PsRow<'a> {
    name: &'a str,
    /// The image as given to `run`.
    image: &'a str,
    /// Its manifest digest, in full.
    image_digest: String,
    command: &'a [String],
    status: &'static str,
    exit_code: Option<i32>,
    /// Seconds since the epoch.
    created: u64,
    /// The same, RFC 3339 UTC.
    created_at: String,
    /// Bytes of the sandbox's changes to its image.
    changes_bytes: u64,
}

pub fn ps(global: &Global, a: &PsArgs) -> CliResult {
    let store = open_store(global)?;
    let sink = NullSink;
    let boxes = sandboxes(&store, global, &sink)?;
    let list = boxes.list().map_err(session_failure)?;
    let shown: Vec<_> = list
        .into_iter()
        .filter(|i| a.all || i.state.status == Status::Running)
        .collect();
    if a.quiet {
        return emit_lines(shown.iter().map(|i| &i.record.name));
    }
    let rows: Vec<PsRow> = shown
        .iter()
        .map(|i| PsRow {
            name: &i.record.name,
            image: &i.record.image_ref,
            image_digest: i.record.image.digest.to_string(),
            command: &i.record.argv,
            status: i.state.status.as_str(),
            exit_code: i.state.exit_code,
            created: i.record.created,
            created_at: rfc3339(UNIX_EPOCH + Duration::from_secs(i.record.created)),
            changes_bytes: i.changes_bytes,
        })
        .collect();
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
    let mut table = Table::new(&["NAME", "IMAGE", "STATUS", "CREATED", "CHANGES"]).align_right(4);
    for i in &shown {
        let status = match (i.state.status, i.state.exit_code) {
            (Status::Exited, Some(c)) => format!("exited ({c})"),
            (s, _) => s.as_str().to_string(),
        };
        table.row([
            i.record.name.clone(),
            i.record.image_ref.clone(),
            status,
            ago_epoch(i.record.created),
            human_bytes(i.changes_bytes),
        ]);
    }
    emit(&table.render())
}

pub fn stop(global: &Global, a: &StopArgs) -> CliResult {
    let store = open_store(global)?;
    let sink = NullSink;
    let boxes = sandboxes(&store, global, &sink)?;
    for name in &a.names {
        boxes
            .stop(name, Duration::from_secs(a.time))
            .map_err(session_failure)?;
        println!("{name}");
    }
    Ok(())
}

pub fn start(global: &Global, a: &StartArgs) -> CliResult {
    let store = open_store(global)?;
    let sink = NullSink;
    let boxes = sandboxes(&store, global, &sink)?;
    for name in &a.names {
        boxes
            .start_detached(name, &exe()?)
            .map_err(session_failure)?;
        println!("{name}");
    }
    Ok(())
}

pub fn rm(global: &Global, a: &RmArgs) -> CliResult {
    let store = open_store(global)?;
    let sink = NullSink;
    let boxes = sandboxes(&store, global, &sink)?;
    for name in &a.names {
        boxes.remove(name, a.force).map_err(session_failure)?;
        println!("{name}");
    }
    Ok(())
}

/// `logs --sandbox NAME`: a detached sandbox's output.
pub fn sandbox_logs(global: &Global, name: &str, follow: bool) -> CliResult {
    let store = open_store(global)?;
    let sink = NullSink;
    let boxes = sandboxes(&store, global, &sink)?;
    let path = boxes.log_path(name).map_err(session_failure)?;
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) => return Ok(()),
    };
    let mut out = std::io::stdout().lock();
    loop {
        std::io::copy(&mut f, &mut out).map_err(|e| Failure::failed(e.to_string()))?;
        if !follow {
            return Ok(());
        }
        let running = boxes
            .state(name)
            .map(|s| s.status == Status::Running)
            .unwrap_or(false);
        if !running {
            std::io::copy(&mut f, &mut out).map_err(|e| Failure::failed(e.to_string()))?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

//! Command-line parsing and dispatch. Each command is a few lines calling the
//! library; errors become one line on stderr and an exit code:
//! 0 success, 1 failure, 2 bad input (usage, recipe, missing files).

mod build;
mod cache;
mod catalog;
mod choices;
mod completion;
mod df;
mod fork;
mod images;
mod logs;
mod manage;
mod output;
mod registry;
mod sandbox;
mod serve;
mod table;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// An error for the user: one line, and the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    /// Bad input: exit code 2.
    pub fn input(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// A failure whose message was already shown (by a progress sink).
    pub fn reported(code: i32) -> Failure {
        Failure {
            code,
            message: String::new(),
        }
    }

    /// Anything else that failed: exit code 1.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        // `{:#}` joins the context chain on one line.
        Failure::failed(format!("{e:#}"))
    }
}

pub type CliResult = Result<(), Failure>;

/// A registry reference the user typed; one that does not parse is bad input.
pub fn reference(s: &str) -> Result<boxwright::registry::Reference, Failure> {
    s.parse()
        .map_err(|e| Failure::input(format!("'{s}' is not an image reference: {e}")))
}

/// The store the global options name, opened (and created if missing).
pub fn open_store(global: &Global) -> Result<boxwright::store::Store, Failure> {
    let root = global.store_root();
    boxwright::store::Store::open(&root)
        .map_err(|e| Failure::failed(format!("store {}: {e}", root.display())))
}

/// The shared store lock, held by a command that writes the store outside a
/// build (tag, rmi, pull). Writes go through temp files in the store's tmp
/// dir, which a starting build clears whenever it can take the lock
/// exclusively: without this, a build started meanwhile removed the temp
/// file of an `index.json` write from under it.
pub fn lock_store(store: &boxwright::store::Store) -> Result<boxwright::store::StoreLock, Failure> {
    tidy_store(store);
    store
        .lock_shared()
        .map_err(|e| Failure::failed(format!("store {}: {e}", store.root().display())))
}

/// Fetches the layers of the stored image `desc` (every image of an index)
/// that a registry holds for the store (lazy step-cache hits of a build
/// pushed there): `run`, `save` and `fork --upper` need their content.
/// Nothing happens when every blob is here.
pub fn fetch_held_layers(
    global: &Global,
    store: &boxwright::store::Store,
    desc: &boxwright::media::Descriptor,
) -> Result<(), Failure> {
    // An image that does not read is the command's own error to report.
    let held = store.remote_layers_of(desc).unwrap_or_default();
    if held.is_empty() {
        return Ok(());
    }
    let client = boxwright::builder::registry_client(&global.registry_options(), store)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let sink = boxwright::progress::sink_for(global.progress_mode(), Default::default());
    let report = boxwright::builder::transfer_reporter(sink.as_ref());
    // The shared lock, as `pull` takes it.
    let lock = lock_store(store)?;
    let fetched = boxwright::registry::fetch_remote_layers(&client, store, &held, &report)
        .into_iter()
        .collect::<Result<(), _>>();
    drop(lock);
    sink.finish();
    fetched.map_err(|e| Failure::failed(format!("fetching a layer held by a registry: {e}")))
}

/// Namespace workers for store chores (removing trees of subordinate ids).
pub fn workers() -> Result<boxwright::session::Workers, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find boxwright's own executable: {e}")))?;
    let mapping =
        boxwright::sandbox::IdMapping::detect().map_err(|e| Failure::failed(e.to_string()))?;
    Ok(boxwright::session::Workers::new(
        exe,
        boxwright::sandbox::Userns::new(mapping),
    ))
}

/// Clears what killed runs left in the store (temp files, the trash) when
/// no other process uses it, as a build does when it starts: so commands
/// other than build (pull, load, tag…) do not let leftovers grow either.
/// Best effort: a busy store or a failure leaves them for the next command.
pub fn tidy_store(store: &boxwright::store::Store) {
    if let Ok(w) = workers() {
        let _ = boxwright::session::clean_stale(store, &w);
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "boxwright",
    version,
    about = "Daemonless, rootless builder of OCI toolbox images",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, before or after the command name. Help
/// lists them once, under their own heading, apart from each command's own.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The local image store [default: $BOXWRIGHT_STORE, else $XDG_DATA_HOME/boxwright, else ~/.local/share/boxwright]
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// How much boxwright itself logs on stderr.
    #[arg(
        long,
        global = true,
        value_name = "LEVEL",
        default_value = "warn",
        value_enum
    )]
    pub log_level: choices::LogLevel,
    /// Registry settings file (insecure registries, mirrors, CAs) [default: $XDG_CONFIG_HOME/boxwright/registries.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
    /// Verify registries' TLS certificates and insist on HTTPS (false: do not verify, and allow plain HTTP, for this call only).
    // require_equals: as in podman (a Go bool flag), `--tls-verify false`
    // is the flag then an argument, never a value.
    #[arg(
        long,
        global = true,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub tls_verify: Option<bool>,
    /// How progress is shown: auto (tty on a terminal, else plain), tty (live bars),
    /// plain (a line per event), json (JSON Lines on stdout, nothing else there).
    #[arg(
        long,
        global = true,
        value_name = "MODE",
        default_value = "auto",
        env = "BOXWRIGHT_PROGRESS",
        value_enum
    )]
    pub progress: choices::ProgressArg,
    /// A directory of catalog files used instead of the built-in ones of the same
    /// name (runtimes.toml, dev-access.toml, templates/…): pin your own versions.
    #[arg(long, global = true, value_name = "DIR", env = "BOXWRIGHT_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// The most bytes one layer may expand to when unpacked (k, m, g, t suffixes);
    /// the store's free space caps it too.
    #[arg(long, global = true, value_name = "SIZE", env = "BOXWRIGHT_MAX_LAYER_SIZE",
          default_value = "64g", value_parser = boxwright::units::parse_size)]
    pub max_layer_size: u64,
    /// The most bytes unpacked layers may take (k, m, g, t suffixes): builds
    /// and gc evict the least recently used past it. Default: `max_unpacked`
    /// in config.toml, else 10g.
    #[arg(long, global = true, value_name = "SIZE", env = "BOXWRIGHT_MAX_UNPACKED",
          value_parser = boxwright::units::parse_size)]
    pub max_unpacked: Option<u64>,
}

impl Global {
    /// The bound on unpacked layers: `--max-unpacked` (or its variable),
    /// else config.toml's `max_unpacked`, else the default.
    pub fn max_unpacked(&self) -> Result<u64, Failure> {
        if let Some(n) = self.max_unpacked {
            return Ok(n);
        }
        let path = boxwright::settings::Settings::path();
        let settings =
            boxwright::settings::Settings::load(&path).map_err(manage::settings_failure)?;
        Ok(settings
            .max_unpacked_bytes(&path)
            .map_err(manage::settings_failure)?
            .unwrap_or(boxwright::store::DEFAULT_MAX_UNPACKED))
    }

    pub fn registry_options(&self) -> boxwright::builder::RegistryOptions {
        boxwright::builder::RegistryOptions {
            config: self.registries_conf.clone(),
            tls_verify: self.tls_verify,
            template_registry: None,
        }
    }

    pub fn store_root(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(boxwright::store::Store::default_root)
    }

    /// The `--progress` mode.
    pub fn progress_mode(&self) -> boxwright::progress::ProgressMode {
        self.progress.into()
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an image from a recipe or a Containerfile; prints the manifest digest on stdout
    /// (with --progress json, stdout carries the events and the last one holds the digest).
    Build(Box<build::BuildArgs>),
    /// List the images in the local store.
    Images(images::ImagesArgs),
    /// Print an image's manifest and config as JSON.
    Inspect(images::InspectArgs),
    /// Remove image names from the local store (blobs go with `gc`).
    Rmi(images::RmiArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Write images to an OCI archive (a tar of an OCI image layout).
    Save(images::SaveArgs),
    /// Read images from an OCI archive into the store.
    Load(images::LoadArgs),
    /// Remove blobs, layers and cache entries no image uses.
    Gc(images::GcArgs),
    /// Check every blob, tag, layer, cache record and unpacked layer against its digest.
    Fsck(images::FsckArgs),
    /// Show the disk the store takes, by kind, and what `gc` would free.
    Df(df::DfArgs),
    /// Store-wide commands, as podman names them: `system df`.
    System(df::SystemArgs),
    /// Pull an image from a registry into the store; prints its manifest digest.
    Pull(registry::PullArgs),
    /// Push a stored image to a registry; prints its manifest digest.
    Push(registry::PushArgs),
    /// Log in to a registry (asks for the password on the terminal, or reads it from stdin with --password-stdin).
    Login(registry::LoginArgs),
    /// Forget the stored login for a registry.
    Logout(registry::LogoutArgs),
    /// Write out the recipe an image was built from under a new name (or, with --image, tag the image itself).
    Clone(manage::CloneArgs),
    /// Set or show the default image for new sandboxes.
    Default(manage::DefaultArgs),
    /// Print a build's log (the latest build's without an id); --follow tails a running build.
    Logs(logs::LogsArgs),
    /// List recent builds: id, status, start, duration, digest, recipe.
    Builds(logs::BuildsArgs),
    /// List what toolbox recipes can ask for: runtimes, packages, ai-tools, dev-access, templates.
    Catalog(catalog::CatalogArgs),
    /// Run an image as a sandbox (daemonless): its entrypoint and cmd, or COMMAND.
    Run(Box<sandbox::RunArgs>),
    /// Run a command in a running sandbox.
    Exec(sandbox::ExecArgs),
    /// List sandboxes: name, image, status, created, size of changes.
    Ps(sandbox::PsArgs),
    /// Stop running sandboxes (SIGTERM, then SIGKILL after --time).
    Stop(sandbox::StopArgs),
    /// Start stopped sandboxes again, in the background, with their changes.
    Start(sandbox::StartArgs),
    /// Remove sandboxes and their changes.
    Rm(sandbox::RmArgs),
    /// Write the package inventory (apt/dpkg, apk, pip, npm, VS Code extensions) of a root filesystem as JSON.
    Snapshot(fork::SnapshotArgs),
    /// Capture what was installed in a sandbox as one more layer on its image.
    Fork(Box<fork::ForkArgs>),
    /// Serve the Images page and its API (builds, images, sandboxes, fork) on 127.0.0.1:8080.
    Serve(serve::ServeArgs),
    /// Manage the registry step cache (--cache-to/--cache-from): prune old records.
    Cache(cache::CacheArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(completion::CompletionArgs),
    /// Write the man pages, one per command, into a directory.
    Man(completion::ManArgs),
}

/// Parses the command line, runs it, prints any error; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                _ => {
                    // clap's message is several lines; keep the first, which
                    // says what is wrong, and point at --help.
                    let text = e.to_string();
                    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
                    let mut first = lines
                        .next()
                        .unwrap_or("invalid arguments")
                        .trim_start_matches("error: ")
                        .to_string();
                    // "…were not provided:" is followed by the list it announces.
                    if first.ends_with(':')
                        && let Some(next) = lines.next()
                    {
                        first = format!("{first} {next}");
                    }
                    // An invalid value: say which ones are accepted.
                    if let Some(values) = text
                        .lines()
                        .map(str::trim)
                        .find(|l| l.starts_with("[possible values:"))
                    {
                        first = format!("{first} {values}");
                    }
                    eprintln!("boxwright: {first} (see boxwright --help)");
                    2
                }
            };
        }
    };
    init_logging(cli.global.log_level.directive());
    if let Some(dir) = &cli.global.catalog {
        if !dir.is_dir() {
            eprintln!(
                "boxwright: --catalog {}: not a directory; give the directory holding your catalog files",
                dir.display()
            );
            return 2;
        }
        boxwright::catalog::Catalog::use_dir(dir);
    }
    let result = match &cli.command {
        Command::Build(a) => build::run(&cli.global, a),
        Command::Images(a) => images::images(&cli.global, a),
        Command::Inspect(a) => images::inspect(&cli.global, a),
        Command::Rmi(a) => images::rmi(&cli.global, a),
        Command::Tag(a) => images::tag(&cli.global, a),
        Command::Save(a) => images::save(&cli.global, a),
        Command::Load(a) => images::load(&cli.global, a),
        Command::Gc(a) => images::gc(&cli.global, a),
        Command::Fsck(a) => images::fsck(&cli.global, a),
        Command::Df(a) => df::df(&cli.global, a),
        Command::System(s) => match &s.command {
            df::SystemCommand::Df(a) => df::df(&cli.global, a),
        },
        Command::Pull(a) => registry::pull(&cli.global, a),
        Command::Push(a) => registry::push(&cli.global, a),
        Command::Login(a) => registry::login(&cli.global, a),
        Command::Logout(a) => registry::logout(&cli.global, a),
        Command::Clone(a) => manage::clone(&cli.global, a),
        Command::Default(a) => manage::default(&cli.global, a),
        Command::Logs(a) => logs::logs(&cli.global, a),
        Command::Builds(a) => logs::builds(&cli.global, a),
        Command::Catalog(a) => catalog::run(&cli.global, a),
        Command::Run(a) => sandbox::run(&cli.global, a),
        Command::Exec(a) => sandbox::exec(&cli.global, a),
        Command::Ps(a) => sandbox::ps(&cli.global, a),
        Command::Stop(a) => sandbox::stop(&cli.global, a),
        Command::Start(a) => sandbox::start(&cli.global, a),
        Command::Rm(a) => sandbox::rm(&cli.global, a),
        Command::Snapshot(a) => fork::snapshot(&cli.global, a),
        Command::Fork(a) => fork::fork(&cli.global, a),
        Command::Serve(a) => serve::run(&cli.global, a),
        Command::Cache(a) => cache::run(&cli.global, a),
        Command::Completion(a) => completion::completion(a),
        Command::Man(a) => completion::man(a),
    };
    match result {
        Ok(()) => 0,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("boxwright: {}", f.message);
            }
            f.code
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("boxwright={level}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("boxwright=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

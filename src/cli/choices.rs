//! The values of enumerated flags, as clap `ValueEnum`s, each mapped onto
//! the library type it selects. They live in the CLI so the library does
//! not depend on clap.

use boxwright::media::Compression;
use boxwright::progress::ProgressMode;
use boxwright::sandbox::Network;
use boxwright::session::DiffMethod;

// Plain comments on variants, not doc comments: clap would list doc
// comments as help for each value and turn every --help into the long form.

/// `--compression`: how layers are compressed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompressionArg {
    #[default]
    Gzip,
    Zstd,
    // Uncompressed tar.
    None,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Compression {
        match c {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::None => Compression::None,
        }
    }
}

/// `--network`: the network of run steps and sandboxes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkArg {
    // The host's network (ports bind on the host). `default` is accepted
    // too: the Containerfile's `RUN --network=default` and podman's
    // `--network default` mean "with network", which here is the host's.
    #[default]
    #[value(alias = "default")]
    Host,
    // Loopback only.
    None,
}

impl From<NetworkArg> for Network {
    fn from(n: NetworkArg) -> Network {
        match n {
            NetworkArg::Host => Network::Host,
            NetworkArg::None => Network::None,
        }
    }
}

/// `--diff`: how a step's changes are found.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiffArg {
    #[default]
    Auto,
    Overlay,
    Snapshot,
}

impl From<DiffArg> for DiffMethod {
    fn from(d: DiffArg) -> DiffMethod {
        match d {
            DiffArg::Auto => DiffMethod::Auto,
            DiffArg::Overlay => DiffMethod::Overlay,
            DiffArg::Snapshot => DiffMethod::Snapshot,
        }
    }
}

/// `--progress`: how progress is shown.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressArg {
    #[default]
    Auto,
    Tty,
    Plain,
    Json,
}

impl From<ProgressArg> for ProgressMode {
    fn from(p: ProgressArg) -> ProgressMode {
        match p {
            ProgressArg::Auto => ProgressMode::Auto,
            ProgressArg::Tty => ProgressMode::Tty,
            ProgressArg::Plain => ProgressMode::Plain,
            ProgressArg::Json => ProgressMode::Json,
        }
    }
}

/// `--log-level`: how much boxwright itself logs on stderr.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    #[default]
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The level as a `tracing` filter directive names it.
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

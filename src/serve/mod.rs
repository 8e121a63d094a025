//! `boxwright serve`: the Images page and its HTTP API, a thin front over
//! library calls (catalog, recipe validation) and boxwright child processes
//! (builds, forks, image management), so the engine stays daemonless: every
//! build is its own `boxwright … --progress json build` process whose
//! events are relayed, unchanged, to the page as Server-Sent Events.
//!
//! Security: loopback by default; any other address needs `--token-file`
//! (a bearer token, compared in constant time). No cookies; requests that
//! change anything must be JSON and, when the browser says where they come
//! from (`Origin`), come from this server's own page (CSRF). Bodies are
//! capped; registry credentials stay in the child processes.

mod api;
mod assets;
mod form;
mod jobs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use api::ROUTES;
pub use form::{BuildForm, FormError};
pub use jobs::{JobInfo, JobStatus, Jobs};

/// How `serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// `HOST/ORG`: the org whose images the page lists, builds push to and
    /// the default is set in.
    pub registry: Option<String>,
    /// The bearer token clients must send (required off loopback).
    pub token: Option<String>,
    pub store: PathBuf,
    /// boxwright's own executable, run for builds and management.
    pub exe: PathBuf,
    /// Global options handed to every child (`--registries-conf`, `--tls-verify`…).
    pub child_args: Vec<String>,
}

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "--listen {0} is not a loopback address: give --token-file FILE (a bearer token clients must send), or listen on 127.0.0.1"
    )]
    NeedsToken(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

impl ServeError {
    /// True when the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ServeError::NeedsToken(_))
    }
}

/// State shared by the handlers.
pub(crate) struct AppState {
    pub opts: ServeOptions,
    pub jobs: Arc<Jobs>,
}

/// Runs the server until the process is stopped (or `ready`, when given,
/// is told the bound address first: tests listen on port 0).
pub fn serve(
    opts: ServeOptions,
    ready: Option<std::sync::mpsc::Sender<SocketAddr>>,
) -> Result<(), ServeError> {
    if !opts.listen.ip().is_loopback() && opts.token.is_none() {
        return Err(ServeError::NeedsToken(opts.listen));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            opts,
            jobs: Arc::new(Jobs::default()),
        });
        let app = api::router(state);
        eprintln!("boxwright serve: the Images page is at http://{addr}/");
        if let Some(tx) = ready {
            let _ = tx.send(addr);
        }
        axum::serve(listener, app).await?;
        Ok(())
    })
}

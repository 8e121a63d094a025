//! The driver's registry side: a client configured for this store, pulling
//! bases, pushing results, and transfer events as progress.

use std::path::PathBuf;

use crate::progress::{Event, Sink, human_bytes};
use crate::registry::{ClientOptions, Registry, SkipReason, TransferEvent};
use crate::store::Store;

/// How to reach registries (from `--registries-conf` and `--tls-verify`).
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// A `registries.toml`; default `$XDG_CONFIG_HOME/boxwright/registries.toml`.
    pub config: Option<PathBuf>,
    /// `Some(false)` turns TLS verification off for this call.
    pub tls_verify: Option<bool>,
}

/// A registry client whose blob-info cache lives in the store's state.
pub fn client(opts: &RegistryOptions, store: &Store) -> Result<Registry, String> {
    let options = ClientOptions {
        tls_verify: opts.tls_verify,
        blob_info_cache: Some(store.state_dir().join("blob-info-cache.json")),
        ..ClientOptions::default()
    };
    Registry::from_env(opts.config.as_deref(), options).map_err(|e| e.to_string())
}

/// Turns transfer events into progress events (per-blob lines; byte counts
/// in between are left to sinks that draw bars).
pub fn transfer_reporter<'a>(
    verb: &'static str,
    sink: &'a dyn Sink,
) -> impl Fn(TransferEvent) + Send + Sync + 'a {
    move |ev| {
        let message = match ev {
            TransferEvent::Started { digest, size } => {
                format!("{verb} {} ({})", digest.short(), human_bytes(size))
            }
            TransferEvent::Skipped { digest, reason, .. } => match reason {
                SkipReason::Exists => format!("{} already there", digest.short()),
                SkipReason::Mounted { from } => {
                    format!("{} mounted from {from}", digest.short())
                }
                SkipReason::Cached => format!("{} already in the store", digest.short()),
            },
            TransferEvent::Retrying {
                digest,
                attempt,
                resume_at,
                reason,
            } => format!(
                "{}: attempt {attempt} failed ({reason}); retrying from byte {resume_at}",
                digest.short()
            ),
            TransferEvent::Done { digest, size } => {
                format!("{} done ({})", digest.short(), human_bytes(size))
            }
            TransferEvent::Progress { .. } => return,
        };
        sink.emit(&Event::Info { message });
    }
}

//! The driver's registry side: a client configured for this store, pulling
//! bases, pushing results, and transfer events as progress.

use std::path::PathBuf;

use crate::progress::Sink;
use crate::registry::{ClientOptions, RegistriesConfig, Registry, RegistryError, TransferEvent};
use crate::store::Store;

use super::BuildError;

/// How to reach registries (from `--registries-conf` and `--tls-verify`).
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// A `registries.toml`; default `$XDG_CONFIG_HOME/boxwright/registries.toml`.
    pub config: Option<PathBuf>,
    /// `--tls-verify`: `Some(false)` turns TLS verification off for this
    /// call and lets registries answer in plain HTTP (HTTPS is tried
    /// first); `Some(true)` insists on verified HTTPS, even for loopback and
    /// `insecure` registries; `None` follows registries.toml.
    pub tls_verify: Option<bool>,
    /// `--template-registry HOST[/ORG]`: where `template = "NAME"` is pulled
    /// from when it is not in the store; `None` falls back to
    /// `template_registry` in the registries config.
    pub template_registry: Option<String>,
}

impl RegistryOptions {
    /// The registries.toml in force: an explicit file must exist, a missing
    /// default file is an empty config. A bad file is bad input.
    pub fn load_config(&self) -> Result<RegistriesConfig, BuildError> {
        match &self.config {
            Some(p) => RegistriesConfig::load(p),
            None => RegistriesConfig::load_default(),
        }
        .map_err(|e| BuildError::BadInput(e.to_string()))
    }
}

/// A registry client whose blob-info cache lives in the store's state.
pub fn client(opts: &RegistryOptions, store: &Store) -> Result<Registry, RegistryError> {
    let options = ClientOptions {
        tls_verify: opts.tls_verify,
        blob_info_cache: Some(store.state_dir().join("blob-info-cache.json")),
        ..ClientOptions::default()
    };
    Registry::from_env(opts.config.as_deref(), options)
}

/// The registry client's progress callback: each transfer event becomes a
/// progress event on `sink` (byte bars in the tty display, lines in plain).
pub fn transfer_reporter(sink: &dyn Sink) -> impl Fn(TransferEvent) + Send + Sync + '_ {
    move |ev| sink.emit(&super::transfer_event(ev))
}

/// The registry namespace templates are pulled from: `--template-registry`,
/// else `template_registry` in the registries config, else none.
pub fn template_namespace(opts: &RegistryOptions) -> Result<Option<String>, BuildError> {
    if let Some(ns) = opts.template_registry.as_ref().filter(|n| !n.is_empty()) {
        return Ok(Some(ns.clone()));
    }
    let config = opts.load_config()?;
    Ok(config.template_registry)
}

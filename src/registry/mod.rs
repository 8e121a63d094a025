//! Registries: references, auth, pull and push over the OCI distribution API.
//!
//! [`Registry`] is the client: a blocking facade over an async core (tokio +
//! reqwest on a runtime the client owns), so the rest of boxwright stays
//! synchronous. Blobs come from a [`BlobSource`] and go to a [`BlobSink`],
//! which the store implements; this module never touches the disk layout.
//!
//! - [`Reference`]: `ubuntu:24.04` → `docker.io/library/ubuntu:24.04`, …
//! - [`RegistriesConfig`]: `registries.toml` (insecure hosts, mirrors, CAs),
//!   and [`RegistriesConfig::schemes`], which hosts may be spoken to in plain
//!   HTTP (insecure ones, `--tls-verify=false`, and loopback hosts as a
//!   fallback, as podman and Docker do).
//! - [`CredentialStore`]: docker/podman auth files, credential helpers, login.
//! - [`Registry::pull`], [`Registry::push`], and remote management
//!   ([`Registry::list_tags`], [`Registry::catalog`], [`Registry::fetch_manifest`],
//!   [`Registry::delete_manifest`], [`Registry::copy_tag`]).
//! - [`Retry`], the one retry policy, and the HTTP client set-up that
//!   `crate::artifact` downloads share.

use std::io::{self, Read, Write};

use crate::digest::Digest;

mod auth;
mod blob_cache;
mod bridge;
pub(crate) mod challenge;
mod client;
mod config;
mod credentials;
mod error;
mod http;
mod manifest;
mod pull;
mod push;
mod reference;
mod remote;
mod remote_layers;
mod secret;
mod store_io;
mod tls;
mod transport;

pub use blob_cache::{BlobInfoCache, default_path as default_blob_info_cache_path};
pub use client::Registry;
pub use config::{RegistriesConfig, RegistrySettings, Schemes};
pub use credentials::CredentialStore;
pub use error::{DigestHeaderError, Malformed, RegistryError, Result};
pub(crate) use http::{ClientSpec, Failure, build_client, classify, error_chain, retry_after};
pub use http::{Retry, is_loopback};
pub use pull::{IndexInfo, PulledImage};
pub use reference::{
    DEFAULT_TAG, DOCKER_HUB, DOCKER_HUB_API, Reference, ReferenceError, names_a_registry,
};
pub use remote::FetchedManifest;
pub use remote_layers::{
    check_remote_layers, fetch_remote_layer, fetch_remote_layer_teeing, fetch_remote_layers,
};
pub use secret::{Credential, Secret};
pub use store_io::{pull_into_store, push_from_store};
pub use transport::ClientOptions;

/// Where pushed blobs come from (the store implements it).
pub trait BlobSource: Send + Sync {
    /// A reader of the blob's bytes from the start.
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>>;

    /// A reader from byte `offset` on, to resume an upload. The default
    /// reads and discards; a file-backed source should seek.
    fn open_at(&self, digest: &Digest, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut r = self.open(digest)?;
        let skipped = io::copy(&mut (&mut r).take(offset), &mut io::sink())?;
        if skipped < offset {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("blob {digest} is shorter than {offset} bytes"),
            ));
        }
        Ok(r)
    }

    /// The blob's size in bytes.
    fn size(&self, digest: &Digest) -> io::Result<u64>;
}

/// Where pulled blobs go (the store implements it).
pub trait BlobSink: Send + Sync {
    /// Whether the blob is already there (it is then not downloaded).
    fn has(&self, digest: &Digest) -> bool;

    /// A writer for one new blob. Dropping it without [`BlobWrite::commit`]
    /// must leave the sink unchanged.
    fn writer(&self) -> io::Result<Box<dyn BlobWrite>>;
}

/// One blob being written into a [`BlobSink`].
pub trait BlobWrite: Write + Send {
    /// Makes the blob visible under `expected`, atomically, after checking
    /// that what was written has that digest (fail and discard otherwise).
    fn commit(self: Box<Self>, expected: &Digest) -> io::Result<()>;
}

/// Why a blob needed no transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Push: the target repository already has it.
    Exists,
    /// Push: mounted from another repository of the same registry.
    Mounted { from: String },
    /// Pull: the sink already has it.
    Cached,
}

/// Per-blob transfer events, for progress bars. `Progress.done` counts the
/// bytes of this blob transferred so far (it restarts lower after a retry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferEvent {
    Started {
        digest: Digest,
        size: u64,
    },
    Progress {
        digest: Digest,
        done: u64,
        size: u64,
    },
    Skipped {
        digest: Digest,
        size: u64,
        reason: SkipReason,
    },
    /// A failed attempt that will be retried (or resumed from `resume_at`).
    Retrying {
        digest: Digest,
        attempt: u32,
        resume_at: u64,
        reason: String,
    },
    Done {
        digest: Digest,
        size: u64,
    },
}

//! [`Registry`]: the blocking client the rest of boxwright calls.
//!
//! reqwest's async client on a tokio runtime owned by the client, rather
//! than `reqwest::blocking`: the blocking client caps a whole request
//! (including a large upload) with one timeout and reads bodies in 8 KiB
//! pieces; the async one gives idle-read timeouts, concurrent transfers
//! without a thread each, and full control over chunking.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::digest::Digest;
use crate::image::ManifestKind;
use crate::media::{Descriptor, Platform};
use crate::registry::blob_cache::BlobInfoCache;
use crate::registry::config::RegistriesConfig;
use crate::registry::credentials::CredentialStore;
use crate::registry::error::{RegistryError, Result};
use crate::registry::pull::{Events, PulledImage};
use crate::registry::reference::Reference;
use crate::registry::remote::FetchedManifest;
use crate::registry::secret::{Credential, Secret};
use crate::registry::transport::{ClientOptions, Scope, Transport, http_error};
use crate::registry::{BlobSink, BlobSource, TransferEvent};

/// A registry client. Cheap to share by reference across threads; each
/// call blocks the calling thread until done. Must not be called from
/// inside another tokio runtime.
pub struct Registry {
    rt: tokio::runtime::Runtime,
    transport: Arc<Transport>,
    cache: Arc<BlobInfoCache>,
}

impl Registry {
    /// A client with explicit settings.
    pub fn new(
        config: RegistriesConfig,
        credentials: CredentialStore,
        options: ClientOptions,
    ) -> Result<Registry> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("boxwright-registry")
            .enable_all()
            .build()
            .map_err(|e| RegistryError::io("starting the registry client's runtime", e))?;
        let cache = Arc::new(BlobInfoCache::open(options.blob_info_cache.clone()));
        Ok(Registry {
            rt,
            transport: Arc::new(Transport::new(config, credentials, options)),
            cache,
        })
    }

    /// A client configured from the environment: `registries.toml` at
    /// `config_path` (or the default path), the usual credential files,
    /// and `options`.
    pub fn from_env(
        config_path: Option<&std::path::Path>,
        options: ClientOptions,
    ) -> Result<Registry> {
        let config = match config_path {
            Some(p) => RegistriesConfig::load(p)?,
            None => RegistriesConfig::load_default()?,
        };
        Registry::new(config, CredentialStore::from_env(), options)
    }

    /// The configuration in force.
    pub fn config(&self) -> &RegistriesConfig {
        &self.transport.config
    }

    /// Runs `work` with an event channel whose events reach `progress` on
    /// this thread while the work runs.
    fn with_events<T, F>(
        &self,
        progress: &(dyn Fn(TransferEvent) + Send + Sync),
        work: impl FnOnce(Events) -> F,
    ) -> T
    where
        F: Future<Output = T>,
    {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let fut = work(tx);
        self.rt.block_on(async move {
            let drain = async {
                while let Some(ev) = rx.recv().await {
                    progress(ev);
                }
            };
            let (out, ()) = futures_util::future::join(fut, drain).await;
            out
        })
    }

    /// Pulls `reference` into `sink`: the manifest (the one for `platform`,
    /// default the host's, when the reference names an index), then config
    /// and layers, downloaded in parallel and verified while streaming;
    /// blobs the sink has are skipped. The manifest itself is written to the
    /// sink last. Mirrors from the config are tried first.
    pub fn pull(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
        sink: &dyn BlobSink,
        progress: &(dyn Fn(TransferEvent) + Send + Sync),
    ) -> Result<PulledImage> {
        let t = &self.transport;
        let cache = &self.cache;
        let out = self.with_events(progress, |ev| async move {
            let r = t.pull(cache, reference, platform, sink, &ev).await;
            drop(ev);
            r
        });
        self.cache.save();
        out
    }

    /// Pushes an image: each blob of `blobs` (config and layers) from
    /// `source` unless the registry has it or can mount it, then
    /// `manifest_bytes` exactly as given, under the target's tag (or digest).
    /// Returns the manifest digest. When a blob cannot be pushed the error
    /// names it and the manifest is not sent.
    pub fn push(
        &self,
        source: &dyn BlobSource,
        target: &Reference,
        manifest_bytes: &[u8],
        media_type: &str,
        blobs: &[Descriptor],
        progress: &(dyn Fn(TransferEvent) + Send + Sync),
    ) -> Result<Digest> {
        let t = &self.transport;
        let cache = &self.cache;
        let out = self.with_events(progress, |ev| async move {
            let r = t
                .push(
                    cache,
                    source,
                    target,
                    manifest_bytes,
                    media_type,
                    blobs,
                    &ev,
                )
                .await;
            drop(ev);
            r
        });
        self.cache.save();
        out
    }

    /// The manifest or index `reference` names, bytes as served.
    pub fn fetch_manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        let t = &self.transport;
        self.rt.block_on(async {
            let ep = t.endpoint(reference.registry()).await?;
            t.get_manifest(
                &ep,
                reference.repository(),
                &reference.manifest_reference(),
                reference.digest(),
            )
            .await
        })
    }

    /// The digest of the manifest `reference` names (a HEAD request), or
    /// `None` if the registry does not have it.
    pub fn manifest_digest(&self, reference: &Reference) -> Result<Option<Digest>> {
        self.rt.block_on(self.transport.head_manifest(reference))
    }

    /// Deletes the manifest `reference@digest` (a digest is required).
    /// A registry with deletes disabled answers 405, reported as such.
    pub fn delete_manifest(&self, reference: &Reference) -> Result<()> {
        self.rt.block_on(self.transport.delete_manifest(reference))
    }

    /// Makes `to_tag` point at the manifest `from` names, server-side (the
    /// manifest bytes are fetched and PUT again; no blob moves). Returns its digest.
    pub fn copy_tag(&self, from: &Reference, to_tag: &str) -> Result<Digest> {
        let target = from.with_tag(to_tag);
        // Validate the tag with the reference grammar.
        let _: Reference = target.to_string().parse()?;
        let t = &self.transport;
        self.rt.block_on(async {
            let ep = t.endpoint(from.registry()).await?;
            let repo = from.repository();
            let m = t
                .get_manifest(&ep, repo, &from.manifest_reference(), from.digest())
                .await?;
            t.put_manifest(&ep, repo, to_tag, &m.bytes, &m.media_type)
                .await
        })
    }

    /// The image manifest `reference` names and its config blob, read into
    /// memory (a config is small; both are verified against their digests).
    /// For listings that show sizes and creation times.
    pub fn fetch_image_config(&self, reference: &Reference) -> Result<(FetchedManifest, Vec<u8>)> {
        let fetched = self.fetch_manifest(reference)?;
        let config = match &fetched.kind {
            ManifestKind::Image(m) => m.config.clone(),
            ManifestKind::Index(_) => {
                return Err(RegistryError::Invalid(format!(
                    "{reference} is a multi-platform index"
                )));
            }
        };
        const CONFIG_MAX: u64 = 4 << 20;
        if config.size > CONFIG_MAX {
            return Err(RegistryError::Invalid(format!(
                "{reference}: config of {} bytes is larger than {CONFIG_MAX}",
                config.size
            )));
        }
        let sink = MemorySink::default();
        let t = &self.transport;
        self.rt.block_on(async {
            let ep = t.endpoint(reference.registry()).await?;
            let (tx, _rx) = mpsc::unbounded_channel();
            let cancel = std::sync::atomic::AtomicBool::new(false);
            t.download_blob(&ep, reference.repository(), &config, &sink, &tx, &cancel)
                .await
        })?;
        let bytes = sink.take();
        Ok((fetched, bytes))
    }

    /// Downloads one blob of `reference`'s repository into `sink`, checked
    /// against its digest and size while it streams (nothing is written if
    /// the sink has it).
    pub fn fetch_blob(
        &self,
        reference: &Reference,
        desc: &Descriptor,
        sink: &dyn BlobSink,
        progress: &(dyn Fn(TransferEvent) + Send + Sync),
    ) -> Result<()> {
        let t = &self.transport;
        let out = self.with_events(progress, |ev| async move {
            let ep = t.endpoint(reference.registry()).await?;
            let cancel = std::sync::atomic::AtomicBool::new(false);
            let r = t
                .download_blob(&ep, reference.repository(), desc, sink, &ev, &cancel)
                .await
                .map(drop);
            drop(ev);
            r
        });
        if out.is_ok() {
            self.cache
                .record(reference.registry(), &desc.digest, reference.repository());
            self.cache.save();
        }
        out
    }

    /// Whether `reference`'s repository has the blob `desc` names, of its
    /// size when the registry says one (a HEAD request).
    pub fn has_blob(&self, reference: &Reference, desc: &Descriptor) -> Result<bool> {
        let t = &self.transport;
        let digest = &desc.digest;
        self.rt.block_on(async {
            let ep = t.endpoint(reference.registry()).await?;
            let repo = reference.repository();
            let what = || format!("blob {digest} check");
            let url = ep.url(&format!("/v2/{repo}/blobs/{digest}"));
            let resp = t
                .send(&ep, &Scope::pull(repo), &what, &|c| c.head(&url))
                .await?;
            match resp.status() {
                // The header, not the (empty) body of a HEAD response.
                s if s.is_success() => Ok(resp
                    .headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none_or(|n| n == desc.size)),
                reqwest::StatusCode::NOT_FOUND => Ok(false),
                _ => Err(http_error(what(), &ep.registry, resp).await),
            }
        })
    }

    /// Notes that `reference`'s repository holds `digest`, so that a push to
    /// another repository of its registry mounts the blob from there.
    pub fn remember_blob(&self, reference: &Reference, digest: &Digest) {
        self.cache
            .record(reference.registry(), digest, reference.repository());
    }

    /// Copies the image `from` names to `to` on the same registry without
    /// moving a byte through this machine: its blobs are mounted into the
    /// target repository, then its manifest is PUT there exactly as served.
    pub fn copy_image(&self, from: &Reference, to: &Reference) -> Result<Digest> {
        if from.registry() != to.registry() {
            return Err(RegistryError::Invalid(format!(
                "{from} and {to} are on different registries: a server-side copy stays within one; pull and push to copy across"
            )));
        }
        let fetched = self.fetch_manifest(from)?;
        let blobs = match fetched.kind {
            ManifestKind::Image(m) => {
                let mut all = vec![m.config];
                all.extend(m.layers);
                all
            }
            ManifestKind::Index(_) => {
                return Err(RegistryError::Invalid(format!(
                    "{from} is a multi-platform index; copy one of its platform images"
                )));
            }
        };
        // The source repository holds every blob: that is where mounts come from.
        for b in &blobs {
            self.cache
                .record(from.registry(), &b.digest, from.repository());
        }
        self.push(
            &NoLocalBlobs,
            to,
            &fetched.bytes,
            &fetched.media_type,
            &blobs,
            &|_| {},
        )
    }

    /// The tags of `reference`'s repository (all pages).
    pub fn list_tags(&self, reference: &Reference) -> Result<Vec<String>> {
        let t = &self.transport;
        self.rt.block_on(async {
            let ep = t.endpoint(reference.registry()).await?;
            let repo = reference.repository();
            let first = page_url(
                &ep.url(&format!("/v2/{repo}/tags/list")),
                t.options.page_size,
            )?;
            t.list_paged(&ep, &Scope::pull(repo), first, "tags").await
        })
    }

    /// The repositories of `registry` (`/v2/_catalog`, all pages).
    pub fn catalog(&self, registry: &str) -> Result<Vec<String>> {
        let t = &self.transport;
        self.rt.block_on(async {
            let ep = t.endpoint(registry).await?;
            let first = page_url(&ep.url("/v2/_catalog"), t.options.page_size)?;
            t.list_paged(&ep, &Scope::catalog(), first, "repositories")
                .await
        })
    }

    /// Checks that `registry` answers the distribution API (`GET /v2/`),
    /// authenticating with stored credentials if it asks.
    pub fn ping(&self, registry: &str) -> Result<()> {
        let t = &self.transport;
        self.rt.block_on(async {
            let ep = t.endpoint(registry).await?;
            let what = || "API check (/v2/)".to_string();
            let r = t
                .send(&ep, &Scope::none(), &what, &|c| c.get(ep.url("/v2/")))
                .await?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(http_error(what(), &ep.registry, r).await)
            }
        })
    }

    /// Verifies `username`/`password` against `registry`, then stores them
    /// in the credential store's write file (podman's auth.json). Returns
    /// that file's path.
    pub fn login(&self, registry: &str, username: &str, password: Secret) -> Result<PathBuf> {
        let registry = crate::registry::reference::normalise_registry(registry);
        if username.is_empty() || password.is_empty() {
            return Err(RegistryError::Invalid(
                "login needs a user name and a password".into(),
            ));
        }
        let cred = Credential::Basic {
            username: username.to_string(),
            password,
        };
        self.rt
            .block_on(self.transport.verify_login(&registry, &cred))?;
        self.transport.credentials.store(&registry, &cred)
    }

    /// Removes `registry`'s stored login. Returns whether there was one.
    pub fn logout(&self, registry: &str) -> Result<bool> {
        let registry = crate::registry::reference::normalise_registry(registry);
        self.transport.credentials.remove(&registry)
    }
}

fn page_url(url: &str, page: Option<usize>) -> Result<String> {
    match page {
        Some(n) => crate::registry::http::with_query(url, &[("n", &n.to_string())]),
        None => Ok(url.to_string()),
    }
}

/// The blob source of a server-side copy: every blob must be mounted, none
/// can be uploaded from here.
struct NoLocalBlobs;

impl BlobSource for NoLocalBlobs {
    fn open(&self, digest: &Digest) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Err(std::io::Error::other(format!(
            "blob {digest} could not be mounted from the source repository and is not available locally"
        )))
    }

    fn size(&self, digest: &Digest) -> std::io::Result<u64> {
        self.open(digest).map(|_| 0)
    }
}

/// A sink that keeps one small blob in memory.
#[derive(Default)]
struct MemorySink {
    bytes: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl MemorySink {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *crate::registry::transport::lock(&self.bytes))
    }
}

struct MemoryBlob {
    buf: Vec<u8>,
    into: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl std::io::Write for MemoryBlob {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl crate::registry::BlobWrite for MemoryBlob {
    fn commit(self: Box<Self>, expected: &Digest) -> std::io::Result<()> {
        if &Digest::of(&self.buf) != expected {
            return Err(std::io::Error::other(format!("blob is not {expected}")));
        }
        *crate::registry::transport::lock(&self.into) = self.buf;
        Ok(())
    }
}

impl BlobSink for MemorySink {
    fn has(&self, _digest: &Digest) -> bool {
        false
    }

    fn writer(&self) -> std::io::Result<Box<dyn crate::registry::BlobWrite>> {
        Ok(Box::new(MemoryBlob {
            buf: Vec::new(),
            into: self.bytes.clone(),
        }))
    }
}

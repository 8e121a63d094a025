//! Pull: manifest (through an index if need be), then config and layers in
//! parallel, each verified while it streams into the sink.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt as _;
use tokio::sync::mpsc::UnboundedSender;

use crate::digest::Digest;
use crate::image::{ManifestKind, host_platform, select_manifest};
use crate::media::{Descriptor, Platform};
use crate::registry::blob_cache::BlobInfoCache;
use crate::registry::bridge::SinkPipe;
use crate::registry::error::{Malformed, RegistryError, Result};
use crate::registry::http::{Failure, classify};
use crate::registry::reference::Reference;
use crate::registry::transport::{Endpoint, Scope, Transport, error_chain, http_error};
use crate::registry::{BlobSink, SkipReason, TransferEvent};

/// The index a pulled manifest was chosen from.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexInfo {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// What a pull fetched. The manifest bytes are exactly the registry's, so
/// pushing them again yields the same digest.
#[derive(Clone, Debug, PartialEq)]
pub struct PulledImage {
    /// The reference pinned to the manifest's digest (tag kept for display).
    pub reference: Reference,
    /// The host that served it (a mirror, or the registry itself).
    pub served_by: String,
    pub manifest_bytes: Vec<u8>,
    pub manifest_media_type: String,
    pub manifest_digest: Digest,
    pub config: Descriptor,
    pub config_digest: Digest,
    pub layers: Vec<Descriptor>,
    /// Set when the reference named an index; `platform` is then the one chosen.
    pub index: Option<IndexInfo>,
    pub platform: Option<Platform>,
    /// Blobs actually downloaded (the others were already in the sink).
    pub downloaded: Vec<Digest>,
}

pub(crate) type Events = UnboundedSender<TransferEvent>;

impl Transport {
    pub(crate) async fn pull(
        &self,
        cache: &BlobInfoCache,
        reference: &Reference,
        platform: Option<&Platform>,
        sink: &dyn BlobSink,
        events: &Events,
    ) -> Result<PulledImage> {
        let hosts = self.config.pull_hosts(reference.registry());
        let mut last_err = None;
        for host in &hosts {
            let ep = self.endpoint(host).await?;
            match self
                .pull_from(&ep, cache, reference, platform, sink, events)
                .await
            {
                Ok(p) => return Ok(p),
                // Content errors are final; an unreachable or empty mirror is not.
                Err(e @ (RegistryError::Transport { .. } | RegistryError::Http { .. }))
                    if host != hosts.last().unwrap_or(host) =>
                {
                    tracing::warn!(mirror = %host, error = %e, "mirror failed; trying the next source");
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            RegistryError::Invalid(format!("no source configured for {reference}"))
        }))
    }

    async fn pull_from(
        &self,
        ep: &Endpoint,
        cache: &BlobInfoCache,
        reference: &Reference,
        platform: Option<&Platform>,
        sink: &dyn BlobSink,
        events: &Events,
    ) -> Result<PulledImage> {
        let repo = reference.repository();
        let top = self
            .get_manifest(
                ep,
                repo,
                &reference.manifest_reference(),
                reference.digest(),
            )
            .await?;
        let (image, index, chosen) = match &top.kind {
            ManifestKind::Image(_) => (top.clone(), None, None),
            ManifestKind::Index(index) => {
                let wanted = platform.cloned().unwrap_or_else(host_platform);
                let entry = select_manifest(index, &wanted).map_err(|source| {
                    RegistryError::NoPlatform {
                        reference: reference.to_string(),
                        source,
                    }
                })?;
                let child = self
                    .get_manifest(ep, repo, &entry.digest.to_string(), Some(&entry.digest))
                    .await?;
                if !matches!(child.kind, ManifestKind::Image(_)) {
                    return Err(RegistryError::Manifest {
                        what: format!("manifest {repo}@{}", entry.digest),
                        registry: ep.registry.clone(),
                        problem: Malformed::NestedIndex,
                    });
                }
                let info = IndexInfo {
                    bytes: top.bytes.clone(),
                    media_type: top.media_type.clone(),
                    digest: top.digest.clone(),
                };
                (child, Some(info), Some(wanted))
            }
        };
        let ManifestKind::Image(manifest) = &image.kind else {
            return Err(RegistryError::Manifest {
                what: format!("manifest {repo}@{}", image.digest),
                registry: ep.registry.clone(),
                problem: Malformed::NotAnImage,
            });
        };
        let mut blobs = vec![manifest.config.clone()];
        blobs.extend(manifest.layers.iter().cloned());
        // On the first failure the other downloads stop and discard what
        // they wrote; all have finished when this returns, so a failed pull
        // leaves no half-written blob behind.
        let cancel = AtomicBool::new(false);
        let results: Vec<Result<Option<Digest>>> = futures_util::stream::iter(blobs.iter())
            .map(|d| async {
                let r = self.download_blob(ep, repo, d, sink, events, &cancel).await;
                if r.is_err() {
                    cancel.store(true, Ordering::Relaxed);
                }
                r
            })
            .buffer_unordered(self.options.download_concurrency.max(1))
            .collect()
            .await;
        let downloaded: Vec<Option<Digest>> = results.into_iter().collect::<Result<_>>()?;
        // The manifest goes last: a sink holding it holds the whole image.
        if !sink.has(&image.digest) {
            write_bytes(sink, &image.bytes, &image.digest).await?;
        }
        for d in &blobs {
            cache.record(&ep.registry, &d.digest, repo);
        }
        Ok(PulledImage {
            reference: reference.with_digest(image.digest.clone()),
            served_by: ep.registry.clone(),
            manifest_bytes: image.bytes.clone(),
            manifest_media_type: image.media_type.clone(),
            manifest_digest: image.digest.clone(),
            config_digest: manifest.config.digest.clone(),
            config: manifest.config.clone(),
            layers: manifest.layers.clone(),
            index,
            platform: chosen,
            downloaded: downloaded.into_iter().flatten().collect(),
        })
    }

    /// Downloads one blob into the sink unless it is there already.
    /// Returns its digest if it was downloaded.
    pub(crate) async fn download_blob(
        &self,
        ep: &Endpoint,
        repo: &str,
        desc: &Descriptor,
        sink: &dyn BlobSink,
        events: &Events,
        cancel: &AtomicBool,
    ) -> Result<Option<Digest>> {
        let digest = &desc.digest;
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if sink.has(digest) {
            let _ = events.send(TransferEvent::Skipped {
                digest: digest.clone(),
                size: desc.size,
                reason: SkipReason::Cached,
            });
            return Ok(None);
        }
        let what = || format!("blob {digest}");
        let url = ep.url(&format!("/v2/{repo}/blobs/{digest}"));
        let _ = events.send(TransferEvent::Started {
            digest: digest.clone(),
            size: desc.size,
        });
        let mut attempts = self.options.retry.attempts();
        loop {
            let resp = self
                .send(ep, &Scope::pull(repo), &what, &|c| c.get(&url))
                .await?;
            if !resp.status().is_success() {
                return Err(http_error(what(), &ep.registry, resp).await);
            }
            if let Some(n) = resp.content_length()
                && n != desc.size
            {
                return Err(RegistryError::SizeMismatch {
                    what: what(),
                    registry: ep.registry.clone(),
                    expected: desc.size,
                    actual: n,
                });
            }
            let writer = sink.writer().map_err(|e| {
                RegistryError::io(format!("opening a sink writer for {}", what()), e)
            })?;
            let pipe = SinkPipe::new(writer);
            let mut stream = resp.bytes_stream();
            let mut got = 0u64;
            let mut failure = None;
            while let Some(item) = stream.next().await {
                if cancel.load(Ordering::Relaxed) {
                    pipe.abort().await;
                    return Ok(None);
                }
                match item {
                    Ok(chunk) => {
                        got += chunk.len() as u64;
                        if got > desc.size {
                            pipe.abort().await;
                            return Err(RegistryError::SizeMismatch {
                                what: what(),
                                registry: ep.registry.clone(),
                                expected: desc.size,
                                actual: got,
                            });
                        }
                        if pipe.send(chunk).await.is_err() {
                            // The writer thread stopped: finish() reports why.
                            break;
                        }
                        let _ = events.send(TransferEvent::Progress {
                            digest: digest.clone(),
                            done: got,
                            size: desc.size,
                        });
                    }
                    Err(e) => {
                        failure = Some((error_chain(&e), classify(&e)));
                        break;
                    }
                }
            }
            if let Some((message, why)) = failure {
                pipe.abort().await;
                if cancel.load(Ordering::Relaxed) {
                    // Another download failed: its error is the pull's.
                    return Ok(None);
                }
                if why == Failure::Transient
                    && let Some(n) = attempts.fail()
                {
                    let _ = events.send(TransferEvent::Retrying {
                        digest: digest.clone(),
                        attempt: n,
                        resume_at: 0,
                        reason: message,
                    });
                    attempts.pause(None).await;
                    continue;
                }
                let tries = match attempts.failures() {
                    n if n > 1 && why == Failure::Transient => {
                        format!(" (gave up after {n} attempts)")
                    }
                    _ => String::new(),
                };
                return Err(RegistryError::Transport {
                    what: what(),
                    registry: ep.registry.clone(),
                    message: format!(
                        "download broke off after {got} of {} bytes: {message}{tries}",
                        desc.size
                    ),
                });
            }
            let (writer, actual, n) = pipe
                .finish()
                .await
                .map_err(|e| RegistryError::io(format!("writing {} to the store", what()), e))?;
            if n != desc.size {
                return Err(RegistryError::SizeMismatch {
                    what: what(),
                    registry: ep.registry.clone(),
                    expected: desc.size,
                    actual: n,
                });
            }
            if &actual != digest {
                return Err(RegistryError::DigestMismatch {
                    what: what(),
                    registry: ep.registry.clone(),
                    expected: digest.clone(),
                    actual,
                });
            }
            commit(writer, digest.clone())
                .await
                .map_err(|e| RegistryError::io(format!("storing {}", what()), e))?;
            let _ = events.send(TransferEvent::Done {
                digest: digest.clone(),
                size: desc.size,
            });
            return Ok(Some(digest.clone()));
        }
    }
}

async fn commit(
    writer: Box<dyn crate::registry::BlobWrite>,
    digest: Digest,
) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || writer.commit(&digest))
        .await
        .map_err(|e| std::io::Error::other(format!("blob commit thread failed: {e}")))?
}

async fn write_bytes(sink: &dyn BlobSink, bytes: &[u8], digest: &Digest) -> Result<()> {
    let ctx = || format!("storing manifest {digest}");
    let mut w = sink.writer().map_err(|e| RegistryError::io(ctx(), e))?;
    w.write_all(bytes)
        .map_err(|e| RegistryError::io(ctx(), e))?;
    commit(w, digest.clone())
        .await
        .map_err(|e| RegistryError::io(ctx(), e))
}

//! Push: per blob HEAD, else a cross-repository mount from a repository the
//! blob-info cache names, else an upload (one streamed PUT for small blobs,
//! PATCH chunks with resume for large ones); blobs in parallel; the manifest
//! last, and only when every blob is there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{StreamExt as _, TryStreamExt as _};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};

use crate::digest::Digest;
use crate::media::Descriptor;
use crate::registry::blob_cache::BlobInfoCache;
use crate::registry::bridge::reader_body;
use crate::registry::error::{RegistryError, Result};
use crate::registry::http::{Retry, with_query};
use crate::registry::pull::Events;
use crate::registry::reference::Reference;
use crate::registry::remote::resolve_location;
use crate::registry::transport::{Endpoint, Scope, SendOnce, Transport, http_error};
use crate::registry::{BlobSource, SkipReason, TransferEvent};

/// How one blob reached the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Existed,
    Mounted,
    Uploaded,
}

/// A failed upload request: whether trying again can help.
enum Attempt {
    /// Connection failure or a retryable status: recover and retry.
    Transient(String),
    Fatal(RegistryError),
}

impl Transport {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn push(
        &self,
        cache: &BlobInfoCache,
        source: &dyn BlobSource,
        target: &Reference,
        manifest_bytes: &[u8],
        media_type: &str,
        blobs: &[Descriptor],
        events: &Events,
    ) -> Result<Digest> {
        let digest = Digest::of(manifest_bytes);
        if let Some(d) = target.digest()
            && *d != digest
        {
            return Err(RegistryError::Invalid(format!(
                "{target} names digest {d} but the manifest bytes hash to {digest}"
            )));
        }
        let ep = self.endpoint(target.registry()).await?;
        let repo = target.repository();
        // Each distinct blob once (a config can equal a layer in odd images).
        let mut unique: Vec<&Descriptor> = Vec::new();
        for b in blobs {
            if !unique.iter().any(|u| u.digest == b.digest) {
                unique.push(b);
            }
        }
        futures_util::stream::iter(unique.iter())
            .map(|d| self.push_blob(&ep, cache, source, repo, d, events))
            .buffer_unordered(self.options.upload_concurrency.max(1))
            .try_collect::<Vec<Outcome>>()
            .await?;
        for b in &unique {
            cache.record(&ep.registry, &b.digest, repo);
        }
        // A tag if there is one, else by digest.
        let put_as = target
            .tag()
            .map(str::to_string)
            .unwrap_or_else(|| digest.to_string());
        let pushed = self
            .put_manifest(&ep, repo, &put_as, manifest_bytes, media_type)
            .await?;
        tracing::info!(target = %target, digest = %pushed, "pushed");
        Ok(pushed)
    }

    async fn push_blob(
        &self,
        ep: &Endpoint,
        cache: &BlobInfoCache,
        source: &dyn BlobSource,
        repo: &str,
        desc: &Descriptor,
        events: &Events,
    ) -> Result<Outcome> {
        let digest = &desc.digest;
        if self.blob_exists(ep, repo, digest).await? {
            let _ = events.send(TransferEvent::Skipped {
                digest: digest.clone(),
                size: desc.size,
                reason: SkipReason::Exists,
            });
            return Ok(Outcome::Existed);
        }
        let mut session = None;
        let from = cache
            .repositories(&ep.registry, digest)
            .into_iter()
            .find(|r| r != repo);
        if let Some(from) = from {
            match self.try_mount(ep, repo, &from, digest).await? {
                MountResult::Mounted => {
                    let _ = events.send(TransferEvent::Skipped {
                        digest: digest.clone(),
                        size: desc.size,
                        reason: SkipReason::Mounted { from },
                    });
                    return Ok(Outcome::Mounted);
                }
                // 202: the registry opened an upload session instead; use it.
                MountResult::Session(loc) => session = Some(loc),
                MountResult::Refused => {}
            }
        }
        let size = source
            .size(digest)
            .map_err(|e| RegistryError::io(format!("reading blob {digest} from the store"), e))?;
        if size != desc.size {
            return Err(RegistryError::Invalid(format!(
                "blob {digest} is {size} bytes in the store but the manifest says {}",
                desc.size
            )));
        }
        let _ = events.send(TransferEvent::Started {
            digest: digest.clone(),
            size,
        });
        if size <= self.options.monolithic_max {
            self.upload_monolithic(ep, source, repo, desc, session, events)
                .await?;
        } else {
            self.upload_chunked(ep, source, repo, desc, session, events)
                .await?;
        }
        let _ = events.send(TransferEvent::Done {
            digest: digest.clone(),
            size,
        });
        Ok(Outcome::Uploaded)
    }

    async fn blob_exists(&self, ep: &Endpoint, repo: &str, digest: &Digest) -> Result<bool> {
        let what = || format!("blob {digest} check");
        let url = ep.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send(ep, &Scope::push(repo), &what, &|c| c.head(&url))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(http_error(what(), &ep.registry, resp).await),
        }
    }

    async fn try_mount(
        &self,
        ep: &Endpoint,
        repo: &str,
        from: &str,
        digest: &Digest,
    ) -> Result<MountResult> {
        let what = || format!("blob {digest} mount from {from}");
        let url = with_query(
            &ep.url(&format!("/v2/{repo}/blobs/uploads/")),
            &[("mount", &digest.to_string()), ("from", from)],
        )?;
        let resp = match self
            .send(ep, &Scope::mount(repo, from), &what, &|c| {
                c.post(&url).header(CONTENT_LENGTH, 0)
            })
            .await
        {
            Ok(r) => r,
            // No pull access to the source repository: just upload.
            Err(RegistryError::Unauthorized { .. }) => return Ok(MountResult::Refused),
            Err(e) => return Err(e),
        };
        match resp.status() {
            StatusCode::CREATED => {
                tracing::debug!(%digest, from, repo, "mounted");
                Ok(MountResult::Mounted)
            }
            StatusCode::ACCEPTED => {
                Ok(location(ep, &resp).map_or(MountResult::Refused, MountResult::Session))
            }
            s => {
                tracing::debug!(%digest, from, status = s.as_u16(), "mount refused; uploading");
                Ok(MountResult::Refused)
            }
        }
    }

    /// Opens an upload session; returns its URL.
    async fn start_upload(&self, ep: &Endpoint, repo: &str, digest: &Digest) -> Result<String> {
        let what = || format!("blob {digest} upload start");
        let url = ep.url(&format!("/v2/{repo}/blobs/uploads/"));
        let resp = self
            .send(ep, &Scope::push(repo), &what, &|c| {
                c.post(&url).header(CONTENT_LENGTH, 0)
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(http_error(what(), &ep.registry, resp).await);
        }
        location(ep, &resp).ok_or_else(|| RegistryError::Http {
            what: what(),
            registry: ep.registry.clone(),
            status: 202,
            detail: ": no Location header in the answer".into(),
        })
    }

    /// One streamed PUT of the whole blob; on failure, a new session and again.
    async fn upload_monolithic(
        &self,
        ep: &Endpoint,
        source: &dyn BlobSource,
        repo: &str,
        desc: &Descriptor,
        mut session: Option<String>,
        events: &Events,
    ) -> Result<()> {
        let digest = &desc.digest;
        let mut attempts = self.options.retry.attempts();
        loop {
            let loc = match session.take() {
                Some(l) => l,
                None => self.start_upload(ep, repo, digest).await?,
            };
            let url = with_query(&loc, &[("digest", &digest.to_string())])?;
            let reader = source.open(digest).map_err(|e| {
                RegistryError::io(format!("reading blob {digest} from the store"), e)
            })?;
            let body = reader_body(reader, desc.size, progress_fn(events, digest, 0, desc.size));
            let req = ep
                .client
                .put(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, desc.size)
                .body(body);
            match self
                .send_upload(ep, repo, req, &format!("blob {digest} upload"))
                .await
            {
                Ok(resp) if resp.status() == StatusCode::CREATED => return Ok(()),
                // Statuses that can heal came back as `Attempt::Transient`.
                Ok(resp) => {
                    return Err(
                        http_error(format!("blob {digest} upload"), &ep.registry, resp).await,
                    );
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Transient(m)) => match attempts.fail() {
                    None => return Err(self.gave_up(ep, digest, &m, attempts.failures())),
                    Some(n) => {
                        note_retry(events, digest, n, 0, &m);
                        attempts.pause(None).await;
                    }
                },
            }
        }
    }

    /// PATCH chunks of `chunk_size`; after a failure, ask the registry how
    /// much it has (`GET` the session, `Range: 0-N`) and go on from there, or
    /// start a new session if it lost the old one.
    async fn upload_chunked(
        &self,
        ep: &Endpoint,
        source: &dyn BlobSource,
        repo: &str,
        desc: &Descriptor,
        session: Option<String>,
        events: &Events,
    ) -> Result<()> {
        let digest = &desc.digest;
        let size = desc.size;
        let what = format!("blob {digest} upload");
        let mut loc = match session {
            Some(l) => l,
            None => self.start_upload(ep, repo, digest).await?,
        };
        let mut offset = 0u64;
        // One budget of attempts for the whole blob, not per chunk.
        let mut attempts = self.options.retry.attempts();
        while offset < size {
            let end = (offset + self.options.chunk_size).min(size);
            let reader = source.open_at(digest, offset).map_err(|e| {
                RegistryError::io(format!("reading blob {digest} from the store"), e)
            })?;
            let body = reader_body(
                reader,
                end - offset,
                progress_fn(events, digest, offset, size),
            );
            let req = ep
                .client
                .patch(&loc)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header("Content-Range", format!("{offset}-{}", end - 1))
                .header(CONTENT_LENGTH, end - offset)
                .body(body);
            let failure = match self.send_upload(ep, repo, req, &what).await {
                Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                    match location(ep, &resp) {
                        Some(l) => loc = l,
                        None => {
                            return Err(RegistryError::Http {
                                what,
                                registry: ep.registry.clone(),
                                status: 202,
                                detail: ": no Location header in the answer to a chunk".into(),
                            });
                        }
                    }
                    offset = end;
                    continue;
                }
                Ok(resp) => {
                    let status = resp.status();
                    let e = http_error(what.clone(), &ep.registry, resp).await;
                    // 416: the registry has a different offset than we think; ask it.
                    if !Retry::status_can_heal(status)
                        && status != StatusCode::RANGE_NOT_SATISFIABLE
                    {
                        return Err(e);
                    }
                    e.to_string()
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Transient(m)) => m,
            };
            if attempts.fail().is_none() {
                return Err(self.gave_up(ep, digest, &failure, attempts.failures()));
            }
            attempts.pause(None).await;
            match self.upload_status(ep, repo, &loc, digest).await? {
                Some((l, have)) if have <= size => {
                    loc = l;
                    offset = have;
                }
                _ => {
                    loc = self.start_upload(ep, repo, digest).await?;
                    offset = 0;
                }
            }
            note_retry(events, digest, attempts.failures(), offset, &failure);
        }
        // Close the session with the digest; an empty PUT may be retried.
        let url = with_query(&loc, &[("digest", &digest.to_string())])?;
        let w = || format!("blob {digest} upload completion");
        let resp = self
            .send(ep, &Scope::push(repo), &w, &|c| {
                c.put(&url).header(CONTENT_LENGTH, 0)
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(()),
            // A retried PUT after a lost answer finds the session gone.
            StatusCode::NOT_FOUND if self.blob_exists(ep, repo, digest).await? => Ok(()),
            _ => Err(http_error(w(), &ep.registry, resp).await),
        }
    }

    /// Sends one upload request once (its body cannot be replayed; the
    /// caller re-creates it for the next attempt).
    async fn send_upload(
        &self,
        ep: &Endpoint,
        repo: &str,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response, Attempt> {
        match self.send_once(ep, &Scope::push(repo), what, req).await {
            Ok(SendOnce::Response(r)) if Retry::status_can_heal(r.status()) => {
                let status = r.status().as_u16();
                let detail = crate::registry::transport::error_detail(r).await;
                Err(Attempt::Transient(format!("HTTP {status}{detail}")))
            }
            Ok(SendOnce::Response(r)) => Ok(r),
            Ok(SendOnce::Failed(m)) => Err(Attempt::Transient(m)),
            Ok(SendOnce::Reauthenticated) => Err(Attempt::Transient("token renewed".into())),
            Err(e) => Err(Attempt::Fatal(e)),
        }
    }

    /// `GET` on an upload session: its new URL and how many bytes it has,
    /// or `None` if the registry no longer knows it.
    async fn upload_status(
        &self,
        ep: &Endpoint,
        repo: &str,
        loc: &str,
        digest: &Digest,
    ) -> Result<Option<(String, u64)>> {
        let what = || format!("blob {digest} upload status");
        let resp = match self
            .send(ep, &Scope::push(repo), &what, &|c| c.get(loc))
            .await
        {
            Ok(r) => r,
            Err(RegistryError::Transport { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if resp.status() != StatusCode::NO_CONTENT {
            tracing::debug!(%digest, status = resp.status().as_u16(), "upload session lost; starting over");
            return Ok(None);
        }
        let have = resp
            .headers()
            .get("Range")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_range_end);
        let l = location(ep, &resp).unwrap_or_else(|| loc.to_string());
        Ok(have.map(|h| (l, h)))
    }

    fn gave_up(&self, ep: &Endpoint, digest: &Digest, last: &str, attempts: u32) -> RegistryError {
        // Keep the HTTP status visible when the last failure was one.
        if let Some(rest) = last.strip_prefix("HTTP ")
            && let Some(code) = rest.get(..3).and_then(|c| c.parse::<u16>().ok())
        {
            return RegistryError::Http {
                what: format!("blob {digest} upload"),
                registry: ep.registry.clone(),
                status: code,
                detail: format!("{} (gave up after {attempts} attempts)", &rest[3..]),
            };
        }
        if let Some(i) = last.find(": HTTP ")
            && let Some(code) = last.get(i + 7..i + 10).and_then(|c| c.parse::<u16>().ok())
        {
            return RegistryError::Http {
                what: format!("blob {digest} upload"),
                registry: ep.registry.clone(),
                status: code,
                detail: format!("{} (gave up after {attempts} attempts)", &last[i + 10..]),
            };
        }
        RegistryError::Transport {
            what: format!("blob {digest} upload"),
            registry: ep.registry.clone(),
            message: format!("{last} (gave up after {attempts} attempts)"),
        }
    }
}

/// Reports a failed upload attempt that will be retried from `resume_at`.
fn note_retry(events: &Events, digest: &Digest, attempt: u32, resume_at: u64, reason: &str) {
    tracing::debug!(%digest, attempt, resume_at, reason, "upload failed; retrying");
    let _ = events.send(TransferEvent::Retrying {
        digest: digest.clone(),
        attempt,
        resume_at,
        reason: reason.to_string(),
    });
}

enum MountResult {
    Mounted,
    Session(String),
    Refused,
}

fn location(ep: &Endpoint, resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| resolve_location(ep, l))
}

/// Bytes held, from an upload status `Range: 0-N` (N is the last byte's
/// offset). Distribution answers `0-0` for an empty session too; treating it
/// as empty costs at most one byte resent.
fn parse_range_end(h: &str) -> Option<u64> {
    let h = h.trim().strip_prefix("bytes=").unwrap_or(h.trim());
    let (start, end) = h.split_once('-')?;
    let (start, end) = (start.parse::<u64>().ok()?, end.parse::<u64>().ok()?);
    if start != 0 {
        return None;
    }
    Some(if end == 0 { 0 } else { end + 1 })
}

fn progress_fn(
    events: &Events,
    digest: &Digest,
    start: u64,
    size: u64,
) -> impl Fn(u64) + Send + Sync + 'static {
    let events = events.clone();
    let digest = digest.clone();
    let done = Arc::new(AtomicU64::new(start));
    move |n| {
        let d = done.fetch_add(n, Ordering::Relaxed) + n;
        let _ = events.send(TransferEvent::Progress {
            digest: digest.clone(),
            done: d,
            size,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ranges() {
        assert_eq!(parse_range_end("0-0"), Some(0));
        assert_eq!(parse_range_end("0-1023"), Some(1024));
        assert_eq!(parse_range_end("bytes=0-9"), Some(10));
        assert_eq!(parse_range_end("5-9"), None);
        assert_eq!(parse_range_end("x"), None);
    }
}

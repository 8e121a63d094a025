//! Remote image management: manifests (fetch, HEAD, DELETE, copy a tag
//! server-side), tag lists and the catalog, with `Link` pagination.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LINK};

use crate::digest::Digest;
use crate::image::ManifestKind;
use crate::registry::error::{DigestHeaderError, Malformed, RegistryError, Result};
use crate::registry::manifest;
use crate::registry::reference::Reference;
use crate::registry::transport::{Endpoint, Scope, Transport, http_error};

/// Largest manifest accepted (distribution's own limit is 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;

/// A manifest or index as the registry served it.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchedManifest {
    /// The exact bytes (their sha256 is `digest`).
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
    pub kind: ManifestKind,
}

pub(crate) fn docker_content_digest(
    resp: &reqwest::Response,
) -> Option<std::result::Result<Digest, DigestHeaderError>> {
    resp.headers()
        .get("Docker-Content-Digest")
        .map(|v| Ok(v.to_str()?.parse::<Digest>()?))
}

/// Resolves a `Location` header (absolute or relative) against the endpoint.
pub(crate) fn resolve_location(ep: &Endpoint, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        loc.to_string()
    } else if loc.starts_with('/') {
        format!("{}{loc}", ep.base)
    } else {
        format!("{}/{loc}", ep.base)
    }
}

impl Transport {
    /// GETs the manifest `reference_str` (tag or digest) of `repo`, checks
    /// its digest (against `expected`, else the `Docker-Content-Digest`
    /// header) and parses it.
    pub(crate) async fn get_manifest(
        &self,
        ep: &Endpoint,
        repo: &str,
        reference_str: &str,
        expected: Option<&Digest>,
    ) -> Result<FetchedManifest> {
        let what = || format!("manifest {repo}:{reference_str}");
        let url = ep.url(&format!("/v2/{repo}/manifests/{reference_str}"));
        let resp = self
            .send(ep, &Scope::pull(repo), &what, &|c| {
                c.get(&url).header(ACCEPT, manifest::ACCEPT)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(http_error(what(), &ep.registry, resp).await);
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let header_digest = docker_content_digest(&resp);
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST as u64)
        {
            return Err(RegistryError::Manifest {
                what: what(),
                registry: ep.registry.clone(),
                problem: Malformed::TooLarge {
                    limit: MAX_MANIFEST,
                },
            });
        }
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Transport {
            what: what(),
            registry: ep.registry.clone(),
            message: crate::registry::transport::error_chain(&e),
        })?;
        if bytes.len() > MAX_MANIFEST {
            return Err(RegistryError::Manifest {
                what: what(),
                registry: ep.registry.clone(),
                problem: Malformed::TooLarge {
                    limit: MAX_MANIFEST,
                },
            });
        }
        let digest = Digest::of(&bytes);
        let want = match (expected, header_digest) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(Ok(d))) => Some(d),
            (None, Some(Err(e))) => {
                return Err(RegistryError::Manifest {
                    what: what(),
                    registry: ep.registry.clone(),
                    problem: Malformed::DigestHeader(e),
                });
            }
            (None, None) => None,
        };
        if let Some(want) = want
            && want != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: what(),
                registry: ep.registry.clone(),
                expected: want,
                actual: digest,
            });
        }
        let (kind, media_type) =
            manifest::parse(&bytes, content_type.as_deref()).map_err(|problem| {
                RegistryError::Manifest {
                    what: what(),
                    registry: ep.registry.clone(),
                    problem,
                }
            })?;
        Ok(FetchedManifest {
            bytes: bytes.to_vec(),
            media_type,
            digest,
            kind,
        })
    }

    /// HEADs a manifest: its digest, or `None` if the registry does not have it.
    pub(crate) async fn head_manifest(&self, r: &Reference) -> Result<Option<Digest>> {
        let ep = self.endpoint(r.registry()).await?;
        let repo = r.repository();
        let mref = r.manifest_reference();
        let what = || format!("manifest {repo}:{mref}");
        let url = ep.url(&format!("/v2/{repo}/manifests/{mref}"));
        let resp = self
            .send(&ep, &Scope::pull(repo), &what, &|c| {
                c.head(&url).header(ACCEPT, manifest::ACCEPT)
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => match docker_content_digest(&resp) {
                Some(Ok(d)) => Ok(Some(d)),
                // No header: only a GET can tell.
                _ => Ok(Some(
                    self.get_manifest(&ep, repo, &mref, r.digest())
                        .await?
                        .digest,
                )),
            },
            _ => Err(http_error(what(), &ep.registry, resp).await),
        }
    }

    /// PUTs manifest bytes under `tag_or_digest`; returns the registry's digest.
    pub(crate) async fn put_manifest(
        &self,
        ep: &Endpoint,
        repo: &str,
        tag_or_digest: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest> {
        let what = || format!("manifest {repo}:{tag_or_digest} upload");
        let url = ep.url(&format!("/v2/{repo}/manifests/{tag_or_digest}"));
        let body = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .send(ep, &Scope::push(repo), &what, &|c| {
                c.put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(http_error(what(), &ep.registry, resp).await);
        }
        let ours = Digest::of(bytes);
        if let Some(Ok(theirs)) = docker_content_digest(&resp)
            && theirs != ours
        {
            return Err(RegistryError::DigestMismatch {
                what: what(),
                registry: ep.registry.clone(),
                expected: ours,
                actual: theirs,
            });
        }
        Ok(ours)
    }

    /// Deletes the manifest `digest` of `repo` (registries delete by digest only).
    pub(crate) async fn delete_manifest(&self, r: &Reference) -> Result<()> {
        let digest = r.digest().ok_or_else(|| {
            RegistryError::Invalid(format!(
                "{r}: registries delete manifests by digest; write NAME@sha256:…"
            ))
        })?;
        let ep = self.endpoint(r.registry()).await?;
        let repo = r.repository();
        let what = || format!("deleting manifest {repo}@{digest}");
        let url = ep.url(&format!("/v2/{repo}/manifests/{digest}"));
        let resp = self
            .send(&ep, &Scope::delete(repo), &what, &|c| c.delete(&url))
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status();
        let mut e = http_error(what(), &ep.registry, resp).await;
        if status == StatusCode::METHOD_NOT_ALLOWED
            && let RegistryError::Http { detail, .. } = &mut e
        {
            detail.push_str(" (the registry has deletes disabled)");
        }
        Err(e)
    }

    /// All pages of a list endpoint (`/v2/_catalog` or `/tags/list`), following `Link`.
    pub(crate) async fn list_paged(
        &self,
        ep: &Endpoint,
        scope: &Scope,
        first: String,
        field: &str,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 10_000 {
                return Err(RegistryError::Invalid(format!(
                    "{field} list of {} does not end",
                    ep.registry
                )));
            }
            let what = || format!("{field} list");
            let resp = self.send(ep, scope, &what, &|c| c.get(&url)).await?;
            if !resp.status().is_success() {
                return Err(http_error(what(), &ep.registry, resp).await);
            }
            next = resp
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_next_link)
                .map(|l| resolve_location(ep, &l));
            let body = resp.bytes().await.map_err(|e| RegistryError::Transport {
                what: what(),
                registry: ep.registry.clone(),
                message: crate::registry::transport::error_chain(&e),
            })?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Manifest {
                    what: what(),
                    registry: ep.registry.clone(),
                    problem: Malformed::NotJson(e),
                })?;
            // A repository without tags answers `"tags": null`.
            if let Some(items) = v.get(field).and_then(|t| t.as_array()) {
                out.extend(items.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
        }
        Ok(out)
    }
}

/// The URL of `rel="next"` in a `Link` header.
fn parse_next_link(h: &str) -> Option<String> {
    h.split(',').find_map(|part| {
        let part = part.trim();
        let (url, params) = part.strip_prefix('<')?.split_once('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links() {
        assert_eq!(
            parse_next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            parse_next_link(r#"<http://x/a>; rel="prev", <http://x/b>; rel=next"#).as_deref(),
            Some("http://x/b")
        );
        assert_eq!(parse_next_link(r#"<http://x/a>; rel="prev""#), None);
    }
}

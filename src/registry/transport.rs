//! HTTP to registries: one reqwest client per TLS setting (built by
//! `http`), the scheme each host is spoken to with (HTTPS, plain HTTP, or
//! HTTPS then plain HTTP as `RegistriesConfig::schemes` allows, probed once
//! per host), requests that authenticate as the host demands (see `auth`),
//! and retries under the one [`Retry`] policy.
//!
//! Written on reqwest rather than the `oci-client` crate:
//! oci-client holds whole blobs in memory on push, sends fixed 4 MiB chunks
//! with no per-chunk retry, turns a 202 answer to a cross-repo mount into an
//! error and asks a token only for the target repository's scope, has no
//! DELETE, does not read `~/.docker/config.json`, and silently falls back to
//! defaults on a bad config. The distribution API is a dozen endpoints.
//!
//! Secrets: tokens and Authorization headers live only in [`Secret`]s and
//! request headers marked sensitive; nothing here logs a header.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::registry::challenge::Challenge;
use crate::registry::config::{RegistriesConfig, Schemes};
use crate::registry::credentials::CredentialStore;
use crate::registry::error::{RegistryError, Result};
use crate::registry::http::{ClientSpec, Failure, Retry, build_client, classify, is_loopback};
use crate::registry::reference::api_host;
use crate::registry::secret::{Credential, Secret};

pub(crate) use crate::registry::http::error_chain;

/// Tunables of a [`crate::registry::Registry`] client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// When and how often failed requests are tried again (5xx, 408, 429
    /// and connection failures; never a 401, a 404 or a TLS/HTTP mismatch).
    pub retry: Retry,
    /// Blobs uploaded at once.
    pub upload_concurrency: usize,
    /// Blobs downloaded at once.
    pub download_concurrency: usize,
    /// Blobs up to this size go up in one streamed PUT; larger ones in chunks.
    pub monolithic_max: u64,
    /// Size of one PATCH chunk of a chunked upload.
    pub chunk_size: u64,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer (not a whole transfer).
    pub read_timeout: Duration,
    /// `Some(false)`: do not verify TLS certificates for this client
    /// (`--tls-verify=false`); `Some(true)` forces verification even where the
    /// config disables it; `None` follows the config.
    pub tls_verify: Option<bool>,
    /// The blob-info cache file; `None` keeps it in memory only.
    pub blob_info_cache: Option<PathBuf>,
    /// Entries asked per page of tag and catalog lists (`?n=`); `None`
    /// leaves it to the registry.
    pub page_size: Option<usize>,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        let http = ClientSpec::default();
        ClientOptions {
            retry: Retry::default(),
            upload_concurrency: 4,
            download_concurrency: 4,
            // A failed chunk costs at most this much to resend; one blob of up
            // to this size is one request.
            monolithic_max: 32 << 20,
            chunk_size: 32 << 20,
            connect_timeout: http.connect_timeout,
            read_timeout: http.read_timeout,
            tls_verify: None,
            blob_info_cache: crate::registry::blob_cache::default_path(),
            page_size: None,
            user_agent: http.user_agent,
        }
    }
}

/// Where requests to one registry host go.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// The registry name as in references (`docker.io`), for messages and the cache.
    pub registry: String,
    /// The API host (`registry-1.docker.io`).
    pub host: String,
    /// `https://host` or `http://host`.
    pub base: String,
    pub client: reqwest::Client,
}

impl Endpoint {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// The access a request needs, as token scopes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Scope(pub(crate) Vec<String>);

impl Scope {
    pub fn pull(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull")])
    }
    pub fn push(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:pull,push")])
    }
    /// Push to `repo` plus pull from `from`, for a cross-repository mount.
    pub fn mount(repo: &str, from: &str) -> Scope {
        let mut v = vec![
            format!("repository:{repo}:pull,push"),
            format!("repository:{from}:pull"),
        ];
        v.sort();
        Scope(v)
    }
    pub fn delete(repo: &str) -> Scope {
        Scope(vec![format!("repository:{repo}:delete,pull")])
    }
    pub fn catalog() -> Scope {
        Scope(vec!["registry:catalog:*".to_string()])
    }
    pub fn none() -> Scope {
        Scope(Vec::new())
    }
}

/// The result of [`Transport::send_once`].
pub(crate) enum SendOnce {
    Response(Response),
    /// The connection failed (message).
    Failed(String),
    /// The registry asked for (new) credentials, which are now in place.
    Reauthenticated,
}

#[derive(Default)]
pub(crate) struct HostAuth {
    /// The challenge the host sent, once it sent one.
    pub(crate) challenge: Option<Challenge>,
    /// Loaded on the first challenge.
    pub(crate) credential: Option<Option<Credential>>,
    pub(crate) tokens: HashMap<Scope, (Secret, Instant)>,
}

/// The shared HTTP machinery of a client.
pub(crate) struct Transport {
    pub config: RegistriesConfig,
    pub credentials: CredentialStore,
    pub options: ClientOptions,
    clients: Mutex<HashMap<ClientSpec, reqwest::Client>>,
    /// The scheme found to work for each host that may be spoken to with
    /// either (`Schemes::HttpsThenHttp`), once probed.
    schemes: Mutex<HashMap<String, &'static str>>,
    /// Serialises probes, so parallel requests to a new host probe it once.
    probe: tokio::sync::Mutex<()>,
    pub(crate) auth: Mutex<HashMap<String, HostAuth>>,
    /// Serialises token requests, so parallel blob transfers that need the
    /// same scope ask the token server once.
    pub(crate) token_fetch: tokio::sync::Mutex<()>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent
    // (plain map inserts), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Transport {
    pub fn new(
        config: RegistriesConfig,
        credentials: CredentialStore,
        options: ClientOptions,
    ) -> Transport {
        Transport {
            config,
            credentials,
            options,
            clients: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
            probe: tokio::sync::Mutex::new(()),
            auth: Mutex::new(HashMap::new()),
            token_fetch: tokio::sync::Mutex::new(()),
        }
    }

    /// The endpoint serving `registry`'s API (or a mirror's, given its
    /// host), with the scheme the host is spoken to with: probed with one
    /// `GET /v2/` the first time when HTTPS and plain HTTP are both allowed.
    pub async fn endpoint(&self, registry: &str) -> Result<Endpoint> {
        let host = api_host(registry).to_string();
        let client = self.client(registry, &host)?;
        let scheme = match self.config.schemes(registry, self.options.tls_verify) {
            Schemes::Https => "https",
            Schemes::Http => "http",
            Schemes::HttpsThenHttp => self.probe_scheme(registry, &host, &client).await?,
        };
        Ok(Endpoint {
            registry: registry.to_string(),
            base: format!("{scheme}://{host}"),
            host,
            client,
        })
    }

    /// The HTTP client for `registry` (served by `host`): its CAs, whether
    /// it verifies certificates, and no proxy for a loopback host.
    pub fn client(&self, registry: &str, host: &str) -> Result<reqwest::Client> {
        let mut ca_files = self.config.ca_files.clone();
        if let Some(s) = self.config.settings(registry) {
            ca_files.extend(s.ca_files.iter().cloned());
        }
        let spec = ClientSpec {
            ca_files,
            verify: self.config.verifies_tls(registry, self.options.tls_verify),
            // A plain-HTTP-only client never needs the system roots.
            roots: self.config.schemes(registry, self.options.tls_verify) != Schemes::Http,
            direct: is_loopback(host),
            connect_timeout: self.options.connect_timeout,
            read_timeout: self.options.read_timeout,
            idle_per_host: self
                .options
                .upload_concurrency
                .max(self.options.download_concurrency)
                + 2,
            user_agent: self.options.user_agent.clone(),
        };
        if let Some(c) = lock(&self.clients).get(&spec) {
            return Ok(c.clone());
        }
        let c = build_client(&spec)?;
        lock(&self.clients).insert(spec, c.clone());
        Ok(c)
    }

    /// Finds whether `host` speaks HTTPS or plain HTTP, as podman does: HTTPS
    /// first; plain HTTP when that finds a plain-HTTP server or none at all.
    /// Any HTTP answer (401 included) settles it. An untrusted certificate
    /// means a TLS server is there: an error, never a downgrade.
    async fn probe_scheme(
        &self,
        registry: &str,
        host: &str,
        client: &reqwest::Client,
    ) -> Result<&'static str> {
        if let Some(s) = lock(&self.schemes).get(host) {
            return Ok(s);
        }
        let _one_at_a_time = self.probe.lock().await;
        if let Some(s) = lock(&self.schemes).get(host) {
            return Ok(s);
        }
        let what = || "API check (/v2/)".to_string();
        let mut attempts = self.options.retry.attempts();
        let scheme = loop {
            let https = match client.get(format!("https://{host}/v2/")).send().await {
                Ok(_) => break "https",
                Err(e) => e,
            };
            let why = classify(&https);
            if matches!(why, Failure::Certificate | Failure::Permanent) {
                return Err(request_failed(registry, what(), &https, why, 0));
            }
            match client.get(format!("http://{host}/v2/")).send().await {
                Ok(_) => {
                    tracing::debug!(registry, "no TLS server there; speaking plain HTTP");
                    break "http";
                }
                Err(e) => {
                    let why = classify(&e);
                    if why == Failure::Transient && attempts.fail().is_some() {
                        tracing::debug!(registry, error = %error_chain(&https), "registry unreachable; retrying");
                        attempts.pause(None).await;
                        continue;
                    }
                    return Err(request_failed(
                        registry,
                        what(),
                        &https,
                        why,
                        attempts.failures(),
                    ));
                }
            }
        };
        lock(&self.schemes).insert(host.to_string(), scheme);
        Ok(scheme)
    }

    /// Sends a request built by `build` (called again for each attempt),
    /// authenticating as the host demands and retrying on 5xx, 408, 429
    /// and connection failures (so only for requests that can be replayed).
    ///
    /// Returns the response for any final status (the caller interprets
    /// 404s and the like); fails only when the host cannot be reached or
    /// refuses the credentials.
    pub async fn send(
        &self,
        ep: &Endpoint,
        scope: &Scope,
        what: &dyn Fn() -> String,
        build: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let mut attempts = self.options.retry.attempts();
        let mut authed_after_challenge = false;
        loop {
            let auth = self.auth_header(ep, scope).await?;
            let sent_auth = auth.is_some();
            let rb = authorize(build(&ep.client), auth.as_ref())?;
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    let why = classify(&e);
                    if why == Failure::Transient && attempts.fail().is_some() {
                        tracing::debug!(what = %what(), registry = %ep.registry, attempt = attempts.failures(), error = %error_chain(&e), "request failed; retrying");
                        attempts.pause(None).await;
                        continue;
                    }
                    return Err(request_failed(
                        &ep.registry,
                        what(),
                        &e,
                        why,
                        attempts.failures(),
                    ));
                }
            };
            let status = resp.status();
            tracing::trace!(what = %what(), registry = %ep.registry, status = status.as_u16(), "response");
            if status == StatusCode::UNAUTHORIZED {
                // Not a retry: the first 401 tells which credentials to
                // send; a second means they were refused.
                if !authed_after_challenge && self.on_challenge(ep, &resp, sent_auth).await? {
                    authed_after_challenge = true;
                    continue;
                }
                return Err(self.unauthorized(ep, resp).await);
            }
            if Retry::status_can_heal(status) && attempts.fail().is_some() {
                let wait = super::http::retry_after(resp.headers());
                tracing::debug!(what = %what(), registry = %ep.registry, status = status.as_u16(), attempt = attempts.failures(), "retryable status; retrying");
                drop(resp);
                attempts.pause(wait).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Sends `rb` exactly once with current auth. A 401 records the
    /// challenge and answers [`SendOnce::Reauthenticated`] (unless the same
    /// credentials were just refused), so the caller can rebuild the body.
    pub async fn send_once(
        &self,
        ep: &Endpoint,
        scope: &Scope,
        what: &str,
        rb: RequestBuilder,
    ) -> Result<SendOnce> {
        let auth = self.auth_header(ep, scope).await?;
        let sent_auth = auth.is_some();
        match authorize(rb, auth.as_ref())?.send().await {
            Err(e) => {
                let why = classify(&e);
                if why != Failure::Transient {
                    return Err(request_failed(&ep.registry, what.to_string(), &e, why, 0));
                }
                let m = error_chain(&e);
                tracing::debug!(what, registry = %ep.registry, error = %m, "request failed");
                Ok(SendOnce::Failed(m))
            }
            Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                if self.on_challenge(ep, &r, sent_auth).await? {
                    Ok(SendOnce::Reauthenticated)
                } else {
                    Err(self.unauthorized(ep, r).await)
                }
            }
            Ok(r) => Ok(SendOnce::Response(r)),
        }
    }
}

/// The error for a request that got no answer, by what [`classify`] made
/// of it; `failures` counts the failed attempts (said for transient
/// failures, which were retried until the attempts were used up).
pub(crate) fn request_failed(
    registry: &str,
    what: String,
    e: &reqwest::Error,
    why: Failure,
    failures: u32,
) -> RegistryError {
    let message = error_chain(e);
    match why {
        Failure::PlainHttp => RegistryError::PlainHttp {
            registry: registry.to_string(),
        },
        Failure::Certificate => RegistryError::Transport {
            what,
            registry: registry.to_string(),
            message: format!(
                "{message}; trust its CA with ca_files in registries.toml, or use --tls-verify=false"
            ),
        },
        Failure::Transient if failures > 1 => RegistryError::Transport {
            what,
            registry: registry.to_string(),
            message: format!("{message} (gave up after {failures} attempts)"),
        },
        Failure::Transient | Failure::Permanent => RegistryError::Transport {
            what,
            registry: registry.to_string(),
            message,
        },
    }
}

/// Adds the Authorization header, marked sensitive so that no layer below
/// prints it.
pub(crate) fn authorize(rb: RequestBuilder, auth: Option<&Secret>) -> Result<RequestBuilder> {
    let Some(h) = auth else { return Ok(rb) };
    let mut v = HeaderValue::from_str(h.expose()).map_err(|_| {
        RegistryError::Invalid("credential contains characters not allowed in a header".into())
    })?;
    v.set_sensitive(true);
    Ok(rb.header(AUTHORIZATION, v))
}

/// `": CODE message"` from a registry's JSON error body, or a short plain body.
pub(crate) async fn error_detail(resp: Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(body) = resp.bytes().await else {
        return String::new();
    };
    if let Ok(e) = serde_json::from_slice::<Errors>(&body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|i| format!("{} {}", i.code, i.message).trim().to_string())
            .collect();
        if !parts.is_empty() {
            return format!(": {}", one_line(&parts.join("; ")));
        }
    }
    let text = String::from_utf8_lossy(&body);
    let text = one_line(text.trim());
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 200 {
        s.chars().take(200).collect::<String>() + "…"
    } else {
        s
    }
}

/// The error for a final non-success status.
pub(crate) async fn http_error(what: String, registry: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let detail = error_detail(resp).await;
    RegistryError::Http {
        what,
        registry: registry.to_string(),
        status,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(
            Scope::mount("a/b", "c").0,
            ["repository:a/b:pull,push", "repository:c:pull"]
        );
        assert_eq!(Scope::delete("a").0, ["repository:a:delete,pull"]);
    }

    #[test]
    fn clients_are_shared_per_setting() {
        let t = Transport::new(
            RegistriesConfig::default().insecure("plain.corp:5000"),
            CredentialStore::with_files(vec![], PathBuf::from("/nonexistent")),
            ClientOptions::default(),
        );
        t.client("a.corp", "a.corp").unwrap();
        t.client("b.corp", "b.corp").unwrap();
        t.client("plain.corp:5000", "plain.corp:5000").unwrap();
        t.client("127.0.0.1:5000", "127.0.0.1:5000").unwrap();
        // Verified HTTPS via proxies, plain HTTP, and loopback (no proxy).
        assert_eq!(lock(&t.clients).len(), 3);
    }
}

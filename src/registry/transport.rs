//! HTTP to registries: one reqwest client per TLS setting, requests that
//! authenticate as the host demands (see `auth`) and retries with
//! exponential backoff and jitter.
//!
//! Written on reqwest rather than the `oci-client` crate (see DESIGN.md):
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
use crate::registry::config::RegistriesConfig;
use crate::registry::credentials::CredentialStore;
use crate::registry::error::{RegistryError, Result};
use crate::registry::reference::api_host;
use crate::registry::secret::{Credential, Secret};

/// Tunables of a [`crate::registry::Registry`] client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Tries per request (1 = no retry) for 5xx, 408, 429 and connection failures.
    pub max_attempts: u32,
    /// First backoff delay; doubles per retry, with jitter.
    pub backoff_base: Duration,
    /// Upper bound of one backoff delay.
    pub backoff_max: Duration,
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
        ClientOptions {
            max_attempts: 5,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            upload_concurrency: 4,
            download_concurrency: 4,
            // A failed chunk costs at most this much to resend; one blob of up
            // to this size is one request.
            monolithic_max: 32 << 20,
            chunk_size: 32 << 20,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            tls_verify: None,
            blob_info_cache: crate::registry::blob_cache::default_path(),
            page_size: None,
            user_agent: format!("boxwright/{}", env!("CARGO_PKG_VERSION")),
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

/// What distinguishes HTTP clients: extra CAs, verify, plain HTTP, loopback.
type ClientKey = (Vec<PathBuf>, bool, bool, bool);

/// The shared HTTP machinery of a client.
pub(crate) struct Transport {
    pub config: RegistriesConfig,
    pub credentials: CredentialStore,
    pub options: ClientOptions,
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
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
            auth: Mutex::new(HashMap::new()),
            token_fetch: tokio::sync::Mutex::new(()),
        }
    }

    /// The endpoint serving `registry`'s API (or a mirror's, given its host).
    pub fn endpoint(&self, registry: &str) -> Result<Endpoint> {
        let host = api_host(registry).to_string();
        let settings = self.config.settings(registry);
        let plain = settings.is_some_and(|s| s.insecure);
        let verify = self
            .options
            .tls_verify
            .unwrap_or_else(|| settings.and_then(|s| s.tls_verify).unwrap_or(true));
        let mut cas = self.config.ca_files.clone();
        if let Some(s) = settings {
            cas.extend(s.ca_files.iter().cloned());
        }
        let loopback = is_loopback(&host);
        let key = (cas, verify, plain, loopback);
        let client = {
            let mut clients = lock(&self.clients);
            match clients.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let c = self.build_client(&key.0, verify, plain, loopback)?;
                    clients.insert(key, c.clone());
                    c
                }
            }
        };
        let scheme = if plain { "http" } else { "https" };
        Ok(Endpoint {
            registry: registry.to_string(),
            base: format!("{scheme}://{host}"),
            host,
            client,
        })
    }

    fn build_client(
        &self,
        cas: &[PathBuf],
        verify: bool,
        plain: bool,
        loopback: bool,
    ) -> Result<reqwest::Client> {
        let tls = crate::registry::tls::client_config(cas, verify, !plain)?;
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(self.options.user_agent.clone())
            .connect_timeout(self.options.connect_timeout)
            .read_timeout(self.options.read_timeout)
            .pool_max_idle_per_host(
                self.options
                    .upload_concurrency
                    .max(self.options.download_concurrency)
                    + 2,
            )
            .tcp_nodelay(true)
            // Registries redirect blob GETs to storage; reqwest drops the
            // Authorization header when a redirect leaves the host.
            .redirect(reqwest::redirect::Policy::limited(10));
        if loopback {
            // A registry on this machine is never reached through a proxy,
            // whatever HTTP(S)_PROXY and NO_PROXY say.
            b = b.no_proxy();
        }
        b.build()
            .map_err(|e| RegistryError::Invalid(format!("HTTP client set-up: {}", error_chain(&e))))
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
        let attempts = self.options.max_attempts.max(1);
        let mut attempt = 0;
        let mut authed_after_challenge = false;
        loop {
            attempt += 1;
            let auth = self.auth_header(ep, scope).await?;
            let sent_auth = auth.is_some();
            let rb = authorize(build(&ep.client), auth.as_ref())?;
            let result = rb.send().await;
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let message = error_chain(&e);
                    // A certificate problem does not go away by retrying.
                    if message.contains("invalid peer certificate") {
                        return Err(RegistryError::Transport {
                            what: what(),
                            registry: ep.registry.clone(),
                            message: format!(
                                "{message}; trust its CA with ca_files in registries.toml, or use --tls-verify=false"
                            ),
                        });
                    }
                    if attempt < attempts && !e.is_builder() {
                        tracing::debug!(what = %what(), registry = %ep.registry, attempt, error = %message, "request failed; retrying");
                        tokio::time::sleep(self.backoff(attempt, None)).await;
                        continue;
                    }
                    return Err(RegistryError::Transport {
                        what: what(),
                        registry: ep.registry.clone(),
                        message: if attempts > 1 {
                            format!("{message} (gave up after {attempt} attempts)")
                        } else {
                            message
                        },
                    });
                }
            };
            let status = resp.status();
            tracing::trace!(what = %what(), registry = %ep.registry, status = status.as_u16(), "response");
            if status == StatusCode::UNAUTHORIZED {
                if !authed_after_challenge && self.on_challenge(ep, &resp, sent_auth).await? {
                    authed_after_challenge = true;
                    attempt -= 1;
                    continue;
                }
                return Err(self.unauthorized(ep, resp).await);
            }
            if is_retryable(status) && attempt < attempts {
                let wait = self.backoff(attempt, retry_after(&resp));
                tracing::debug!(what = %what(), registry = %ep.registry, status = status.as_u16(), attempt, "retryable status; retrying");
                drop(resp);
                tokio::time::sleep(wait).await;
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

    /// The delay before retry number `attempt` (1-based): exponential with
    /// jitter in [d/2, d], or what the registry asked for in `Retry-After`.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.options.backoff_max);
        }
        let exp = self
            .options
            .backoff_base
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16));
        let d = exp.min(self.options.backoff_max);
        let half = d / 2;
        half + Duration::from_nanos(fastrand::u64(0..=half.as_nanos() as u64))
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

fn is_loopback(host: &str) -> bool {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']').map(|(a, _)| a))
        .unwrap_or_else(|| host.rsplit_once(':').map_or(host, |(h, _)| h));
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(crate) fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

pub(crate) fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// An error and its causes on one line (reqwest's Display hides the cause).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s.replace('\n', " ")
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

pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Appends `k=v` pairs to a URL that may already have a query.
pub(crate) fn append_query(url: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return url.to_string();
    }
    let q = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{q}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let t = Transport::new(
            RegistriesConfig::default(),
            CredentialStore::with_files(vec![], PathBuf::from("/nonexistent")),
            ClientOptions {
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(1),
                ..Default::default()
            },
        );
        for _ in 0..50 {
            let d1 = t.backoff(1, None);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = t.backoff(3, None);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d10 = t.backoff(10, None);
            assert!(
                d10 >= Duration::from_millis(500) && d10 <= Duration::from_secs(1),
                "{d10:?}"
            );
        }
        assert_eq!(
            t.backoff(1, Some(Duration::from_secs(60))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn loopback_hosts_and_retryable_statuses() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry-1.docker.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
        for s in [500, 502, 503, 408, 429] {
            assert!(is_retryable(StatusCode::from_u16(s).unwrap()));
        }
        for s in [400, 401, 403, 404, 405, 416] {
            assert!(!is_retryable(StatusCode::from_u16(s).unwrap()));
        }
    }

    #[test]
    fn scopes_and_queries() {
        assert_eq!(
            Scope::mount("a/b", "c").0,
            ["repository:a/b:pull,push", "repository:c:pull"]
        );
        assert_eq!(
            append_query("http://t/token?x=1", &[("scope", "repository:a:pull,push")]),
            "http://t/token?x=1&scope=repository%3Aa%3Apull%2Cpush"
        );
    }
}

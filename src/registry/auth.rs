//! Registry authentication: answering `WWW-Authenticate` challenges with
//! Basic credentials or Bearer tokens (fetched per scope from the realm,
//! cached until shortly before they expire), and verifying a login.
//!
//! Secrets stay in [`Secret`]s; nothing here logs a header, a token or a
//! token server's answer.

use std::time::{Duration, Instant};

use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Response, StatusCode};

use crate::registry::challenge::{self, Challenge};
use crate::registry::error::{Malformed, RegistryError, Result};
use crate::registry::http::{Failure, Retry, classify, form_body, with_query};
use crate::registry::secret::{Credential, Secret};
use crate::registry::transport::{
    Endpoint, Scope, Transport, authorize, error_chain, error_detail, http_error, lock,
    request_failed,
};

impl Transport {
    /// The Authorization header value to send, if the host asked for auth before.
    pub(super) async fn auth_header(&self, ep: &Endpoint, scope: &Scope) -> Result<Option<Secret>> {
        let (challenge, credential) = {
            let mut auth = lock(&self.auth);
            let Some(h) = auth.get_mut(&ep.host) else {
                return Ok(None);
            };
            let Some(ch) = h.challenge.clone() else {
                return Ok(None);
            };
            if let Some((tok, expiry)) = h.tokens.get(scope)
                && *expiry > Instant::now()
            {
                return Ok(Some(Secret::new(format!("Bearer {}", tok.expose()))));
            }
            (ch, h.credential.clone().flatten())
        };
        match challenge {
            Challenge::Basic => Ok(credential.as_ref().and_then(Credential::basic_header)),
            Challenge::Bearer { realm, service, .. } => {
                let _one_at_a_time = self.token_fetch.lock().await;
                let cached = lock(&self.auth)
                    .get(&ep.host)
                    .and_then(|h| h.tokens.get(scope).cloned())
                    .filter(|(_, expiry)| *expiry > Instant::now());
                if let Some((tok, _)) = cached {
                    return Ok(Some(Secret::new(format!("Bearer {}", tok.expose()))));
                }
                let (tok, ttl) = self
                    .fetch_token(ep, &realm, service.as_deref(), scope, credential.as_ref())
                    .await?;
                let mut auth = lock(&self.auth);
                if let Some(h) = auth.get_mut(&ep.host) {
                    h.tokens
                        .insert(scope.clone(), (tok.clone(), Instant::now() + ttl));
                }
                Ok(Some(Secret::new(format!("Bearer {}", tok.expose()))))
            }
        }
    }

    /// Records a 401's challenge. Returns whether a retry can now
    /// authenticate: always when the refused request carried no credentials
    /// (it was sent before the challenge was known, perhaps concurrently
    /// with the one that learnt it); for Basic, never when it did (the
    /// credentials were refused); for Bearer, after dropping cached tokens
    /// (one may have expired).
    pub(super) async fn on_challenge(
        &self,
        ep: &Endpoint,
        resp: &Response,
        sent_auth: bool,
    ) -> Result<bool> {
        let header = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let challenges = challenge::parse(&header);
        let Some(ch) = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or_else(|| challenges.first())
            .cloned()
        else {
            return Ok(false);
        };
        let known = lock(&self.auth)
            .get(&ep.host)
            .and_then(|h| h.credential.clone());
        let credential = match known {
            Some(c) => c,
            None => {
                let c = self.credentials.get(&ep.registry, None)?;
                if c.is_none() && ep.registry != ep.host {
                    self.credentials.get(&ep.host, None)?
                } else {
                    c
                }
            }
        };
        {
            let mut auth = lock(&self.auth);
            let h = auth.entry(ep.host.clone()).or_default();
            if sent_auth || h.challenge.as_ref() != Some(&ch) {
                h.tokens.clear();
            }
            h.challenge = Some(ch.clone());
            h.credential = Some(credential.clone());
        }
        Ok(match ch {
            Challenge::Basic => credential.is_some() && !sent_auth,
            Challenge::Bearer { .. } => true,
        })
    }

    pub(super) async fn unauthorized(&self, ep: &Endpoint, resp: Response) -> RegistryError {
        let detail = error_detail(resp).await;
        let cred = lock(&self.auth)
            .get(&ep.host)
            .and_then(|h| h.credential.clone().flatten());
        match cred {
            Some(c) => RegistryError::Unauthorized {
                registry: ep.registry.clone(),
                user: format!(" of user '{}'", c.username()),
                message: format!(
                    "HTTP 401{detail}; check the password (boxwright login {})",
                    ep.registry
                ),
            },
            None => RegistryError::Unauthorized {
                registry: ep.registry.clone(),
                user: String::new(),
                message: format!(
                    "HTTP 401{detail}; no credentials found for it: run boxwright login {}",
                    ep.registry
                ),
            },
        }
    }

    /// Gets a Bearer token from the realm for `scope`.
    async fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
        credential: Option<&Credential>,
    ) -> Result<(Secret, Duration)> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let token_client = self.realm_client(realm)?;
        let what = || {
            format!(
                "token for {}",
                if scope.0.is_empty() {
                    "login".to_string()
                } else {
                    scope.0.join(" ")
                }
            )
        };
        let mut attempts = self.options.retry.attempts();
        let resp = loop {
            let rb = match credential {
                Some(Credential::IdentityToken(refresh)) => {
                    let joined = scope.0.join(" ");
                    let mut form = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.expose()),
                        ("client_id", "boxwright"),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s));
                    }
                    if !scope.0.is_empty() {
                        form.push(("scope", &joined));
                    }
                    token_client
                        .post(realm)
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(form_body(&form))
                }
                other => {
                    let mut q: Vec<(&str, &str)> = Vec::new();
                    if let Some(s) = service {
                        q.push(("service", s));
                    }
                    for s in &scope.0 {
                        q.push(("scope", s));
                    }
                    let url = with_query(realm, &q)?;
                    authorize(
                        token_client.get(url),
                        other.and_then(Credential::basic_header).as_ref(),
                    )?
                }
            };
            match rb.send().await {
                Ok(r) if Retry::status_can_heal(r.status()) && attempts.fail().is_some() => {
                    let wait = super::http::retry_after(r.headers());
                    drop(r);
                    attempts.pause(wait).await;
                }
                Ok(r) => break r,
                Err(e) => {
                    let why = classify(&e);
                    if why == Failure::Transient && attempts.fail().is_some() {
                        tracing::debug!(error = %error_chain(&e), "token request failed; retrying");
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
            }
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = error_detail(resp).await;
            return Err(RegistryError::Unauthorized {
                registry: ep.registry.clone(),
                user: credential
                    .map(|c| format!(" of user '{}'", c.username()))
                    .unwrap_or_default(),
                message: format!(
                    "token server answered HTTP {}{detail}; check the password (boxwright login {})",
                    status.as_u16(),
                    ep.registry
                ),
            });
        }
        if !status.is_success() {
            return Err(http_error(what(), &ep.registry, resp).await);
        }
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Transport {
            what: what(),
            registry: ep.registry.clone(),
            message: error_chain(&e),
        })?;
        let answer: TokenAnswer =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Manifest {
                what: what(),
                registry: ep.registry.clone(),
                problem: Malformed::TokenNotJson(e),
            })?;
        let token =
            answer
                .token
                .or(answer.access_token)
                .ok_or_else(|| RegistryError::Manifest {
                    what: what(),
                    registry: ep.registry.clone(),
                    problem: Malformed::NoToken,
                })?;
        // Refresh a little early; the spec's default lifetime is 60 s.
        let ttl = Duration::from_secs(answer.expires_in.unwrap_or(60).max(10) - 5);
        Ok((Secret::new(token), ttl))
    }

    /// The client for a token realm: the realm's URL says its scheme, its
    /// host's registries.toml entry (if any) its CAs.
    fn realm_client(&self, realm: &str) -> Result<reqwest::Client> {
        let url = reqwest::Url::parse(realm).map_err(|e| {
            RegistryError::Invalid(format!("token realm '{realm}' is not a URL ({e})"))
        })?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        self.client(&host, &host)
    }

    /// Checks credentials against `registry` by authenticating at its `/v2/`.
    pub async fn verify_login(&self, registry: &str, credential: &Credential) -> Result<()> {
        let ep = self.endpoint(registry).await?;
        let what = || format!("login to {registry}");
        let resp = self
            .send(&ep, &Scope::none(), &what, &|c| c.get(ep.url("/v2/")))
            .await;
        // The first answer tells us the scheme; authenticate with the given
        // credential (not the stored one) and see if the registry accepts it.
        let challenge = match resp {
            Ok(r) if r.status().is_success() => {
                let h = lock(&self.auth)
                    .get(&ep.host)
                    .and_then(|h| h.challenge.clone());
                match h {
                    Some(c) => c,
                    // The registry needs no auth: nothing to verify against.
                    None => return Ok(()),
                }
            }
            Ok(r) => return Err(http_error(what(), registry, r).await),
            Err(RegistryError::Unauthorized { .. }) => lock(&self.auth)
                .get(&ep.host)
                .and_then(|h| h.challenge.clone())
                .ok_or_else(|| RegistryError::Unauthorized {
                    registry: registry.to_string(),
                    user: String::new(),
                    message: "HTTP 401 without a usable WWW-Authenticate challenge".into(),
                })?,
            Err(e) => return Err(e),
        };
        match challenge {
            Challenge::Bearer { realm, service, .. } => {
                self.fetch_token(
                    &ep,
                    &realm,
                    service.as_deref(),
                    &Scope::none(),
                    Some(credential),
                )
                .await?;
            }
            Challenge::Basic => {
                let h = credential.basic_header().ok_or_else(|| {
                    RegistryError::Invalid(format!(
                        "{registry} wants a user name and password, not a token"
                    ))
                })?;
                let r = authorize(ep.client.get(ep.url("/v2/")), Some(&h))?
                    .send()
                    .await
                    .map_err(|e| request_failed(registry, what(), &e, classify(&e), 0))?;
                if r.status() == StatusCode::UNAUTHORIZED {
                    let detail = error_detail(r).await;
                    return Err(RegistryError::Unauthorized {
                        registry: registry.to_string(),
                        user: format!(" of user '{}'", credential.username()),
                        message: format!("HTTP 401{detail}; check the user name and password"),
                    });
                }
                if !r.status().is_success() {
                    return Err(http_error(what(), registry, r).await);
                }
            }
        }
        // Use the new credential from now on.
        let mut auth = lock(&self.auth);
        let h = auth.entry(ep.host.clone()).or_default();
        h.credential = Some(Some(credential.clone()));
        h.tokens.clear();
        Ok(())
    }
}

//! A fault-injecting HTTP proxy for registry tests, in front of a real
//! registry on 127.0.0.1. It logs requests (method, path, arrival time),
//! and by rule answers with an error status (and headers such as
//! `Retry-After`), drops the connection after part of a request body,
//! delays, rewrites, trickles or cuts off response bodies. It can also
//! act as a Bearer-token gateway (a token endpoint plus 401 challenges), so
//! that the token flow runs against the real registry behind it.
//!
//! As an HTTP(S) proxy (`HTTP_PROXY`/`HTTPS_PROXY` pointing at it), it
//! forwards absolute-form requests for any host to the registry, and
//! tunnels every `CONNECT` to the registry's port: a client then reaches the
//! registry by a name that is not loopback, such as `registry.test.invalid`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};

/// What a matching rule does.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer with this status (and a registry-style JSON error) without forwarding.
    Status(u16),
    /// Like [`Action::Status`], with these headers too (`Retry-After: 1`).
    StatusWithHeaders(u16, Vec<(String, String)>),
    /// Read this many request-body bytes, then close the connection without
    /// forwarding anything (the registry never sees the request).
    DropAfter(u64),
    /// Wait, then forward normally.
    Delay(Duration),
    /// Forward, then replace the response body (dropping Docker-Content-Digest).
    ReplaceBody(Vec<u8>),
    /// Forward, send the headers (original Content-Length) and only this many
    /// body bytes, then close the connection.
    CutResponse(u64),
    /// Forward, then send the body `chunk` bytes at a time, each after
    /// `pause` (a slow or congested server).
    SlowBody { chunk: usize, pause: Duration },
}

#[derive(Clone, Debug)]
struct Rule {
    method: Option<String>,
    path_contains: String,
    remaining: usize,
    action: Action,
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    /// 0 when no answer was sent (connection dropped by a rule, or the
    /// client gave up while the proxy was delaying).
    pub status: u16,
    pub request_bytes: u64,
    /// When the request arrived (for the gap between a request and its retry).
    pub at: Instant,
    /// The same moment by the system clock (to compare with an HTTP-date).
    pub wall: SystemTime,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<Logged>,
    bearer: Option<Bearer>,
}

struct Bearer {
    user: String,
    pass: String,
    token: String,
    /// The scopes of each token request.
    scopes: Vec<String>,
}

type Body = BoxBody<Bytes, std::io::Error>;

/// The proxy, serving on 127.0.0.1 until dropped.
pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to the registry on 127.0.0.1:`upstream_port`.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .tls_backend_preconfigured(
                        rustls::ClientConfig::builder_with_provider(Arc::new(
                            rustls::crypto::ring::default_provider(),
                        ))
                        .with_safe_default_protocol_versions()
                        .expect("tls versions")
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                    )
                    .build()
                    .expect("proxy upstream client");
                let ctx = Arc::new(Ctx {
                    state: st,
                    client,
                    upstream: format!("http://127.0.0.1:{upstream_port}"),
                    me: format!("http://127.0.0.1:{port}"),
                });
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let ctx = ctx.clone();
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req| {
                                    let ctx = ctx.clone();
                                    async move { ctx.handle(req).await }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                    .with_upgrades()
                                    .await;
                            });
                        }
                    }
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        FaultProxy {
            port,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Applies `action` to the next `times` requests whose method is
    /// `method` (any if `None`) and whose path contains `path_contains`.
    pub fn add_rule(
        &self,
        method: Option<&str>,
        path_contains: &str,
        times: usize,
        action: Action,
    ) {
        self.lock().rules.push(Rule {
            method: method.map(str::to_string),
            path_contains: path_contains.to_string(),
            remaining: times,
            action,
        });
    }

    pub fn clear_rules(&self) {
        self.lock().rules.clear();
    }

    pub fn log(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// Requests seen that satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&Logged) -> bool) -> usize {
        self.lock().log.iter().filter(|l| pred(l)).count()
    }

    /// Turns on the Bearer gateway: `/token` grants `token` to `user:pass`
    /// (Basic), and every `/v2/` request needs `Authorization: Bearer token`.
    pub fn enable_bearer(&self, user: &str, pass: &str, token: &str) {
        self.lock().bearer = Some(Bearer {
            user: user.into(),
            pass: pass.into(),
            token: token.into(),
            scopes: Vec::new(),
        });
    }

    /// The scope lists of the token requests made so far.
    pub fn token_scopes(&self) -> Vec<String> {
        self.lock()
            .bearer
            .as_ref()
            .map(|b| b.scopes.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Ctx {
    state: Arc<Mutex<State>>,
    client: reqwest::Client,
    upstream: String,
    me: String,
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|e: Infallible| match e {})
        .boxed()
}

fn error_json(code: &str, msg: &str) -> String {
    format!(r#"{{"errors":[{{"code":"{code}","message":"{msg}"}}]}}"#)
}

impl Ctx {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs a request on arrival (status 0 until answered); returns its index.
    fn arrive(&self, method: &str, path: &str, query: &str) -> usize {
        let mut st = self.lock();
        st.log.push(Logged {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            status: 0,
            request_bytes: 0,
            at: Instant::now(),
            wall: SystemTime::now(),
        });
        st.log.len() - 1
    }

    fn record(&self, idx: usize, status: u16, request_bytes: u64) {
        if let Some(l) = self.lock().log.get_mut(idx) {
            l.status = status;
            l.request_bytes = request_bytes;
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Body>, std::io::Error> {
        let method = req.method().to_string();
        if req.method() == hyper::Method::CONNECT {
            return Ok(self.tunnel(req));
        }
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let idx = self.arrive(&method, &path, &query);

        if let Some(resp) = self.bearer_gate(&req, &method, &path, &query) {
            let status = resp.status().as_u16();
            self.record(idx, status, 0);
            return Ok(resp);
        }

        let action = {
            let mut st = self.lock();
            st.rules
                .iter_mut()
                .find(|r| {
                    r.remaining > 0
                        && r.method.as_deref().is_none_or(|m| m == method)
                        && path.contains(&r.path_contains)
                })
                .map(|r| {
                    r.remaining -= 1;
                    r.action.clone()
                })
        };
        let (parts, mut body) = req.into_parts();
        match &action {
            Some(Action::Status(code)) | Some(Action::StatusWithHeaders(code, _)) => {
                let mut n = 0u64;
                while let Some(Ok(f)) = body.frame().await {
                    n += f.data_ref().map_or(0, |d| d.len() as u64);
                }
                self.record(idx, *code, n);
                let mut out = Response::builder()
                    .status(*code)
                    .header("Content-Type", "application/json");
                if let Some(Action::StatusWithHeaders(_, headers)) = &action {
                    for (k, v) in headers {
                        out = out.header(k, v);
                    }
                }
                return Ok(out
                    .body(full(error_json(
                        "INJECTED",
                        "fault injected by the test proxy",
                    )))
                    .expect("response"));
            }
            Some(Action::DropAfter(limit)) => {
                let mut n = 0u64;
                while n < *limit {
                    match body.frame().await {
                        Some(Ok(f)) => n += f.data_ref().map_or(0, |d| d.len() as u64),
                        _ => break,
                    }
                }
                self.record(idx, 0, n);
                return Err(std::io::Error::other(
                    "connection dropped by the test proxy",
                ));
            }
            Some(Action::Delay(d)) => tokio::time::sleep(*d).await,
            _ => {}
        }
        let body_bytes = body
            .collect()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .to_bytes();
        let request_bytes = body_bytes.len() as u64;

        let url = if query.is_empty() {
            format!("{}{path}", self.upstream)
        } else {
            format!("{}{path}?{query}", self.upstream)
        };
        let mut up = self.client.request(parts.method.clone(), &url);
        let gated = self.lock().bearer.is_some();
        for (k, v) in parts.headers.iter() {
            let name = k.as_str();
            if matches!(
                name,
                "host" | "content-length" | "connection" | "transfer-encoding"
            ) || (gated && name == "authorization")
            {
                continue;
            }
            up = up.header(k, v);
        }
        let resp = match up.body(body_bytes).send().await {
            Ok(r) => r,
            Err(e) => {
                self.record(idx, 502, request_bytes);
                return Ok(Response::builder()
                    .status(502)
                    .body(full(format!("upstream failed: {e}")))
                    .expect("response"));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let data = resp
            .bytes()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.record(idx, status.as_u16(), request_bytes);

        let mut out = Response::builder().status(status);
        let is_head = method == "HEAD";
        for (k, v) in headers.iter() {
            let name = k.as_str();
            if matches!(name, "connection" | "transfer-encoding") {
                continue;
            }
            if name == "content-length" && !is_head {
                continue;
            }
            if name == "docker-content-digest" && matches!(action, Some(Action::ReplaceBody(_))) {
                continue;
            }
            if name == "location" {
                let l = v.to_str().unwrap_or("").replace(&self.upstream, &self.me);
                out = out.header(k, l);
                continue;
            }
            out = out.header(k, v);
        }
        let body = match action {
            Some(Action::ReplaceBody(b)) => full(b),
            Some(Action::CutResponse(n)) => {
                out = out.header("content-length", data.len());
                let cut = data.slice(..(n as usize).min(data.len()));
                // Let the headers and the first part reach the client before
                // the connection breaks.
                let frames = futures_util::stream::unfold(0u8, move |step| {
                    let cut = cut.clone();
                    async move {
                        match step {
                            0 => Some((Ok(Frame::data(cut)), 1)),
                            1 => {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                Some((
                                    Err(std::io::Error::other(
                                        "response cut off by the test proxy",
                                    )),
                                    2,
                                ))
                            }
                            _ => None,
                        }
                    }
                });
                StreamBody::new(frames).boxed()
            }
            Some(Action::SlowBody { chunk, pause }) => {
                out = out.header("content-length", data.len());
                let chunk = chunk.max(1);
                let frames = futures_util::stream::unfold(0usize, move |at| {
                    let data = data.clone();
                    async move {
                        if at >= data.len() {
                            return None;
                        }
                        tokio::time::sleep(pause).await;
                        let end = (at + chunk).min(data.len());
                        Some((Ok(Frame::data(data.slice(at..end))), end))
                    }
                });
                StreamBody::new(frames).boxed()
            }
            _ => full(data),
        };
        Ok(out.body(body).expect("response"))
    }

    /// Answers a `CONNECT` (logged with the authority asked for as its
    /// path) and pipes the connection to the registry, whatever it asked for.
    fn tunnel(&self, req: Request<Incoming>) -> Response<Body> {
        let authority = req.uri().to_string();
        let idx = self.arrive("CONNECT", &authority, "");
        self.record(idx, 200, 0);
        let upstream = self.upstream.trim_start_matches("http://").to_string();
        let upgrade = hyper::upgrade::on(req);
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let Ok(mut tcp) = tokio::net::TcpStream::connect(&upstream).await else {
                return;
            };
            let mut client = hyper_util::rt::TokioIo::new(upgraded);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut tcp).await;
        });
        Response::new(full(Bytes::new()))
    }

    /// The gateway's answer when it handles the request itself.
    fn bearer_gate(
        &self,
        req: &Request<Incoming>,
        _method: &str,
        path: &str,
        query: &str,
    ) -> Option<Response<Body>> {
        let mut st = self.lock();
        let b = st.bearer.as_mut()?;
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if path == "/token" {
            use base64::Engine as _;
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", b.user, b.pass))
            );
            if auth != want {
                return Some(
                    Response::builder()
                        .status(StatusCode::UNAUTHORIZED)
                        .body(full(error_json("UNAUTHORIZED", "bad credentials")))
                        .expect("response"),
                );
            }
            let scopes: Vec<String> = query
                .split('&')
                .filter_map(|kv| kv.strip_prefix("scope="))
                .map(|s| {
                    s.replace("%3A", ":")
                        .replace("%2C", ",")
                        .replace("%2F", "/")
                })
                .collect();
            b.scopes.push(scopes.join(" "));
            return Some(
                Response::builder()
                    .header("Content-Type", "application/json")
                    .body(full(format!(
                        r#"{{"token":"{}","expires_in":300}}"#,
                        b.token
                    )))
                    .expect("response"),
            );
        }
        if path.starts_with("/v2") && auth != format!("Bearer {}", b.token) {
            let scope = scope_for(path);
            return Some(
                Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header(
                        "WWW-Authenticate",
                        format!(
                            r#"Bearer realm="{}/token",service="fault-proxy",scope="{scope}""#,
                            self.me
                        ),
                    )
                    .body(full(error_json("UNAUTHORIZED", "authentication required")))
                    .expect("response"),
            );
        }
        None
    }
}

fn scope_for(path: &str) -> String {
    if path.starts_with("/v2/_catalog") {
        return "registry:catalog:*".into();
    }
    let rest = path.trim_start_matches("/v2/");
    for marker in ["/manifests/", "/blobs/", "/tags/"] {
        if let Some(i) = rest.find(marker) {
            return format!("repository:{}:pull,push", &rest[..i]);
        }
    }
    String::new()
}

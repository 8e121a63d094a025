//! The routes of `serve` (documented in `web/openapi.json`, which a test
//! checks against [`ROUTES`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use futures_util::stream::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::AppState;
use super::assets;
use super::form::BuildForm;

/// Every route: method and path (axum's `{param}` syntax), as OpenAPI lists them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/openapi.json"),
    ("GET", "/api/images"),
    ("DELETE", "/api/images"),
    ("GET", "/api/images/default"),
    ("POST", "/api/images/default"),
    ("POST", "/api/images/clone"),
    ("GET", "/api/catalog"),
    ("GET", "/api/catalog/packages"),
    ("GET", "/api/builds"),
    ("POST", "/api/builds"),
    ("GET", "/api/builds/{id}"),
    ("DELETE", "/api/builds/{id}"),
    ("GET", "/api/builds/{id}/events"),
    ("GET", "/api/builds/{id}/log"),
    ("GET", "/api/sandboxes"),
    ("POST", "/api/sandboxes/{name}/fork"),
];

type St = State<Arc<AppState>>;

pub(super) fn router(state: Arc<AppState>) -> Router {
    // `same_origin_json` only wraps the methods a route has, so an
    // undeclared method is a 405 (with Allow), whatever its body.
    let g = |m: MethodRouter<Arc<AppState>>| m.route_layer(middleware::from_fn(same_origin_json));
    let api = Router::new()
        .route("/api/openapi.json", g(get(openapi)))
        .route("/api/images", g(get(images).delete(delete_image)))
        .route(
            "/api/images/default",
            g(get(show_default).post(set_default)),
        )
        .route("/api/images/clone", g(post(clone_image)))
        .route("/api/catalog", g(get(catalog)))
        .route("/api/catalog/packages", g(get(packages)))
        .route("/api/builds", g(get(list_builds).post(start_build)))
        .route(
            "/api/builds/{id}",
            g(get(build_status).delete(cancel_build)),
        )
        .route("/api/builds/{id}/events", g(get(build_events)))
        .route("/api/builds/{id}/log", g(get(build_log)))
        .route("/api/sandboxes", g(get(sandboxes)))
        .route("/api/sandboxes/{name}/fork", g(post(fork)))
        .layer(middleware::from_fn_with_state(state.clone(), bearer));
    Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route("/app.js", get(|| async { asset("app.js") }))
        .route("/app.css", get(|| async { asset("app.css") }))
        .merge(api)
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such page or API route") })
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(state)
}

fn asset(name: &str) -> Response {
    match assets::get(name) {
        Some((body, kind)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            body,
        )
            .into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such asset"),
    }
}

/// An error as the API gives it: `{"error": "one line"}`.
fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// A [`problem`] not made into a response yet (a small `Err`).
struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(message: String) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem(self.0, &self.1)
    }
}

/// The bearer token (constant-time), on every API route.
async fn bearer(State(st): St, req: Request, next: Next) -> Response {
    if let Some(token) = &st.opts.token {
        // EventSource cannot send headers: the events route also takes the
        // token as `access_token` (GET only, so it never changes anything).
        let from_query = (req.method() == "GET")
            .then(|| req.uri().query())
            .flatten()
            .and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("access_token="))
                    .map(|v| v.to_string())
            });
        let header_token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(String::from);
        let given = header_token.or(from_query).unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return problem(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required: send Authorization: Bearer TOKEN (the one in serve's --token-file)",
            );
        }
    }
    next.run(req).await
}

/// For requests that change anything: an `Origin`, when sent, of this very
/// server (CSRF), and JSON bodies only.
async fn same_origin_json(req: Request, next: Next) -> Response {
    let changes = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    if changes {
        let headers = req.headers();
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let same = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o == host);
            if !same {
                return problem(StatusCode::FORBIDDEN, "cross-origin request refused");
            }
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if req.method() == "POST" && !json {
            return problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the request body as application/json",
            );
        }
    }
    next.run(req).await
}

/// A JSON request body; what is wrong with one is a 400 (413 past the
/// size cap) in the API's own `{"error"}` form, never axum's plain text.
struct Body<T>(T);

/// What a request body should look like, for the error that refuses one.
trait BodyHint {
    const HINT: &'static str;
}

impl<S: Send + Sync, T: DeserializeOwned + BodyHint> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| problem(e.status(), &e.body_text()))?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            problem(
                StatusCode::BAD_REQUEST,
                &format!(
                    "not a valid request body ({}): {}",
                    crate::quote::excerpt(&e.to_string()),
                    T::HINT
                ),
            )
        })
    }
}

/// Query parameters, refused as a JSON 400.
struct Params<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Params(q))
            .map_err(|e| problem(StatusCode::BAD_REQUEST, &e.body_text()))
    }
}

/// The one path parameter of a route, refused (bad percent-encoding) as a JSON 400.
struct Segment(String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| Segment(p))
            .map_err(|e| problem(StatusCode::BAD_REQUEST, &e.body_text()))
    }
}

/// An optional field that, when present, must not be `null` (serde takes
/// `null` for `None`; the API document says a string or nothing).
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Compares without an early exit, so timing says nothing of where a
/// guess went wrong (the lengths are not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn openapi() -> Response {
    asset("openapi.json")
}

/// Runs boxwright with the store and global options of this server;
/// returns (exit code, stdout, stderr).
async fn child(st: &AppState, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(&st.opts.exe);
    cmd.arg("--store")
        .arg(&st.opts.store)
        .args(&st.opts.child_args)
        .args(args)
        .stdin(std::process::Stdio::null())
        .env("NO_COLOR", "1");
    match cmd.output().await {
        Ok(o) => (
            o.status.code().unwrap_or(1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (1, String::new(), format!("cannot run boxwright: {e}")),
    }
}

/// The last non-empty line of a child's stderr, without its `boxwright: ` prefix.
fn reason(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .trim_start_matches("boxwright: ")
        .to_string()
}

/// A child's failure: 400 for bad input (exit 2); 502 when it had to ask a
/// registry (`remote`) and failed; else 500.
fn child_failure(code: i32, stderr: &str, remote: bool) -> Response {
    let status = match code {
        2 => StatusCode::BAD_REQUEST,
        _ if remote => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    problem(status, &reason(stderr))
}

/// A child's failure where the request carried nothing to blame: 500.
fn server_failure(stderr: &str) -> Response {
    problem(StatusCode::INTERNAL_SERVER_ERROR, &reason(stderr))
}

async fn images(State(st): St) -> Response {
    let (code, out, err) = child(&st, &["images", "--format", "json"]).await;
    if code != 0 {
        return server_failure(&err);
    }
    let mut list: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
    for v in &mut list {
        v["source"] = json!("local");
    }
    // The list is the bare array clients rely on; whether the org's
    // registry answered travels in headers, which the page shows.
    let mut registry_error: Option<String> = None;
    if let Some(ns) = &st.opts.registry {
        let (code, out, err) = child(&st, &["images", "--registry", ns, "--format", "json"]).await;
        if code == 0 {
            let remote: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
            for mut v in remote {
                v["source"] = json!("registry");
                list.push(v);
            }
        } else {
            // The page shows the local images and says the registry is down.
            registry_error = Some(reason(&err));
        }
    }
    let mut response = Json(Value::Array(list)).into_response();
    let headers = response.headers_mut();
    if let Some(ns) = &st.opts.registry
        && let Ok(v) = HeaderValue::from_str(&header_text(ns))
    {
        headers.insert("x-boxwright-registry", v);
    }
    if let Some(e) = registry_error
        && let Ok(v) = HeaderValue::from_str(&header_text(&e))
    {
        headers.insert("x-boxwright-registry-error", v);
    }
    response
}

/// `text` as a header value: visible ASCII and spaces only (other
/// characters become `?`), at most 500 of them.
fn header_text(text: &str) -> String {
    text.chars()
        .take(500)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// An image name as the API takes it (`NAME[:TAG]`, `NAME@sha256:HEX`):
/// the store's own rule (no white space or control characters; a last
/// path component that is neither empty nor ends with `:`), and a digest
/// that is one. web/openapi.json says the same as a pattern (`ImageName`).
fn check_name(name: &str) -> Result<String, ApiError> {
    let normalized =
        crate::builder::normalize_tag(name).map_err(|e| ApiError::bad(e.to_string()))?;
    if let Some((_, digest)) = name.rsplit_once('@') {
        digest.parse::<crate::digest::Digest>().map_err(|e| {
            ApiError::bad(format!(
                "'{}' is not a valid image name: {e}",
                crate::quote::excerpt(name)
            ))
        })?;
    }
    Ok(normalized)
}

/// A name to tag a new image with: an image name without a digest
/// (`Tag` in web/openapi.json).
fn check_tag(tag: &str) -> Result<(), ApiError> {
    if tag.contains('@') {
        return Err(ApiError::bad(format!(
            "'{}' is not a valid tag: use NAME[:TAG] (no @digest), e.g. demo:latest",
            crate::quote::excerpt(tag)
        )));
    }
    check_name(tag).map(drop)
}

/// The tag a build or fork is stored (and pushed) under, and whether it is
/// pushed. With `--registry HOST/ORG`, the page's org, a tag without a
/// registry host (`web-box:1`) is the org's (`HOST/ORG/web-box:1`) and is
/// pushed unless the request says `"push": false`; the page's users build
/// for their org, so Pushing is part of the four phases they watch.
/// Without `--registry`, nothing is pushed unless asked, and then the tag
/// must name its registry.
fn push_target(
    opts: &super::ServeOptions,
    tag: Option<&str>,
    push: Option<bool>,
) -> Result<(Option<String>, bool), ApiError> {
    let Some(tag) = tag else {
        return match push {
            Some(true) => Err(ApiError::bad("push needs a tag naming the registry".into())),
            _ => Ok((None, false)),
        };
    };
    check_tag(tag)?;
    let qualified = match &opts.registry {
        Some(org) if !crate::registry::names_a_registry(tag) => {
            crate::registry::Reference::in_namespace(org, tag)
                .map_err(|e| ApiError::bad(e.to_string()))?
                .to_string()
        }
        _ => tag.to_string(),
    };
    let push = push.unwrap_or(opts.registry.is_some());
    if push && !crate::registry::names_a_registry(&qualified) {
        return Err(ApiError::bad(format!(
            "cannot push '{}': the tag names no registry; use HOST/NAME:TAG, or start serve with --registry HOST/ORG",
            crate::quote::excerpt(tag)
        )));
    }
    Ok((Some(qualified), push))
}

/// Where an image name points, for the routes that manage one.
#[derive(Clone, Copy, PartialEq)]
enum Found {
    /// In the local store.
    Local,
    /// Not in the store, but a registry reference (`HOST/…`): the child asks the registry.
    Registry,
}

/// Finds `name`: 400 when it is not a valid name, 404 when it is neither
/// in the store nor a registry reference (a name without a registry host
/// is a local name, as for `default set`: never looked for on Docker Hub).
fn locate(st: &AppState, name: &str) -> Result<Found, ApiError> {
    let normalized = check_name(name)?;
    let server =
        |e: crate::store::StoreError| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let store = crate::store::Store::open(&st.opts.store).map_err(server)?;
    match store.layout().resolve(&normalized) {
        Ok(_) => return Ok(Found::Local),
        Err(crate::store::StoreError::NameNotFound { .. }) => {}
        Err(crate::store::StoreError::InvalidName(n)) => {
            return Err(ApiError::bad(format!(
                "'{}' is not a valid image name",
                crate::quote::excerpt(&n)
            )));
        }
        Err(e) => return Err(server(e)),
    }
    let missing = |why: &str| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "no image named '{}' in the local store{why}",
                crate::quote::excerpt(&normalized)
            ),
        )
    };
    if !qualified(name) {
        return Err(missing(
            " (a name from a registry starts with its host: HOST/NAME:TAG)",
        ));
    }
    match name.parse::<crate::registry::Reference>() {
        Ok(_) => Ok(Found::Registry),
        Err(e) => Err(missing(&format!(", and it names no registry image: {e}"))),
    }
}

/// A child's failure on an image that `locate` found. When it was local
/// and is gone now (another request removed it meanwhile), a 404 as
/// `locate` gives; else as [`child_failure`] says.
fn image_failure(st: &AppState, name: &str, found: Found, code: i32, stderr: &str) -> Response {
    let found = match found {
        Found::Local => match locate(st, name) {
            Ok(now) => now,
            Err(e) => return e.into_response(),
        },
        Found::Registry => Found::Registry,
    };
    child_failure(code, stderr, found == Found::Registry)
}

/// Whether `name` starts with a registry host (`host.domain/…`,
/// `host:port/…`, `localhost/…`), as the docker reference grammar decides.
fn qualified(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

#[derive(Deserialize)]
struct NameQuery {
    name: String,
}

/// Whether `name` is in the registry org of this server (remote management).
fn is_remote(st: &AppState, name: &str) -> bool {
    st.opts
        .registry
        .as_deref()
        .is_some_and(|ns| name.starts_with(&format!("{ns}/")))
}

async fn delete_image(State(st): St, Params(q): Params<NameQuery>) -> Response {
    let remote = is_remote(&st, &q.name);
    let args: Vec<&str> = if remote {
        if let Err(e) = check_name(&q.name) {
            return e.into_response();
        }
        vec!["rmi", "--remote", "--", &q.name]
    } else {
        // Only local images are untagged here: a registry name outside
        // the org is not in the store, so it is not found.
        match locate(&st, &q.name) {
            Ok(Found::Local) => vec!["rmi", "--", &q.name],
            Ok(Found::Registry) => {
                return problem(
                    StatusCode::NOT_FOUND,
                    &format!(
                        "no image named '{}' in the local store",
                        crate::quote::excerpt(&q.name)
                    ),
                );
            }
            Err(e) => return e.into_response(),
        }
    };
    let (code, _, err) = child(&st, &args).await;
    if code != 0 {
        return if remote {
            child_failure(code, &err, true)
        } else {
            image_failure(&st, &q.name, Found::Local, code, &err)
        };
    }
    Json(json!({ "deleted": q.name })).into_response()
}

async fn show_default(State(st): St) -> Response {
    let mut args = vec!["default", "show"];
    if let Some(ns) = &st.opts.registry {
        args.extend(["--registry", ns.as_str()]);
    }
    let (code, out, _) = child(&st, &args).await;
    // `default show` prints the reference first (then, for a registry
    // default, its digest).
    let default = if code == 0 {
        out.split_whitespace().next().unwrap_or("").to_string()
    } else {
        String::new()
    };
    Json(json!({ "default": if default.is_empty() { Value::Null } else { json!(default) } }))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

impl BodyHint for NameBody {
    const HINT: &'static str = "send {\"name\": IMAGE}";
}

async fn set_default(State(st): St, Body(b): Body<NameBody>) -> Response {
    let mut args = vec!["default", "set"];
    // `None`: a name in the org, set as the org's default in its registry.
    let found = if let Some(ns) = &st.opts.registry
        && is_remote(&st, &b.name)
    {
        if let Err(e) = check_name(&b.name) {
            return e.into_response();
        }
        args.extend(["--registry", ns.as_str()]);
        None
    } else {
        match locate(&st, &b.name) {
            Ok(found) => Some(found),
            Err(e) => return e.into_response(),
        }
    };
    args.extend(["--", b.name.as_str()]);
    let (code, _, err) = child(&st, &args).await;
    if code != 0 {
        return match found {
            Some(found) => image_failure(&st, &b.name, found, code, &err),
            None => child_failure(code, &err, true),
        };
    }
    Json(json!({ "default": b.name })).into_response()
}

async fn clone_image(State(st): St, Body(b): Body<NameBody>) -> Response {
    let found = match locate(&st, &b.name) {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let Ok(dir) = tempfile::tempdir() else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "cannot make a temp dir");
    };
    let out = dir.path().join("recipe.toml");
    let out_s = out.to_string_lossy().into_owned();
    let (code, _, err) = child(&st, &["clone", "-o", &out_s, "--", &b.name, "cloned"]).await;
    if code != 0 {
        return image_failure(&st, &b.name, found, code, &err);
    }
    match std::fs::read_to_string(&out) {
        Ok(recipe) => Json(json!({ "name": b.name, "recipe": recipe })).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn catalog() -> Response {
    let c = match crate::catalog::Catalog::builtin() {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    Json(json!({
        "runtimes": c.runtimes.iter().map(|r| json!({
            "name": r.name, "title": r.title, "default": r.default,
            "versions": r.versions.iter().map(|v| v.version.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "categories": c.categories.iter().map(|k| json!({
            "name": k.name, "title": k.title, "apt": k.apt,
        })).collect::<Vec<_>>(),
        "ai_tools": c.tools.iter().map(|t| json!({ "name": t.name })).collect::<Vec<_>>(),
        "dev_access": c.dev_access.iter().map(|d| json!({ "name": d.name })).collect::<Vec<_>>(),
        "templates": c.templates.iter().map(|t| json!({
            "name": t.name, "title": t.title, "description": t.description,
        })).collect::<Vec<_>>(),
        // Extensions are any marketplace id pinned to a version; these are examples.
        "extensions": ["ms-python.python@2025.1.0", "rust-lang.rust-analyzer@0.3.2593", "esbenp.prettier-vscode@11.0.0"],
    }))
    .into_response()
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    search: String,
}

async fn packages(Params(q): Params<SearchQuery>) -> Response {
    let c = match crate::catalog::Catalog::builtin() {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let word = q.search.trim();
    let hits: Vec<Value> = c
        .categories
        .iter()
        .filter(|k| word.is_empty() || k.matches(word))
        .map(|k| {
            json!({
                "category": k.name, "title": k.title,
                "packages": if word.is_empty() { k.apt.clone() } else { k.matching_packages(word).into_iter().map(String::from).collect() },
            })
        })
        .collect();
    Json(json!({ "search": word, "results": hits })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildRequest {
    #[serde(default, deserialize_with = "present")]
    recipe: Option<String>,
    #[serde(default, deserialize_with = "present")]
    form: Option<BuildForm>,
    #[serde(default, deserialize_with = "present")]
    tag: Option<String>,
    /// Absent: push when serve has `--registry` and the build has a tag.
    #[serde(default, deserialize_with = "present")]
    push: Option<bool>,
}

impl BodyHint for BuildRequest {
    const HINT: &'static str = "send {\"recipe\": TOML} or {\"form\": {…}}, with \"tag\"";
}

async fn start_build(State(st): St, Body(req): Body<BuildRequest>) -> Response {
    let text = match (&req.recipe, &req.form) {
        (Some(r), None) => r.clone(),
        (None, Some(f)) => match f.to_recipe() {
            Ok(t) => t,
            Err(e) => return problem(StatusCode::BAD_REQUEST, &e.to_string()),
        },
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "send exactly one of \"recipe\" or \"form\"",
            );
        }
    };
    // Validated here: a recipe error is a 400 naming its line, never a failed job.
    if let Err(e) = crate::recipe::Recipe::parse(&text, std::path::Path::new("recipe.toml")) {
        return problem(StatusCode::BAD_REQUEST, &e.to_string());
    }
    let (tag, push) = match push_target(&st.opts, req.tag.as_deref(), req.push) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let id = crate::store::new_build_id();
    let dir = match crate::store::Store::open(&st.opts.store) {
        Ok(s) => s.state_dir().join("serve").join(&id),
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join("recipe.toml"), &text))
    {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot write the recipe: {e}"),
        );
    }
    let mut args: Vec<String> = vec![
        "--store".into(),
        st.opts.store.to_string_lossy().into_owned(),
    ];
    args.extend(st.opts.child_args.iter().cloned());
    args.extend(["--progress".into(), "json".into(), "build".into()]);
    args.push(dir.join("recipe.toml").to_string_lossy().into_owned());
    if let Some(t) = &tag {
        args.push(format!("--tag={t}"));
    }
    if push {
        args.push("--push".into());
    }
    match st.jobs.start(id.clone(), tag, &st.opts.exe, args, dir) {
        Ok(_) => (
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "events": format!("/api/builds/{id}/events") })),
        )
            .into_response(),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot start the build: {e}"),
        ),
    }
}

async fn list_builds(State(st): St) -> Response {
    Json(json!({ "builds": st.jobs.list() })).into_response()
}

async fn build_status(State(st): St, Segment(id): Segment) -> Response {
    match st.jobs.get(&id) {
        Some(j) => Json(j.info()).into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such build"),
    }
}

async fn cancel_build(State(st): St, Segment(id): Segment) -> Response {
    match st.jobs.cancel(&id) {
        Some(status) => Json(json!({ "id": id, "status": status })).into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such build"),
    }
}

async fn build_log(State(st): St, Segment(id): Segment) -> Response {
    match st.jobs.get(&id) {
        Some(j) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            )],
            j.log(),
        )
            .into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such build"),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    /// For clients that cannot set the header.
    last_event_id: Option<String>,
}

/// An event id as a client sends it back: a non-negative integer (ids past
/// the last event are fine: nothing after them yet); anything else is a 400.
fn event_id(v: &str, what: &str) -> Result<usize, ApiError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad(format!(
            "{what} '{}' is not an event id (a non-negative integer)",
            crate::quote::excerpt(v)
        )));
    }
    Ok(v.parse::<usize>().unwrap_or(usize::MAX))
}

/// The build's events as Server-Sent Events: `id` is the event's index,
/// `data` the `--progress json` line. A client reconnecting with
/// `Last-Event-ID: N` gets the events after N; the stream ends after the
/// final `finished` or `failed` event.
async fn build_events(
    State(st): St,
    Segment(id): Segment,
    Params(q): Params<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    // Both are checked when sent; the header wins.
    let query = q
        .last_event_id
        .as_deref()
        .map(|v| event_id(v, "last_event_id"))
        .transpose();
    let header = headers
        .get("last-event-id")
        .map(|v| match v.to_str() {
            Ok(v) => event_id(v.trim(), "Last-Event-ID"),
            Err(_) => Err(ApiError::bad(
                "Last-Event-ID is not an event id (a non-negative integer)".into(),
            )),
        })
        .transpose();
    let last = match (header, query) {
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
        (Ok(h), Ok(q)) => h.or(q),
    };
    let from = last.map_or(0, |n| n.saturating_add(1));
    let Some(job) = st.jobs.get(&id) else {
        return problem(StatusCode::NOT_FOUND, "no such build");
    };
    Sse::new(event_stream(job, from))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn event_stream(
    job: Arc<super::jobs::Job>,
    from: usize,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold((job, from, false), |(job, next, done)| async move {
        if done {
            return None;
        }
        loop {
            // A second handle to borrow from, so `job` itself can be returned.
            let watch = job.clone();
            let notified = watch.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (events, ended) = job.events_from(next);
            if let Some((i, line)) = events.into_iter().next() {
                let last = ended && job.events_from(i + 1).0.is_empty();
                let ev = SseEvent::default().id(i.to_string()).data(line);
                return Some((Ok(ev), (job, i + 1, last)));
            }
            if ended {
                return None;
            }
            notified.await;
        }
    })
}

async fn sandboxes(State(st): St) -> Response {
    match sandbox_list(&st).await {
        Ok(list) => Json(json!({ "sandboxes": list })).into_response(),
        Err(r) => r,
    }
}

/// `boxwright ps -a --format json`.
async fn sandbox_list(st: &AppState) -> Result<Value, Response> {
    let (code, out, err) = child(st, &["ps", "-a", "--format", "json"]).await;
    if code != 0 {
        return Err(server_failure(&err));
    }
    Ok(serde_json::from_str(&out).unwrap_or(json!([])))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForkBody {
    #[serde(default)]
    dry_run: bool,
    #[serde(default, deserialize_with = "present")]
    tag: Option<String>,
    /// Absent: push when serve has `--registry`.
    #[serde(default, deserialize_with = "present")]
    push: Option<bool>,
}

impl BodyHint for ForkBody {
    const HINT: &'static str = "send {\"tag\": NAME} or {\"dry_run\": true}";
}

async fn fork(State(st): St, Segment(name): Segment, Body(b): Body<ForkBody>) -> Response {
    let mut args: Vec<String> = vec!["fork".into(), "--json".into()];
    if b.dry_run {
        args.push("--dry-run".into());
    }
    if b.tag.is_none() && !b.dry_run {
        return problem(StatusCode::BAD_REQUEST, "a fork needs a tag (or dry_run)");
    }
    match sandbox_list(&st).await {
        Ok(list) => {
            let known = list
                .as_array()
                .is_some_and(|l| l.iter().any(|s| s["name"] == name.as_str()));
            if !known {
                return problem(
                    StatusCode::NOT_FOUND,
                    &format!(
                        "no sandbox named '{}' (GET /api/sandboxes lists them)",
                        crate::quote::excerpt(&name)
                    ),
                );
            }
        }
        Err(r) => return r,
    }
    // A dry run pushes nothing, so its push flag is not checked.
    let push = if b.dry_run { Some(false) } else { b.push };
    let (tag, push) = match push_target(&st.opts, b.tag.as_deref(), push) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    if let Some(t) = &tag {
        args.push(format!("--tag={t}"));
    }
    if push {
        args.push("--push".into());
    }
    args.extend(["--".into(), name]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = child(&st, &refs).await;
    if code != 0 {
        return child_failure(code, &err, push);
    }
    match serde_json::from_str::<Value>(out.trim()) {
        Ok(v) => Json(v).into_response(),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "fork printed no report"),
    }
}

//! The routes of `serve` (documented in `web/openapi.json`, which a test
//! checks against [`ROUTES`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::Stream;
use serde::Deserialize;
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
    let api = Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/images", get(images).delete(delete_image))
        .route("/api/images/default", get(show_default).post(set_default))
        .route("/api/images/clone", post(clone_image))
        .route("/api/catalog", get(catalog))
        .route("/api/catalog/packages", get(packages))
        .route("/api/builds", get(list_builds).post(start_build))
        .route("/api/builds/{id}", get(build_status).delete(cancel_build))
        .route("/api/builds/{id}/events", get(build_events))
        .route("/api/builds/{id}/log", get(build_log))
        .route("/api/sandboxes", get(sandboxes))
        .route("/api/sandboxes/{name}/fork", post(fork))
        .layer(middleware::from_fn_with_state(state.clone(), guard));
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

/// Bearer token (constant-time) and, for requests that change anything,
/// JSON bodies only and an `Origin`, when sent, of this very server.
async fn guard(State(st): St, req: Request, next: Next) -> Response {
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

/// A child's failure: 400 for bad input (exit 2), 502 when a registry is
/// the cause, else 500.
fn child_failure(code: i32, stderr: &str) -> Response {
    let status = if code == 2 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    problem(status, &reason(stderr))
}

async fn images(State(st): St) -> Response {
    let (code, out, err) = child(&st, &["images", "--format", "json"]).await;
    if code != 0 {
        return child_failure(code, &err);
    }
    let mut list: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
    for v in &mut list {
        v["source"] = json!("local");
    }
    let mut registry_error = Value::Null;
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
            registry_error = json!(reason(&err));
        }
    }
    Json(json!({ "images": list, "registry": st.opts.registry, "registry_error": registry_error }))
        .into_response()
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

async fn delete_image(State(st): St, Query(q): Query<NameQuery>) -> Response {
    let args: Vec<&str> = if is_remote(&st, &q.name) {
        vec!["rmi", "--remote", &q.name]
    } else {
        vec!["rmi", &q.name]
    };
    let (code, _, err) = child(&st, &args).await;
    if code != 0 {
        return child_failure(code, &err);
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
struct NameBody {
    name: String,
}

async fn set_default(State(st): St, Json(b): Json<NameBody>) -> Response {
    let mut args = vec!["default", "set", b.name.as_str()];
    if let Some(ns) = &st.opts.registry
        && is_remote(&st, &b.name)
    {
        args.extend(["--registry", ns.as_str()]);
    }
    let (code, _, err) = child(&st, &args).await;
    if code != 0 {
        return child_failure(code, &err);
    }
    Json(json!({ "default": b.name })).into_response()
}

async fn clone_image(State(st): St, Json(b): Json<NameBody>) -> Response {
    let Ok(dir) = tempfile::tempdir() else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "cannot make a temp dir");
    };
    let out = dir.path().join("recipe.toml");
    let out_s = out.to_string_lossy().into_owned();
    let (code, _, err) = child(&st, &["clone", &b.name, "cloned", "-o", &out_s]).await;
    if code != 0 {
        return child_failure(code, &err);
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

async fn packages(Query(q): Query<SearchQuery>) -> Response {
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
    recipe: Option<String>,
    form: Option<BuildForm>,
    tag: Option<String>,
    #[serde(default)]
    push: bool,
}

async fn start_build(State(st): St, body: axum::body::Bytes) -> Response {
    let req: BuildRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!(
                    "not a build request ({}): send {{\"recipe\": TOML}} or {{\"form\": {{…}}}}, with \"tag\"",
                    crate::quote::excerpt(&e.to_string())
                ),
            );
        }
    };
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
    let tag = match &req.tag {
        Some(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
        _ => None,
    };
    if req.push && tag.is_none() {
        return problem(
            StatusCode::BAD_REQUEST,
            "push needs a tag naming the registry",
        );
    }
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
        args.extend(["-t".into(), t.clone()]);
    }
    if req.push {
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

async fn build_status(State(st): St, Path(id): Path<String>) -> Response {
    match st.jobs.get(&id) {
        Some(j) => Json(j.info()).into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such build"),
    }
}

async fn cancel_build(State(st): St, Path(id): Path<String>) -> Response {
    match st.jobs.cancel(&id) {
        Some(status) => Json(json!({ "id": id, "status": status })).into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such build"),
    }
}

async fn build_log(State(st): St, Path(id): Path<String>) -> Response {
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
    last_event_id: Option<usize>,
}

/// The build's events as Server-Sent Events: `id` is the event's index,
/// `data` the `--progress json` line. A client reconnecting with
/// `Last-Event-ID: N` gets the events after N; the stream ends after the
/// final `finished` or `failed` event.
async fn build_events(
    State(st): St,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(job) = st.jobs.get(&id) else {
        return problem(StatusCode::NOT_FOUND, "no such build");
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .or(q.last_event_id);
    let from = last.map_or(0, |n| n + 1);
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
    let (code, out, err) = child(&st, &["ps", "-a", "--format", "json"]).await;
    if code != 0 {
        return child_failure(code, &err);
    }
    let list: Value = serde_json::from_str(&out).unwrap_or(json!([]));
    Json(json!({ "sandboxes": list })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForkBody {
    #[serde(default)]
    dry_run: bool,
    tag: Option<String>,
    #[serde(default)]
    push: bool,
}

async fn fork(State(st): St, Path(name): Path<String>, Json(b): Json<ForkBody>) -> Response {
    let mut args: Vec<String> = vec!["fork".into(), name, "--json".into()];
    if b.dry_run {
        args.push("--dry-run".into());
    }
    match (&b.tag, b.dry_run) {
        (Some(t), _) if !t.trim().is_empty() => args.extend(["-t".into(), t.trim().into()]),
        (_, false) => return problem(StatusCode::BAD_REQUEST, "a fork needs a tag (or dry_run)"),
        _ => {}
    }
    if b.push {
        args.push("--push".into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = child(&st, &refs).await;
    if code != 0 {
        return child_failure(code, &err);
    }
    match serde_json::from_str::<Value>(out.trim()) {
        Ok(v) => Json(v).into_response(),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "fork printed no report"),
    }
}

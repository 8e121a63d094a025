//! `boxwright serve`'s API against a real local registry: a template-form
//! build's phases and events, image management (list, set default, clone,
//! delete), failures, cancel, concurrent builds, `Last-Event-ID` resume,
//! fork reports, the OpenAPI document against the routes, and the security
//! rules (token off loopback, CSRF, body size).

#[path = "registry_support/mod.rs"]
mod regsupport;
#[path = "serve_support/mod.rs"]
mod serve_support;
mod support;

use std::time::{Duration, Instant};

use regsupport::registry::TestRegistry;
use serde_json::{Value, json};
use serve_support::{Server, parse_sse, phases, token_file};
use support::*;

/// A store with a stand-in for the blank template (busybox: this machine
/// cannot reach Ubuntu), so template-form builds run offline and fast.
fn store_with_template(dir: &std::path::Path) -> std::path::PathBuf {
    let store = dir.join("store");
    let r = write_recipe(
        dir,
        "tpl.toml",
        &format!(
            "{}[[steps]]\nrun = \"echo template > /template\"\n",
            busybox_base()
        ),
    );
    boxwright(&[
        "--store",
        store.to_str().unwrap(),
        "build",
        r.to_str().unwrap(),
        "-t",
        "boxwright/template-blank",
    ])
    .ok();
    store
}

fn wait_done(srv: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let v = srv.get_json(&format!("/api/builds/{id}"));
        if v["status"] != "running" || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_form_build_streams_its_phases_and_the_image_is_managed() {
    let reg = TestRegistry::start();
    let t = world_tempdir();
    let store = store_with_template(t.path());
    let org = format!("{}/team", reg.host());
    let srv = Server::start(&bin(), &store, &["--registry", &org]);
    // A bare tag is the org's, and with --registry a build is pushed there
    // without asking (the page's four phases include Pushing).
    let tag = format!("{org}/web-box:1");
    let (code, started) = srv.post_json(
        "/api/builds",
        &json!({
            "form": {"mode": "template", "template": "blank", "dev_access": false, "commands": ["echo from-the-form > /form"]},
            "tag": "web-box:1"
        }),
    );
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!(started["events"], format!("/api/builds/{id}/events"));
    let events = srv.events(&id, None);
    assert_eq!(phases(&events), ["creating", "building", "pushing", "done"]);
    // The data lines are exactly the --progress json events, ids in order.
    for (i, (id, e)) in events.iter().enumerate() {
        assert_eq!(*id, i);
        assert_eq!(e["schema_version"], 1);
    }
    let last = &events.last().unwrap().1;
    assert_eq!(last["event"], "finished", "{last}");
    let digest = last["digest"].as_str().unwrap().to_string();
    // Reconnecting with Last-Event-ID misses nothing and repeats nothing.
    let tail = srv.events(&id, Some(3));
    assert_eq!(tail.first().map(|(i, _)| *i), Some(4));
    assert_eq!(tail.len(), events.len() - 4);
    assert_eq!(
        srv.get_json(&format!("/api/builds/{id}"))["status"],
        "succeeded"
    );
    let (code, log) = srv.curl("GET", &format!("/api/builds/{id}/log"), None, &[]);
    assert_eq!(code, 200);
    assert_eq!(log.lines().count(), events.len());

    // Listed: locally and in the registry org.
    let images = srv.get_json("/api/images");
    let list = images.as_array().expect("GET /api/images is a JSON array");
    let remote = list
        .iter()
        .find(|i| i["source"] == "registry" && i["name"] == tag)
        .unwrap_or_else(|| panic!("{images}"));
    assert_eq!(remote["digest"], digest.as_str());
    for k in ["name", "digest", "created", "size", "default"] {
        assert!(remote.get(k).is_some(), "{k} in {remote}");
    }
    // Set default, then it shows.
    let (code, v) = srv.post_json("/api/images/default", &json!({"name": tag}));
    assert_eq!(code, 200, "{v}");
    assert_eq!(srv.get_json("/api/images/default")["default"], tag.as_str());
    let images = srv.get_json("/api/images");
    let remote = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == tag)
        .cloned()
        .unwrap();
    assert_eq!(remote["default"], true, "{images}");
    // Clone gives the recipe the form made.
    let (code, v) = srv.post_json("/api/images/clone", &json!({"name": tag}));
    assert_eq!(code, 200, "{v}");
    assert!(
        v["recipe"]
            .as_str()
            .unwrap()
            .contains("echo from-the-form > /form"),
        "{v}"
    );
    // Delete removes it from the registry.
    let (code, body) = srv.curl(
        "DELETE",
        &format!("/api/images?name={}", urlenc(&tag)),
        None,
        &[],
    );
    assert_eq!(code, 200, "{body}");
    let images = srv.get_json("/api/images");
    assert!(
        !images
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["source"] == "registry" && i["name"] == tag),
        "{images}"
    );
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_client_that_reconnects_mid_build_with_last_event_id_misses_nothing() {
    let t = world_tempdir();
    let store = store_with_template(t.path());
    let srv = Server::start(&bin(), &store, &[]);
    let (code, started) = srv.post_json(
        "/api/builds",
        &json!({"form": {"mode": "template", "template": "blank", "dev_access": false,
                "commands": ["echo early; sleep 4", "echo late"]}, "tag": "resume:1"}),
    );
    assert_eq!(code, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    // The first connection goes away while the build is still running.
    let first = srv.events_for(&id, 2);
    assert!(!first.is_empty(), "events before the drop");
    assert_ne!(
        first.last().unwrap().1["event"],
        "finished",
        "the build must still run when the client goes: {first:?}"
    );
    let last_id = first.last().unwrap().0;
    let rest = srv.events(&id, Some(last_id));
    assert_eq!(rest.first().map(|(i, _)| *i), Some(last_id + 1));
    assert_eq!(rest.last().unwrap().1["event"], "finished");
    // Together: every event once, in order, as a client that never left saw them.
    let all = srv.events(&id, None);
    let joined: Vec<_> = first.into_iter().chain(rest).collect();
    assert_eq!(joined, all);
    for (i, (id, _)) in all.iter().enumerate() {
        assert_eq!(*id, i);
    }
}

#[test]
fn failures_cancel_and_concurrent_builds() {
    let t = world_tempdir();
    let store = store_with_template(t.path());
    let srv = Server::start(&bin(), &store, &[]);
    // A recipe error is a 400 naming the line; nothing starts.
    let (code, v) = srv.post_json(
        "/api/builds",
        &json!({"recipe": "[image]\nbase = \"scratch\"\nnope = 1\n", "tag": "x"}),
    );
    assert_eq!(code, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("recipe.toml:3: image: unknown key 'nope'"),
        "{v}"
    );
    // Without --registry, a push needs a tag that names its registry.
    let (code, v) = srv.post_json(
        "/api/builds",
        &json!({"recipe": "[image]\nbase = \"scratch\"\n", "tag": "bare:1", "push": true}),
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("names no registry"),
        "{v}"
    );
    // A failing step: the failed event names the step and keeps its output.
    let failing = format!(
        "{}[[steps]]\nrun = \"echo ok\"\n[[steps]]\nrun = \"echo about-to-fail; exit 3\"\n",
        busybox_base()
    );
    let (code, v) = srv.post_json("/api/builds", &json!({"recipe": failing, "tag": "fails"}));
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let events = srv.events(&id, None);
    let last = &events.last().unwrap().1;
    assert_eq!(last["event"], "failed");
    assert_eq!(last["step"], 2);
    assert!(
        last["last_lines"].to_string().contains("about-to-fail"),
        "{last}"
    );
    let info = srv.get_json(&format!("/api/builds/{id}"));
    assert_eq!(info["status"], "failed");
    assert_eq!(info["failed_step"], 2);

    // Cancel: the child and its step go.
    let slow = format!("{}[[steps]]\nrun = \"sleep 1005\"\n", busybox_base());
    let (_, v) = srv.post_json("/api/builds", &json!({"recipe": slow, "tag": "slow"}));
    let id = v["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sh(std::process::Command::new("ps").args(["-eo", "args"]))
        .lines()
        .any(|l| l.trim() == "sleep 1005")
    {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, body) = srv.curl("DELETE", &format!("/api/builds/{id}"), None, &[]);
    assert_eq!(code, 200, "{body}");
    let info = wait_done(&srv, &id);
    assert_eq!(info["status"], "cancelled", "{info}");
    let events = srv.events(&id, None);
    assert_eq!(events.last().unwrap().1["event"], "failed");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !sh(std::process::Command::new("ps").args(["-eo", "args"]))
            .lines()
            .any(|l| l.trim() == "sleep 1005")
    );

    // Two at once both complete.
    let ids: Vec<String> = (0..2)
        .map(|i| {
            let r = format!(
                "{}[[steps]]\nrun = \"echo concurrent-{i}; sleep 1\"\n",
                busybox_base()
            );
            let (code, v) =
                srv.post_json("/api/builds", &json!({"recipe": r, "tag": format!("c{i}")}));
            assert_eq!(code, 202);
            v["id"].as_str().unwrap().to_string()
        })
        .collect();
    for id in &ids {
        assert_eq!(wait_done(&srv, id)["status"], "succeeded");
    }
    let listed = srv.get_json("/api/builds");
    assert!(listed["builds"].as_array().unwrap().len() >= 4);
}

#[test]
fn the_openapi_document_matches_the_routes() {
    let t = world_tempdir();
    let store = t.path().join("store");
    let srv = Server::start(&bin(), &store, &[]);
    let doc = srv.get_json("/api/openapi.json");
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = boxwright::serve::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes, "openapi.json and the router disagree");
    // The build events' schema is docs/progress-events.schema.json, its
    // `$ref`s pointing into the document (schemathesis checks each event's
    // data against it).
    let mut events: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/progress-events.schema.json")).unwrap(),
    )
    .unwrap();
    let mut embedded = doc["components"]["schemas"]["ProgressEvent"].clone();
    for v in [&mut events, &mut embedded] {
        let o = v.as_object_mut().unwrap();
        for k in ["$schema", "$id", "description"] {
            o.remove(k);
        }
    }
    let rewritten = serde_json::to_string(&events)
        .unwrap()
        .replace("\"#/$defs/", "\"#/components/schemas/ProgressEvent/$defs/");
    assert_eq!(
        embedded,
        serde_json::from_str::<Value>(&rewritten).unwrap(),
        "web/openapi.json's ProgressEvent is not docs/progress-events.schema.json"
    );
    // Every route answers (not 404/405 for a route that exists).
    for (method, path) in &routes {
        let concrete = path
            .replace("{id}", "no-such-build")
            .replace("{name}", "no-such-sandbox");
        let body = (method == "POST").then_some("{}");
        let (code, text) = srv.curl(method, &concrete, body, &["--max-time", "10"]);
        let expected_404 = concrete.contains("no-such");
        assert!(
            code != 405 && (code != 404 || expected_404),
            "{method} {concrete}: {code} {text}"
        );
    }
    // The page and its assets are served, from the binary.
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let (code, _) = srv.curl("GET", path, None, &[]);
        assert_eq!(code, 200, "{path}");
        let (_, headers) = srv.curl("HEAD", path, None, &["-I"]);
        assert!(headers.to_lowercase().contains(kind), "{path}: {headers}");
    }
}

#[test]
fn security_rules() {
    let t = world_tempdir();
    let store = t.path().join("store");
    // Off loopback without a token: exit 2, one line.
    let r = boxwright(&[
        "--store",
        store.to_str().unwrap(),
        "serve",
        "--listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("--token-file"), "{}", r.stderr);
    // With a token: 401 without it, 200 with it (header, or access_token for GET).
    let token = "0123456789abcdef0123456789abcdef";
    let file = token_file(t.path(), token);
    let srv = Server::start(&bin(), &store, &["--token-file", file.to_str().unwrap()]);
    assert_eq!(srv.curl("GET", "/api/images", None, &[]).0, 401);
    assert_eq!(
        srv.curl(
            "GET",
            "/api/images",
            None,
            &["-H", "Authorization: Bearer wrong-token-wrong-token!!"]
        )
        .0,
        401
    );
    assert_eq!(
        srv.curl(
            "GET",
            "/api/images",
            None,
            &["-H", &format!("Authorization: Bearer {token}")]
        )
        .0,
        200
    );
    assert_eq!(
        srv.curl(
            "GET",
            &format!("/api/images?access_token={token}"),
            None,
            &[]
        )
        .0,
        200
    );
    // The page itself is public (it asks for the token).
    assert_eq!(srv.curl("GET", "/", None, &[]).0, 200);
    drop(srv);
    let srv = Server::start(&bin(), &store, &[]);
    // CSRF: a foreign Origin is refused; a non-JSON POST is refused.
    let (code, _) = srv.curl(
        "POST",
        "/api/images/default",
        Some("{\"name\":\"x\"}"),
        &["-H", "Origin: http://evil.example"],
    );
    assert_eq!(code, 403);
    let (code, _) = srv.curl(
        "POST",
        "/api/builds",
        None,
        &["-H", "Content-Type: text/plain", "--data", "x"],
    );
    assert_eq!(code, 415);
    // Bodies are capped.
    let big = format!(
        "{{\"recipe\": \"{}\", \"tag\": \"x\"}}",
        "a".repeat(2 << 20)
    );
    let path = t.path().join("big.json");
    std::fs::write(&path, big).unwrap();
    let (code, _) = srv.curl(
        "POST",
        "/api/builds",
        None,
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!("@{}", path.display()),
        ],
    );
    assert_eq!(code, 413);
    let _ = parse_sse("");
}

#[test]
fn the_fork_report_lists_a_detected_package() {
    let t = world_tempdir();
    let store = store_with_template(t.path());
    let s = store.to_str().unwrap();
    // A sandbox that "installs" an npm package (as npm would lay it out).
    boxwright(&["--store", s, "run", "--name", "dev", "boxwright/template-blank", "sh", "-c",
        "mkdir -p /usr/lib/node_modules/left-pad && echo '{\"name\":\"left-pad\",\"version\":\"1.3.0\"}' > /usr/lib/node_modules/left-pad/package.json"]).ok();
    let srv = Server::start(&bin(), &store, &[]);
    let sandboxes = srv.get_json("/api/sandboxes");
    assert!(
        sandboxes["sandboxes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "dev"),
        "{sandboxes}"
    );
    let (code, report) = srv.post_json("/api/sandboxes/dev/fork", &json!({"dry_run": true}));
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["npm"]["added"][0]["name"], "left-pad", "{report}");
    let (code, v) = srv.post_json("/api/sandboxes/dev/fork", &json!({"tag": "dev-fork"}));
    assert_eq!(code, 200, "{v}");
    assert!(
        v["image"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    boxwright(&["--store", s, "rm", "-f", "dev"]).ok();
}

#[test]
fn images_are_a_json_array_and_an_unreachable_registry_is_said_in_headers() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_template(dir.path());
    // Nothing listens on port 1: the org's registry cannot be reached.
    let srv = Server::start(&bin(), &store, &["--registry", "127.0.0.1:1/team"]);
    let (code, text) = srv.curl("GET", "/api/images", None, &["-i"]);
    assert_eq!(code, 200, "{text}");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{text}"));
    let list: Value = serde_json::from_str(body).unwrap();
    let list = list.as_array().expect("a JSON array");
    assert!(!list.is_empty(), "the local template image is listed");
    for img in list {
        for k in ["name", "digest", "created", "size", "default"] {
            assert!(img.get(k).is_some(), "{k} in {img}");
        }
    }
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    assert_eq!(header("x-boxwright-registry"), "127.0.0.1:1/team");
    assert!(!header("x-boxwright-registry-error").is_empty());
}

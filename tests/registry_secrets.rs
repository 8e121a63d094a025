//! With trace logging on for every crate, no password, token or
//! Authorization value appears in any log line, error or Debug output.
//! (Its own test binary: it installs the process-wide tracing subscriber.)

#[path = "registry_support/mod.rs"]
mod support;

use std::ffi::OsString;
use std::io::Write;
use std::sync::{Arc, Mutex};

use boxwright::registry::{CredentialStore, Reference, Secret};
use support::layout::{Layout, make_image};
use support::proxy::FaultProxy;
use support::registry::{RegistryOptions, TestRegistry};
use support::{Events, client_with};

const PASSWORD: &str = "pw-Zq8r7XbT2";
const TOKEN: &str = "tok-Kx93LmW1pQ";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn forbidden() -> Vec<String> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        PASSWORD.to_string(),
        TOKEN.to_string(),
        b64(&format!("builder:{PASSWORD}")),
        b64(&format!("tok-user:{PASSWORD}")),
        "Authorization: ".to_string(),
        "authorization: ".to_string(),
    ]
}

#[test]
fn trace_logs_errors_and_debug_never_show_secrets() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("install the trace subscriber");

    let tmp = tempfile::tempdir().unwrap();
    let mut outputs: Vec<String> = Vec::new();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[60_000], 30, "amd64");

    use base64::Engine as _;
    // Basic auth: login, push, pull, then a wrong password.
    let basic = TestRegistry::start_with(RegistryOptions {
        basic_auth: Some(("builder".into(), PASSWORD.into())),
        ..Default::default()
    });
    let auth_file = tmp.path().join("auth.json");
    let store = CredentialStore::with_files(vec![auth_file.clone()], auth_file.clone());
    let r = client_with(&[&basic.host()], tmp.path(), store.clone(), |_| {});
    r.login(&basic.host(), "builder", Secret::new(PASSWORD))
        .unwrap();
    let target: Reference = format!("{}/s/app:v1", basic.host()).parse().unwrap();
    let events = Events::default();
    r.push(
        &src,
        &target,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &events.callback(),
    )
    .unwrap();
    let pulled = r
        .pull(
            &target,
            None,
            &Layout::create(&tmp.path().join("sink1")),
            &|_| {},
        )
        .unwrap();
    outputs.push(format!(
        "{pulled:?} {:?} {:?}",
        events.all(),
        store.get(&basic.host(), None)
    ));
    let e = r
        .login(
            &basic.host(),
            "builder",
            Secret::new(format!("{PASSWORD}x")),
        )
        .unwrap_err();
    outputs.push(format!("{e} {e:?}"));
    std::fs::write(
        &auth_file,
        serde_json::json!({"auths": {basic.host(): {"auth": base64::engine::general_purpose::STANDARD.encode(format!("builder:{PASSWORD}x"))}}})
            .to_string(),
    )
    .unwrap();
    let r_bad = client_with(&[&basic.host()], tmp.path(), store, |_| {});
    let e = r_bad
        .pull(
            &target,
            None,
            &Layout::create(&tmp.path().join("s2")),
            &|_| {},
        )
        .unwrap_err();
    outputs.push(format!("{e} {e:?}"));

    // Bearer tokens through the gateway, with a cross-repo mount.
    let open = TestRegistry::start();
    let proxy = FaultProxy::start(open.port);
    proxy.enable_bearer("tok-user", PASSWORD, TOKEN);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        serde_json::json!({"auths": {proxy.host(): {"auth": base64::engine::general_purpose::STANDARD.encode(format!("tok-user:{PASSWORD}"))}}})
            .to_string(),
    )
    .unwrap();
    let h = home.clone();
    let store =
        CredentialStore::from_vars(move |k| (k == "HOME").then(|| OsString::from(h.clone())));
    outputs.push(format!("{store:?} {:?}", store.get(&proxy.host(), None)));
    let r = client_with(&[&proxy.host()], tmp.path(), store, |_| {});
    for repo in ["a/app", "b/app"] {
        let t: Reference = format!("{}/{repo}:v1", proxy.host()).parse().unwrap();
        r.push(
            &src,
            &t,
            &img.manifest,
            &img.media_type,
            &img.blobs(),
            &|_| {},
        )
        .unwrap();
    }
    assert!(proxy.token_scopes().len() >= 2, "the token flow ran");
    let tags = r
        .list_tags(&format!("{}/a/app", proxy.host()).parse().unwrap())
        .unwrap();
    outputs.push(format!("{tags:?}"));

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    // The capture really saw trace output from the registry code and below.
    assert!(logs.contains("TRACE"), "no trace lines captured");
    assert!(
        logs.contains("boxwright::registry"),
        "no registry lines captured"
    );
    for secret in forbidden() {
        assert!(!logs.contains(&secret), "log output contains {secret:?}");
        for o in &outputs {
            assert!(!o.contains(&secret), "output contains {secret:?}: {o}");
        }
    }
}

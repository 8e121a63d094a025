//! Authentication against real registries: htpasswd Basic auth on
//! distribution 2.8, and the Bearer-token flow through the test proxy's
//! token gateway in front of an open registry.

#[path = "registry_support/mod.rs"]
mod support;

use std::ffi::OsString;

use boxwright::registry::{CredentialStore, Reference, RegistryError, Secret};
use support::layout::{Layout, make_image};
use support::proxy::FaultProxy;
use support::registry::{RegistryOptions, TestRegistry};
use support::{client_with, skopeo_raw_manifest};

fn basic_registry() -> TestRegistry {
    TestRegistry::start_with(RegistryOptions {
        basic_auth: Some(("builder".into(), "s3cret-pass".into())),
        ..Default::default()
    })
}

/// A credential store reading `$HOME/.docker/config.json` of a temp HOME.
fn home_store(home: &std::path::Path) -> CredentialStore {
    let home = home.to_path_buf();
    CredentialStore::from_vars(move |k| (k == "HOME").then(|| OsString::from(home.clone())))
}

fn write_docker_config(home: &std::path::Path, host: &str, user: &str, pass: &str) {
    use base64::Engine as _;
    let dir = home.join(".docker");
    std::fs::create_dir_all(&dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"auths": {format!("http://{host}"): {"auth": auth}}}).to_string(),
    )
    .unwrap();
}

#[test]
fn wrong_password_is_a_one_line_error_naming_the_registry() {
    let reg = basic_registry();
    let tmp = tempfile::tempdir().unwrap();
    write_docker_config(tmp.path(), &reg.host(), "builder", "wrong");
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[10_000], 20, "amd64");
    let r = client_with(&[&reg.host()], tmp.path(), home_store(tmp.path()), |_| {});
    let target: Reference = format!("{}/a/b:v1", reg.host()).parse().unwrap();
    let e = r
        .push(
            &src,
            &target,
            &img.manifest,
            &img.media_type,
            &img.blobs(),
            &|_| {},
        )
        .unwrap_err();
    let msg = e.to_string();
    eprintln!("wrong password: {msg}");
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{msg}");
    assert!(
        msg.contains(&reg.host()) && msg.contains("'builder'") && msg.contains("401"),
        "{msg}"
    );
    assert!(!msg.contains('\n') && !msg.contains("wrong"), "{msg}");

    // No credentials at all says how to log in.
    let none = client_with(
        &[&reg.host()],
        tmp.path(),
        CredentialStore::with_files(vec![], tmp.path().join("x.json")),
        |_| {},
    );
    let msg = none.ping(&reg.host()).unwrap_err().to_string();
    assert!(
        msg.contains("no credentials") && msg.contains(&format!("boxwright login {}", reg.host())),
        "{msg}"
    );
}

#[test]
fn docker_config_credentials_push_and_pull() {
    let reg = basic_registry();
    let tmp = tempfile::tempdir().unwrap();
    write_docker_config(tmp.path(), &reg.host(), "builder", "s3cret-pass");
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[100_000], 21, "amd64");
    let r = client_with(&[&reg.host()], tmp.path(), home_store(tmp.path()), |_| {});
    let target: Reference = format!("{}/a/b:v1", reg.host()).parse().unwrap();
    r.push(
        &src,
        &target,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &|_| {},
    )
    .unwrap();
    let sink = Layout::create(&tmp.path().join("sink"));
    let p = r.pull(&target, None, &sink, &|_| {}).unwrap();
    assert_eq!(p.manifest_digest, img.manifest_digest);
    // skopeo with the same credentials sees the image.
    let out = support::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "builder:s3cret-pass",
        &format!("docker://{target}"),
    ]);
    assert_eq!(out.as_bytes(), &img.manifest[..]);
}

#[test]
fn login_verifies_then_stores_and_logout_removes() {
    let reg = basic_registry();
    let tmp = tempfile::tempdir().unwrap();
    let auth_file = tmp.path().join("run/containers/auth.json");
    let store = || CredentialStore::with_files(vec![auth_file.clone()], auth_file.clone());
    let r = client_with(&[&reg.host()], tmp.path(), store(), |_| {});
    let e = r
        .login(&reg.host(), "builder", Secret::new("nope"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&reg.host()) && e.contains("401") && !e.contains("nope"),
        "{e}"
    );
    assert!(!auth_file.exists(), "a refused login stores nothing");

    let written = r
        .login(&reg.host(), "builder", Secret::new("s3cret-pass"))
        .unwrap();
    assert_eq!(written, auth_file);
    // podman's format: auths.HOST.auth = base64(user:pass); skopeo reads it.
    let out = support::skopeo_raw(&[
        "list-tags",
        "--tls-verify=false",
        "--authfile",
        auth_file.to_str().unwrap(),
        &format!("docker://{}/none/here", reg.host()),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("401") && !stderr.contains("unauthorized"),
        "{stderr}"
    );

    // A new client (a later run) uses the stored login.
    let tmp2 = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp2.path().join("src"));
    let img = make_image(&src, "v1", &[5_000], 22, "amd64");
    let r2 = client_with(&[&reg.host()], tmp2.path(), store(), |_| {});
    let target: Reference = format!("{}/x/y:v1", reg.host()).parse().unwrap();
    r2.push(
        &src,
        &target,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &|_| {},
    )
    .unwrap();

    assert!(r2.logout(&reg.host()).unwrap());
    assert!(!r2.logout(&reg.host()).unwrap());
    let r3 = client_with(&[&reg.host()], tmp2.path(), store(), |_| {});
    assert!(matches!(
        r3.ping(&reg.host()),
        Err(RegistryError::Unauthorized { .. })
    ));
}

#[test]
fn bearer_tokens_carry_push_scope_and_the_mount_source_scope() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    proxy.enable_bearer("tok-user", "tok-pass", "the-bearer-token-value");
    let tmp = tempfile::tempdir().unwrap();
    write_docker_config(tmp.path(), &proxy.host(), "tok-user", "tok-pass");
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[50_000], 23, "amd64");
    let r = client_with(&[&proxy.host()], tmp.path(), home_store(tmp.path()), |_| {});
    let first: Reference = format!("{}/src/app:v1", proxy.host()).parse().unwrap();
    r.push(
        &src,
        &first,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &|_| {},
    )
    .unwrap();
    let second: Reference = format!("{}/dst/app:v1", proxy.host()).parse().unwrap();
    r.push(
        &src,
        &second,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &|_| {},
    )
    .unwrap();
    let scopes = proxy.token_scopes();
    // Parallel blob transfers share one token per scope.
    let push_src = scopes
        .iter()
        .filter(|s| *s == "repository:src/app:pull,push")
        .count();
    assert_eq!(push_src, 1, "{scopes:?}");
    assert!(
        scopes.contains(&"repository:dst/app:pull,push repository:src/app:pull".to_string()),
        "{scopes:?}"
    );
    assert_eq!(
        proxy.count(|l| l.method == "POST" && l.query.contains("mount=") && l.status == 201),
        2
    );
    assert_eq!(
        skopeo_raw_manifest(&format!("{}/dst/app:v1", reg.host())),
        img.manifest
    );

    // A wrong password fails at the token server, in one line.
    write_docker_config(tmp.path(), &proxy.host(), "tok-user", "bad");
    let r = client_with(&[&proxy.host()], tmp.path(), home_store(tmp.path()), |_| {});
    let msg = r
        .pull(
            &first,
            None,
            &Layout::create(&tmp.path().join("s")),
            &|_| {},
        )
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&proxy.host()) && msg.contains("token server") && msg.contains("401"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

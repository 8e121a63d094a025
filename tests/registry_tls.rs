//! HTTPS registries: an unknown CA is refused, a CA file from
//! registries.toml is trusted, `tls_verify = false` skips verification; and
//! a loopback registry is never reached through an HTTP(S)_PROXY.
//! (Its own test binary: the proxy test sets process environment variables.)

#[path = "registry_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use boxwright::registry::{
    ClientOptions, CredentialStore, Reference, RegistriesConfig, Registry, RegistryError,
};
use support::layout::{Layout, make_image};
use support::registry::{RegistryOptions, TestRegistry, require_tool};

/// A CA and a server certificate for 127.0.0.1 signed by it (openssl CLI).
fn make_certs(dir: &Path) {
    require_tool("openssl", "install openssl (apt-get install openssl)");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=boxwright test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
}

fn registry_with(cfg: RegistriesConfig, tmp: &Path, tls_verify: Option<bool>) -> Registry {
    Registry::new(
        cfg,
        CredentialStore::with_files(vec![], tmp.join("auth.json")),
        ClientOptions {
            blob_info_cache: None,
            retry: boxwright::registry::Retry {
                max_attempts: 2,
                ..Default::default()
            },
            tls_verify,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn https_registries_trust_configured_cas_only() {
    let tmp = tempfile::tempdir().unwrap();
    make_certs(tmp.path());
    let reg = TestRegistry::start_with(RegistryOptions {
        tls: Some((tmp.path().join("srv.pem"), tmp.path().join("srv.key"))),
        ..Default::default()
    });
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[20_000], 50, "amd64");
    let target: Reference = format!("{}/tls/app:v1", reg.host()).parse().unwrap();

    // The system roots do not know the test CA.
    let plain = registry_with(RegistriesConfig::default(), tmp.path(), None);
    let e = plain
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
    eprintln!("unknown CA: {msg}");
    assert!(matches!(e, RegistryError::Transport { .. }), "{msg}");
    assert!(
        msg.contains(&reg.host()) && msg.to_lowercase().contains("certificate"),
        "{msg}"
    );

    // A registries.toml naming the CA file (relative to the config file).
    let conf = tmp.path().join("registries.toml");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nhost = \"{}\"\nca_files = [\"ca.pem\"]\n",
            reg.host()
        ),
    )
    .unwrap();
    let trusted = registry_with(RegistriesConfig::load(&conf).unwrap(), tmp.path(), None);
    let d = trusted
        .push(
            &src,
            &target,
            &img.manifest,
            &img.media_type,
            &img.blobs(),
            &|_| {},
        )
        .unwrap();
    assert_eq!(d, img.manifest_digest);

    // --tls-verify=false for one client, no CA.
    let unverified = registry_with(RegistriesConfig::default(), tmp.path(), Some(false));
    let p = unverified
        .pull(
            &target,
            None,
            &Layout::create(&tmp.path().join("sink")),
            &|_| {},
        )
        .unwrap();
    assert_eq!(p.manifest_bytes, img.manifest);
    // skopeo agrees the image is there over HTTPS.
    let raw = support::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]);
    assert_eq!(raw.as_bytes(), &img.manifest[..]);
}

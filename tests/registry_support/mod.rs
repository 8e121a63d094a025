//! Test support for the registry tests: a real registry process, a
//! fault-injecting proxy, OCI layouts, skopeo and client helpers.
#![allow(dead_code)]

pub mod layout;
pub mod proxy;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use boxwright::registry::{
    ClientOptions, CredentialStore, RegistriesConfig, Registry, Retry, TransferEvent,
};

/// A client that talks plain HTTP to `hosts`, keeps its blob-info cache in
/// `cache_dir`, reads credentials from nowhere, and retries quickly.
pub fn client(hosts: &[&str], cache_dir: &Path) -> Registry {
    client_with(
        hosts,
        cache_dir,
        CredentialStore::with_files(vec![], cache_dir.join("auth.json")),
        |_| {},
    )
}

/// Like [`client`] with an explicit credential store and option tweaks.
pub fn client_with(
    hosts: &[&str],
    cache_dir: &Path,
    creds: CredentialStore,
    tweak: impl FnOnce(&mut ClientOptions),
) -> Registry {
    let mut cfg = RegistriesConfig::default();
    for h in hosts {
        cfg = cfg.insecure(h);
    }
    let mut opts = ClientOptions {
        retry: Retry {
            base: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..Retry::default()
        },
        blob_info_cache: Some(cache_dir.join("blob-info-cache.json")),
        ..Default::default()
    };
    tweak(&mut opts);
    Registry::new(cfg, creds, opts).expect("registry client")
}

/// Collects transfer events.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<TransferEvent>>);

impl Events {
    pub fn callback(&self) -> impl Fn(TransferEvent) + Send + Sync + '_ {
        move |e| self.0.lock().unwrap().push(e)
    }
    pub fn all(&self) -> Vec<TransferEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// Runs skopeo with `args`; returns stdout, panicking with stderr on failure.
pub fn skopeo(args: &[&str]) -> String {
    let out = skopeo_raw(args);
    assert!(
        out.status.success(),
        "skopeo {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs skopeo and returns its output whatever the status.
pub fn skopeo_raw(args: &[&str]) -> std::process::Output {
    registry::require_tool("skopeo", "install skopeo (apt-get install skopeo)");
    let mut full = vec!["--insecure-policy"];
    full.extend_from_slice(args);
    Command::new("skopeo")
        .args(&full)
        .output()
        .expect("run skopeo")
}

/// `skopeo inspect --raw` of a plain-HTTP image: the manifest bytes.
pub fn skopeo_raw_manifest(image: &str) -> Vec<u8> {
    let out = skopeo_raw(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    assert!(
        out.status.success(),
        "skopeo inspect {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Copies a layout's `tag` to a registry with skopeo (`extra` e.g. `--format v2s2`).
pub fn skopeo_push(layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let src = format!("oci:{}:{tag}", layout.display());
    let dst = format!("docker://{dest}");
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(&src);
    args.push(&dst);
    skopeo(&args);
}

/// Copies a registry image into a new layout with skopeo; returns its path.
pub fn skopeo_pull(image: &str, into: &Path, tag: &str) -> PathBuf {
    let dst = format!("oci:{}:{tag}", into.display());
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{image}"),
        &dst,
    ]);
    into.to_path_buf()
}

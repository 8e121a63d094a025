//! HTTP(S)_PROXY is honoured for remote registries and never used for a
//! registry on this machine. (Its own test binary with a single test: it
//! sets process environment variables.)

#[path = "registry_support/mod.rs"]
mod support;

use boxwright::registry::Reference;
use support::layout::{Layout, make_image};
use support::proxy::FaultProxy;
use support::registry::TestRegistry;

#[test]
fn proxies_from_the_environment_skip_loopback_registries() {
    let reg = TestRegistry::start();
    // The "corporate proxy": forwards whatever it gets to the registry.
    let proxy = FaultProxy::start(reg.port);
    let url = format!("http://{}", proxy.host());
    for k in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
        // SAFETY: this binary runs one test, and no other thread of it reads
        // the environment while it is being set.
        unsafe { std::env::set_var(k, &url) };
    }
    for k in ["NO_PROXY", "no_proxy"] {
        // SAFETY: as above.
        unsafe { std::env::remove_var(k) };
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[10_000], 51, "amd64");

    // A loopback registry: straight there, the proxy sees nothing.
    let r = support::client(&[&reg.host()], tmp.path());
    let target: Reference = format!("{}/np/app:v1", reg.host()).parse().unwrap();
    r.push(
        &src,
        &target,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(proxy.count(|_| true), 0, "{:?}", proxy.log());

    // A registry by a non-loopback name goes through the proxy (which is
    // the only way this name resolves to anything).
    let far = "registry.boxwright-test.invalid:5000";
    let r = support::client(&[far], tmp.path());
    let remote: Reference = format!("{far}/np/app:v1").parse().unwrap();
    assert_eq!(
        r.manifest_digest(&remote).unwrap(),
        Some(img.manifest_digest)
    );
    assert!(
        proxy.count(|l| l.path == "/v2/np/app/manifests/v1") >= 1,
        "{:?}",
        proxy.log()
    );
}

//! Remote management (tags, catalog, fetch, delete, server-side tag copy)
//! and pull mirrors, against real registries, checked with skopeo.

#[path = "registry_support/mod.rs"]
mod support;

use boxwright::registry::{
    ClientOptions, CredentialStore, Reference, RegistriesConfig, Registry, RegistryError,
    RegistrySettings,
};
use support::layout::{Layout, make_image};
use support::proxy::FaultProxy;
use support::registry::{RegistryOptions, TestRegistry};
use support::{client, client_with, skopeo, skopeo_push, skopeo_raw, skopeo_raw_manifest};

#[test]
fn tags_catalog_fetch_copy_and_delete() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[30_000], 40, "amd64");
    for repo in ["r/one", "r/two", "r/three"] {
        skopeo_push(&src.root, "v1", &format!("{}/{repo}:v1", reg.host()), &[]);
    }
    // Pages of two entries: the catalog takes two requests, joined by Link.
    let r = client_with(
        &[&proxy.host()],
        tmp.path(),
        CredentialStore::with_files(vec![], tmp.path().join("a.json")),
        |o| o.page_size = Some(2),
    );
    let mut cat = r.catalog(&proxy.host()).unwrap();
    cat.sort();
    assert_eq!(cat, ["r/one", "r/three", "r/two"]);
    assert_eq!(
        proxy.count(|l| l.path == "/v2/_catalog"),
        2,
        "{:?}",
        proxy.log()
    );

    // Copy a tag server-side: the manifest moves, no blob does.
    let one: Reference = format!("{}/r/one:v1", proxy.host()).parse().unwrap();
    proxy.clear_log();
    let d = r.copy_tag(&one, "stable").unwrap();
    assert_eq!(d, img.manifest_digest);
    r.copy_tag(&one, "v2").unwrap();
    assert_eq!(proxy.count(|l| l.path.contains("/blobs/")), 0);
    assert_eq!(
        skopeo_raw_manifest(&format!("{}/r/one:stable", reg.host())),
        img.manifest
    );

    let mut tags = r.list_tags(&one).unwrap();
    tags.sort();
    assert_eq!(tags, ["stable", "v1", "v2"]);
    let listed: serde_json::Value = serde_json::from_str(&skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/r/one", reg.host()),
    ]))
    .unwrap();
    let mut sk: Vec<String> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    sk.sort();
    assert_eq!(sk, tags);

    let fetched = r.fetch_manifest(&one).unwrap();
    assert_eq!(fetched.bytes, img.manifest);
    assert_eq!(fetched.digest, img.manifest_digest);
    assert_eq!(
        r.manifest_digest(&one).unwrap(),
        Some(img.manifest_digest.clone())
    );

    // Delete by digest: every tag of that manifest is gone.
    let e = r.delete_manifest(&one).unwrap_err().to_string();
    assert!(e.contains("by digest"), "{e}");
    r.delete_manifest(&one.with_digest(img.manifest_digest.clone()))
        .unwrap();
    for tag in ["v1", "stable"] {
        let out = skopeo_raw(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/r/one:{tag}", reg.host()),
        ]);
        assert!(!out.status.success(), "{tag} still resolves");
        assert_eq!(r.manifest_digest(&one.with_tag(tag)).unwrap(), None);
    }
    // Other repositories keep theirs.
    assert_eq!(
        skopeo_raw_manifest(&format!("{}/r/two:v1", reg.host())),
        img.manifest
    );
}

#[test]
fn delete_on_a_registry_without_deletes_reports_it() {
    let reg = TestRegistry::start_with(RegistryOptions {
        deletes_disabled: true,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[1_000], 41, "amd64");
    skopeo_push(&src.root, "v1", &format!("{}/nodel:v1", reg.host()), &[]);
    let r = client(&[&reg.host()], tmp.path());
    let target: Reference = format!("{}/nodel@{}", reg.host(), img.manifest_digest)
        .parse()
        .unwrap();
    let e = r.delete_manifest(&target).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, RegistryError::Http { status: 405, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("UNSUPPORTED") && msg.contains("deletes disabled"),
        "{msg}"
    );
    assert_eq!(
        skopeo_raw_manifest(&format!("{}/nodel:v1", reg.host())),
        img.manifest
    );
}

#[test]
fn mirrors_are_tried_first_and_fall_back_to_the_origin() {
    let origin = TestRegistry::start();
    let mirror = TestRegistry::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    make_image(&src, "a", &[10_000], 42, "amd64");
    make_image(&src, "b", &[10_000], 43, "amd64");
    // The mirror has image a; only the origin has image b.
    skopeo_push(&src.root, "a", &format!("{}/lib/a:v1", mirror.host()), &[]);
    skopeo_push(&src.root, "b", &format!("{}/lib/b:v1", origin.host()), &[]);

    let mk = |mirror_only: bool| {
        let mut cfg = RegistriesConfig::default().insecure(&mirror.host());
        cfg.set(RegistrySettings {
            host: origin.host(),
            insecure: true,
            mirrors: vec![mirror.host()],
            mirror_only,
            ..Default::default()
        });
        Registry::new(
            cfg,
            CredentialStore::with_files(vec![], tmp.path().join("a.json")),
            ClientOptions {
                blob_info_cache: None,
                retry: boxwright::registry::Retry {
                    max_attempts: 1,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap()
    };
    let r = mk(false);
    let a: Reference = format!("{}/lib/a:v1", origin.host()).parse().unwrap();
    let b: Reference = format!("{}/lib/b:v1", origin.host()).parse().unwrap();
    let pa = r
        .pull(&a, None, &Layout::create(&tmp.path().join("s1")), &|_| {})
        .unwrap();
    assert_eq!(pa.served_by, mirror.host());
    let pb = r
        .pull(&b, None, &Layout::create(&tmp.path().join("s2")), &|_| {})
        .unwrap();
    assert_eq!(pb.served_by, origin.host());

    let strict = mk(true);
    let e = strict
        .pull(&b, None, &Layout::create(&tmp.path().join("s3")), &|_| {})
        .unwrap_err();
    assert!(matches!(e, RegistryError::Http { status: 404, .. }), "{e}");
    assert!(e.to_string().contains(&mirror.host()), "{e}");
}

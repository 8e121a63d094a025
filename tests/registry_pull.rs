//! Pull from a real registry (distribution 2.8) of images pushed by skopeo,
//! platform selection, caching, and refusal of bad content served through
//! a rewriting proxy.

#[path = "registry_support/mod.rs"]
mod support;

use boxwright::digest::Digest;
use boxwright::image::{host_platform, load_image_for, parse_platform};
use boxwright::media::{self, Descriptor};
use boxwright::registry::{Reference, Registry, RegistryError};
use support::layout::{Image, Layout, make_image};
use support::proxy::{Action, FaultProxy};
use support::registry::TestRegistry;
use support::{client, client_with, skopeo, skopeo_push, skopeo_raw_manifest};

/// Every blob file's name is the sha256 of its content, and nothing else is
/// in the layout's blob dir.
fn assert_sink_consistent(l: &Layout) {
    for d in l.blobs() {
        assert_eq!(
            Digest::of(&l.read_blob(&d)),
            d,
            "blob file {d} holds other content"
        );
    }
    let stray: Vec<_> = l
        .files()
        .into_iter()
        .filter(|f| f.starts_with(l.root.join(".tmp")))
        .collect();
    assert!(stray.is_empty(), "temp files left: {stray:?}");
}

#[test]
fn pulls_skopeo_pushed_oci_and_docker_images_byte_for_byte() {
    let reg = TestRegistry::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[400_000, 30_000], 10, "amd64");
    let oci_ref = format!("{}/lib/oci:v1", reg.host());
    let docker_ref = format!("{}/lib/docker:v1", reg.host());
    skopeo_push(&src.root, "v1", &oci_ref, &[]);
    skopeo_push(&src.root, "v1", &docker_ref, &["--format", "v2s2"]);
    let r = client(&[&reg.host()], tmp.path());

    for (name, want_type, want_layer) in [
        (&oci_ref, media::OCI_MANIFEST, media::OCI_LAYER_GZIP),
        (
            &docker_ref,
            media::DOCKER_MANIFEST,
            media::DOCKER_LAYER_GZIP,
        ),
    ] {
        let raw = skopeo_raw_manifest(name);
        let sink = Layout::create(
            &tmp.path()
                .join(format!("sink-{}", Digest::of(name.as_bytes()).hex())),
        );
        let p = r
            .pull(&name.parse().unwrap(), None, &sink, &|_| {})
            .unwrap();
        assert_eq!(p.manifest_bytes, raw, "{name}: original bytes kept");
        assert_eq!(p.manifest_digest, Digest::of(&raw));
        assert_eq!(p.manifest_media_type, want_type);
        assert!(
            p.layers.iter().all(|l| l.media_type == want_layer),
            "{name}: {:?}",
            p.layers
        );
        // Layers are skopeo's (which kept ours): byte-identical.
        for (got, ours) in p.layers.iter().zip(&img.layers) {
            assert_eq!(got.digest, ours.digest);
            assert_eq!(sink.read_blob(&got.digest), src.read_blob(&ours.digest));
        }
        assert!(sink.has_blob(&p.config_digest));
        assert_eq!(
            sink.read_blob(&p.manifest_digest),
            raw,
            "manifest stored last"
        );
        assert_eq!(p.downloaded.len(), 1 + p.layers.len());
        assert_eq!(p.reference.digest(), Some(&p.manifest_digest));
        assert_sink_consistent(&sink);
    }
}

#[test]
fn second_pull_makes_one_manifest_request_and_no_blob_requests() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    make_image(&src, "v1", &[200_000, 200_000], 11, "amd64");
    skopeo_push(&src.root, "v1", &format!("{}/c/app:v1", reg.host()), &[]);
    let r = client(&[&proxy.host()], tmp.path());
    let sink = Layout::create(&tmp.path().join("sink"));
    let reference: Reference = format!("{}/c/app:v1", proxy.host()).parse().unwrap();
    let first = r.pull(&reference, None, &sink, &|_| {}).unwrap();
    assert_eq!(
        proxy.count(|l| l.method == "GET" && l.path.contains("/blobs/")),
        3
    );
    proxy.clear_log();
    let second = r.pull(&reference, None, &sink, &|_| {}).unwrap();
    let log = proxy.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].method == "GET" && log[0].path.ends_with("/manifests/v1"));
    assert!(second.downloaded.is_empty());
    assert_eq!(second.manifest_digest, first.manifest_digest);
}

/// Pushes `img` from `src` into `base`'s repository by digest, untagged, as the
/// children of an index are.
fn push_by_digest(r: &Registry, src: &Layout, base: &Reference, img: &Image) {
    r.push(
        src,
        &base.with_digest(img.manifest_digest.clone()),
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &|_| {},
    )
    .unwrap();
}

#[test]
fn picks_the_platform_from_an_index() {
    let reg = TestRegistry::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let amd = make_image(&src, "amd", &[20_000], 12, "amd64");
    let arm = make_image(&src, "arm", &[20_000], 13, "arm64");
    let r = client(&[&reg.host()], tmp.path());
    let base: Reference = format!("{}/multi/app:x", reg.host()).parse().unwrap();
    for img in [&amd, &arm] {
        push_by_digest(&r, &src, &base, img);
    }
    let entry = |img: &Image, arch: &str, variant: Option<&str>| {
        let mut d: Descriptor = img.descriptor();
        d.platform = Some(
            parse_platform(&match variant {
                Some(v) => format!("linux/{arch}/{v}"),
                None => format!("linux/{arch}"),
            })
            .unwrap(),
        );
        d
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [entry(&amd, "amd64", None), entry(&arm, "arm64", Some("v8"))],
    }))
    .unwrap();
    let tagged = base.with_tag("multi");
    let index_digest = r
        .push(&src, &tagged, &index, media::OCI_INDEX, &[], &|_| {})
        .unwrap();
    // skopeo sees an index under the tag and resolves it per architecture.
    assert_eq!(skopeo_raw_manifest(&tagged.to_string()), index);
    let arm_config = skopeo(&[
        "--override-arch",
        "arm64",
        "inspect",
        "--config",
        "--tls-verify=false",
        &format!("docker://{tagged}"),
    ]);
    let arm_config: serde_json::Value = serde_json::from_str(&arm_config).unwrap();
    assert_eq!(arm_config["architecture"], "arm64");
    assert_eq!(arm_config["config"]["Labels"]["seed"], "13");

    let sink = Layout::create(&tmp.path().join("sink"));
    let p = r
        .pull(
            &tagged,
            Some(&parse_platform("linux/arm64").unwrap()),
            &sink,
            &|_| {},
        )
        .unwrap();
    assert_eq!(p.manifest_digest, arm.manifest_digest);
    assert_eq!(p.manifest_bytes, arm.manifest);
    assert_eq!(
        p.index.as_ref().map(|i| i.digest.clone()),
        Some(index_digest)
    );
    assert_eq!(p.config_digest, arm.config.digest);
    let host = r.pull(&tagged, None, &sink, &|_| {}).unwrap();
    assert_eq!(
        host.manifest_digest, amd.manifest_digest,
        "host platform is linux/amd64"
    );
    let e = r
        .pull(
            &tagged,
            Some(&parse_platform("linux/s390x").unwrap()),
            &sink,
            &|_| {},
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("linux/s390x") && e.contains("linux/amd64, linux/arm64/v8"),
        "{e}"
    );
}

/// One index, many platforms: `pull` from a registry and loading the same index
/// from an `oci:` layout and from an `oci-archive:` pick the same child for every
/// platform asked for, the host's included. The entries are laid out so that the
/// first match in index order is never the right one: amd64 levels above the one
/// wanted come first, arm64 is written with and without its `v8`, and a Windows
/// amd64 entry sits before the Linux one.
#[test]
fn pull_and_load_pick_the_same_child_of_an_index() {
    let reg = TestRegistry::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let r = client(&[&reg.host()], tmp.path());
    let base: Reference = format!("{}/select/app:x", reg.host()).parse().unwrap();
    // (os, architecture, variant, os.version) of each entry, in index order.
    let platforms: [(&str, &str, Option<&str>, Option<&str>); 8] = [
        ("linux", "amd64", Some("v3"), None),
        ("linux", "arm64", None, None),
        ("linux", "arm64", Some("v8"), None),
        ("linux", "amd64", Some("v2"), None),
        ("windows", "amd64", None, Some("10.0.17763.5329")),
        ("linux", "amd64", None, None),
        ("linux", "386", None, None),
        ("unknown", "unknown", None, None),
    ];
    let mut entries = Vec::new();
    let mut children = Vec::new();
    for (i, (os, arch, variant, os_version)) in platforms.iter().enumerate() {
        let img = make_image(&src, &format!("child{i}"), &[2_000], 40 + i as u64, arch);
        push_by_digest(&r, &src, &base, &img);
        let mut d: Descriptor = img.descriptor();
        d.platform = Some(media::Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            os_version: os_version.map(str::to_string),
            os_features: None,
            variant: variant.map(str::to_string),
        });
        entries.push(d);
        children.push(img.manifest_digest);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": entries,
    }))
    .unwrap();
    let tagged = base.with_tag("multi");
    let index_digest = r
        .push(&src, &tagged, &index, media::OCI_INDEX, &[], &|_| {})
        .unwrap();
    src.put_blob(&index);
    src.tag(
        "the-index",
        &Descriptor::new(media::OCI_INDEX, index_digest, index.len() as u64),
    );

    // The same layout as a directory (`oci:DIR:TAG`) and as an archive.
    let dir = boxwright::store::Layout::open(&src.root).unwrap();
    let from_dir = dir.resolve("the-index").unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", &src.root).unwrap();
    let archive = tar.into_inner().unwrap();
    let scratch = boxwright::store::Store::open(&tmp.path().join("scratch")).unwrap();
    let names = boxwright::store::load_archive(&scratch, &archive[..]).unwrap();
    let name = names.iter().find(|n| n.contains("the-index")).unwrap();
    let from_archive = scratch.layout().resolve(name).unwrap();

    let host = host_platform();
    let host_pick = match host.architecture.as_str() {
        "amd64" => Some(5),
        "arm64" => Some(2),
        _ => None, // no entry for this host: nothing to compare
    };
    let cases: Vec<(Option<&str>, usize)> = [
        (None, host_pick),
        (Some("linux/amd64"), Some(5)),
        (Some("linux/amd64/v1"), Some(5)),
        (Some("linux/amd64/v3"), Some(0)),
        (Some("linux/amd64/v4"), Some(0)),
        (Some("linux/amd64/v2"), Some(3)),
        (Some("linux/arm64/v8"), Some(2)),
        (Some("linux/arm64"), Some(1)),
        (Some("linux/386"), Some(6)),
        (Some("windows/amd64"), Some(4)),
    ]
    .into_iter()
    .filter_map(|(p, want)| Some((p, want?)))
    .collect();
    let sink = Layout::create(&tmp.path().join("sink"));
    for (platform, want) in cases {
        let wanted = platform.map(|p| parse_platform(p).unwrap());
        let pulled = r
            .pull(&tagged, wanted.as_ref(), &sink, &|_| {})
            .unwrap()
            .manifest_digest;
        let on = wanted.clone().unwrap_or_else(host_platform);
        let loaded = load_image_for(&dir, &from_dir, &on).unwrap();
        let unpacked = load_image_for(scratch.layout(), &from_archive, &on).unwrap();
        assert_eq!(pulled, children[want], "pull for {platform:?}");
        assert_eq!(
            loaded.manifest_descriptor.digest, pulled,
            "oci: layout for {platform:?}"
        );
        assert_eq!(
            unpacked.manifest_descriptor.digest, pulled,
            "oci-archive: for {platform:?}"
        );
    }
    // Where nothing runs, both refuse the same way, naming what there is.
    let s390x = parse_platform("linux/s390x").unwrap();
    let pull_err = r
        .pull(&tagged, Some(&s390x), &sink, &|_| {})
        .unwrap_err()
        .to_string();
    let load_err = load_image_for(&dir, &from_dir, &s390x)
        .unwrap_err()
        .to_string();
    let listed = "available: linux/amd64/v3, linux/arm64, linux/arm64/v8, linux/amd64/v2, windows/amd64, linux/amd64, linux/386, unknown/unknown";
    assert!(pull_err.contains(listed), "{pull_err}");
    assert!(load_err.contains(listed), "{load_err}");
}

#[test]
fn bad_content_is_refused_and_nothing_bad_is_stored() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[300_000], 14, "amd64");
    let other = make_image(&src, "v2", &[1_000], 15, "amd64");
    skopeo_push(&src.root, "v1", &format!("{}/bad/app:v1", reg.host()), &[]);
    let r = client(&[&proxy.host()], tmp.path());
    let by_tag: Reference = format!("{}/bad/app:v1", proxy.host()).parse().unwrap();
    let by_digest = by_tag.with_digest(img.manifest_digest.clone());
    let layer = img.layers[0].clone();
    let sink = Layout::create(&tmp.path().join("sink"));
    let before = sink.files();

    // Malformed manifest.
    proxy.add_rule(
        Some("GET"),
        "/manifests/",
        1,
        Action::ReplaceBody(b"{\"schemaVersion\":2,".to_vec()),
    );
    let e = r.pull(&by_tag, None, &sink, &|_| {}).unwrap_err();
    assert!(matches!(e, RegistryError::Manifest { .. }), "{e}");
    assert!(
        e.to_string().contains("malformed manifest bad/app:v1"),
        "{e}"
    );
    assert_eq!(sink.files(), before);

    // A manifest that does not match the digest asked for.
    proxy.add_rule(
        Some("GET"),
        "/manifests/",
        1,
        Action::ReplaceBody(other.manifest.clone()),
    );
    let e = r.pull(&by_digest, None, &sink, &|_| {}).unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&img.manifest_digest.to_string()));
    assert_eq!(sink.files(), before);

    // A layer with the right size but other bytes.
    let mut wrong = src.read_blob(&layer.digest);
    wrong[1000] ^= 0xff;
    let blob_path = format!("/blobs/{}", layer.digest);
    proxy.add_rule(Some("GET"), &blob_path, 1, Action::ReplaceBody(wrong));
    let e = r.pull(&by_tag, None, &sink, &|_| {}).unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("blob {}", layer.digest)),
        "{e}"
    );
    assert!(!sink.has_blob(&layer.digest));
    assert!(
        !sink.has_blob(&img.manifest_digest),
        "no manifest for a partial image"
    );
    assert_sink_consistent(&sink);

    // A shorter layer.
    let short = src.read_blob(&layer.digest)[..1000].to_vec();
    proxy.add_rule(Some("GET"), &blob_path, 1, Action::ReplaceBody(short));
    let e = r.pull(&by_tag, None, &sink, &|_| {}).unwrap_err();
    assert!(
        matches!(e, RegistryError::SizeMismatch { actual: 1000, .. }),
        "{e}"
    );
    assert!(!sink.has_blob(&layer.digest));

    // A layer whose connection is cut half-way, every time.
    proxy.add_rule(
        Some("GET"),
        &blob_path,
        100,
        Action::CutResponse(layer.size / 2),
    );
    let e = r.pull(&by_tag, None, &sink, &|_| {}).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Transport { .. }), "{msg}");
    assert!(
        msg.contains(&format!("blob {}", layer.digest)) && msg.contains("broke off"),
        "{msg}"
    );
    assert!(!sink.has_blob(&layer.digest));
    assert!(!sink.has_blob(&img.manifest_digest));
    assert_sink_consistent(&sink);

    // Cut once only: the retry completes the pull.
    proxy.clear_rules();
    proxy.add_rule(
        Some("GET"),
        &blob_path,
        1,
        Action::CutResponse(layer.size / 3),
    );
    let p = client_with(
        &[&proxy.host()],
        tmp.path(),
        boxwright::registry::CredentialStore::with_files(vec![], tmp.path().join("a.json")),
        |_| {},
    )
    .pull(&by_tag, None, &sink, &|_| {})
    .unwrap();
    assert_eq!(p.manifest_digest, img.manifest_digest);
    assert_eq!(sink.read_blob(&layer.digest), src.read_blob(&layer.digest));
    assert_sink_consistent(&sink);
}

#[test]
fn slow_answers_time_out_and_are_retried_and_429_is_honoured() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[100_000], 16, "amd64");
    skopeo_push(&src.root, "v1", &format!("{}/slow/app:v1", reg.host()), &[]);
    let r = client_with(
        &[&proxy.host()],
        tmp.path(),
        boxwright::registry::CredentialStore::with_files(vec![], tmp.path().join("a.json")),
        |o| o.read_timeout = std::time::Duration::from_millis(300),
    );
    // The first manifest answer comes too late, the first layer GET is
    // throttled (429), the second comes late: all recovered by retries.
    proxy.add_rule(
        Some("GET"),
        "/manifests/",
        1,
        Action::Delay(std::time::Duration::from_millis(1000)),
    );
    let blob = format!("/blobs/{}", img.layers[0].digest);
    proxy.add_rule(Some("GET"), &blob, 1, Action::Status(429));
    proxy.add_rule(
        Some("GET"),
        &blob,
        1,
        Action::Delay(std::time::Duration::from_millis(1000)),
    );
    let sink = Layout::create(&tmp.path().join("sink"));
    let reference: Reference = format!("{}/slow/app:v1", proxy.host()).parse().unwrap();
    let p = r.pull(&reference, None, &sink, &|_| {}).unwrap();
    assert_eq!(p.manifest_digest, img.manifest_digest);
    assert_eq!(
        sink.read_blob(&img.layers[0].digest),
        src.read_blob(&img.layers[0].digest)
    );
    assert_eq!(proxy.count(|l| l.path.ends_with("/manifests/v1")), 2);
    assert_eq!(proxy.count(|l| l.path.ends_with(&blob)), 3);
    assert_sink_consistent(&sink);
}

/// A client whose backoff is quick but which waits out a `Retry-After` of
/// a few seconds (the shared test client caps every wait at 200 ms).
fn patient_client(host: &str, dir: &std::path::Path) -> boxwright::registry::Registry {
    client_with(
        &[host],
        dir,
        boxwright::registry::CredentialStore::with_files(vec![], dir.join("a.json")),
        |o| o.retry.max = std::time::Duration::from_secs(5),
    )
}

#[test]
fn a_429_is_retried_no_sooner_than_retry_after_in_seconds_or_as_a_date() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[100_000], 17, "amd64");
    skopeo_push(&src.root, "v1", &format!("{}/wait/app:v1", reg.host()), &[]);
    let r = patient_client(&proxy.host(), tmp.path());
    let reference: Reference = format!("{}/wait/app:v1", proxy.host()).parse().unwrap();
    let blob = format!("/blobs/{}", img.layers[0].digest);
    let blob_gets = || -> Vec<support::proxy::Logged> {
        proxy
            .log()
            .into_iter()
            .filter(|l| l.method == "GET" && l.path.ends_with(&blob))
            .collect()
    };

    // Delta-seconds: the retry arrives at least a second after the 429'd
    // request did (both times taken by the proxy).
    proxy.add_rule(
        Some("GET"),
        &blob,
        1,
        Action::StatusWithHeaders(429, vec![("Retry-After".into(), "1".into())]),
    );
    let sink = Layout::create(&tmp.path().join("sink1"));
    let p = r.pull(&reference, None, &sink, &|_| {}).unwrap();
    assert_eq!(p.manifest_digest, img.manifest_digest);
    assert_eq!(
        sink.read_blob(&img.layers[0].digest),
        src.read_blob(&img.layers[0].digest)
    );
    let gets = blob_gets();
    assert_eq!(
        gets.iter().map(|l| l.status).collect::<Vec<_>>(),
        [429, 200]
    );
    let gap = gets[1].at - gets[0].at;
    assert!(
        gap >= std::time::Duration::from_secs(1),
        "retried {gap:?} after a 429 with Retry-After: 1"
    );
    assert_sink_consistent(&sink);

    // An HTTP-date (whole seconds, 1 to 2 s ahead): the retry arrives no
    // sooner than that date by the system clock.
    proxy.clear_log();
    let date =
        httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(2));
    let not_before = httpdate::parse_http_date(&date).unwrap();
    proxy.add_rule(
        Some("GET"),
        &blob,
        1,
        Action::StatusWithHeaders(429, vec![("Retry-After".into(), date.clone())]),
    );
    let sink = Layout::create(&tmp.path().join("sink2"));
    let p = r.pull(&reference, None, &sink, &|_| {}).unwrap();
    assert_eq!(p.manifest_digest, img.manifest_digest);
    let gets = blob_gets();
    assert_eq!(
        gets.iter().map(|l| l.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert!(
        gets[1].wall >= not_before,
        "retried at {:?}, before Retry-After: {date}",
        httpdate::fmt_http_date(gets[1].wall)
    );
    assert_sink_consistent(&sink);
}

#[test]
fn a_blob_trickled_in_small_chunks_is_pulled_intact() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[200_000], 18, "amd64");
    skopeo_push(
        &src.root,
        "v1",
        &format!("{}/trickle/app:v1", reg.host()),
        &[],
    );
    // Each pause is well under the read timeout, the whole body (at least
    // 25 pauses of 20 ms) well over it: the timeout is between reads, so
    // a slow body is no failure, and is not asked for again.
    let r = client_with(
        &[&proxy.host()],
        tmp.path(),
        boxwright::registry::CredentialStore::with_files(vec![], tmp.path().join("a.json")),
        |o| o.read_timeout = std::time::Duration::from_millis(300),
    );
    let layer = &img.layers[0];
    assert!(layer.size > 24 * 8192, "{} bytes", layer.size);
    let blob = format!("/blobs/{}", layer.digest);
    proxy.add_rule(
        Some("GET"),
        &blob,
        1,
        Action::SlowBody {
            chunk: 8192,
            pause: std::time::Duration::from_millis(20),
        },
    );
    let sink = Layout::create(&tmp.path().join("sink"));
    let reference: Reference = format!("{}/trickle/app:v1", proxy.host()).parse().unwrap();
    let p = r.pull(&reference, None, &sink, &|_| {}).unwrap();
    assert_eq!(p.manifest_digest, img.manifest_digest);
    assert_eq!(sink.read_blob(&layer.digest), src.read_blob(&layer.digest));
    assert_eq!(
        proxy.count(|l| l.method == "GET" && l.path.ends_with(&blob)),
        1,
        "the trickled blob was fetched once"
    );
    assert_sink_consistent(&sink);
}

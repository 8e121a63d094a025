//! Push against a real registry (distribution 2.8), checked with skopeo and
//! by counting requests in a proxy.

#[path = "registry_support/mod.rs"]
mod support;

use std::time::Duration;

use boxwright::digest::Digest;
use boxwright::registry::{Reference, RegistryError, SkipReason, TransferEvent};
use support::layout::{Layout, make_image};
use support::proxy::{Action, FaultProxy};
use support::registry::TestRegistry;
use support::{Events, client, client_with, skopeo_pull, skopeo_raw, skopeo_raw_manifest};

fn is_blob_upload(l: &support::proxy::Logged) -> bool {
    (l.method == "PATCH" || l.method == "PUT") && l.path.contains("/blobs/uploads/")
}

#[test]
fn pushed_image_is_read_back_identically_by_skopeo() {
    let reg = TestRegistry::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[300_000, 1_000_000, 50_000], 1, "amd64");
    let r = client(&[&reg.host()], tmp.path());
    let target: Reference = format!("{}/team/app:v1", reg.host()).parse().unwrap();
    let events = Events::default();
    let d = r
        .push(
            &src,
            &target,
            &img.manifest,
            &img.media_type,
            &img.blobs(),
            &events.callback(),
        )
        .unwrap();
    assert_eq!(d, img.manifest_digest);

    // The registry serves exactly our manifest bytes.
    let raw = skopeo_raw_manifest(&target.to_string());
    assert_eq!(raw, img.manifest);
    // skopeo can copy the whole image out, and every blob is byte-identical.
    let out = Layout::create(&tmp.path().join("out"));
    skopeo_pull(&target.to_string(), &out.root, "copy");
    assert_eq!(out.tagged("copy").digest, img.manifest_digest);
    for b in img.blobs() {
        assert_eq!(
            out.read_blob(&b.digest),
            src.read_blob(&b.digest),
            "blob {}",
            b.digest
        );
    }

    // Events: every blob started and finished with its full size.
    let ev = events.all();
    for b in img.blobs() {
        assert!(ev.contains(&TransferEvent::Started {
            digest: b.digest.clone(),
            size: b.size
        }));
        assert!(ev.contains(&TransferEvent::Done {
            digest: b.digest.clone(),
            size: b.size
        }));
        let last = ev
            .iter()
            .filter_map(|e| match e {
                TransferEvent::Progress { digest, done, .. } if *digest == b.digest => Some(*done),
                _ => None,
            })
            .max();
        assert_eq!(last, Some(b.size), "progress of {}", b.digest);
    }
}

#[test]
fn repush_uploads_nothing_and_second_repo_mounts() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[200_000, 400_000], 2, "amd64");
    let r = client(&[&proxy.host()], tmp.path());
    let first: Reference = format!("{}/one/app:v1", proxy.host()).parse().unwrap();
    r.push(
        &src,
        &first,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        proxy.count(is_blob_upload),
        3,
        "first push uploads config + 2 layers"
    );

    // Re-push: HEADs only, then the manifest.
    proxy.clear_log();
    let events = Events::default();
    r.push(
        &src,
        &first,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &events.callback(),
    )
    .unwrap();
    assert_eq!(proxy.count(is_blob_upload), 0);
    assert_eq!(proxy.count(|l| l.method == "POST"), 0);
    let sent: u64 = proxy.log().iter().map(|l| l.request_bytes).sum();
    assert_eq!(sent, img.manifest.len() as u64, "only the manifest is sent");
    let skipped = events
        .all()
        .iter()
        .filter(|e| {
            matches!(
                e,
                TransferEvent::Skipped {
                    reason: SkipReason::Exists,
                    ..
                }
            )
        })
        .count();
    assert_eq!(skipped, 3);

    // A second repository: every blob mounted (201), nothing uploaded.
    proxy.clear_log();
    let second: Reference = format!("{}/two/app:v1", proxy.host()).parse().unwrap();
    let events = Events::default();
    r.push(
        &src,
        &second,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &events.callback(),
    )
    .unwrap();
    let mounts = proxy.count(|l| {
        l.method == "POST"
            && l.query.contains("mount=")
            && l.query.contains("from=one%2Fapp")
            && l.status == 201
    });
    assert_eq!(mounts, 3, "{:?}", proxy.log());
    assert_eq!(proxy.count(is_blob_upload), 0);
    assert!(events.all().iter().any(|e| matches!(e, TransferEvent::Skipped { reason: SkipReason::Mounted { from }, .. } if from == "one/app")));

    // The cache persists: a new client (new process) mounts into a third repo.
    drop(r);
    let r2 = client(&[&proxy.host()], tmp.path());
    proxy.clear_log();
    let third: Reference = format!("{}/three/app:v1", proxy.host()).parse().unwrap();
    r2.push(
        &src,
        &third,
        &img.manifest,
        &img.media_type,
        &img.blobs(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(proxy.count(|l| l.method == "POST" && l.status == 201), 3);
    assert_eq!(proxy.count(is_blob_upload), 0);
    assert_eq!(
        skopeo_raw_manifest(&format!("{}/three/app:v1", reg.host())),
        img.manifest
    );
}

#[test]
fn faults_500s_drops_and_delays_still_give_the_right_image() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    // One large layer goes up in 256 KiB chunks; the others in one PUT.
    let img = make_image(&src, "v1", &[1_200_000, 100_000], 3, "amd64");
    let r = client_with(
        &[&proxy.host()],
        tmp.path(),
        boxwright::registry::CredentialStore::with_files(vec![], tmp.path().join("a.json")),
        |o| {
            o.monolithic_max = 300_000;
            o.chunk_size = 256 << 10;
        },
    );
    // 500 on the first blob HEAD and the first upload start, a dropped
    // connection in the middle of the second chunk, a 503 on a monolithic
    // PUT, a slow manifest PUT.
    proxy.add_rule(Some("HEAD"), "/blobs/", 1, Action::Status(500));
    proxy.add_rule(Some("POST"), "/blobs/uploads/", 1, Action::Status(500));
    proxy.add_rule(
        Some("PATCH"),
        "/blobs/uploads/",
        1,
        Action::Delay(Duration::from_millis(10)),
    );
    proxy.add_rule(
        Some("PATCH"),
        "/blobs/uploads/",
        1,
        Action::DropAfter(100_000),
    );
    proxy.add_rule(Some("PUT"), "/blobs/uploads/", 1, Action::Status(503));
    proxy.add_rule(
        Some("PUT"),
        "/manifests/",
        1,
        Action::Delay(Duration::from_millis(300)),
    );
    let target: Reference = format!("{}/faulty/app:v1", proxy.host()).parse().unwrap();
    let events = Events::default();
    let d = r
        .push(
            &src,
            &target,
            &img.manifest,
            &img.media_type,
            &img.blobs(),
            &events.callback(),
        )
        .unwrap();
    assert_eq!(d, img.manifest_digest);

    // The dropped chunk was resumed from the registry's offset, not restarted.
    let big = &img.layers[0];
    let resumed = events.all().iter().any(|e| {
        matches!(e, TransferEvent::Retrying { digest, resume_at, .. } if *digest == big.digest && *resume_at == 256 << 10)
    });
    assert!(resumed, "no resume at 256 KiB: {:?}", events.all());
    assert!(proxy.count(|l| l.status == 0) >= 1, "the drop happened");

    let out = Layout::create(&tmp.path().join("out"));
    skopeo_pull(&format!("{}/faulty/app:v1", reg.host()), &out.root, "x");
    assert_eq!(out.tagged("x").digest, img.manifest_digest);
    for b in img.blobs() {
        assert_eq!(Digest::of(&out.read_blob(&b.digest)), b.digest);
    }
}

#[test]
fn a_push_that_cannot_complete_names_blob_and_status_and_leaves_no_tag() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let src = Layout::create(&tmp.path().join("src"));
    let img = make_image(&src, "v1", &[50_000], 4, "amd64");
    let r = client(&[&proxy.host()], tmp.path());
    // Every blob upload fails with 500 (the tiny config included).
    proxy.add_rule(Some("PUT"), "/blobs/uploads/", 1000, Action::Status(500));
    let target: Reference = format!("{}/broken/app:v1", proxy.host()).parse().unwrap();
    let err = r
        .push(
            &src,
            &target,
            &img.manifest,
            &img.media_type,
            &img.blobs(),
            &|_| {},
        )
        .unwrap_err();
    let msg = err.to_string();
    eprintln!("push error: {msg}");
    assert!(
        matches!(err, RegistryError::Http { status: 500, .. }),
        "{msg}"
    );
    assert!(msg.contains("blob sha256:"), "{msg}");
    assert!(
        img.blobs()
            .iter()
            .any(|b| msg.contains(&b.digest.to_string())),
        "{msg}"
    );
    assert!(
        msg.contains(&proxy.host()) && msg.contains("HTTP 500"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    assert_eq!(
        proxy.count(|l| l.method == "PUT" && l.path.contains("/manifests/")),
        0
    );
    // No tag points at a partial image.
    let out = skopeo_raw(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/broken/app:v1", reg.host()),
    ]);
    assert!(!out.status.success());
    assert_eq!(r.manifest_digest(&target).unwrap(), None);
}

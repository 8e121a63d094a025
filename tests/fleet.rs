//! Fleets of runners: the registry as the shared step cache
//! (`--cache-to`/`--cache-from`), and parallel builds on one store that run
//! each step once.

#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use regsupport::proxy::FaultProxy;
use regsupport::registry::TestRegistry;
use support::*;

/// A 4-step recipe whose steps append to a counter in a cache mount (kept
/// per store, never in a layer): its lines count the steps that really ran.
fn recipe(dir: &Path, third: &str) -> PathBuf {
    write_recipe(
        dir,
        "r.toml",
        &format!(
            "{}\n[[steps]]\nrun = \"echo one > /one; echo 1 >> /counter/ran\"\ncache = [\"/counter\"]\n\
             [[steps]]\nrun = \"echo two > /two; echo 2 >> /counter/ran\"\ncache = [\"/counter\"]\n\
             [[steps]]\nrun = \"echo {third} > /three; echo 3 >> /counter/ran\"\ncache = [\"/counter\"]\n\
             [[steps]]\nrun = \"echo four > /four; echo 4 >> /counter/ran\"\ncache = [\"/counter\"]\n",
            busybox_base()
        ),
    )
}

/// The steps that ran in `store` (the counter cache mount's lines).
fn ran(store: &Path) -> Vec<String> {
    let state = store.with_file_name(format!(
        "{}.state",
        store.file_name().unwrap().to_string_lossy()
    ));
    fs::read_to_string(state.join("mounts/counter/ran"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn build(store: &Path, recipe: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "--store",
        store.to_str().unwrap(),
        "build",
        recipe.to_str().unwrap(),
        "--progress",
        "plain",
    ];
    args.extend_from_slice(extra);
    boxwright(&args)
}

/// What each registry-cache test starts from: a registry behind a fault
/// proxy (its log, and faults on demand), a scratch dir, the cache
/// repository there, the 4-step recipe and runner A's store path.
struct Fleet {
    _registry: TestRegistry,
    proxy: FaultProxy,
    host: String,
    t: tempfile::TempDir,
    cache: String,
    r: PathBuf,
    a: PathBuf,
}

fn fleet() -> Fleet {
    let registry = TestRegistry::start();
    let proxy = FaultProxy::start(registry.port);
    let host = proxy.host();
    let t = tempfile::tempdir().unwrap();
    let cache = format!("{host}/ci/cache");
    let r = recipe(t.path(), "three");
    let a = t.path().join("a/store");
    Fleet {
        _registry: registry,
        proxy,
        host,
        t,
        cache,
        r,
        a,
    }
}

#[test]
fn runner_b_builds_nothing_that_runner_a_built() {
    let Fleet {
        _registry,
        proxy,
        host,
        t,
        cache,
        r,
        a,
    } = fleet();
    let b = t.path().join("b/store");
    let built_a = build(&a, &r, &["-t", "img", "--cache-to", &cache]).ok();
    assert_eq!(ran(&a), ["1", "2", "3", "4"]);
    assert!(
        built_a.stderr.contains("step cache: 4 record(s)"),
        "{}",
        built_a.stderr
    );
    let digest_a = built_a.stdout.trim().to_string();

    // B, an empty store: runs no step, gets the same image.
    let built_b = build(&b, &r, &["-t", "img", "--cache-from", &cache]).ok();
    assert!(
        ran(&b).is_empty(),
        "B ran {:?}: {}",
        ran(&b),
        built_b.stderr
    );
    assert_eq!(built_b.stdout.trim(), digest_a);
    // B pushes it to the same registry: layers are mounted, none uploaded.
    proxy.clear_log();
    let target = format!("{host}/ci/app:1");
    boxwright(&["--store", b.to_str().unwrap(), "push", "img", &target]).ok();
    // Every step layer is mounted from the cache repository, none uploaded.
    // (Uploaded: the image config, and the base layer, which B imported
    // from its own rootfs tar and no registry holds.)
    let mounts =
        proxy.count(|l| l.method == "POST" && l.query.contains("mount=") && l.status == 201);
    assert_eq!(mounts, 4, "step layers mounted: {:?}", proxy.log());
    let uploaded: Vec<String> = proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "PUT" && l.path.contains("/blobs/uploads/"))
        .map(|l| l.query)
        .collect();
    assert_eq!(uploaded.len(), 2, "{uploaded:?}");

    // B changes step 3: only 3 and 4 run.
    let r3 = recipe(t.path(), "THREE");
    build(&b, &r3, &["-t", "img2", "--cache-from", &cache]).ok();
    assert_eq!(ran(&b), ["3", "4"]);

    // C, set up by registries.toml alone: a [[cache]] table for this recipe
    // (r.toml again as A built it).
    let r = recipe(t.path(), "three");
    let conf = t.path().join("registries.toml");
    fs::write(
        &conf,
        format!("[[cache]]\nrecipe = \"r.toml\"\ncache_from = [\"{cache}\"]\n"),
    )
    .unwrap();
    let c = t.path().join("c/store");
    let conf_arg = conf.to_str().unwrap();
    let built_c = build(&c, &r, &["--registries-conf", conf_arg]).ok();
    assert!(ran(&c).is_empty(), "C ran {:?}", ran(&c));
    assert_eq!(built_c.stdout.trim(), digest_a);
}

#[test]
fn corrupt_or_missing_records_are_misses_with_a_warning() {
    let Fleet {
        _registry,
        proxy: _proxy,
        host,
        t,
        cache,
        r,
        a,
    } = fleet();
    let digest = build(&a, &r, &["-t", "img", "--cache-to", &cache])
        .ok()
        .stdout;
    // Record of step 1: its layer blob deleted from the registry's storage.
    // Record of step 2: replaced by a foreign manifest under the same tag.
    let tags = regsupport::skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{cache}"),
    ]);
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    let mut records: Vec<String> = tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    records.sort();
    assert_eq!(records.len(), 4, "{records:?}");
    // Overwrite every record with a plain image (foreign content under the tag).
    let foreign = t.path().join("foreign");
    let layout = regsupport::layout::Layout::create(&foreign);
    regsupport::layout::make_image(&layout, "x", &[64], 7, "amd64");
    regsupport::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:x", foreign.display()),
        &format!("docker://{cache}:{}", records[0]),
    ]);
    // Another record's layer blob deleted from the registry.
    let gone = manifest(&host, "ci/cache", &records[1])["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    curl(&[
        "-X",
        "DELETE",
        &format!("http://{host}/v2/ci/cache/blobs/{gone}"),
    ]);
    let status = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
        .arg(format!("http://{host}/v2/ci/cache/blobs/{gone}"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "404",
        "the layer blob is gone"
    );
    // A third record corrupted: it claims a diff_id its layer does not have.
    forge_diff_id(&host, "ci/cache", &records[2], t.path());

    let b = t.path().join("b/store");
    let built = build(&b, &r, &["-t", "img", "--cache-from", &cache]).ok();
    for why in [
        "is not usable (not a boxwright step-cache record)",
        "is not usable (its layer's content is not the diff_id it claims)",
    ] {
        assert!(built.stderr.contains(why), "{why}:\n{}", built.stderr);
    }
    assert_eq!(
        built.stderr.matches("is not usable (").count(),
        3,
        "three warnings, one per broken record:\n{}",
        built.stderr
    );
    assert_eq!(built.stdout, digest, "still the right image");
    // The three broken records' steps ran; the fourth came from the cache.
    assert_eq!(ran(&b).len(), 3, "{:?}", ran(&b));
    // A cache repository that does not exist is a plain miss.
    let c = t.path().join("c/store");
    let built = build(&c, &r, &["--cache-from", &format!("{host}/nothing/here")]).ok();
    assert_eq!(ran(&c).len(), 4);
    assert!(!built.stderr.contains("error"), "{}", built.stderr);
    // prune removes records older than the cutoff (here: all of them).
    std::thread::sleep(Duration::from_secs(2));
    let pruned = boxwright(&[
        "--store",
        a.to_str().unwrap(),
        "cache",
        "prune",
        "--remote",
        &cache,
        "--older-than",
        "1s",
    ])
    .ok();
    assert!(
        pruned.stderr.contains("removed 3 cache record(s)"),
        "{}",
        pruned.stderr
    );
}

/// The manifest `reference` names in `repo` of the registry at `host`.
fn manifest(host: &str, repo: &str, reference: &str) -> serde_json::Value {
    let body = curl(&[
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("http://{host}/v2/{repo}/manifests/{reference}"),
    ]);
    serde_json::from_slice(&body).unwrap()
}

/// Rewrites the cache record tagged `tag` so that it claims a diff_id its
/// layer does not have (a new config blob and annotation, the manifest PUT
/// over the tag).
fn forge_diff_id(host: &str, repo: &str, tag: &str, scratch: &Path) {
    let mut m = manifest(host, repo, tag);
    let config = m["config"]["digest"].as_str().unwrap().to_string();
    let mut record: serde_json::Value =
        serde_json::from_slice(&curl(&[&format!("http://{host}/v2/{repo}/blobs/{config}")]))
            .unwrap();
    record["layer"]["diff_id"] = format!("sha256:{}", "0".repeat(64)).into();
    let forged = serde_json::to_vec(&record).unwrap();
    let forged_digest = format!("sha256:{}", sha256_hex(&forged));
    put_blob(host, repo, &forged, &forged_digest);
    m["config"]["digest"] = forged_digest.into();
    m["config"]["size"] = forged.len().into();
    // The manifest's annotations repeat the record (a lookup reads only
    // them): forged the same way.
    m["annotations"]["io.boxwright.cache.diff-id"] = record["layer"]["diff_id"].clone();
    let tmp = scratch.join(format!("forged-{tag}.json"));
    fs::write(&tmp, serde_json::to_vec(&m).unwrap()).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", tmp.display()),
        &format!("http://{host}/v2/{repo}/manifests/{tag}"),
    ]);
}

/// The tag of the cache record in `repo` whose layer is `layer`.
fn record_of_layer(host: &str, repo: &str, layer: &str) -> String {
    let tags: serde_json::Value =
        serde_json::from_slice(&curl(&[&format!("http://{host}/v2/{repo}/tags/list")])).unwrap();
    tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .find(|t| manifest(host, repo, t)["layers"][0]["digest"] == layer)
        .unwrap_or_else(|| panic!("no record of layer {layer} in {tags}"))
}

/// The blob digests of an image's step layers (all but the base layer).
fn step_layers(host: &str, repo: &str, tag: &str) -> Vec<String> {
    manifest(host, repo, tag)["layers"].as_array().unwrap()[1..]
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_build_pushed_to_the_cache_registry_never_downloads_its_cached_layers() {
    let Fleet {
        _registry,
        proxy,
        host,
        t,
        cache,
        r,
        a,
    } = fleet();
    let digest_a = build(&a, &r, &["-t", "img", "--cache-to", &cache])
        .ok()
        .stdout
        .trim()
        .to_string();

    // B, an empty store, builds and pushes to the cache's registry.
    let b = t.path().join("b/store");
    let target = format!("{host}/ci/app:1");
    proxy.clear_log();
    let built = build(&b, &r, &["-t", &target, "--push", "--cache-from", &cache]).ok();
    assert!(ran(&b).is_empty(), "B ran {:?}", ran(&b));
    assert_eq!(built.stdout.trim(), digest_a, "{}", built.stderr);
    let log = proxy.log();
    let layers = step_layers(&host, "ci/app", "1");
    assert_eq!(layers.len(), 4);
    for l in &layers {
        // Never downloaded, not in B's store: mounted registry-side.
        assert!(
            !log.iter()
                .any(|e| e.method == "GET" && e.path.ends_with(&format!("/blobs/{l}"))),
            "{l} was downloaded: {log:?}"
        );
        let hex = l.strip_prefix("sha256:").unwrap();
        assert!(
            !b.join("blobs/sha256").join(hex).exists(),
            "{l} is in B's store"
        );
    }
    let mounts =
        proxy.count(|l| l.method == "POST" && l.query.contains("mount=") && l.status == 201);
    assert_eq!(mounts, 4, "step layers mounted: {log:?}");
    let uploads = proxy.count(|l| l.method == "PUT" && l.path.contains("/blobs/uploads/"));
    assert_eq!(
        uploads, 2,
        "only the config and the base layer are uploaded"
    );

    // fsck knows where they are; the store is sound.
    let fsck = boxwright(&["--store", b.to_str().unwrap(), "fsck"]).ok();
    assert!(
        fsck.stderr
            .contains("(4 layer(s) held by a registry, checked when fetched): no problems"),
        "{}",
        fsck.stderr
    );
    // gc keeps what the image needs; listings read it.
    boxwright(&["--store", b.to_str().unwrap(), "gc"]).ok();
    let images = boxwright(&["--store", b.to_str().unwrap(), "images"]).ok();
    assert!(images.stdout.contains("ci/app"), "{}", images.stdout);
    boxwright(&["--store", b.to_str().unwrap(), "df"]).ok();

    // The pushed image is right: an empty store pulls it (checking every
    // layer against its diff_id) and runs it; skopeo and umoci read it too.
    let c = t.path().join("c/store");
    boxwright(&["--store", c.to_str().unwrap(), "pull", &target]).ok();
    let cat = ["cat", "/one", "/two", "/three", "/four"];
    let mut args = vec!["--store", c.to_str().unwrap(), "run", "--rm", &target];
    args.extend(cat);
    assert_eq!(boxwright(&args).ok().stdout, "one\ntwo\nthree\nfour\n");
    let oci = t.path().join("oci");
    regsupport::skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{target}"),
        &format!("oci:{}:x", oci.display()),
    ]);
    let bundle = t.path().join("bundle");
    let umoci = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:x", oci.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        umoci.status.success(),
        "{}",
        String::from_utf8_lossy(&umoci.stderr)
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/three")).unwrap(),
        "three\n"
    );

    // B runs its own image: the layers are fetched now, and checked.
    let mut args = vec!["--store", b.to_str().unwrap(), "run", "--rm", &target];
    args.extend(cat);
    assert_eq!(boxwright(&args).ok().stdout, "one\ntwo\nthree\nfour\n");
    for l in &layers {
        let hex = l.strip_prefix("sha256:").unwrap();
        assert!(b.join("blobs/sha256").join(hex).exists(), "{l} fetched");
    }
    let fsck = boxwright(&["--store", b.to_str().unwrap(), "fsck"]).ok();
    assert!(
        !fsck.stderr.contains("held by a registry"),
        "{}",
        fsck.stderr
    );
    assert!(fsck.stderr.ends_with("no problems\n"), "{}", fsck.stderr);

    // Two more runners build the same way; one saves the image to an
    // archive, the other pushes it to another registry: both fetch the
    // layers first (checked), and skopeo reads what they wrote.
    for (runner, how) in [("e", "save"), ("f", "push")] {
        let s = t.path().join(format!("{runner}/store"));
        let store = s.to_str().unwrap();
        build(&s, &r, &["-t", &target, "--push", "--cache-from", &cache]).ok();
        assert!(!s.join("blobs/sha256").join(&layers[3][7..]).exists());
        let inspected = if how == "save" {
            let archive = t.path().join("app.tar");
            let a = archive.to_str().unwrap();
            boxwright(&["--store", store, "save", &target, "-o", a]).ok();
            regsupport::skopeo(&["inspect", &format!("oci-archive:{a}:{target}")])
        } else {
            let other = TestRegistry::start();
            let elsewhere = format!("{}/elsewhere/app:1", other.host());
            boxwright(&["--store", store, "push", &target, &elsewhere]).ok();
            regsupport::skopeo(&[
                "inspect",
                "--tls-verify=false",
                &format!("docker://{elsewhere}"),
            ])
        };
        for l in &layers {
            assert!(inspected.contains(l.as_str()), "{how}: {inspected}");
            assert!(
                s.join("blobs/sha256").join(&l[7..]).exists(),
                "{how} fetched {l}"
            );
        }
    }
}

#[test]
fn a_forged_record_under_a_lazy_hit_is_caught_when_a_later_step_needs_its_layer() {
    let Fleet {
        _registry,
        proxy: _proxy,
        host,
        t,
        cache,
        r,
        a,
    } = fleet();
    let a_ref = format!("{host}/ci/a:1");
    build(&a, &r, &["-t", &a_ref, "--push", "--cache-to", &cache]).ok();
    // Step 2's record lies about its layer's content.
    let layer2 = &step_layers(&host, "ci/a", "1")[1];
    let tag = record_of_layer(&host, "ci/cache", layer2);
    forge_diff_id(&host, "ci/cache", &tag, t.path());

    // B changes step 3 and pushes to the cache's registry: steps 1 and 2
    // hit (not downloaded), step 3 must run on their layers, the fetch
    // finds step 2's record false, and the build goes back to step 2.
    let r3 = recipe(t.path(), "THREE");
    let b = t.path().join("b/store");
    let target = format!("{host}/ci/b:1");
    let built = build(&b, &r3, &["-t", &target, "--push", "--cache-from", &cache]).ok();
    assert_eq!(ran(&b), ["2", "3", "4"], "{}", built.stderr);
    assert_eq!(
        built
            .stderr
            .matches("is not usable (its layer's content is not the diff_id it claims)")
            .count(),
        1,
        "{}",
        built.stderr
    );
    // The same image as a build without any cache.
    let d = t.path().join("d/store");
    let plain = build(&d, &r3, &["-t", "img"]).ok();
    assert_eq!(built.stdout, plain.stdout);
    let fsck = boxwright(&["--store", b.to_str().unwrap(), "fsck"]).ok();
    assert!(fsck.stderr.ends_with("no problems\n"), "{}", fsck.stderr);
}

#[test]
fn a_kept_layer_gone_from_its_registry_is_a_miss_and_its_step_runs() {
    let Fleet {
        _registry,
        proxy: _proxy,
        host,
        t,
        cache,
        r,
        a,
    } = fleet();
    build(&a, &r, &["-t", "img", "--cache-to", &cache]).ok();
    // B's image is pushed to the cache's registry: its step layers stay
    // there, and after the push they are noted as held by the pushed
    // repository (it keeps them; a cache repository is pruned).
    let b = t.path().join("b/store");
    let first = format!("{host}/ci/app:1");
    let built = build(&b, &r, &["-t", &first, "--push", "--cache-from", &cache]).ok();
    let layers = step_layers(&host, "ci/app", "1");
    let state = t.path().join("b/store.state/remote-layers");
    for l in &layers {
        let note = fs::read_to_string(state.join(format!("{}.json", &l[7..]))).unwrap();
        assert!(note.contains(&format!("{host}/ci/app")), "{note}");
    }
    // Step 2's layer leaves the registry (deleted from both repositories).
    for repo in ["ci/app", "ci/cache"] {
        curl(&[
            "-X",
            "DELETE",
            &format!("http://{host}/v2/{repo}/blobs/{}", layers[1]),
        ]);
    }
    // B builds again, pushing elsewhere on that registry: its local cache
    // entries name layers it never downloaded; the one gone is found
    // before the push, and its step runs.
    let second = format!("{host}/ci/app:2");
    let again = build(&b, &r, &["-t", &second, "--push", "--cache-from", &cache]).ok();
    assert_eq!(ran(&b), ["2"], "{}", again.stderr);
    assert!(
        again.stderr.contains("is not usable (its layer")
            && again.stderr.contains("is no longer in"),
        "{}",
        again.stderr
    );
    assert_eq!(again.stdout, built.stdout, "the same image");
    // The second image is whole in the registry: an empty store pulls it.
    let c = t.path().join("c/store");
    boxwright(&["--store", c.to_str().unwrap(), "pull", &second]).ok();
    let fsck = boxwright(&["--store", b.to_str().unwrap(), "fsck"]).ok();
    assert!(fsck.stderr.ends_with("no problems\n"), "{}", fsck.stderr);
}

#[test]
fn a_registry_that_fails_a_layer_download_makes_a_miss_not_a_failed_build() {
    let Fleet {
        _registry,
        proxy,
        host,
        t,
        cache,
        r,
        a,
    } = fleet();
    let a_ref = format!("{host}/ci/a:1");
    let digest = build(&a, &r, &["-t", &a_ref, "--push", "--cache-to", &cache])
        .ok()
        .stdout;
    // The download of step 3's layer is refused once (403: not retried).
    let layer3 = step_layers(&host, "ci/a", "1")[2].clone();
    proxy.add_rule(
        Some("GET"),
        &format!("/blobs/{layer3}"),
        1,
        regsupport::proxy::Action::Status(403),
    );
    let b = t.path().join("b/store");
    let built = build(&b, &r, &["-t", "img", "--cache-from", &cache]).ok();
    assert_eq!(ran(&b), ["3"], "{}", built.stderr);
    assert_eq!(
        built.stderr.matches("is not usable (").count(),
        1,
        "{}",
        built.stderr
    );
    assert!(built.stderr.contains("HTTP 403"), "{}", built.stderr);
    assert_eq!(built.stdout, digest, "the same image");
    let fsck = boxwright(&["--store", b.to_str().unwrap(), "fsck"]).ok();
    assert!(fsck.stderr.ends_with("no problems\n"), "{}", fsck.stderr);

    // A registry failing with 503 until the retries give up: the same.
    let layer2 = step_layers(&host, "ci/a", "1")[1].clone();
    proxy.add_rule(
        Some("GET"),
        &format!("/blobs/{layer2}"),
        100,
        regsupport::proxy::Action::Status(503),
    );
    let c = t.path().join("c/store");
    let built = build(&c, &r, &["-t", "img", "--cache-from", &cache]).ok();
    proxy.clear_rules();
    assert_eq!(ran(&c), ["2"], "{}", built.stderr);
    assert!(built.stderr.contains("HTTP 503"), "{}", built.stderr);
    assert_eq!(built.stdout, digest, "the same image");
    let gets = proxy.count(|l| l.method == "GET" && l.path.ends_with(&layer2) && l.status == 503);
    assert!(gets >= 2, "retried before giving up: {gets}");
}

/// curl's body; a failed request (HTTP >= 400) fails the test.
fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A monolithic blob upload (POST, then PUT with the digest).
fn put_blob(host: &str, repo: &str, bytes: &[u8], digest: &str) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            "-w",
            "%header{location}",
        ])
        .arg(format!("http://{host}/v2/{repo}/blobs/uploads/"))
        .output()
        .unwrap();
    let location = String::from_utf8(out.stdout).unwrap();
    assert!(!location.is_empty(), "no upload location");
    let url = if location.starts_with('/') {
        format!("http://{host}{location}")
    } else {
        location
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut child = Command::new("curl")
        .args([
            "-sS",
            "--fail-with-body",
            "-X",
            "PUT",
            "--data-binary",
            "@-",
        ])
        .args(["-H", "Content-Type: application/octet-stream"])
        .arg(format!("{url}{sep}digest={digest}"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    assert!(child.wait().unwrap().success(), "blob upload");
}

#[test]
fn parallel_builds_on_one_store_run_each_step_once() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let dir = t.path().to_path_buf();
    // Slow steps, so the builds overlap.
    let r = write_recipe(
        &dir,
        "slow.toml",
        &format!(
            "{}\n[[steps]]\nrun = \"echo 1 >> /counter/ran; sleep 2; echo one > /one\"\ncache = [\"/counter\"]\n\
             [[steps]]\nrun = \"echo 2 >> /counter/ran; sleep 2; echo two > /two\"\ncache = [\"/counter\"]\n",
            busybox_base()
        ),
    );
    let spawn = || {
        Command::new(bin())
            .args([
                "--store",
                store.to_str().unwrap(),
                "build",
                r.to_str().unwrap(),
                "--progress",
                "plain",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..3).map(|_| spawn()).collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let digests: Vec<String> = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    assert_eq!(ran(&store), ["1", "2"], "each step ran once");

    // kill -9 of a build holding a step's lock: the others finish.
    let store2 = t.path().join("store2");
    let spawn2 = || {
        Command::new(bin())
            .args([
                "--store",
                store2.to_str().unwrap(),
                "build",
                r.to_str().unwrap(),
                "--progress",
                "plain",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = spawn2();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ran(&store2).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first build never ran its step"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let others: Vec<_> = (0..2).map(|_| spawn2()).collect();
    std::thread::sleep(Duration::from_millis(300));
    first.kill().unwrap();
    first.wait().unwrap();
    for o in others.into_iter().map(|c| c.wait_with_output().unwrap()) {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

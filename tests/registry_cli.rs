//! boxwright against real registries from the command line: registry bases
//! (BYOI), `build --push`, `push`, `pull`, `login`, checked with skopeo and
//! podman, with request counts from a proxy in front of the registry.

mod progress_support;
#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use regsupport::proxy::FaultProxy;
use regsupport::registry::{RegistryOptions, TestRegistry};
use support::*;

/// A registries.toml making `hosts` plain-HTTP registries.
fn registries_conf(dir: &Path, hosts: &[String]) -> PathBuf {
    let mut text = String::new();
    for h in hosts {
        text.push_str(&format!(
            "[[registry]]\nhost = \"{h}\"\ninsecure = true\n\n"
        ));
    }
    let p = dir.join("registries.toml");
    fs::write(&p, text).unwrap();
    p
}

/// The busybox fixture as a one-layer OCI image made by umoci (Go), pushed
/// by skopeo: an image boxwright did not build.
fn push_foreign_base(dir: &Path, dest: &str) {
    let config = ["--config.env", "FOREIGN=yes", "--config.cmd", "/bin/sh"];
    push_umoci_image(dir, &busybox_tar(), &config, dest);
}

fn raw_manifest(image: &str) -> serde_json::Value {
    let out = sh(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]));
    serde_json::from_str(&out).unwrap()
}

fn layer_digests(manifest: &serde_json::Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn registry_base_keeps_its_layers_and_the_pushed_image_runs_under_podman() {
    let reg = TestRegistry::start();
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    push_foreign_base(t.path(), &format!("{host}/base/busybox:t"));
    let conf = registries_conf(t.path(), std::slice::from_ref(&host));
    let recipe = write_recipe(
        t.path(),
        "app.toml",
        &format!(
            "[image]\nbase = \"{host}/base/busybox:t\"\n[[steps]]\nrun = \"echo byoi-$FOREIGN > /byoi\"\n[config]\ncmd = [\"/bin/cat\", \"/byoi\"]\n"
        ),
    );
    let store = t.path().join("store");
    let target = format!("{host}/team/app:1");
    let run = boxwright(&[
        "build",
        "--progress",
        "json",
        "--store",
        store.to_str().unwrap(),
        "--registries-conf",
        conf.to_str().unwrap(),
        "-t",
        &target,
        "--push",
        recipe.to_str().unwrap(),
    ])
    .ok();
    // The JSON events of a pushing build: valid, four phases in order, the
    // blobs' transfers, and the digest in the final event.
    progress_support::require_jsonschema();
    let lines: Vec<&str> = run.stdout.lines().collect();
    progress_support::validate_lines(&lines);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "phase")
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["creating", "building", "pushing", "done"]);
    assert!(
        events.iter().any(|e| e["event"] == "transfer_done"),
        "{}",
        run.stdout
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "finished");
    let digest = last["digest"].as_str().unwrap().to_string();

    // skopeo sees the exact manifest we built, and the base's layer first,
    // byte-identical (same digest) to what umoci made.
    let base = raw_manifest(&format!("{host}/base/busybox:t"));
    let app = raw_manifest(&target);
    let (base_layers, app_layers) = (layer_digests(&base), layer_digests(&app));
    assert_eq!(app_layers.len(), base_layers.len() + 1);
    assert_eq!(app_layers[..base_layers.len()], base_layers[..]);
    let inspect = sh(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], digest);
    assert!(
        v["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "FOREIGN=yes"),
        "base env kept: {v}"
    );

    // A full copy out with skopeo verifies every blob's digest.
    let copy = t.path().join("copy");
    sh(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{target}"),
        &format!("oci:{}:app", copy.display()),
    ]));

    // podman pulls from the registry and runs it.
    let pod = t.path().join("podman");
    sh(podman(&pod).args(["pull", "--tls-verify=false", &format!("docker://{target}")]));
    let out = podman(&pod)
        .args(["run", "--rm", "--network", "none", &target])
        .output()
        .unwrap();
    podman_cleanup(&pod);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "byoi-yes\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn repush_uploads_nothing_a_second_repo_mounts_and_a_second_pull_fetches_no_blob() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let host = proxy.host();
    let t = tempfile::tempdir().unwrap();
    let conf = registries_conf(t.path(), std::slice::from_ref(&host));
    let recipe = write_recipe(
        t.path(),
        "r.toml",
        &format!(
            "{}\n[[steps]]\nrun = \"echo pushed > /pushed\"\n",
            busybox_base()
        ),
    );
    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    let c = conf.to_str().unwrap();
    boxwright(&[
        "build",
        "--store",
        s,
        "-t",
        "local/app:1",
        recipe.to_str().unwrap(),
    ])
    .ok();
    let is_upload = |l: &regsupport::proxy::Logged| {
        l.path.contains("/blobs/uploads")
            && (l.method == "PATCH"
                || l.method == "PUT"
                || (l.method == "POST" && !l.query.contains("mount=")))
    };

    let first = boxwright(&[
        "push",
        "--store",
        s,
        "--registries-conf",
        c,
        "local/app:1",
        &format!("{host}/a/app:1"),
    ])
    .ok();
    assert!(proxy.count(is_upload) > 0, "the first push uploads");
    proxy.clear_log();

    let again = boxwright(&[
        "push",
        "--store",
        s,
        "--registries-conf",
        c,
        "local/app:1",
        &format!("{host}/a/app:1"),
    ])
    .ok();
    assert_eq!(again.stdout, first.stdout);
    assert_eq!(
        proxy.count(is_upload),
        0,
        "a re-push uploads nothing: {:?}",
        proxy.log()
    );
    proxy.clear_log();

    boxwright(&[
        "push",
        "--store",
        s,
        "--registries-conf",
        c,
        "local/app:1",
        &format!("{host}/b/app:1"),
    ])
    .ok();
    assert_eq!(
        proxy.count(is_upload),
        0,
        "a second repo mounts: {:?}",
        proxy.log()
    );
    let mounts =
        proxy.count(|l| l.method == "POST" && l.query.contains("mount=") && l.status == 201);
    assert_eq!(
        mounts,
        3,
        "config, base layer and step layer are mounted: {:?}",
        proxy.log()
    );

    let other = t.path().join("other");
    let o = other.to_str().unwrap();
    let pulled = boxwright(&[
        "pull",
        "--store",
        o,
        "--registries-conf",
        c,
        &format!("{host}/b/app:1"),
    ])
    .ok();
    assert_eq!(
        pulled.stdout, first.stdout,
        "the pulled manifest keeps its digest"
    );
    proxy.clear_log();
    boxwright(&[
        "pull",
        "--store",
        o,
        "--registries-conf",
        c,
        &format!("{host}/b/app:1"),
    ])
    .ok();
    let blob_gets = proxy.count(|l| l.method == "GET" && l.path.contains("/blobs/"));
    let manifest_gets = proxy.count(|l| l.path.contains("/manifests/"));
    assert_eq!((blob_gets, manifest_gets), (0, 1), "{:?}", proxy.log());
    oci_validate(&other, &format!("{host}/b/app:1"));
}

#[test]
fn login_wrong_password_is_one_line_and_secrets_never_show() {
    let reg = TestRegistry::start_with(RegistryOptions {
        basic_auth: Some(("bwuser".into(), "s3cret-Pa55word".into())),
        ..Default::default()
    });
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();
    let conf = registries_conf(t.path(), std::slice::from_ref(&host));
    let c = conf.to_str().unwrap();
    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    let auth_file = t.path().join("auth.json");
    let env = [
        ("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap()),
        ("HOME", t.path().to_str().unwrap()),
    ];
    let login = |password: &str| {
        let mut child = Command::new(bin())
            .args([
                "--log-level",
                "trace",
                "login",
                "--store",
                s,
                "--registries-conf",
                c,
                &host,
                "-u",
                "bwuser",
                "--password-stdin",
            ])
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };

    let (code, out) = login("wrong-password");
    assert_ne!(code, 0);
    let last = out.lines().last().unwrap_or_default();
    assert!(last.contains(&host), "the error names the registry: {out}");
    assert!(
        !out.contains("wrong-password"),
        "the password must never be printed: {out}"
    );

    let (code, out) = login("s3cret-Pa55word");
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("s3cret-Pa55word"), "{out}");

    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("bwuser:s3cret-Pa55word")
    };
    let recipe = write_recipe(
        t.path(),
        "r.toml",
        &format!("{}\n[[steps]]\nrun = \"true\"\n", busybox_base()),
    );
    let push = boxwright_env(
        &[
            "--log-level",
            "trace",
            "build",
            "--store",
            s,
            "--registries-conf",
            c,
            "-t",
            &format!("{host}/p/app:1"),
            "--push",
            recipe.to_str().unwrap(),
        ],
        &env,
    )
    .ok();
    for secret in ["s3cret-Pa55word", &auth[..20]] {
        assert!(
            !push.stderr.contains(secret) && !push.stdout.contains(secret),
            "secret leaked: {}",
            push.stderr
        );
    }
    skopeo_with_creds(&host, "p/app:1");

    // Credentials from a docker config.json in HOME work too.
    let home = t.path().join("home");
    fs::create_dir_all(home.join(".docker")).unwrap();
    fs::write(
        home.join(".docker/config.json"),
        format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"{auth}\"}}}}}}"),
    )
    .unwrap();
    boxwright_env(
        &[
            "push",
            "--store",
            s,
            "--registries-conf",
            c,
            &format!("{host}/p/app:1"),
            &format!("{host}/q/app:1"),
        ],
        &[
            ("HOME", home.to_str().unwrap()),
            ("REGISTRY_AUTH_FILE", "/nonexistent/auth.json"),
        ],
    )
    .ok();
    let logout = boxwright_env(
        &["logout", "--store", s, "--registries-conf", c, &host],
        &env,
    )
    .ok();
    assert!(logout.stderr.contains("Removed"), "{}", logout.stderr);
}

fn skopeo_with_creds(host: &str, image: &str) {
    sh(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        "bwuser:s3cret-Pa55word",
        &format!("docker://{host}/{image}"),
    ]));
}

#[test]
fn push_survives_faults_and_a_push_that_cannot_finish_leaves_no_tag() {
    use regsupport::proxy::Action;
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let host = proxy.host();
    let t = tempfile::tempdir().unwrap();
    let conf = registries_conf(t.path(), std::slice::from_ref(&host));
    let c = conf.to_str().unwrap();
    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    let recipe = write_recipe(
        t.path(),
        "r.toml",
        &format!(
            "{}\n[[steps]]\nrun = \"head -c 3000000 /dev/urandom > /noise\"\n",
            busybox_base()
        ),
    );
    let digest = boxwright(&["build", "--store", s, "-t", "app", recipe.to_str().unwrap()])
        .ok()
        .stdout;

    // 500s on uploads, a connection dropped mid-body, slow answers: it still lands.
    proxy.add_rule(Some("PUT"), "/blobs/uploads", 2, Action::Status(500));
    proxy.add_rule(
        Some("PATCH"),
        "/blobs/uploads",
        1,
        Action::DropAfter(100_000),
    );
    proxy.add_rule(
        None,
        "/blobs/",
        3,
        Action::Delay(std::time::Duration::from_millis(300)),
    );
    let pushed = boxwright(&[
        "push",
        "--store",
        s,
        "--registries-conf",
        c,
        "app",
        &format!("{host}/f/app:1"),
    ])
    .ok();
    assert_eq!(pushed.stdout, digest);
    let copy = t.path().join("copy");
    sh(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/f/app:1", reg.host()),
        &format!("oci:{}:x", copy.display()),
    ]));

    // A registry that keeps failing: the error names the blob and the status,
    // and no tag points at a partial image.
    // (A new image: the first one's blobs would simply be mounted.)
    let recipe = write_recipe(
        t.path(),
        "r2.toml",
        &format!(
            "{}\n[[steps]]\nrun = \"head -c 3000000 /dev/urandom > /other\"\n",
            busybox_base()
        ),
    );
    boxwright(&[
        "build",
        "--store",
        s,
        "-t",
        "app2",
        recipe.to_str().unwrap(),
    ])
    .ok();
    proxy.clear_rules();
    proxy.add_rule(Some("PUT"), "/blobs/uploads", 1000, Action::Status(500));
    proxy.add_rule(Some("PATCH"), "/blobs/uploads", 1000, Action::Status(500));
    let failed = boxwright(&[
        "push",
        "--store",
        s,
        "--registries-conf",
        c,
        "app2",
        &format!("{host}/g/app:1"),
    ]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let last = failed.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("sha256:") && last.contains("500"), "{last}");
    let tag = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/g/app:1", reg.host()),
        ])
        .output()
        .unwrap();
    assert!(
        !tag.status.success(),
        "no tag may exist after a failed push"
    );
}

#[test]
fn hostile_layer_and_malformed_manifest_from_a_registry_are_refused() {
    use regsupport::proxy::Action;
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let host = proxy.host();
    let t = tempfile::tempdir().unwrap();
    let conf = registries_conf(t.path(), &[host.clone(), reg.host()]);
    let c = conf.to_str().unwrap();

    // A layer whose entry climbs out of the root, pushed by umoci + skopeo.
    let evil = t.path().join("evil.tar");
    {
        let mut b = tar::Builder::new(fs::File::create(&evil).unwrap());
        let mut h = tar::Header::new_gnu();
        let data = b"pwned\n";
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses "..": write the raw name bytes.
        let name = b"../../../../../../tmp/boxwright-escaped";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
        b.finish().unwrap();
    }
    let layout = t.path().join("evil-layout");
    let image = format!("{}:t", layout.display());
    sh(Command::new("umoci").args(["init", "--layout", layout.to_str().unwrap()]));
    sh(Command::new("umoci").args(["new", "--image", &image]));
    sh(Command::new("umoci")
        .args(["raw", "add-layer", "--image", &image])
        .arg(&evil));
    sh(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{image}"),
        &format!("docker://{}/evil/base:t", reg.host()),
    ]));
    let _ = fs::remove_file("/tmp/boxwright-escaped");
    let recipe = write_recipe(
        t.path(),
        "r.toml",
        &format!(
            "[image]\nbase = \"{}/evil/base:t\"\n[[steps]]\nrun = \"true\"\n",
            reg.host()
        ),
    );
    let store = t.path().join("store");
    let run = boxwright(&[
        "build",
        "--store",
        store.to_str().unwrap(),
        "--registries-conf",
        c,
        recipe.to_str().unwrap(),
    ]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("boxwright-escaped"),
        "the hostile entry is named: {last}"
    );
    assert!(
        !Path::new("/tmp/boxwright-escaped").exists(),
        "nothing may land outside the root"
    );

    // A manifest that does not match its digest: refused, and the store keeps
    // no blob of it.
    let other = t.path().join("other");
    let tag_store = other.to_str().unwrap();
    push_foreign_base(t.path(), &format!("{}/good/base:t", reg.host()));
    proxy.add_rule(
        Some("GET"),
        "/manifests/",
        1,
        Action::ReplaceBody(b"{\"schemaVersion\": 2, \"layers\": []}".to_vec()),
    );
    let run = boxwright(&[
        "pull",
        "--store",
        tag_store,
        "--registries-conf",
        c,
        &format!(
            "{host}/good/base:t@{}",
            manifest_digest(&reg.host(), "good/base:t")
        ),
    ]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .last()
            .unwrap_or_default()
            .contains("manifest"),
        "{}",
        run.stderr
    );
    let blobs = fs::read_dir(other.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0, "a refused pull leaves the store unchanged");
    assert!(
        boxwright(&["images", "--store", tag_store])
            .ok()
            .stdout
            .lines()
            .count()
            == 1
    );
}

fn manifest_digest(host: &str, image: &str) -> String {
    let out = sh(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{host}/{image}"),
    ]));
    out.trim().to_string()
}

//! What a podman/buildah user expects of boxwright's registry commands,
//! against a real registry (`docker-registry`, plain HTTP on 127.0.0.1):
//!
//! - plain HTTP: a loopback registry needs no registries.toml; a registry on
//!   another host in plain HTTP is refused in one line naming the fix, and
//!   reached with `--tls-verify=false` or `insecure = true` (the "other host"
//!   is a name that only resolves through the test proxy, which tunnels
//!   `CONNECT` to the registry); errors that cannot heal are not retried;
//! - `push`/`pull --progress json` end with `finished` or `failed`, as a build;
//! - `rmi --remote` does not take other tags along unasked; `default set`
//!   refuses what does not exist and `default show` prints what was set;
//! - `login` asks for the password on a terminal without echoing it and
//!   writes a private auth file.

mod progress_support;
#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxwright::registry::{
    ClientOptions, Credential, CredentialStore, Reference, RegistriesConfig, Registry,
    RegistryError, Retry,
};
use regsupport::layout::{Layout, make_image};
use regsupport::proxy::{Action, FaultProxy};
use regsupport::registry::{RegistryOptions, TestRegistry};
use support::{Run, bin};

/// A name that is not this machine's: it resolves only through the test
/// proxy (`.invalid` never resolves in DNS).
const FAR: &str = "registry.boxwright-test.invalid:5000";

/// A temp dir as boxwright's whole world: its own store, home, config and
/// runtime dirs, so no registries.toml or auth file of the machine is read.
struct World {
    _t: tempfile::TempDir,
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl World {
    fn new() -> World {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        let d = |p: &str| dir.join(p).display().to_string();
        let env = vec![
            ("HOME".to_string(), d("home")),
            ("XDG_CONFIG_HOME".to_string(), d("config")),
            ("XDG_DATA_HOME".to_string(), d("data")),
            ("XDG_RUNTIME_DIR".to_string(), d("run")),
            ("BOXWRIGHT_STORE".to_string(), d("store")),
        ];
        World { _t: t, dir, env }
    }

    fn with(mut self, k: &str, v: &str) -> World {
        self.env.retain(|(n, _)| n != k);
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args).stdin(Stdio::null());
        for k in [
            "REGISTRY_AUTH_FILE",
            "DOCKER_CONFIG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
            "BOXWRIGHT_PROGRESS",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let o = self.command(args).output().expect("run boxwright");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Through the test proxy, for `HTTP(S)_PROXY`.
    fn via(self, proxy: &FaultProxy) -> World {
        let url = format!("http://{}", proxy.host());
        self.with("HTTP_PROXY", &url).with("HTTPS_PROXY", &url)
    }
}

/// Puts a small image made by the test (not by boxwright) into `reg` as
/// `repo:tag` with skopeo; returns its manifest digest.
fn seed(reg: &TestRegistry, dir: &Path, repo_tag: &str, seed: u64) -> String {
    let layout = Layout::create(&dir.join(format!("seed-{seed}")));
    let img = make_image(&layout, "t", &[20_000, 5_000], seed, "amd64");
    regsupport::skopeo_push(
        &layout.root,
        "t",
        &format!("{}/{repo_tag}", reg.host()),
        &[],
    );
    img.manifest_digest.to_string()
}

fn skopeo_digest(image: &str) -> Option<String> {
    let o = regsupport::skopeo_raw(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{image}"),
    ]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// stderr's error lines (`boxwright: …`): exactly one, returned.
fn one_error_line(run: &Run) -> String {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("boxwright:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {}", run.stderr);
    assert_eq!(
        run.stderr.lines().last(),
        Some(lines[0]),
        "the error is the last line: {}",
        run.stderr
    );
    lines[0].to_string()
}

fn assert_plain_http_refusal(line: &str, registry: &str) {
    assert!(
        line.contains(&format!("{registry} speaks plain HTTP, not HTTPS"))
            && line.contains("--tls-verify=false")
            && line.contains("insecure = true"),
        "the error says what is wrong and names both fixes: {line}"
    );
}

#[test]
fn a_loopback_registry_needs_no_config_and_its_json_events_end_like_a_build() {
    let reg = TestRegistry::start();
    let host = reg.host();
    let w = World::new();
    let digest = seed(&reg, &w.dir, "seed/app:1", 1);
    assert!(
        !w.dir.join("config/boxwright/registries.toml").exists(),
        "no registries.toml at all"
    );

    // (a) Pull and push to 127.0.0.1:PORT, plain HTTP, nothing configured.
    let src = format!("{host}/seed/app:1");
    let pulled = w.run(&["pull", &src]).ok();
    assert_eq!(pulled.stdout.trim(), digest);
    let pushed = w.run(&["push", &src, &format!("{host}/copy/app:1")]).ok();
    assert_eq!(pushed.stdout.trim(), digest);
    assert_eq!(
        skopeo_digest(&format!("{host}/copy/app:1")).as_deref(),
        Some(digest.as_str())
    );

    // The same with JSON events: valid, and ending with `finished`, which
    // holds the digest and the reference, as a build's last event does.
    let target = format!("{host}/json/app:1");
    let push = w.run(&["push", "--progress", "json", &src, &target]).ok();
    let lines: Vec<&str> = push.stdout.lines().collect();
    progress_support::validate_lines(&lines);
    let events = progress_support::json_lines(&push.stdout);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "finished", "{}", push.stdout);
    assert_eq!(last["digest"], digest.as_str());
    assert_eq!(last["name"], target.as_str());
    assert_eq!(progress_support::phases(&events), ["pushing", "done"]);
    assert!(
        events.iter().any(|e| e["event"] == "transfer_skipped"),
        "the blobs were mounted or found: {}",
        push.stdout
    );

    let other = w.dir.join("other-store");
    let pull = w
        .run(&[
            "pull",
            "--progress",
            "json",
            "--store",
            other.to_str().unwrap(),
            &target,
        ])
        .ok();
    let lines: Vec<&str> = pull.stdout.lines().collect();
    progress_support::validate_lines(&lines);
    let events = progress_support::json_lines(&pull.stdout);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "finished", "{}", pull.stdout);
    assert_eq!(last["digest"], digest.as_str());
    assert_eq!(last["name"], target.as_str());
    assert!(
        events.iter().any(|e| e["event"] == "transfer_done"),
        "{}",
        pull.stdout
    );

    // A pull that fails: its JSON ends with `failed`, holding the one-line
    // reason stderr shows too.
    let missing = w.run(&[
        "pull",
        "--progress",
        "json",
        &format!("{host}/seed/app:nope"),
    ]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    let events = progress_support::json_lines(&missing.stdout);
    progress_support::validate_lines(&missing.stdout.lines().collect::<Vec<_>>());
    let last = events.last().unwrap();
    assert_eq!(last["event"], "failed", "{}", missing.stdout);
    let message = last["message"].as_str().unwrap();
    assert!(
        message.contains("404") && !message.contains('\n'),
        "{message}"
    );
    assert_eq!(one_error_line(&missing), format!("boxwright: {message}"));
}

#[test]
fn plain_http_on_another_host_is_refused_in_one_line_unless_allowed() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let w = World::new().via(&proxy);
    let digest = seed(&reg, &w.dir, "seed/app:1", 2);
    let src = format!("{}/seed/app:1", reg.host());
    // The loopback registry is never reached through the proxy.
    w.run(&["pull", &src]).ok();
    assert_eq!(proxy.count(|_| true), 0, "{:?}", proxy.log());

    // HTTPS to a plain-HTTP registry on another host: one line, the fix
    // named, and not retried (one tunnel, not five).
    let far_target = format!("{FAR}/far/app:1");
    let refused = w.run(&[
        "pull",
        "--store",
        w.dir.join("s1").to_str().unwrap(),
        &far_target,
    ]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_plain_http_refusal(&one_error_line(&refused), FAR);
    assert_eq!(
        proxy.count(|l| l.method == "CONNECT"),
        1,
        "a TLS/HTTP mismatch is not retried: {:?}",
        proxy.log()
    );
    proxy.clear_log();
    let refused = w.run(&["push", &src, &far_target]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_plain_http_refusal(&one_error_line(&refused), FAR);
    // Its three blobs are checked in parallel: each check tried once.
    let tunnels = proxy.count(|l| l.method == "CONNECT");
    assert!((1..=3).contains(&tunnels), "not retried: {:?}", proxy.log());
    assert_eq!(skopeo_digest(&format!("{}/far/app:1", reg.host())), None);

    // The same failure as JSON events.
    let json = w.run(&["push", "--progress", "json", &src, &far_target]);
    assert_eq!(json.code, 1);
    let events = progress_support::json_lines(&json.stdout);
    progress_support::validate_lines(&json.stdout.lines().collect::<Vec<_>>());
    let last = events.last().unwrap();
    assert_eq!(last["event"], "failed", "{}", json.stdout);
    assert_plain_http_refusal(last["message"].as_str().unwrap(), FAR);

    // (b) --tls-verify=false: HTTPS is tried, then plain HTTP is used.
    proxy.clear_log();
    let pushed = w
        .run(&["--tls-verify=false", "push", &src, &far_target])
        .ok();
    assert_eq!(pushed.stdout.trim(), digest);
    assert_eq!(
        skopeo_digest(&format!("{}/far/app:1", reg.host())).as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(
        proxy.count(|l| l.method == "CONNECT"),
        1,
        "{:?}",
        proxy.log()
    );
    assert!(
        proxy.count(|l| l.method == "PUT" && l.path == "/v2/far/app/manifests/1") == 1,
        "the manifest went up in plain HTTP: {:?}",
        proxy.log()
    );

    // insecure = true in registries.toml: plain HTTP straight away. The file
    // is found under $HOME/.config when XDG_CONFIG_HOME is empty.
    let home = w.dir.join("home");
    fs::create_dir_all(home.join(".config/boxwright")).unwrap();
    fs::write(
        home.join(".config/boxwright/registries.toml"),
        format!("[[registry]]\nhost = \"{FAR}\"\ninsecure = true\n"),
    )
    .unwrap();
    let w = w.with("XDG_CONFIG_HOME", "");
    proxy.clear_log();
    let pulled = w
        .run(&[
            "pull",
            "--store",
            w.dir.join("s2").to_str().unwrap(),
            &far_target,
        ])
        .ok();
    assert_eq!(pulled.stdout.trim(), digest);
    assert_eq!(
        proxy.count(|l| l.method == "CONNECT"),
        0,
        "{:?}",
        proxy.log()
    );
    assert!(proxy.count(|l| l.path.contains("/manifests/")) >= 1);

    // An explicit --tls-verify=true insists on HTTPS even for loopback and
    // insecure registries: the same one-line refusal.
    let strict = w.run(&["--tls-verify=true", "pull", &src]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert_plain_http_refusal(&one_error_line(&strict), &reg.host());
}

fn client(cfg: RegistriesConfig, dir: &Path, creds: CredentialStore) -> Registry {
    Registry::new(
        cfg,
        creds,
        ClientOptions {
            retry: Retry {
                max_attempts: 4,
                base: Duration::from_millis(10),
                max: Duration::from_millis(50),
            },
            blob_info_cache: Some(dir.join("bic.json")),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn errors_that_cannot_heal_are_not_retried() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let t = tempfile::tempdir().unwrap();
    let host = proxy.host();
    let digest = seed(&reg, t.path(), "heal/app:1", 3);
    let r: Reference = format!("{host}/heal/app:1").parse().unwrap();
    let nobody = || CredentialStore::with_files(vec![], t.path().join("none.json"));
    // The loopback proxy, with nothing configured: HTTPS is probed once.
    let c = client(RegistriesConfig::default(), t.path(), nobody());
    assert_eq!(
        c.manifest_digest(&r).unwrap().map(|d| d.to_string()),
        Some(digest.clone())
    );
    let manifests = |p: &FaultProxy| p.count(|l| l.path.contains("/manifests/"));

    for (status, name) in [(404, "404"), (401, "401")] {
        proxy.clear_log();
        proxy.add_rule(Some("GET"), "/manifests/", 10, Action::Status(status));
        let e = c.fetch_manifest(&r).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
        assert_eq!(
            manifests(&proxy),
            1,
            "HTTP {status} is asked once: {:?}",
            proxy.log()
        );
        proxy.clear_rules();
    }
    // What can heal is retried, under the same policy: 4 attempts.
    proxy.clear_log();
    proxy.add_rule(Some("GET"), "/manifests/", 10, Action::Status(503));
    let e = c.fetch_manifest(&r).unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert_eq!(manifests(&proxy), 4, "{:?}", proxy.log());
    proxy.clear_rules();

    // A blob upload answered 404 or 401 is not sent again either.
    let src = Layout::create(&t.path().join("src"));
    let img = make_image(&src, "u", &[30_000], 33, "amd64");
    for status in [404, 401] {
        proxy.clear_log();
        proxy.add_rule(Some("PUT"), "/blobs/uploads", 10, Action::Status(status));
        let target: Reference = format!("{host}/up{status}/app:1").parse().unwrap();
        let e = c
            .push(
                &src,
                &target,
                &img.manifest,
                &img.media_type,
                &img.blobs(),
                &|_| {},
            )
            .unwrap_err();
        assert_eq!(e.status(), Some(status), "{e}");
        let puts = proxy.count(|l| l.method == "PUT" && l.path.contains("/blobs/uploads"));
        assert!(
            puts <= 2,
            "one PUT per blob at most (config, layer): {:?}",
            proxy.log()
        );
        proxy.clear_rules();
    }

    // A token server refusing the password is asked once.
    proxy.clear_log();
    proxy.enable_bearer("bw", "right-password", "tok");
    let auth = t.path().join("auth.json");
    let creds = CredentialStore::with_files(vec![auth.clone()], auth.clone());
    creds
        .store(&host, &Credential::basic("bw", "wrong-password"))
        .unwrap();
    let c = client(RegistriesConfig::default(), &t.path().join("c2"), creds);
    let e = c.fetch_manifest(&r).unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(!e.to_string().contains("wrong-password"), "{e}");
    assert_eq!(proxy.count(|l| l.path == "/token"), 1, "{:?}", proxy.log());
}

#[test]
fn rmi_remote_does_not_take_other_tags_along_unasked() {
    let reg = TestRegistry::start();
    let host = reg.host();
    let w = World::new();
    let digest = seed(&reg, &w.dir, "t/app:1", 4);
    let other = seed(&reg, &w.dir, "t/app:other", 5);
    w.run(&[
        "tag",
        "--remote",
        &format!("{host}/t/app:1"),
        &format!("{host}/t/app:2"),
    ])
    .ok();
    // The same manifest in another repository is not affected by a delete.
    w.run(&[
        "tag",
        "--remote",
        &format!("{host}/t/app:1"),
        &format!("{host}/u/app:1"),
    ])
    .ok();

    let refused = w.run(&["rmi", "--remote", &format!("{host}/t/app:1")]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let line = one_error_line(&refused);
    assert!(
        line.contains(&format!("{host}/t/app:2"))
            && line.contains(&digest)
            && line.contains("--force")
            && !line.contains("app:other")
            && !line.contains("/u/app"),
        "the refusal lists the other tags of the manifest: {line}"
    );
    for tag in ["t/app:1", "t/app:2", "u/app:1"] {
        assert_eq!(
            skopeo_digest(&format!("{host}/{tag}")).as_deref(),
            Some(digest.as_str()),
            "{tag} is still there"
        );
    }

    // A tag that is the only one of its manifest goes without --force.
    w.run(&["rmi", "--remote", &format!("{host}/t/app:other")])
        .ok();
    assert_eq!(skopeo_digest(&format!("{host}/t/app:other")), None);
    let _ = other;

    // --force deletes the manifest with every tag of it in the repository.
    let forced = w
        .run(&["rmi", "--remote", "--force", &format!("{host}/t/app:1")])
        .ok();
    assert!(forced.stdout.contains(&digest), "{}", forced.stdout);
    assert_eq!(skopeo_digest(&format!("{host}/t/app:1")), None);
    assert_eq!(skopeo_digest(&format!("{host}/t/app:2")), None);
    assert_eq!(
        skopeo_digest(&format!("{host}/u/app:1")).as_deref(),
        Some(digest.as_str())
    );
}

#[test]
fn rmi_remote_by_digest_deletes_the_manifest_it_names() {
    let reg = TestRegistry::start();
    let host = reg.host();
    let w = World::new();
    let digest = seed(&reg, &w.dir, "d/app:1", 6);
    w.run(&[
        "tag",
        "--remote",
        &format!("{host}/d/app:1"),
        &format!("{host}/d/app:2"),
    ])
    .ok();
    let out = w
        .run(&["rmi", "--remote", &format!("{host}/d/app@{digest}")])
        .ok();
    assert!(out.stdout.contains(&digest), "{}", out.stdout);
    assert_eq!(skopeo_digest(&format!("{host}/d/app:1")), None);
    assert_eq!(skopeo_digest(&format!("{host}/d/app:2")), None);
}

#[test]
fn default_set_refuses_what_does_not_exist_and_show_prints_what_was_set() {
    let reg = TestRegistry::start();
    let host = reg.host();
    let w = World::new();
    let digest = seed(&reg, &w.dir, "team/tools:1", 7);
    // Another tag of the same manifest, sorting before the one set.
    w.run(&[
        "tag",
        "--remote",
        &format!("{host}/team/tools:1"),
        &format!("{host}/team/tools:0"),
    ])
    .ok();
    let config = w.dir.join("config/boxwright/config.toml");

    for missing in [format!("{host}/team/tools:nope"), "nosuchimage".to_string()] {
        let r = w.run(&["default", "set", &missing]);
        assert_eq!(r.code, 2, "{missing}: {}", r.stderr);
        let line = one_error_line(&r);
        assert!(
            line.contains("does not exist") && line.contains(&missing),
            "{line}"
        );
        assert!(!config.exists(), "nothing is recorded for {missing}");
    }
    let r = w.run(&[
        "default",
        "set",
        &format!("{host}/team/tools:nope"),
        "--registry",
        &format!("{host}/team"),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(one_error_line(&r).contains("push it first"));
    assert_eq!(skopeo_digest(&format!("{host}/team/default:latest")), None);

    // A registry image, set as written; shown exactly so.
    let set = format!("{host}/team/tools:1");
    w.run(&["default", "set", &set]).ok();
    assert_eq!(w.run(&["default", "show"]).ok().stdout, format!("{set}\n"));

    // A local image (pulled into the store under its reference).
    w.run(&["pull", &set]).ok();
    w.run(&["tag", &set, "mine:v1"]).ok();
    w.run(&["default", "set", "mine:v1"]).ok();
    assert_eq!(w.run(&["default", "show"]).ok().stdout, "mine:v1\n");

    // In the registry namespace: the reference set, not another tag that
    // happens to share its digest.
    w.run(&[
        "default",
        "set",
        &set,
        "--registry",
        &format!("{host}/team"),
    ])
    .ok();
    assert_eq!(
        skopeo_digest(&format!("{host}/team/default:latest")).as_deref(),
        Some(digest.as_str())
    );
    let shown = w
        .run(&["default", "show", "--registry", &format!("{host}/team")])
        .ok();
    assert_eq!(shown.stdout, format!("{set} {digest}\n"));
    assert_eq!(w.run(&["default", "show"]).ok().stdout, format!("{set}\n"));
}

#[test]
fn login_asks_for_the_password_without_echo_and_keeps_it_private() {
    let reg = TestRegistry::start_with(RegistryOptions {
        basic_auth: Some(("bwuser".into(), "s3cret-Pa55word".into())),
        ..Default::default()
    });
    let host = reg.host();
    let w = World::new();
    let auth = w.dir.join("run/containers/auth.json");

    // Without a terminal and without --password-stdin: told how to log in.
    let r = w.run(&["login", &host, "-u", "bwuser"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        one_error_line(&r).contains("--password-stdin"),
        "{}",
        r.stderr
    );

    // Ctrl-C at the prompt ends boxwright and leaves the terminal echoing.
    let (status, screen, echo) = on_terminal(&w, &["login", &host, "-u", "bwuser"], b"\x03");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(libc::SIGINT), "{screen}");
    assert!(echo, "the terminal echoes again after Ctrl-C at the prompt");
    assert!(!auth.exists());

    // On a terminal: the prompt, the password typed and never shown.
    let (status, screen, echo) =
        on_terminal(&w, &["login", &host, "-u", "bwuser"], b"s3cret-Pa55word\r");
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(echo, "the terminal echoes again after the password");
    assert!(screen.contains("Password:"), "{screen}");
    assert!(screen.contains("Login Succeeded"), "{screen}");
    assert!(
        !screen.contains("s3cret"),
        "the typed password must not be echoed: {screen:?}"
    );

    // podman's auth file, private from its first byte, in a private folder.
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&auth), 0o600);
    assert_eq!(mode(auth.parent().unwrap()), 0o700);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&auth).unwrap()).unwrap();
    assert!(v["auths"][&host]["auth"].is_string(), "{v}");
    // skopeo uses the same login.
    let layout = Layout::create(&w.dir.join("l"));
    make_image(&layout, "t", &[1_000], 9, "amd64");
    regsupport::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--authfile",
        auth.to_str().unwrap(),
        &format!("oci:{}:t", layout.root.display()),
        &format!("docker://{host}/login/app:1"),
    ]);
}

/// Runs boxwright on a new pseudo-terminal and types `typed` once it asks
/// for a password. Returns how it ended, everything it showed, and whether
/// the terminal echoes input after it ended.
fn on_terminal(w: &World, args: &[&str], typed: &[u8]) -> (std::process::ExitStatus, String, bool) {
    use std::os::fd::AsRawFd as _;
    use std::os::unix::process::CommandExt as _;
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = pty.slave.as_raw_fd();
    let mut cmd = w.command(args);
    cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe; the child takes the
    // pty as its controlling terminal, as a program started in a terminal has.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            libc::ioctl(slave, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // The master sees EOF only once every copy of the slave is closed.
    drop(cmd);
    drop(pty.slave);
    let mut master = fs::File::from(pty.master);
    let mut writer = master.try_clone().unwrap();
    let screen = Arc::new(Mutex::new(Vec::new()));
    let seen = screen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let start = Instant::now();
    while !String::from_utf8_lossy(&screen.lock().unwrap()).contains("Password:") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no password prompt: {}",
            String::from_utf8_lossy(&screen.lock().unwrap())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.write_all(typed).unwrap();
    let status = child.wait().unwrap();
    // On Linux the master reads the terminal's settings.
    let echo = nix::sys::termios::tcgetattr(&writer)
        .unwrap()
        .local_flags
        .contains(nix::sys::termios::LocalFlags::ECHO);
    drop(writer);
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    (status, text, echo)
}

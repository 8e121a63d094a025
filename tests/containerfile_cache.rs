//! The step cache of Containerfile builds: what busts a step's key (its
//! instruction after expansion, the files it copies, the build arguments in
//! scope) and what never does (comments, labels, arguments nobody declares,
//! files `.dockerignore` leaves out). Real builds on the busybox fixture,
//! counted from `--progress json` events.

#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::fs;
use std::path::Path;

use support::*;

/// The instructions that ran (not taken from the cache) in a build.
fn build(store: &Path, ctx: &Path, args: &[&str]) -> Vec<String> {
    let base = format!("BASE=rootfs:{}", busybox_tar().display());
    let store_s = store.display().to_string();
    let ctx_s = ctx.display().to_string();
    let mut argv = vec![
        "--store",
        store_s.as_str(),
        "--progress",
        "json",
        "build",
        "-t",
        "cached",
        "--build-arg",
        base.as_str(),
    ];
    argv.extend_from_slice(args);
    argv.push(ctx_s.as_str());
    let run = boxwright(&argv).ok();
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step_started")
        .map(|e| e["description"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn write_ctx(ctx: &Path, comment: &str, label: &str) {
    fs::write(
        ctx.join("Containerfile"),
        format!(
            "ARG BASE\nFROM ${{BASE}}\nARG USED=one\n# {comment}\nRUN echo \"$USED\" > /used\nCOPY app/ /app/\nRUN cat /app/a > /copied\nLABEL l={label}\n"
        ),
    )
    .unwrap();
}

#[test]
fn comments_labels_unused_args_and_ignored_files_never_bust_the_cache() {
    let t = tempfile::tempdir().unwrap();
    let (store, ctx) = (t.path().join("store"), t.path().join("ctx"));
    fs::create_dir_all(ctx.join("app")).unwrap();
    fs::write(ctx.join("app/a"), "a\n").unwrap();
    fs::write(ctx.join("app/ignored.txt"), "1\n").unwrap();
    fs::write(ctx.join(".dockerignore"), "app/ignored.txt\n").unwrap();
    write_ctx(&ctx, "first", "1");

    let first = build(&store, &ctx, &[]);
    assert_eq!(
        first,
        [
            "RUN /bin/sh -c echo \"$USED\" > /used",
            "COPY app/ /app/",
            "RUN /bin/sh -c cat /app/a > /copied"
        ],
        "a cold build runs every layer step"
    );

    // A comment, a label, an argument no ARG declares, an ignored file.
    write_ctx(&ctx, "second comment", "2");
    fs::write(ctx.join("app/ignored.txt"), "2\n").unwrap();
    let again = build(&store, &ctx, &["--build-arg", "NOBODY=x"]);
    assert!(again.is_empty(), "nothing may run again, but {again:?} did");

    // A copied file changes: the COPY and what follows run, not what precedes.
    fs::write(ctx.join("app/a"), "changed\n").unwrap();
    let copy = build(&store, &ctx, &[]);
    assert_eq!(
        copy,
        ["COPY app/ /app/", "RUN /bin/sh -c cat /app/a > /copied"]
    );

    // An argument in scope changes: every RUN after its ARG runs again.
    let arg = build(&store, &ctx, &["--build-arg", "USED=two"]);
    assert_eq!(
        arg,
        [
            "RUN /bin/sh -c echo \"$USED\" > /used",
            "COPY app/ /app/",
            "RUN /bin/sh -c cat /app/a > /copied"
        ]
    );
    let used = boxwright(&[
        "--store",
        &store.display().to_string(),
        "run",
        "--rm",
        "cached",
        "cat",
        "/used",
        "/copied",
    ])
    .ok();
    assert_eq!(used.stdout, "two\nchanged\n");
}

#[test]
fn a_bad_containerfile_stores_nothing_and_says_where_in_one_line() {
    let t = tempfile::tempdir().unwrap();
    let (store, ctx) = (t.path().join("store"), t.path().join("ctx"));
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY missing.txt /\n",
    )
    .unwrap();
    let run = boxwright(&[
        "--store",
        &store.display().to_string(),
        "build",
        "-t",
        "bad",
        &ctx.display().to_string(),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    let want = format!("{}:2:1: ", ctx.join("Containerfile").display());
    assert!(lines[0].starts_with(&want), "{}", lines[0]);
    assert!(lines[0].contains("missing.txt"), "{}", lines[0]);
    let images = boxwright(&["--store", &store.display().to_string(), "images", "-q"]);
    assert!(!images.stdout.contains("bad"), "{}", images.stdout);
}

#[test]
fn add_of_a_git_repository_clones_it_at_the_reference() {
    let t = tempfile::tempdir().unwrap();
    let (store, ctx, repo) = (
        t.path().join("store"),
        t.path().join("ctx"),
        t.path().join("work"),
    );
    fs::create_dir_all(&ctx).unwrap();
    fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        sh(std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args))
    };
    git(&["init", "-q", "-b", "main"]);
    fs::write(repo.join("README"), "v1\n").unwrap();
    git(&["add", "README"]);
    git(&["commit", "-q", "-m", "one"]);
    git(&["tag", "v1"]);
    fs::write(repo.join("README"), "v2\n").unwrap();
    git(&["commit", "-q", "-am", "two"]);
    let bare = t.path().join("repo.git");
    sh(std::process::Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&repo)
        .arg(&bare));
    // Served by git daemon on 127.0.0.1, as a remote repository would be.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = std::process::Command::new("git")
        .arg("daemon")
        .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", t.path().display()))
        .arg(t.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git daemon (Debian package git)");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _daemon = Kill(daemon);
    let ready = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(ready, "git daemon did not listen on 127.0.0.1:{port}");
    let url = format!("git://127.0.0.1:{port}/repo.git");
    fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM rootfs:{}\nADD {url}#v1 /src/\nADD --keep-git-dir=true {url} /head/\n",
            busybox_tar().display(),
        ),
    )
    .unwrap();
    let s = store.display().to_string();
    boxwright(&[
        "--store",
        &s,
        "build",
        "-q",
        "-t",
        "git",
        &ctx.display().to_string(),
    ])
    .ok();
    let run = boxwright(&[
        "--store",
        &s,
        "run",
        "--rm",
        "git",
        "sh",
        "-c",
        "cat /src/README /head/README; test ! -e /src/.git && test -d /head/.git && echo layout-ok",
    ])
    .ok();
    assert_eq!(run.stdout, "v1\nv2\nlayout-ok\n");

    // A repository on the build host is outside the build context.
    for local in [
        format!("file://{}", bare.display()),
        bare.display().to_string(),
    ] {
        fs::write(
            ctx.join("Containerfile"),
            format!(
                "FROM rootfs:{}\nADD {local} /src/\n",
                busybox_tar().display()
            ),
        )
        .unwrap();
        let refused = boxwright(&[
            "--store",
            &s,
            "build",
            "-q",
            "-t",
            "local",
            &ctx.display().to_string(),
        ]);
        assert_eq!(refused.code, 2, "{local}: {}", refused.stderr);
        assert!(refused.stderr.contains("network URL"), "{}", refused.stderr);
    }
}

#[test]
fn a_second_runner_takes_every_step_from_the_registry_cache() {
    let reg = regsupport::registry::TestRegistry::start();
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    fs::create_dir_all(ctx.join("app")).unwrap();
    fs::write(ctx.join("app/a"), "a\n").unwrap();
    write_ctx(&ctx, "c", "1");
    let cache = format!("{}/cf/cache", reg.host());
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    assert_eq!(build(&a, &ctx, &["--cache-to", &cache]).len(), 3);
    let ran = build(&b, &ctx, &["--cache-from", &cache]);
    assert!(ran.is_empty(), "runner B ran {ran:?}");
    let digest = |store: &Path| {
        let out = boxwright(&["--store", &store.display().to_string(), "inspect", "cached"]).ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v["digest"].as_str().unwrap().to_string()
    };
    assert_eq!(digest(&a), digest(&b), "runner B's image is runner A's");
}

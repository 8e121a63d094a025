//! Bring your own image: `build --byoi REF` adds the dev access layer on top
//! of an image another tool made (umoci here, pushed by skopeo to a real
//! registry), keeping its layers byte-identical and its config; podman then
//! checks the SSH server in the result.

#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::fs;
use std::process::Command;

use regsupport::registry::TestRegistry;
use support::*;

#[test]
fn byoi_adds_the_dev_access_layer_and_keeps_the_image() {
    let reg = TestRegistry::start();
    let host = reg.host();
    let t = tempfile::tempdir().unwrap();

    // A Debian minbase image made by umoci, with its own env, user, entrypoint and cmd.
    let base_ref = format!("{host}/byo/debian:1");
    let config = [
        "--config.env",
        "TEAM=platform",
        "--config.user",
        "0:0",
        "--config.entrypoint",
        "/usr/bin/env",
        "--config.cmd",
        "sh",
        "--config.cmd",
        "-c",
        "--config.cmd",
        "echo base-cmd-$TEAM",
    ];
    push_umoci_image(t.path(), &debian_base(), &config, &base_ref);
    let conf = t.path().join("registries.toml");
    fs::write(
        &conf,
        format!("[[registry]]\nhost = \"{host}\"\ninsecure = true\n"),
    )
    .unwrap();

    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    let run = boxwright(&[
        "build",
        "--store",
        s,
        "--registries-conf",
        conf.to_str().unwrap(),
        "--byoi",
        &base_ref,
        // Their pinned upstream files are not reachable from this machine.
        "--skip",
        "code-server",
        "--skip",
        "ttyd",
        "--skip",
        "gh",
        "--skip",
        "claude-code",
        "-t",
        "byoi:1",
    ])
    .ok();
    assert!(
        run.stderr.contains("leaves out ttyd"),
        "skips are warned about: {}",
        run.stderr
    );

    let inspect: serde_json::Value =
        serde_json::from_str(&boxwright(&["inspect", "--store", s, "byoi:1"]).ok().stdout).unwrap();
    let layers: Vec<&str> = inspect["manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let base_manifest: serde_json::Value =
        serde_json::from_str(&sh(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{base_ref}"),
        ])))
        .unwrap();
    let base_layer = base_manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(
        layers[0], base_layer,
        "the image's own layer is kept byte-identical"
    );
    assert_eq!(layers.len(), 2, "one dev access layer on top: {layers:?}");
    let cfg = &inspect["config"]["config"];
    assert!(
        cfg["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "TEAM=platform"),
        "{cfg}"
    );
    assert_eq!(cfg["User"], "0:0");
    assert!(cfg["ExposedPorts"].get("22/tcp").is_some(), "{cfg}");
    let skipped = cfg["Labels"]["io.boxwright.dev-access.skipped"]
        .as_str()
        .unwrap_or_default();
    assert!(skipped.contains("ttyd"), "{cfg}");

    // Entrypoint semantics kept: ours in front of the base's, the base's cmd as arguments.
    assert_eq!(
        cfg["Entrypoint"],
        serde_json::json!(["/usr/local/bin/boxwright-entrypoint", "/usr/bin/env"])
    );
    assert_eq!(
        cfg["Cmd"],
        serde_json::json!(["sh", "-c", "echo base-cmd-$TEAM"])
    );

    let pod = t.path().join("podman");
    let _cleanup = PodmanStorage(&pod);
    let id = podman_pull(&pod, &store, "byoi:1");
    let check = podman(&pod)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/bin/sh",
            &id,
            "-c",
        ])
        .arg("ssh-keygen -A >/dev/null && mkdir -p /run/sshd && /usr/sbin/sshd -t && echo sshd-ok")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("sshd-ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Run as the image is meant to be: the base's command runs (through its
    // entrypoint); then with arguments, which go to the base's entrypoint as
    // they did on the base, with sshd started beside the command.
    for (args, expected, long) in [
        (vec![], "base-cmd-platform", false),
        (
            vec!["sh", "-c", "echo args-$TEAM; sleep 60"],
            "args-platform",
            true,
        ),
    ] {
        let container = Container::start(&pod, &id, &args);
        let mut seen = String::new();
        for _ in 0..50 {
            let logs = podman(&pod).args(["logs", &container.id]).output().unwrap();
            seen = format!(
                "{}{}\n{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr),
                container.exec(&["sh", "-c", "cat /proc/[0-9]*/comm"])
            );
            if seen.contains(expected) && (!long || seen.lines().any(|l| l == "sshd")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        drop(container);
        assert!(seen.contains(expected), "{expected} in:\n{seen}");
        if long {
            assert!(seen.lines().any(|l| l == "sshd"), "sshd running:\n{seen}");
        }
    }

    // A command is the main process: the container ends with its status
    // (and does not hang on the services beside it).
    let mut child = podman(&pod)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            &id,
            "sh",
            "-c",
            "exit 3",
        ])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("podman run IMAGE sh -c 'exit 3' did not end within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(3));

    // `podman run -i`: the command reads the container's stdin (then stops
    // the container through PID 1, which the entrypoint answers by exiting).
    let mut child = podman(&pod)
        .args(["run", "-i", "--rm", "--network", "none", &id])
        .args(["sh", "-c", "read line; echo got-$line; kill -TERM 1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"piped-line\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("got-piped-line"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn byoi_input_errors_are_one_line() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    for (args, expected) in [
        (
            vec!["build", "--store", s, "--byoi", "Bad Ref!"],
            "boxwright: --byoi 'Bad Ref!' is not an image reference (",
        ),
        (
            vec!["build", "--store", s, "--skip", "ttyd"],
            "boxwright: the following required arguments were not provided: --byoi <REF>",
        ),
    ] {
        let run = boxwright(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with(expected), "{}", run.stderr);
    }
}

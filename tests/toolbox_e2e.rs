//! A whole toolbox image on a Debian minbase base (standing in for Ubuntu,
//! which this machine cannot reach): Python and Node.js from Debian's
//! packages, `apt = ["jq"]`, Claude Code from the npm registry, an install
//! command, and the dev access layer. code-server, ttyd and gh are skipped:
//! their pinned upstream files are not reachable from here (the artifact
//! tests cover that path). Then podman runs it: `sshd -t` passes, the tools
//! answer, the entrypoint serves an SSH banner, and no layer holds SSH host
//! keys.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

fn recipe(dir: &Path) -> PathBuf {
    debian_base_in(dir);
    write_recipe(
        dir,
        "toolbox.toml",
        r#"[image]
base = "rootfs:minbase.tar"
dev_access = true

[dev_access]
skip = ["code-server", "ttyd", "gh"]

[runtimes]
python = "3.11"
node = "18"

[packages]
apt = ["jq"]

[ai_tools]
install = ["claude-code"]

[[steps]]
name = "install command"
run = "echo ready > /etc/toolbox-ready"
"#,
    )
}

#[test]
fn toolbox_image_on_debian_runs_under_podman() {
    require_root("root mode and podman");
    require_tool("tar", "tar");
    let t = world_tempdir();
    let r = recipe(t.path());
    let store = t.path().join("store");
    let run = boxwright(&[
        "build",
        "--store",
        store.to_str().unwrap(),
        "-t",
        "toolbox",
        r.to_str().unwrap(),
    ])
    .ok();
    for warned in ["leaves out code-server", "leaves out ttyd", "leaves out gh"] {
        assert!(run.stderr.contains(warned), "{warned}: {}", run.stderr);
    }

    // Config: entrypoint, the SSH port only, labels describing the components.
    let inspect = boxwright(&["inspect", "--store", store.to_str().unwrap(), "toolbox"]).ok();
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let cfg = &v["config"]["config"];
    assert_eq!(
        cfg["Entrypoint"],
        serde_json::json!(["/usr/local/bin/boxwright-entrypoint"])
    );
    let ports: Vec<&String> = cfg["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, ["22/tcp"]);
    let labels = &cfg["Labels"];
    assert_eq!(labels["io.boxwright.runtimes"], "python=3.11,node=18");
    assert_eq!(
        labels["io.boxwright.dev-access"],
        "openssh-server,claude-code"
    );
    assert_eq!(
        labels["io.boxwright.dev-access.skipped"],
        "code-server,ttyd,gh"
    );
    assert_eq!(labels["io.boxwright.packages"], "jq");
    assert!(
        labels["io.boxwright.recipe.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let layers = v["manifest"]["layers"].as_array().unwrap();
    // base, dev access, packages, python, node, install command (claude-code
    // is in the dev access layer, so no AI tools layer).
    assert_eq!(layers.len(), 6, "{layers:?}");

    // No layer holds SSH host keys or apt's downloads.
    for l in layers {
        let blob = store
            .join("blobs/sha256")
            .join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
        let listing = sh(Command::new("tar").arg("-tzf").arg(&blob));
        for e in listing.lines() {
            assert!(
                !e.contains("etc/ssh/ssh_host_"),
                "host key {e} in {}",
                blob.display()
            );
            assert!(!e.ends_with(".deb"), "{e} in {}", blob.display());
        }
    }

    let pod = t.path().join("podman");
    let _cleanup = PodmanStorage(&pod);
    let id = podman_pull(&pod, &store, "toolbox:latest");
    let check = podman(&pod)
        .args(["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", &id, "-c"])
        .arg(
            "set -e; . /etc/profile; mkdir -p /run/sshd; ssh-keygen -A >/dev/null; /usr/sbin/sshd -t && echo sshd-ok; \
             jq --version; python3 --version; node --version; claude --version; cat /etc/toolbox-ready; \
             grep -c PasswordAuthentication /etc/ssh/sshd_config.d/00-boxwright.conf",
        )
        .output()
        .expect("podman run");
    let stdout = String::from_utf8_lossy(&check.stdout);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "sshd-ok",
        "jq-1.6",
        "Python 3.11.",
        "v18.",
        "(Claude Code)",
        "ready",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} in:\n{stdout}\n{stderr}"
        );
    }

    // The entrypoint makes host keys at boot and serves SSH.
    let container = Container::start(&pod, &id, &[]);
    let probe = r#"
import socket, time
def banner():
    for _ in range(50):
        try:
            return socket.create_connection(("127.0.0.1", 22), timeout=2).recv(64).decode().strip()
        except OSError:
            time.sleep(0.2)
    return "no answer on port 22"
print(banner())
"#;
    let banner = podman(&pod)
        .args(["exec", &container.id, "python3", "-c", probe])
        .output()
        .expect("podman exec");
    let text = String::from_utf8_lossy(&banner.stdout);
    assert!(
        text.starts_with("SSH-2.0-OpenSSH"),
        "banner: {text}\n{}",
        String::from_utf8_lossy(&banner.stderr)
    );
    let inventory = podman(&pod)
        .args([
            "exec",
            &container.id,
            "cat",
            "/var/lib/boxwright/boot-inventory.json",
        ])
        .output()
        .expect("podman exec");
    let inv: serde_json::Value = serde_json::from_slice(&inventory.stdout).unwrap_or_else(|e| {
        panic!(
            "inventory: {e}: {}",
            String::from_utf8_lossy(&inventory.stdout)
        )
    });
    // The boot inventory is in the format of `boxwright snapshot`
    // (boxwright-inventory/1): lists of {"name", "version"} objects.
    assert_eq!(inv["format"], "boxwright-inventory/1", "{inv}");
    let names = |key: &str| -> Vec<String> {
        inv[key]
            .as_array()
            .unwrap_or_else(|| panic!("inventory has no {key} list: {inv}"))
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(names("dpkg").iter().any(|n| n == "jq"), "{inv}");
    assert!(
        names("npm")
            .iter()
            .any(|n| n == "@anthropic-ai/claude-code"),
        "{inv}"
    );
    let keys = podman(&pod)
        .args([
            "exec",
            &container.id,
            "sh",
            "-c",
            "ls /etc/ssh/ssh_host_*_key | wc -l",
        ])
        .output()
        .expect("podman exec");
    assert_ne!(
        String::from_utf8_lossy(&keys.stdout).trim(),
        "0",
        "keys made at boot"
    );
}

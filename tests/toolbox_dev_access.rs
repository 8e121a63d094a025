//! The dev access components that have no Debian package (code-server, ttyd,
//! gh) installed from a local artifact mirror on 127.0.0.1, as an air-gapped
//! builder would. Their real release files are not reachable from this
//! machine, so the mirror serves test fixtures, and a `--catalog` directory
//! pins the fixtures' checksums in place of the real ones (what a site that
//! builds its own ttyd does). The fixtures are shell scripts that record how
//! they are called: the test checks boxwright's wiring (where each lands, the
//! VS Code extension step's calls with the recipe's .vsix mounted, the
//! entrypoint starting code-server on 0.0.0.0:8443 and ttyd on 7681), not
//! the upstream programs. A wrong file fails naming the artifact.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::file_server::Server;
use support::*;

/// Where the fixtures record their calls, inside the image.
const CALLS: &str = "/var/log/boxwright-fixture-calls";

fn arch_key() -> &'static str {
    if std::env::consts::ARCH == "aarch64" {
        "arm64"
    } else {
        "amd64"
    }
}

fn script(body: &str) -> Vec<u8> {
    format!("#!/bin/sh\n{body}").into_bytes()
}

/// A gzipped tarball with `top/bin/NAME` = `body` (the upstream layout that
/// the catalog's install commands unpack with one component stripped).
fn tarball(dir: &Path, top: &str, name: &str, body: &[u8]) -> Vec<u8> {
    let root = dir.join("tarballs").join(top);
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::write(root.join("bin").join(name), body).unwrap();
    fs::set_permissions(
        root.join("bin").join(name),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = dir.join(format!("{top}.tar.gz"));
    sh(Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(dir.join("tarballs"))
        .arg(top));
    fs::read(out).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    boxwright::digest::Digest::of(bytes).hex().to_string()
}

/// The fixture files by component, a catalog dir pinning their checksums,
/// and the mirror's files (`/<component>/<version>/<file>`).
struct Fixtures {
    catalog: std::path::PathBuf,
    mirror: BTreeMap<String, Vec<u8>>,
}

fn fixtures(dir: &Path) -> Fixtures {
    let code_server = script(&format!(
        "echo \"code-server $*\" >> {CALLS}\n\
         case \"${{1:-}}\" in\n\
           --install-extension) case \"$2\" in *.vsix) sha256sum \"$2\" >> {CALLS} || exit 1 ;; esac ;;\n\
           --list-extensions) echo fixture.extension@1.0.0 ;;\n\
           *) exec sleep 3600 ;;\n\
         esac\n"
    ));
    let ttyd = script(&format!("echo \"ttyd $*\" >> {CALLS}\nexec sleep 3600\n"));
    let gh = script("echo gh-fixture\n");

    let text = fs::read_to_string(repo().join("recipes/catalog/dev-access.toml")).unwrap();
    let mut doc: toml::Table = text.parse().unwrap();
    let mut mirror = BTreeMap::new();
    for component in doc["component"].as_array_mut().unwrap() {
        let name = component["name"].as_str().unwrap().to_string();
        let Some(artifact) = component.get_mut("artifact") else {
            continue;
        };
        let version = artifact["version"].as_str().unwrap().to_string();
        let spec = artifact[arch_key()].as_table_mut().unwrap();
        let file = spec["file"].as_str().unwrap().to_string();
        let bytes = match name.as_str() {
            "ttyd" => ttyd.clone(),
            "code-server" => tarball(
                dir,
                file.trim_end_matches(".tar.gz"),
                "code-server",
                &code_server,
            ),
            "gh" => tarball(dir, file.trim_end_matches(".tar.gz"), "gh", &gh),
            other => panic!("a new artifact component {other}: give it a fixture"),
        };
        spec.insert("sha256".into(), sha256(&bytes).into());
        mirror.insert(format!("/{name}/{version}/{file}"), bytes);
    }
    let catalog = dir.join("catalog");
    fs::create_dir_all(&catalog).unwrap();
    fs::write(
        catalog.join("dev-access.toml"),
        toml::to_string(&doc).unwrap(),
    )
    .unwrap();
    Fixtures { catalog, mirror }
}

fn recipe(dir: &Path) -> std::path::PathBuf {
    debian_base_in(dir);
    fs::write(dir.join("local.vsix"), b"PK fixture vsix").unwrap();
    write_recipe(
        dir,
        "toolbox.toml",
        r#"[image]
base = "rootfs:minbase.tar"

[dev_access]
skip = ["claude-code"]   # needs Node.js: tests/toolbox_e2e.rs covers it

[vscode]
extensions = ["ms-python.python@2025.1.0", "local.vsix"]
"#,
    )
}

fn build(dir: &Path, f: &Fixtures, mirror: &str, store: &Path) -> Run {
    boxwright(&[
        "build",
        "--catalog",
        f.catalog.to_str().unwrap(),
        "--artifact-mirror",
        mirror,
        "--store",
        store.to_str().unwrap(),
        "-t",
        "devaccess",
        recipe(dir).to_str().unwrap(),
    ])
}

#[test]
fn code_server_ttyd_and_gh_come_from_the_mirror() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let f = fixtures(dir);

    // A wrong file on the mirror: refused, naming the artifact.
    let mut wrong = f.mirror.clone();
    let ttyd_path = wrong
        .keys()
        .find(|k| k.starts_with("/ttyd/"))
        .unwrap()
        .clone();
    wrong.insert(ttyd_path.clone(), b"not ttyd".to_vec());
    let server = Server::start(wrong);
    let run = build(dir, &f, &server.addr, &dir.join("store-wrong"));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let named = format!(
        "artifact ttyd 1.7.7 ({}) from {}{ttyd_path} has sha256 ",
        ttyd_path.rsplit('/').next().unwrap(),
        server.addr
    );
    assert!(run.stderr.contains(&named), "{named} in:\n{}", run.stderr);
    drop(server);

    // The right files: the build installs them.
    let server = Server::start(f.mirror.clone());
    let store = dir.join("store");
    build(dir, &f, &server.addr, &store).ok();

    let inspect: serde_json::Value = serde_json::from_str(
        &boxwright(&["inspect", "--store", store.to_str().unwrap(), "devaccess"])
            .ok()
            .stdout,
    )
    .unwrap();
    let cfg = &inspect["config"]["config"];
    let ports: Vec<&String> = cfg["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, ["22/tcp", "7681/tcp", "8443/tcp"]);
    assert_eq!(
        cfg["Labels"]["io.boxwright.dev-access"],
        "openssh-server,code-server,ttyd,gh"
    );
    assert_eq!(
        cfg["Labels"]["io.boxwright.vscode.extensions"],
        "ms-python.python@2025.1.0,local.vsix"
    );

    let pod = dir.join("podman");
    let _cleanup = PodmanStorage(&pod);
    let id = podman_pull(&pod, &store, "devaccess:latest");
    let check = podman(&pod)
        .args(["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", &id, "-c"])
        .arg(format!(
            "ls -l /usr/local/bin/code-server /usr/local/bin/ttyd /usr/local/bin/gh; gh; cat {CALLS}"
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        out.contains("/usr/local/bin/code-server -> /opt/boxwright/code-server/bin/code-server"),
        "{out}"
    );
    assert!(
        out.contains("/usr/local/bin/gh -> /opt/boxwright/gh/bin/gh"),
        "{out}"
    );
    assert!(out.contains("gh-fixture"), "{out}");
    // The extension step: the marketplace id as given, the recipe's .vsix
    // mounted into the step (its checksum as the fixture read it), then the list.
    let vsix_sum = sha256(b"PK fixture vsix");
    assert!(
        out.contains("code-server --install-extension ms-python.python@2025.1.0"),
        "{out}"
    );
    assert!(
        out.contains(&vsix_sum),
        "the .vsix reached code-server: {out}"
    );
    assert!(
        out.contains("code-server --list-extensions --show-versions"),
        "{out}"
    );

    // The entrypoint starts code-server and ttyd as the dev access layer says.
    let container = Container::start(&pod, &id, &[]);
    let mut calls = String::new();
    for _ in 0..50 {
        calls = container.exec(&["cat", CALLS]);
        if calls.contains("code-server --bind-addr") && calls.contains("ttyd --writable") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(container);
    assert!(
        calls.contains("code-server --bind-addr 0.0.0.0:8443 --disable-telemetry"),
        "{calls}"
    );
    assert!(
        calls.contains("ttyd --writable --port 7681 /usr/bin/bash -l")
            || calls.contains("ttyd --writable --port 7681 /bin/bash -l"),
        "{calls}"
    );

    // The same image as a boxwright sandbox: `run -d` with the ports moved
    // (a rootless sandbox on the host's network cannot bind 22): sshd
    // listens on the port given, code-server and ttyd start with theirs,
    // and `stop` ends them all.
    let s = store.to_str().unwrap();
    let port = free_port();
    let bw = |args: &[&str]| {
        let mut all = vec!["--store", s];
        all.extend_from_slice(args);
        boxwright(&all)
    };
    let ssh_env = format!("BOXWRIGHT_SSH_PORT={port}");
    bw(&[
        "run",
        "-d",
        "--name",
        "dev",
        "-e",
        &ssh_env,
        "-e",
        "BOXWRIGHT_CODE_SERVER_PORT=18443",
        "-e",
        "BOXWRIGHT_TTYD_PORT=17681",
        "devaccess",
    ])
    .ok();
    let mut listening = false;
    let mut calls = String::new();
    for _ in 0..100 {
        listening = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        calls = bw(&["exec", "dev", "cat", CALLS]).stdout;
        if listening && calls.contains("--port 17681") && calls.contains("0.0.0.0:18443") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let logs = bw(&["logs", "--sandbox", "dev"]);
    assert!(
        listening,
        "sshd listens on {port}: {}{}",
        logs.stdout, logs.stderr
    );
    let mut banner = [0u8; 7];
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Read::read_exact(&mut conn, &mut banner).unwrap();
    assert_eq!(&banner, b"SSH-2.0", "an ssh server answers");
    assert!(
        calls.contains("code-server --bind-addr 0.0.0.0:18443"),
        "{calls}"
    );
    assert!(calls.contains("ttyd --writable --port 17681"), "{calls}");
    bw(&["stop", "-t", "5", "dev"]).ok();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "sshd ended with the sandbox"
    );
    bw(&["rm", "dev"]).ok();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

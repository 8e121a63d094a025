//! The README cannot rot: every shell block marked runnable (a
//! `<!-- runnable -->` line right before its ```` ```sh ```` fence) is run
//! verbatim, block after block, as a new user would: a fresh home directory
//! (so a fresh default store), `boxwright` on `PATH` (as `cargo install`
//! puts it), a copy of the repository as the working directory (without
//! `target/` or any generated fixture). Each command line (continuation
//! lines joined) must exit 0; a few outcomes the README promises are then
//! checked.
//!
//! Needs what the README's blocks need: root for podman (`save | podman
//! load`), skopeo, and a registry on 127.0.0.1:5000 (`sudo
//! scripts/testbed.sh registries`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::*;

/// A runnable block: where it starts in README.md, and its command lines.
struct Block {
    line: usize,
    commands: Vec<String>,
}

/// The runnable blocks of `readme`, in order.
fn runnable_blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "<!-- runnable -->" {
            i += 1;
            continue;
        }
        assert_eq!(
            lines.get(i + 1).copied(),
            Some("```sh"),
            "README.md:{}: a runnable marker must sit right before a ```sh fence",
            i + 1
        );
        let start = i + 2;
        let mut commands = Vec::new();
        let mut current = String::new();
        let mut j = start;
        while j < lines.len() && lines[j] != "```" {
            let l = lines[j];
            match l.strip_suffix('\\') {
                Some(head) => {
                    current.push_str(head);
                    current.push(' ');
                }
                None => {
                    current.push_str(l);
                    if !current.trim().is_empty() {
                        commands.push(std::mem::take(&mut current));
                    }
                    current.clear();
                }
            }
            j += 1;
        }
        assert!(j < lines.len(), "README.md:{}: unclosed block", i + 1);
        assert!(
            !commands.is_empty(),
            "README.md:{}: empty runnable block",
            i + 1
        );
        blocks.push(Block {
            line: start,
            commands,
        });
        i = j + 1;
    }
    blocks
}

/// Copies the repository's files into `dest`, leaving out what a fresh
/// clone does not have (build output, generated fixtures) and the fuzz
/// corpus (big, and no README block reads it).
fn copy_repo(dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for entry in fs::read_dir(repo()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if [".git", "target", "fuzz"].contains(&name.to_str().unwrap_or("")) {
            continue;
        }
        sh(Command::new("cp").arg("-a").arg(entry.path()).arg(dest));
    }
    for entry in fs::read_dir(dest.join("rootfs-fixtures")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tar") {
            fs::remove_file(path).unwrap();
        }
    }
}

/// Runs one README command line with bash in `work`, as the README's reader.
fn run_line(cmd: &str, work: &Path, env: &[(String, String)]) -> support::Run {
    let mut c = Command::new("timeout");
    c.arg("600")
        .arg("bash")
        .arg("-o")
        .arg("pipefail")
        .arg("-c")
        .arg(cmd)
        .current_dir(work)
        .stdin(Stdio::null())
        .env_clear();
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run bash");
    support::Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Removes the README's sandbox if a failed run left it.
struct Cleanup {
    work: PathBuf,
    env: Vec<(String, String)>,
    podman: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run_line("boxwright rm -f dev", &self.work, &self.env);
        podman_cleanup(&self.podman);
    }
}

#[test]
fn readme_runnable_blocks_work_verbatim_on_a_fresh_store() {
    require_root("the README pipes an archive into podman load");
    require_tool("skopeo", "skopeo");
    require_tool("busybox", "busybox-static");
    let registry = std::net::TcpStream::connect("127.0.0.1:5000");
    assert!(
        registry.is_ok(),
        "the README's registry blocks need a registry on 127.0.0.1:5000: start it with `sudo scripts/testbed.sh registries`"
    );

    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks = runnable_blocks(&readme);
    assert!(blocks.len() >= 9, "runnable blocks: {}", blocks.len());

    let dir = world_tempdir();
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    fs::create_dir_all(&home).unwrap();
    copy_repo(&work);
    // podman's own configuration for this machine, as a user of it has.
    let pod = dir.path().join("podman");
    let podman_env: Vec<(String, String)> = podman(&pod)
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.unwrap().to_string_lossy().into_owned(),
            )
        })
        .collect();
    let path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), home.display().to_string()),
        ("PATH".into(), path),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    env.extend(podman_env);
    let _cleanup = Cleanup {
        work: work.clone(),
        env: env.clone(),
        podman: pod.clone(),
    };

    let mut outputs: Vec<(String, String)> = Vec::new();
    for block in &blocks {
        for cmd in &block.commands {
            let out = run_line(cmd, &work, &env);
            assert_eq!(
                out.code, 0,
                "README.md block at line {}: `{cmd}` exited {}\nstdout:\n{}\nstderr:\n{}",
                block.line, out.code, out.stdout, out.stderr
            );
            outputs.push((cmd.clone(), out.stdout));
        }
    }
    let output = |prefix: &str| -> &str {
        &outputs
            .iter()
            .find(|(c, _)| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no README command starts with `{prefix}`"))
            .1
    };

    // What the README says the commands do.
    let store = home.join(".local/share/boxwright");
    assert!(store.join("index.json").is_file(), "the default store");
    assert!(
        output("boxwright build recipes/demo.toml -t demo").starts_with("sha256:"),
        "the build prints the manifest digest"
    );
    // The demo's entrypoint greets first, then runs the command.
    let status = output("boxwright run --rm demo sh -c 'echo hi; exit 3'; echo $?");
    assert!(status.ends_with("\nhi\n3\n"), "{status}");
    assert!(output("boxwright run --rm hello").contains("HELLO FROM A CONTAINERFILE"));
    assert_eq!(output("boxwright run --rm args cat /version"), "2.0\n");
    let report = output("boxwright fork dev --dry-run");
    assert!(
        report.contains("other files: 1 file, 3 B: /opt 1"),
        "{report}"
    );
    let images = run_line("boxwright images -q", &work, &env);
    for name in ["demo:latest", "hello:latest", "team/box:forked"] {
        assert!(
            images.stdout.lines().any(|l| l == name),
            "{name}:\n{}",
            images.stdout
        );
    }
    assert!(work.join("rootfs-fixtures/busybox.tar").is_file());
    assert!(work.join("forked.toml").is_file());
    assert!(work.join("inventory.json").is_file());
    assert!(
        home.join(".local/share/man/man1/boxwright-build.1")
            .is_file()
    );
    let podman_images = sh(podman(&pod).args(["images", "--format", "{{.Repository}}"]));
    assert!(
        !podman_images.trim().is_empty(),
        "podman load: {podman_images}"
    );
}

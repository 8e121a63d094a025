//! Daemonless sandboxes: `run` (foreground, -i, -t, -d, --rm, -e, -v, -w,
//! --user, --network, --entrypoint), `exec`, `ps`, `stop`, `start`, `rm`,
//! `logs --sandbox`, in every id-mapping mode, on a busybox image built here.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A store with a small image `box` (busybox, a user `dev`, an entrypoint
/// that prints a banner then runs its arguments, cmd `echo default-cmd`).
struct Fixture {
    dir: tempfile::TempDir,
}

/// Sandboxes a test leaves running (a failed assertion) are removed with it.
impl Drop for Fixture {
    fn drop(&mut self) {
        let root = self.store();
        let Ok(out) = std::process::Command::new(bin())
            .arg("--store")
            .arg(&root)
            .args(["ps", "-a", "--json"])
            .output()
        else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(name) = v["name"].as_str()
            {
                let _ = std::process::Command::new(bin())
                    .arg("--store")
                    .arg(&root)
                    .args(["rm", "-f", name])
                    .output();
            }
        }
    }
}

impl Fixture {
    fn new() -> Fixture {
        let dir = world_tempdir();
        let f = Fixture { dir };
        let recipe = write_recipe(
            f.dir.path(),
            "box.toml",
            &format!(
                "{}[[steps]]\nrun = \"echo 'dev:x:1000:1000:Dev:/home/dev:/bin/sh' >> /etc/passwd && echo 'dev:x:1000:' >> /etc/group && mkdir -p /home/dev && chown 1000:1000 /home/dev && printf '#!/bin/sh\\\\necho banner\\\\nexec \\\"$@\\\"\\\\n' > /entry && chmod +x /entry\"\n\
                 [config]\nentrypoint = [\"/entry\"]\ncmd = [\"echo\", \"default-cmd\"]\nenv = {{ FROM_IMAGE = \"yes\" }}\nworkdir = \"/home/dev\"\n",
                busybox_base()
            ),
        );
        f.bw(&["build", recipe.to_str().unwrap(), "-t", "box"]).ok();
        f
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn bw(&self, args: &[&str]) -> Run {
        let store = self.store();
        let mut full = vec!["--store", store.to_str().unwrap()];
        full.extend_from_slice(args);
        boxwright(&full)
    }

    /// Runs boxwright with `input` on stdin.
    fn bw_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = Command::new(bin())
            .arg("--store")
            .arg(self.store())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ps(&self) -> Vec<serde_json::Value> {
        self.bw(&["ps", "-a", "--json"])
            .ok()
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn status(&self, name: &str) -> String {
        self.ps()
            .into_iter()
            .find(|v| v["name"] == name)
            .map(|v| v["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| "absent".into())
    }

    fn sandbox_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("store.state/sandboxes").join(name)
    }
}

#[test]
fn run_gives_the_command_status_entrypoint_env_user_and_stdin() {
    let f = Fixture::new();
    // The image's entrypoint runs with its cmd.
    let r = f.bw(&["run", "--rm", "box"]).ok();
    assert_eq!(r.stdout, "banner\ndefault-cmd\n");
    // Arguments replace the cmd; the status is run's own.
    assert_eq!(f.bw(&["run", "--rm", "box", "false"]).code, 1);
    assert_eq!(f.bw(&["run", "--rm", "box", "sh", "-c", "exit 3"]).code, 3);
    // --entrypoint replaces the entrypoint and drops the cmd.
    let r = f
        .bw(&["run", "--rm", "--entrypoint", "/bin/echo", "box", "direct"])
        .ok();
    assert_eq!(r.stdout, "direct\n");
    // Env from the image and -e; workdir from the image and -w; --user by name.
    let r = f
        .bw(&[
            "run",
            "--rm",
            "-e",
            "EXTRA=1",
            "--user",
            "dev",
            "box",
            "sh",
            "-c",
            "echo $FROM_IMAGE $EXTRA $(pwd) $(id -u):$(id -g) $HOME",
        ])
        .ok();
    assert_eq!(r.stdout, "banner\nyes 1 /home/dev 1000:1000 /home/dev\n");
    let r = f.bw(&["run", "--rm", "-w", "/tmp", "box", "pwd"]).ok();
    assert_eq!(r.stdout, "banner\n/tmp\n");
    // -i hands stdin to the program; without it, it reads nothing.
    let r = f.bw_stdin(
        &[
            "run",
            "--rm",
            "-i",
            "box",
            "sh",
            "-c",
            "read l; echo got-$l",
        ],
        "line\n",
    );
    assert_eq!(r.stdout, "banner\ngot-line\n", "{}", r.stderr);
    let r = f.bw_stdin(
        &["run", "--rm", "box", "sh", "-c", "read l; echo got-$l"],
        "line\n",
    );
    assert_eq!(r.stdout, "banner\ngot-\n");
    // -t gives the program a terminal (stdin here is a pipe).
    let r = f.bw(&[
        "run",
        "--rm",
        "-t",
        "box",
        "sh",
        "-c",
        "test -t 0 && test -t 1 && tty",
    ]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("/dev/pts/"), "{:?}", r.stdout);
    // --rm leaves no sandbox behind; without it the sandbox stays.
    assert!(f.ps().is_empty(), "{:?}", f.ps());
    f.bw(&["run", "--name", "kept", "box", "true"]).ok();
    assert_eq!(f.status("kept"), "exited");
    f.bw(&["rm", "kept"]).ok();
    assert_eq!(f.status("kept"), "absent");
    // A missing image and a bad name are input errors.
    assert_eq!(f.bw(&["run", "--rm", "nosuch", "true"]).code, 2);
    assert_eq!(f.bw(&["run", "--name", "-bad", "box", "true"]).code, 2);
}

#[test]
fn a_sandbox_sees_its_mounts_and_nothing_else_of_the_host() {
    let f = Fixture::new();
    let host = f.dir.path().join("hostdir");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("shared"), "from-host\n").unwrap();
    let secret = f.dir.path().join("host-only-secret");
    fs::write(&secret, "no").unwrap();
    let vol = format!("{}:/mnt/shared:ro", host.display());
    let script = format!(
        "cat /mnt/shared/shared; test ! -e {} && test ! -e {} && echo isolated; touch /mnt/shared/x 2>/dev/null || echo read-only",
        secret.display(),
        f.store().display()
    );
    let r = f
        .bw(&["run", "--rm", "-v", &vol, "box", "sh", "-c", &script])
        .ok();
    assert_eq!(r.stdout, "banner\nfrom-host\nisolated\nread-only\n");
    // --network none: loopback only.
    let r = f
        .bw(&[
            "run",
            "--rm",
            "--network",
            "none",
            "box",
            "sh",
            "-c",
            "ls /sys/class/net",
        ])
        .ok();
    assert_eq!(r.stdout, "banner\nlo\n");
    // A bad volume is an input error naming it.
    let r = f.bw(&["run", "--rm", "-v", "/no/such/dir:/x", "box", "true"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/no/such/dir"), "{}", r.stderr);
}

#[test]
fn detached_sandboxes_exec_stop_start_and_rm() {
    let f = Fixture::new();
    let r = f
        .bw(&[
            "run",
            "-d",
            "--name",
            "web",
            "box",
            "sh",
            "-c",
            "echo started; while true; do sleep 1; done",
        ])
        .ok();
    assert_eq!(r.stdout.trim(), "web");
    assert_eq!(f.status("web"), "running");
    // exec enters its namespaces: same root, same processes, its env.
    let r = f
        .bw(&[
            "exec",
            "web",
            "sh",
            "-c",
            "echo change > /home/dev/file; echo $FROM_IMAGE; hostname; ps -o comm | grep -c sleep",
        ])
        .ok();
    assert_eq!(r.stdout, "yes\nweb\n1\n");
    assert_eq!(f.bw(&["exec", "web", "sh", "-c", "exit 5"]).code, 5);
    assert_eq!(f.bw(&["exec", "web", "no-such-program"]).code, 127);
    // Its output is kept.
    let logs = f.bw(&["logs", "--sandbox", "web"]).ok().stdout;
    assert!(logs.starts_with("banner\nstarted\n"), "{logs}");
    // ps shows the size of its changes.
    let v = f.ps().into_iter().find(|v| v["name"] == "web").unwrap();
    assert!(v["changes_bytes"].as_u64().unwrap() > 0);
    // rm refuses a running sandbox without --force.
    assert_eq!(f.bw(&["rm", "web"]).code, 1);
    // stop: SIGTERM, then SIGKILL after --time (sh ignores neither: quick).
    let started = Instant::now();
    f.bw(&["stop", "-t", "5", "web"]).ok();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(f.status("web"), "exited");
    assert_eq!(
        f.bw(&["exec", "web", "true"]).code,
        1,
        "exec needs it running"
    );
    // start brings it back with its changes.
    f.bw(&["start", "web"]).ok();
    assert_eq!(f.status("web"), "running");
    let r = f.bw(&["exec", "web", "cat", "/home/dev/file"]).ok();
    assert_eq!(r.stdout, "change\n");
    f.bw(&["rm", "--force", "web"]).ok();
    assert_eq!(f.status("web"), "absent");
    assert!(!f.sandbox_dir("web").exists());
    // -d with --rm: gone once its program ends.
    f.bw(&["run", "-d", "--rm", "--name", "brief", "box", "sleep", "1"])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.status("brief") != "absent" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(f.status("brief"), "absent");
}

#[test]
fn a_killed_monitor_leaves_a_stopped_sandbox_that_rm_removes() {
    let f = Fixture::new();
    f.bw(&["run", "-d", "--name", "victim", "box", "sleep", "1003"])
        .ok();
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(f.sandbox_dir("victim").join("state.json")).unwrap())
            .unwrap();
    let monitor = state["runner_pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The sandbox goes with its monitor.
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.status("victim") == "running" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(f.status("victim"), "stopped");
    let ps = sh(Command::new("ps").args(["-eo", "args"]));
    assert!(!ps.lines().any(|l| l.trim() == "sleep 1003"), "{ps}");
    f.bw(&["rm", "victim"]).ok();
    assert_eq!(f.status("victim"), "absent");
}

/// Runs the same sandbox checks as an unprivileged user: with subordinate
/// ids (newuidmap) and with only one id (fake root).
#[test]
fn sandboxes_run_in_every_id_mapping_mode() {
    require_root("switching to the test users");
    for user in ["bwsub", "bwsingle"] {
        require_user(user);
        let t = world_tempdir();
        let exe = shared_binary(t.path());
        let base = t.path().join("busybox.tar");
        fs::copy(busybox_tar(), &base).unwrap();
        fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let recipe = write_recipe(
            t.path(),
            "r.toml",
            &format!(
                "[image]\nbase = \"rootfs:{}\"\n[config]\ncmd = [\"sh\"]\n",
                base.display()
            ),
        );
        fs::set_permissions(&recipe, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let home = t.path().join(format!("home-{user}"));
        fs::create_dir_all(&home).unwrap();
        sh(Command::new("chown").arg(user).arg(&home));
        let store = home.join("store");
        let s = store.to_str().unwrap();
        let as_user = |args: &[&str]| run_as(user, &home, &exe, args);
        let built = as_user(&["--store", s, "build", recipe.to_str().unwrap(), "-t", "b"]);
        assert_eq!(built.code, 0, "{user}: {}", built.stderr);
        let r = as_user(&[
            "--store",
            s,
            "run",
            "--rm",
            "b",
            "sh",
            "-c",
            "id -u; echo x > /f; cat /f",
        ]);
        assert_eq!(r.code, 0, "{user}: {}", r.stderr);
        assert_eq!(r.stdout, "0\nx\n", "{user}");
        // The copied-tree fallback too: made, changed, run again and removed
        // with the tree's files owned by mapped ids.
        let r = as_user(&[
            "--store",
            s,
            "run",
            "--diff",
            "snapshot",
            "--name",
            "copy",
            "b",
            "sh",
            "-c",
            "echo kept > /f",
        ]);
        assert_eq!(r.code, 0, "{user}: {}", r.stderr);
        let r = as_user(&["--store", s, "start", "copy"]);
        assert_eq!(r.code, 0, "{user}: {}", r.stderr);
        let r = as_user(&["--store", s, "fork", "copy", "--dry-run", "--json"]);
        assert_eq!(r.code, 0, "{user}: {}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["other"]["files"], 1, "{user}: {v}");
        let r = as_user(&["--store", s, "rm", "copy"]);
        assert_eq!(r.code, 0, "{user}: {}", r.stderr);
        let r = as_user(&[
            "--store", s, "run", "-d", "--name", "bg", "b", "sleep", "1004",
        ]);
        assert_eq!(r.code, 0, "{user}: {}", r.stderr);
        let r = as_user(&[
            "--store",
            s,
            "exec",
            "bg",
            "sh",
            "-c",
            "echo in-$(hostname)",
        ]);
        assert_eq!(r.stdout, "in-bg\n", "{user}: {}", r.stderr);
        let r = as_user(&["--store", s, "rm", "-f", "bg"]);
        assert_eq!(r.code, 0, "{user}: {}", r.stderr);
        let r = as_user(&["--store", s, "ps", "-a"]);
        assert!(!r.stdout.contains("bg"), "{user}: {}", r.stdout);
    }
}

/// The store keeps a sandbox's image (and its unpacked layers) through `rmi` + `gc`.
#[test]
fn gc_keeps_what_sandboxes_use() {
    let f = Fixture::new();
    f.bw(&["run", "--name", "keep", "box", "true"]).ok();
    f.bw(&["rmi", "box"]).ok();
    f.bw(&["gc"]).ok();
    let r = f.bw(&["start", "keep"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let _ = Path::new("/");
}

/// `run -it` from a real terminal: keys reach the program, its output and
/// exit status come back; without -it too, since stdin is a terminal.
#[test]
fn run_it_from_a_terminal_is_interactive() {
    let f = Fixture::new();
    for flags in [&["-it"][..], &[]] {
        from_a_terminal(&f, flags);
    }
}

fn from_a_terminal(f: &Fixture, flags: &[&str]) {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = pty.slave.as_raw_fd();
    let mut cmd = Command::new(bin());
    cmd.arg("--store")
        .arg(f.store())
        .args(["run", "--rm"])
        .args(flags)
        .args(["box", "sh"]);
    cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe; the child takes the
    // pty as its controlling terminal, as a shell in a terminal would.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            libc::ioctl(slave, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // The command holds copies of the slave: all must go for the master to see EOF.
    drop(cmd);
    drop(pty.slave);
    let mut master = fs::File::from(pty.master);
    std::thread::sleep(Duration::from_millis(1500));
    master.write_all(b"echo hi-$((6*7)); exit 7\r").unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    let status = child.wait().unwrap();
    let out = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert_eq!(status.code(), Some(7), "{flags:?}: {out}");
    assert!(out.contains("hi-42"), "{flags:?}: {out}");
}

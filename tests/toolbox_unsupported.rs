//! The dev access layer on a base with no package manager boxwright knows
//! (busybox with an os-release) fails in that step, naming the distro.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

/// A busybox base with an os-release naming `pretty`, plus `extra` files
/// (path, content, mode) appended to its tar; returns the recipe building the
/// dev access layer (openssh-server only) on it.
fn tiny_base(dir: &Path, pretty: &str, extra: &[(&str, &str, u32)]) -> PathBuf {
    let base = dir.join("tiny.tar");
    fs::copy(busybox_tar(), &base).unwrap();
    let root = dir.join("extra");
    let mut files = vec![(
        "etc/os-release".to_string(),
        format!("PRETTY_NAME=\"{pretty}\"\nID=tiny\nVERSION_ID=1.0\n"),
        0o644,
    )];
    files.extend(
        extra
            .iter()
            .map(|(p, c, m)| (p.to_string(), c.to_string(), *m)),
    );
    for (path, content, mode) in &files {
        let file = root.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, content).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(*mode)).unwrap();
        sh(Command::new("tar")
            .arg("-rf")
            .arg(&base)
            .arg("-C")
            .arg(&root)
            .arg(path));
    }
    write_recipe(
        dir,
        "recipe.toml",
        "[image]\nbase = \"rootfs:tiny.tar\"\ndev_access = true\n\
         # Their upstream files are not reachable from this machine.\n\
         [dev_access]\nskip = [\"code-server\", \"ttyd\", \"gh\", \"claude-code\"]\n",
    )
}

#[test]
fn an_unsupported_distro_is_named() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let recipe = tiny_base(dir, "Tiny Linux 1.0", &[]);
    let store = dir.join("store");
    let run = boxwright(&[
        "build",
        "--store",
        store.to_str().unwrap(),
        recipe.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "the base image (Tiny Linux 1.0, /etc/os-release ID=tiny) has no supported package manager: boxwright knows apt-get, apk, dnf and microdnf"
        ),
        "{}",
        run.stderr
    );
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(
            "error: step 1 failed: `RUN [boxwright] dev access layer: openssh-server` exited with code 1"
        ),
        "the failing component is named last, on one line: {last}"
    );
}

/// Under --offline, boxwright's own scripts refuse apk (or dnf): only apt's
/// sources can be sent to a mirror, so apk would reach its upstream. The
/// `apk` here is a fixture that records being run.
#[test]
fn offline_refuses_package_managers_it_cannot_mirror() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let recipe = tiny_base(
        dir,
        "Tiny Alpine-like 1.0",
        &[("sbin/apk", "#!/bin/sh\necho apk-ran >> /apk-calls\n", 0o755)],
    );
    let store = dir.join("store");
    let run = boxwright(&[
        "build",
        "--store",
        store.to_str().unwrap(),
        "--offline",
        // An apt mirror satisfies the up-front check; apk has none.
        "--mirror",
        "http://deb.debian.org/=http://127.0.0.1:9/debian/",
        recipe.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "--offline: the base image (Tiny Alpine-like 1.0) installs with apk, whose repositories boxwright cannot send to a mirror (only apt's)"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("apk-ran"), "{}", run.stderr);
}

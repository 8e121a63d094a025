//! The dev access layer on a base with no package manager boxwright knows
//! (busybox with an os-release) fails in that step, naming the distro.

mod support;

use std::fs;
use std::process::Command;

use support::*;

#[test]
fn an_unsupported_distro_is_named() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let base = dir.join("tiny.tar");
    fs::copy(busybox_tar(), &base).unwrap();
    fs::create_dir_all(dir.join("extra/etc")).unwrap();
    fs::write(
        dir.join("extra/etc/os-release"),
        "PRETTY_NAME=\"Tiny Linux 1.0\"\nID=tiny\nVERSION_ID=1.0\n",
    )
    .unwrap();
    sh(Command::new("tar")
        .arg("-rf")
        .arg(&base)
        .arg("-C")
        .arg(dir.join("extra"))
        .arg("etc/os-release"));
    let recipe = write_recipe(
        dir,
        "recipe.toml",
        "[image]\nbase = \"rootfs:tiny.tar\"\ndev_access = true\n\
         # Their upstream files are not reachable from this machine.\n\
         [dev_access]\nskip = [\"code-server\", \"ttyd\", \"gh\", \"claude-code\"]\n",
    );
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

//! A full disk at each phase that writes to the store: inside a running
//! step, while a step's layer is compressed into a blob, while a base is
//! unpacked, while an archive is loaded, and while an image is pulled from
//! a registry. Each fails with a one-line
//! error naming the lack of space and a non-zero exit code, never a panic;
//! after each, `fsck` finds the store sound (no blob under a digest it does
//! not have, no tag to a missing image), the failed name is not tagged,
//! and once space is back (`gc`) the same store builds again.
//!
//! The store lives on a small tmpfs mounted for the test (root needed).

#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use regsupport::registry::TestRegistry;
use support::*;

/// A tmpfs of `mib` MiB at `dir`, unmounted on drop.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(dir: &Path, mib: u32) -> SmallFs {
        fs::create_dir_all(dir).unwrap();
        sh(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0755")])
            .arg("boxwright-disk-full")
            .arg(dir));
        SmallFs(dir.to_path_buf())
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

struct Store {
    root: PathBuf,
}

impl Store {
    fn bw(&self, args: &[&str]) -> Run {
        let mut full = vec!["--store", self.root.to_str().unwrap()];
        full.extend_from_slice(args);
        boxwright(&full)
    }

    /// The command failed cleanly because the disk is full.
    fn fails_for_space(&self, args: &[&str], what: &str) {
        let run = self.bw(args);
        assert_ne!(run.code, 0, "{what} succeeded on a full disk");
        assert!(
            run.code == 1 || run.code == 2,
            "{what}: exit {}\n{}",
            run.code,
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{what}:\n{}", run.stderr);
        let last = run.stderr.trim().lines().last().unwrap_or_default();
        assert!(
            last.contains("No space left on device") || last.contains("ENOSPC"),
            "{what}: the last line names the lack of space:\n{}",
            run.stderr
        );
        self.sound(what);
    }

    /// `fsck` passes, leftovers of the interrupted write aside (the next
    /// build or `gc` removes them; none is visible under a digest).
    fn sound(&self, after: &str) {
        let run = self.bw(&["fsck"]);
        let text = format!("{}{}", run.stdout, run.stderr);
        let problems: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("checked "))
            .filter(|l| !l.starts_with("leftover of an interrupted write"))
            .collect();
        assert!(problems.is_empty(), "fsck after {after}:\n{text}");
    }

    fn tags(&self) -> String {
        self.bw(&["images", "-q"]).ok().stdout
    }
}

fn recipe(dir: &Path, name: &str, run: &str) -> PathBuf {
    write_recipe(
        dir,
        name,
        &format!("{}[[steps]]\nrun = \"{run}\"\n", busybox_base()),
    )
}

#[test]
fn a_full_disk_fails_each_phase_cleanly_and_leaves_the_store_sound() {
    require_root("mounting a small tmpfs");
    let dir = world_tempdir();
    let small = SmallFs::mount(&dir.path().join("fs"), 16);
    let store = Store {
        root: small.0.join("store"),
    };
    let work = dir.path().join("work");
    fs::create_dir_all(&work).unwrap();

    // A first image fits: busybox's blob and its unpacked layer.
    let ok = recipe(&work, "ok.toml", "echo ok > /ok");
    store.bw(&["build", ok.to_str().unwrap(), "-t", "ok"]).ok();

    // 1. A step that fills the disk: the step fails (its own ENOSPC), the
    //    build says which step, and nothing is tagged.
    let fill = recipe(
        &work,
        "fill.toml",
        "dd if=/dev/zero of=/fill bs=1M count=64",
    );
    let run = store.bw(&["build", fill.to_str().unwrap(), "-t", "fill"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("step 1 failed"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    store.sound("a step that filled the disk");
    assert!(!store.tags().contains("fill"), "{}", store.tags());

    // 2. A step whose output fits, but not its compressed blob beside it.
    let blob = recipe(&work, "blob.toml", "head -c 9000000 /dev/urandom > /random");
    store.fails_for_space(
        &["build", blob.to_str().unwrap(), "-t", "blob"],
        "writing a layer blob",
    );
    assert!(!store.tags().contains("blob"), "{}", store.tags());

    // 3. Loading an archive bigger than the free space.
    let other = Store {
        root: dir.path().join("other"),
    };
    let big = recipe(&work, "big.toml", "head -c 20000000 /dev/urandom > /random");
    other
        .bw(&["build", big.to_str().unwrap(), "-t", "big"])
        .ok();
    let archive = dir.path().join("big.tar");
    other
        .bw(&["save", "big", "-o", archive.to_str().unwrap()])
        .ok();
    store.fails_for_space(&["load", archive.to_str().unwrap()], "loading an archive");
    assert!(!store.tags().contains("big"), "{}", store.tags());

    // 4. A base that does not fit, from an OCI layout outside the small disk.
    fs::write(
        work.join("on-big.toml"),
        format!(
            "[image]\nbase = \"oci:{}:big\"\n[[steps]]\nrun = \"true\"\n",
            other.root.display()
        ),
    )
    .unwrap();
    store.fails_for_space(
        &[
            "build",
            work.join("on-big.toml").to_str().unwrap(),
            "-t",
            "onbig",
        ],
        "taking in a base",
    );
    assert!(!store.tags().contains("onbig"), "{}", store.tags());

    // 5. A pull bigger than the free space, from a real registry, once gc
    //    has cleared what the failures above left (so that the pull runs
    //    out of space part-way through a layer, not at its first write).
    let reg = TestRegistry::start();
    let remote = format!("{}/full/big:1", reg.host());
    other
        .bw(&["--tls-verify=false", "push", "big", &remote])
        .ok();
    store.bw(&["gc"]).ok();
    let run = store.bw(&["--tls-verify=false", "pull", &remote]);
    assert_eq!(run.code, 1, "pull on a full disk:\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // Progress lines come first; the one error line is the last.
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("boxwright:") || l.contains("] error:"))
        .collect();
    assert!(
        errors.len() == 1
            && run.stderr.lines().last() == Some(errors[0])
            && errors[0].contains("No space left on device"),
        "pull: one line naming the lack of space:\n{}",
        run.stderr
    );
    // A failed pull removes its partial blob itself: not even a leftover.
    let fsck = store.bw(&["fsck"]);
    assert_eq!(
        fsck.code, 0,
        "fsck after a pull that filled the disk:\n{}{}",
        fsck.stdout, fsck.stderr
    );
    assert!(!store.tags().contains("full/big"), "{}", store.tags());

    // Space back: gc clears what the failures left, and the store builds.
    store.bw(&["gc"]).ok();
    store.sound("gc");
    let again = recipe(&work, "again.toml", "echo again > /again");
    store
        .bw(&["build", again.to_str().unwrap(), "-t", "again"])
        .ok();
    let out = store.bw(&["run", "--rm", "again", "cat", "/again"]);
    assert_eq!(out.stdout, "again\n", "{}", out.stderr);
    let tags = store.tags();
    assert!(
        tags.contains("ok:latest") && tags.contains("again:latest"),
        "{tags}"
    );
}

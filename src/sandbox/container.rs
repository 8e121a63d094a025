//! The set-up process: namespaces, the root filesystem and every mount
//! around it, then the container's init; afterwards it unmounts and removes
//! whatever mountpoint stubs it had to add to the root filesystem.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::copy::COPY_SRC;
use super::devices::{make_dir, populate_dev};
use super::environment::{APT_CONF, APT_CONF_PATH};
use super::error::SandboxError;
use super::init::container_init;
use super::mountpoints::{Mountpoints, fd_path};
use super::mounts::{bind, detach, make_private_recursively, make_readonly, mount_fs};
use super::net::loopback_up;
use super::overlay::mount_overlay;
use super::process::{Reporter, fork_child, wait_for};
use super::spec::{Action, CA_BUNDLE_PATH, Network, Rootfs, RunSpec};

/// Host files a step on the host network needs, bound read-only.
const NETWORK_FILES: [&str; 2] = ["etc/resolv.conf", "etc/hosts"];

/// Body of the set-up process; returns the step's exit code.
pub(crate) fn setup_and_run(
    spec: &RunSpec,
    merged: &Path,
    reporter: &Reporter,
) -> Result<i32, SandboxError> {
    // Steps get Docker's umask whatever the helper's is.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if spec.network == Network::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    nix::sched::unshare(flags).map_err(|e| SandboxError::NotNamespaceRoot {
        reason: format!("cannot create mount, pid and other namespaces: {e}"),
    })?;
    make_private_recursively()?;
    nix::unistd::sethostname("boxwright")
        .map_err(|e| SandboxError::io("set the hostname in", "the uts namespace", e))?;
    if spec.network == Network::None {
        loopback_up()?;
    }
    let base = match &spec.rootfs {
        Rootfs::Overlay {
            lowerdirs,
            upperdir,
            workdir,
        } => {
            mount_overlay(lowerdirs, upperdir, workdir, merged)?;
            upperdir
        }
        Rootfs::Directory(dir) => {
            bind(dir, merged, true)?;
            dir
        }
    };
    let mut points = Mountpoints::new(merged, base)?;
    // Sealed even after a failed set-up, so the stubs made so far go too.
    let prepared = prepare(spec, merged, &mut points);
    points.seal();
    let outcome = prepared.and_then(|()| {
        let init = fork_child(reporter, || container_init(spec, merged, reporter))?;
        wait_for(init)
    });
    // Stubs come out of the base only once the overlay is gone: the kernel
    // does not expect its layers to change under a live mount.
    let unmounted = detach(merged);
    let cleaned = unmounted.clone().and_then(|()| points.clean_up());
    let ended = outcome?;
    unmounted?;
    cleaned?;
    Ok(ended.code())
}

/// Mounts /proc's mountpoint, /dev, /sys, /run (with the CA bundle, apt
/// snippet and COPY source) and the network files.
fn prepare(spec: &RunSpec, merged: &Path, points: &mut Mountpoints) -> Result<(), SandboxError> {
    // /proc is mounted by init, which is the first process in the new pid
    // namespace; /dev, /sys and /run are top-level real directories, so their
    // merged paths are safe to use once `ensure` has checked them.
    points.ensure_dir("proc")?;
    points.ensure_dir("dev")?;
    populate_dev(&merged.join("dev"))?;
    points.ensure_dir("sys")?;
    mount_sys(&merged.join("sys"), spec.network);
    points.ensure_dir("run")?;
    populate_run(spec, &merged.join("run"))?;
    if spec.network == Network::Host {
        for rel in NETWORK_FILES {
            let host = Path::new("/").join(rel);
            if !host.is_file() {
                continue;
            }
            let Some(stub) = points.ensure_file(rel)? else {
                note(&format!(
                    "boxwright: the image's /{rel} is a dangling symlink; not providing one\n"
                ));
                continue;
            };
            bind(&host, &fd_path(&stub), false)?;
            // Reopen through the path: the old descriptor names the file
            // under the bind mount, not the bind mount itself.
            if let Some(bound) = points.ensure_file(rel)? {
                make_readonly(&fd_path(&bound), false)?;
            }
        }
    }
    Ok(())
}

/// A fresh read-only sysfs for a private network namespace (whose
/// interfaces it shows), else the host's bound read-only; no /sys at all if
/// neither is allowed.
fn mount_sys(target: &Path, network: Network) {
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if network == Network::None && mount_fs("sysfs", target, ro, None).is_ok() {
        return;
    }
    if bind(Path::new("/sys"), target, true).is_ok() && make_readonly(target, true).is_err() {
        let _ = detach(target);
    }
}

/// A tmpfs on /run, so nothing a step puts there reaches the layer, holding
/// /run/boxwright with the CA bundle, the apt snippet and the COPY source.
fn populate_run(spec: &RunSpec, run: &Path) -> Result<(), SandboxError> {
    mount_fs(
        "tmpfs",
        run,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=755,size=65536k"),
    )?;
    let inside = |abs: &str| run.join(abs.trim_start_matches("/run/"));
    make_dir(&inside("/run/boxwright"), 0o755)?;
    if let Some(ca) = &spec.host.ca_bundle {
        let target = inside(CA_BUNDLE_PATH);
        create_file(&target, 0o444)?;
        bind(ca, &target, false)?;
        make_readonly(&target, false)?;
    }
    if spec.fake_root {
        let target = inside(APT_CONF_PATH);
        std::fs::write(&target, APT_CONF).map_err(|e| SandboxError::io("write", &target, e))?;
    }
    if let Action::Copy { src, .. } = &spec.action {
        let target = inside(COPY_SRC);
        if src.is_dir() {
            make_dir(&target, 0o755)?;
        } else {
            create_file(&target, 0o444)?;
        }
        bind(src, &target, true)?;
        make_readonly(&target, true)?;
    }
    Ok(())
}

fn create_file(path: &Path, mode: u32) -> Result<(), SandboxError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map(drop)
        .map_err(|e| SandboxError::io("create", path, e))
}

/// Writes a line to the step's output (the helper's stderr) without taking
/// std's stderr lock, which another thread may have held at fork time.
fn note(text: &str) {
    let _ = nix::unistd::write(std::io::stderr(), text.as_bytes());
}

/// Creates in `dir` (a full root filesystem used in place, the snapshot
/// fallback) the mountpoints every step needs, and leaves them there.
///
/// Made before the "before" snapshot, they are part of the tree the step
/// starts from, so creating and removing them around each step never shows
/// up as a change of their parent directories (an mtime/ctime change of
/// `/etc`, say), which the overlay path does not see either.
pub fn prepare_mountpoints(dir: &Path, network: Network) -> Result<(), SandboxError> {
    let mut points = Mountpoints::new(dir, dir)?;
    for d in ["proc", "dev", "sys", "run"] {
        points.ensure_dir(d)?;
    }
    if network == Network::Host {
        for rel in NETWORK_FILES {
            if Path::new("/").join(rel).is_file() {
                points.ensure_file(rel)?;
            }
        }
    }
    Ok(())
}

//! The set-up process: namespaces, the root filesystem and every mount
//! around it, then the container's init; afterwards it unmounts and removes
//! whatever mountpoint stubs it had to add to the root filesystem.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::devices::{make_dir, populate_dev};
use super::environment::{APT_CONF_PATH, apt_conf};
use super::error::SandboxError;
use super::init::container_init;
use super::mountpoints::{Mountpoints, fd_path};
use super::mounts::{bind, detach, make_private_recursively, make_readonly, mount_fs};
use super::net::loopback_up;
use super::overlay::mount_overlay;
use super::process::{Reporter, fork_child, wait_for};
use super::spec::{Action, BindMount, CA_BUNDLE_PATH, Network, Rootfs, RunSpec};

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
    // A container runtime's default seccomp profile (podman's, Kubernetes'
    // RuntimeDefault) refuses sethostname without CAP_SYS_ADMIN: then the
    // sandbox keeps the hostname it inherited, which changes no layer.
    match nix::unistd::sethostname(spec.hostname.as_deref().unwrap_or("boxwright")) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(e) => {
            return Err(SandboxError::io(
                "set the hostname in",
                "the uts namespace",
                e,
            ));
        }
    }
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
    if let Action::CopyFiles(c) = &spec.action
        && !c.source_layers.is_empty()
    {
        super::overlay::mount_readonly_image(&c.source_layers, &c.root)?;
    }
    let mut points = Mountpoints::new(merged, base)?;
    // A COPY writes into the layer, not through the mounts a running step
    // sees (resolver files, /proc, /sys, /dev, /run): as buildah does, a
    // file copied onto /etc/resolv.conf lands in the layer. It needs none.
    let prepared = match spec.action {
        Action::Copy { .. } | Action::CopyFiles(_) => Ok(()),
        Action::Exec { .. } => prepare(spec, merged, &mut points),
    };
    // Sealed even after a failed set-up, so the stubs made so far go too.
    points.seal();
    let outcome = prepared.and_then(|()| {
        let init = fork_child(reporter, || container_init(spec, merged, reporter))?;
        if let Some(file) = &spec.pid_file {
            // Written beside and renamed, so a reader never sees half a pid.
            let tmp = file.with_extension("tmp");
            std::fs::write(&tmp, init.to_string())
                .and_then(|()| std::fs::rename(&tmp, file))
                .map_err(|e| SandboxError::io("write", file, e))?;
        }
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
/// snippet and COPY source), the network files and the step's bind mounts.
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
    bind_mounts(spec, merged, points)
}

/// Whether apt's caches are mounted for this image: only where dpkg is, so
/// that images without apt get no apt directories.
fn apt_caches_apply(spec: &RunSpec, points: &Mountpoints) -> bool {
    spec.mounts.iter().any(BindMount::is_apt_cache) && points.exists("var/lib/dpkg")
}

/// The step's cache mounts and read-only inputs. Targets under /run go on
/// the /run tmpfs; others get a mountpoint in the image, created (and later
/// removed) if missing. While apt's caches are mounted, Docker images'
/// `docker-clean` apt hook (which deletes every download) is hidden.
fn bind_mounts(
    spec: &RunSpec,
    merged: &Path,
    points: &mut Mountpoints,
) -> Result<(), SandboxError> {
    let apt = apt_caches_apply(spec, points);
    for m in &spec.mounts {
        if m.is_apt_cache() && !apt {
            continue;
        }
        bind_at(merged, points, &m.source, &m.target, m.readonly)?;
    }
    for (i, m) in spec.image_mounts.iter().enumerate() {
        // The whole image goes on the /run tmpfs, then the part asked for
        // (resolved inside the image) is bound at the target.
        let whole = merged.join(format!("run/boxwright/images/{i}"));
        std::fs::create_dir_all(&whole).map_err(|e| SandboxError::io("create", &whole, e))?;
        match &m.scratch {
            Some(dir) => super::overlay::mount_overlay(
                &m.lowerdirs,
                &dir.join("upper"),
                &dir.join("work"),
                &whole,
            )?,
            None if m.writable => bind(&m.lowerdirs[0], &whole, false)?,
            None => super::overlay::mount_readonly_image(&m.lowerdirs, &whole)?,
        }
        let inside = crate::context::resolve_in_root(&whole, Path::new(&m.source), true)
            .map_err(|e| SandboxError::io("resolve", Path::new(&m.source), e))?;
        bind_at(merged, points, &whole.join(inside), &m.target, !m.writable)?;
    }
    if apt && points.exists(DOCKER_CLEAN) {
        let empty = merged.join("run/boxwright/empty");
        create_file(&empty, 0o444)?;
        if let Some(hook) = points.ensure_file(DOCKER_CLEAN)? {
            bind(&empty, &fd_path(&hook), false)?;
        }
    }
    Ok(())
}

/// Binds host path `source` at container path `target`. Targets under
/// /run go on the /run tmpfs; others get a mountpoint in the image, made
/// (and later removed) if missing, reached through descriptors so no
/// symlink of the image leads the mount out of the root.
fn bind_at(
    merged: &Path,
    points: &mut Mountpoints,
    source: &Path,
    target: &str,
    readonly: bool,
) -> Result<(), SandboxError> {
    let is_dir = source.is_dir();
    let rel = target.trim_start_matches('/');
    if let Some(in_run) = rel.strip_prefix("run/") {
        // The tmpfs is boxwright's own: no symlink from the image can be there.
        let target = merged.join("run").join(in_run);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SandboxError::io("create", parent, e))?;
        }
        if is_dir {
            make_dir(&target, 0o755)?;
        } else {
            create_file(&target, 0o444)?;
        }
        bind(source, &target, is_dir)?;
        if readonly {
            make_readonly(&target, is_dir)?;
        }
        return Ok(());
    }
    let stub = if is_dir {
        points.ensure_dir(rel)?
    } else {
        points
            .ensure_file(rel)?
            .ok_or_else(|| SandboxError::Mountpoint {
                path: target.to_string(),
                reason: "is a dangling symlink".into(),
            })?
    };
    bind(source, &fd_path(&stub), is_dir)?;
    if readonly {
        // Reopened through the path: the old descriptor names what is under the mount.
        let bound = if is_dir {
            Some(points.ensure_dir(rel)?)
        } else {
            points.ensure_file(rel)?
        };
        if let Some(bound) = bound {
            make_readonly(&fd_path(&bound), is_dir)?;
        }
    }
    Ok(())
}

/// Docker's official Debian and Ubuntu images delete apt's downloads after
/// every install with this hook; it would empty the cache mount.
const DOCKER_CLEAN: &str = "etc/apt/apt.conf.d/docker-clean";

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
/// /run/boxwright with the CA bundle and the apt snippet.
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
    if spec.apt_conf() {
        let target = inside(APT_CONF_PATH);
        let apt_cache = spec.mounts.iter().any(BindMount::is_apt_cache);
        std::fs::write(&target, apt_conf(spec.fake_root, apt_cache))
            .map_err(|e| SandboxError::io("write", &target, e))?;
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
pub fn prepare_mountpoints(dir: &Path, spec: &RunSpec) -> Result<(), SandboxError> {
    let mut points = Mountpoints::new(dir, dir)?;
    for d in ["proc", "dev", "sys", "run"] {
        points.ensure_dir(d)?;
    }
    if spec.network == Network::Host {
        for rel in NETWORK_FILES {
            if Path::new("/").join(rel).is_file() {
                points.ensure_file(rel)?;
            }
        }
    }
    let apt = apt_caches_apply(spec, &points);
    for m in &spec.mounts {
        let rel = m.target.trim_start_matches('/');
        if rel.starts_with("run/") || (m.is_apt_cache() && !apt) {
            continue;
        }
        if m.source.is_dir() {
            points.ensure_dir(rel)?;
        } else {
            points.ensure_file(rel)?;
        }
    }
    Ok(())
}

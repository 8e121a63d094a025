//! Mounting the step's overlay, and probing whether overlays work at all.
//!
//! Inside a user namespace overlayfs only works with `userxattr` (without
//! it, deleting a lower directory fails with EIO). The option string must
//! fit in one page, so layer paths are given relative to their common
//! parent directory, which the mounting process makes its cwd.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;

use super::error::SandboxError;
use super::mounts::{detach, make_private_recursively};
use super::process::{fork_child, report_pipe, wait_for};

/// Mounts an overlay of `lowerdirs` (topmost first), `upperdir` and
/// `workdir` on `target`. Changes the process's cwd (to the paths' common
/// parent, then back to `/`): call it in a sandbox process.
pub(crate) fn mount_overlay(
    lowerdirs: &[PathBuf],
    upperdir: &Path,
    workdir: &Path,
    target: &Path,
) -> Result<(), SandboxError> {
    overlay(lowerdirs, Some((upperdir, workdir)), target)
}

/// Mounts `lowerdirs` (topmost first) read-only on `target`: another
/// stage's or image's file system for `COPY --from` and `RUN --mount=from=`.
/// One directory is bound (overlayfs wants two lowers without an upper).
pub(crate) fn mount_readonly_image(
    lowerdirs: &[PathBuf],
    target: &Path,
) -> Result<(), SandboxError> {
    match lowerdirs {
        [] => Err(SandboxError::Overlay {
            reason: "an image mount needs at least one layer directory".into(),
        }),
        [one] => {
            super::mounts::bind(one, target, false)?;
            super::mounts::make_readonly(target, false)
        }
        many => overlay(many, None, target),
    }
}

fn overlay(
    lowerdirs: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<(), SandboxError> {
    let overlay_err = |reason: String| SandboxError::Overlay { reason };
    let mut all = Vec::with_capacity(lowerdirs.len() + 2);
    let extra: Vec<&Path> = upper.map(|(u, w)| vec![u, w]).unwrap_or_default();
    for dir in lowerdirs
        .iter()
        .map(PathBuf::as_path)
        .chain(extra.iter().copied())
    {
        all.push(
            dir.canonicalize()
                .map_err(|e| overlay_err(format!("{}: {e}", dir.display())))?,
        );
    }
    let base = common_parent(&all);
    let relative = |p: &Path| -> Result<String, SandboxError> {
        let rel = p.strip_prefix(&base).unwrap_or(p);
        escape(if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        })
    };
    let lowers = all[..lowerdirs.len()]
        .iter()
        .map(|p| relative(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = format!("lowerdir={}", lowers.join(":"));
    let mut flags = MsFlags::MS_RDONLY;
    if upper.is_some() {
        let (upper, work) = (&all[all.len() - 2], &all[all.len() - 1]);
        options.push_str(&format!(
            ",upperdir={},workdir={}",
            relative(upper)?,
            relative(work)?
        ));
        flags = MsFlags::empty();
    }
    options.push_str(",userxattr");
    let limit = page_size();
    if options.len() >= limit {
        return Err(SandboxError::OverlayOptionsTooLong {
            len: options.len(),
            limit: limit - 1,
        });
    }
    std::env::set_current_dir(&base).map_err(|e| SandboxError::io("enter", &base, e))?;
    let mounted = nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        flags,
        Some(options.as_str()),
    );
    std::env::set_current_dir("/").map_err(|e| SandboxError::io("enter", "/", e))?;
    mounted.map_err(|e| overlay_err(e.to_string()))
}

/// Checks, inside the user namespace, that an overlay with `userxattr` can be
/// mounted in `scratch` and behaves: deleting a lower file leaves a 0/0
/// character device and deleting a lower directory works. Leaves nothing in
/// `scratch` and no mount behind. The error says why overlays are unusable;
/// the driver then falls back to the snapshot diff.
pub fn probe_overlay(scratch: &Path) -> Result<(), SandboxError> {
    let dir = tempfile::Builder::new()
        .prefix(".boxwright-overlay-probe-")
        .tempdir_in(scratch)
        .map_err(|e| SandboxError::io("create a probe directory in", scratch, e))?;
    let root = dir.path();
    let (lower, upper, work, merged) = (
        root.join("lower"),
        root.join("upper"),
        root.join("work"),
        root.join("merged"),
    );
    for d in [
        lower.join("dir/sub"),
        upper.clone(),
        work.clone(),
        merged.clone(),
    ] {
        std::fs::create_dir_all(&d).map_err(|e| SandboxError::io("create", &d, e))?;
    }
    let file = lower.join("file");
    std::fs::write(&file, b"probe").map_err(|e| SandboxError::io("write", &file, e))?;

    let (reports, reporter) = report_pipe()?;
    let child = fork_child(&reporter, || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| {
            SandboxError::NotNamespaceRoot {
                reason: format!("cannot create a mount namespace: {e}"),
            }
        })?;
        make_private_recursively()?;
        mount_overlay(std::slice::from_ref(&lower), &upper, &work, &merged)?;
        let exercised = exercise(&merged);
        detach(&merged)?;
        exercised?;
        check_whiteout(&upper.join("file"))?;
        Ok(0)
    })?;
    drop(reporter);
    let ended = wait_for(child)?;
    let reported = reports.first_error();
    let removed = dir
        .close()
        .map_err(|e| SandboxError::io("remove the probe directory in", scratch, e));
    if let Some(err) = reported {
        return Err(err);
    }
    if ended.code() != 0 {
        return Err(SandboxError::Internal {
            reason: format!("the overlay probe ended with status {}", ended.code()),
        });
    }
    removed
}

/// Deletes a lower file and a lower directory through the overlay.
fn exercise(merged: &Path) -> Result<(), SandboxError> {
    let gone = |what: &str, e: std::io::Error| SandboxError::Overlay {
        reason: format!("mounted, but deleting a lower {what} fails: {e}"),
    };
    std::fs::remove_file(merged.join("file")).map_err(|e| gone("file", e))?;
    std::fs::remove_dir_all(merged.join("dir")).map_err(|e| gone("directory", e))
}

/// A deleted lower file must show up as a 0/0 character device in the upperdir.
fn check_whiteout(path: &Path) -> Result<(), SandboxError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| SandboxError::Overlay {
        reason: format!("no whiteout in the upperdir for a deleted file: {e}"),
    })?;
    if !meta.file_type().is_char_device() || meta.rdev() != 0 {
        return Err(SandboxError::Overlay {
            reason: "a deleted file does not leave a 0/0 character device in the upperdir".into(),
        });
    }
    Ok(())
}

/// The deepest directory containing every path in `paths` (all absolute).
fn common_parent(paths: &[PathBuf]) -> PathBuf {
    let mut common: Vec<Component> = match paths.first() {
        Some(p) => p.parent().unwrap_or(p).components().collect(),
        None => return PathBuf::from("/"),
    };
    for p in &paths[1..] {
        let parent = p.parent().unwrap_or(p);
        let shared = common
            .iter()
            .zip(parent.components())
            .take_while(|(a, b)| *a == b)
            .count();
        common.truncate(shared);
    }
    common.iter().collect()
}

/// Escapes a path for overlay options: `\` and `:` are escaped with `\`;
/// `,` separates mount options and cannot be escaped at all.
fn escape(path: &Path) -> Result<String, SandboxError> {
    let text = path.to_str().ok_or_else(|| SandboxError::Overlay {
        reason: format!("{} is not valid UTF-8", path.display()),
    })?;
    if text.contains(',') {
        return Err(SandboxError::Overlay {
            reason: format!("{text} contains a comma, which mount options cannot carry"),
        });
    }
    Ok(text.replace('\\', "\\\\").replace(':', "\\:"))
}

/// The kernel copies mount options into one page.
fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_parent_of_siblings_and_nested_paths() {
        let paths = [
            PathBuf::from("/store/layers/a"),
            PathBuf::from("/store/layers/b"),
            PathBuf::from("/store/steps/1/upper"),
        ];
        assert_eq!(common_parent(&paths), PathBuf::from("/store"));
        assert_eq!(common_parent(&[PathBuf::from("/x/y")]), PathBuf::from("/x"));
        assert_eq!(
            common_parent(&[PathBuf::from("/a/b"), PathBuf::from("/c/d")]),
            PathBuf::from("/")
        );
    }

    #[test]
    fn escaping_of_colons_and_commas() {
        assert_eq!(
            escape(Path::new("sha256:ab\\c")).unwrap(),
            "sha256\\:ab\\\\c"
        );
        assert!(matches!(
            escape(Path::new("a,b")),
            Err(SandboxError::Overlay { .. })
        ));
    }
}

//! Path resolution confined to a tree, as `chroot` would resolve it: `..`
//! stops at the tree's root and a symlink's absolute target starts again
//! from the root. Written here rather than with `openat2(RESOLVE_IN_ROOT)`
//! because the same rules must also hold on the host side (hashing the
//! build context) and on kernels before 5.6; the trees it reads are not
//! changed while a build reads them (the context by contract, other stages
//! because they are read-only mounts).

use std::io;
use std::path::{Component, Path, PathBuf};

/// The components of `path` cleaned lexically, as chroot would read them:
/// empty and `.` components go, `..` drops the one before and stops at the
/// root. `./a//b/../c` → `[a, c]`, `../../x` → `[x]`.
pub fn lexical(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts
}

/// Symlinks followed before giving up, as the kernel's limit.
const MAX_LINKS: usize = 40;

/// `path` (absolute or relative, read as relative to `root`) resolved inside
/// `root`: the result is relative to `root`, has no `.`/`..` components and
/// no symlink in it, except its last component when `follow_last` is false.
/// A component that does not exist ends the walk: the rest is appended as
/// written (lexically cleaned), so the caller's `lstat` reports it missing.
pub fn resolve_in_root(root: &Path, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
    let mut pending: Vec<std::ffi::OsString> = components(path);
    pending.reverse();
    let mut done = PathBuf::new();
    let mut links = 0;
    while let Some(comp) = pending.pop() {
        if comp == ".." {
            done.pop();
            continue;
        }
        let candidate = done.join(&comp);
        let last = pending.is_empty();
        match std::fs::symlink_metadata(root.join(&candidate)) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !last) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "{}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                let target = std::fs::read_link(root.join(&candidate))?;
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            Ok(_) => done = candidate,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                done = candidate;
                // The rest cannot be resolved: clean it lexically.
                while let Some(c) = pending.pop() {
                    if c == ".." {
                        done.pop();
                    } else {
                        done.push(c);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_and_dotdot_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::fs::write(r.join("a/b/f"), "x").unwrap();
        symlink("/etc", r.join("etc-link")).unwrap();
        symlink("../../../a", r.join("a/b/up")).unwrap();
        symlink("b/f", r.join("a/rel")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        let res = |p: &str, f| resolve_in_root(r, Path::new(p), f).unwrap();
        assert_eq!(res("../../a/b/f", true), PathBuf::from("a/b/f"));
        assert_eq!(res("/etc-link/passwd", true), PathBuf::from("etc/passwd"));
        assert_eq!(res("a/b/up/b/f", true), PathBuf::from("a/b/f"));
        assert_eq!(res("a/rel", true), PathBuf::from("a/b/f"));
        assert_eq!(res("a/rel", false), PathBuf::from("a/rel"));
        assert_eq!(res("./a/missing/../b", true), PathBuf::from("a/b"));
        assert!(resolve_in_root(r, Path::new("loop"), true).is_err());
    }
}

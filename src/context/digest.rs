//! Digests of the files a copy brings in.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::Excludes;
use crate::digest::{Digest, Hasher};

/// A digest of a file or directory tree that changes when a name, a type, a
/// permission, a symlink target or any content changes, and not when only
/// mtimes or ownership change (COPY sets its own owner, and mtimes are
/// clamped in layers) — the same rule BuildKit uses for COPY cache keys.
pub fn hash_tree(root: &Path) -> io::Result<Digest> {
    let mut h = Hasher::new();
    hash_into(&mut h, root, None, None)?;
    Ok(h.finish().0)
}

/// Feeds the tree at `tree` into `h` as [`hash_tree`] does; with
/// `excludes`, entries it leaves out are skipped (`tree` is then relative
/// to the tree `excludes` applies to, which is the working directory's
/// `base`: `(base, excludes)`); `inner` excludes apply to paths relative
/// to `tree` itself (`COPY --exclude`).
pub(crate) fn hash_into(
    h: &mut Hasher,
    tree: &Path,
    excludes: Option<(&Path, &Excludes)>,
    inner: Option<&Excludes>,
) -> io::Result<()> {
    let meta = fs::symlink_metadata(tree)?;
    if !meta.is_dir() {
        return entry(h, Path::new(""), tree, &meta);
    }
    let mut walk = walkdir::WalkDir::new(tree)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(e) = walk.next() {
        let e = e.map_err(io::Error::other)?;
        let rel = e.path().strip_prefix(tree).map_err(io::Error::other)?;
        if let Some((base, ex)) = excludes {
            let in_root = e.path().strip_prefix(base).unwrap_or(e.path());
            if ex.is_excluded(in_root) {
                if e.file_type().is_dir() && !ex.has_exceptions() {
                    walk.skip_current_dir();
                }
                continue;
            }
        }
        if let Some(ex) = inner
            && ex.is_excluded(rel)
        {
            if e.file_type().is_dir() && !ex.has_exceptions() {
                walk.skip_current_dir();
            }
            continue;
        }
        let meta = e.metadata().map_err(io::Error::other)?;
        entry(h, rel, e.path(), &meta)?;
    }
    Ok(())
}

fn entry(h: &mut Hasher, rel: &Path, path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        "d"
    } else if ft.is_symlink() {
        "l"
    } else if ft.is_file() {
        "f"
    } else {
        "o"
    };
    // Length-prefixed fields: no name can be confused with a separator.
    let name = rel.as_os_str().as_bytes();
    h.update(&(name.len() as u64).to_le_bytes());
    h.update(name);
    h.update(kind.as_bytes());
    h.update(&(meta.permissions().mode() & 0o7777).to_le_bytes());
    match kind {
        "f" => {
            h.update(&meta.size().to_le_bytes());
            let mut f = fs::File::open(path)?;
            let mut content = crate::digest::DigestWriter::new(io::sink());
            io::copy(&mut f, &mut content)?;
            h.update(content.finish().1.hex().as_bytes());
        }
        "l" => {
            let target = fs::read_link(path)?;
            let t = target.as_os_str().as_bytes();
            h.update(&(t.len() as u64).to_le_bytes());
            h.update(t);
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn content_names_modes_and_links_change_the_digest_mtime_does_not() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("src");
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("a"), "one").unwrap();
        fs::write(d.join("sub/b"), "two").unwrap();
        symlink("a", d.join("link")).unwrap();
        let base = hash_tree(&d).unwrap();
        assert_eq!(hash_tree(&d).unwrap(), base);

        let f = fs::File::options().write(true).open(d.join("a")).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(hash_tree(&d).unwrap(), base, "mtime must not matter");

        fs::write(d.join("a"), "uno").unwrap();
        let content = hash_tree(&d).unwrap();
        assert_ne!(content, base);

        fs::set_permissions(d.join("a"), fs::Permissions::from_mode(0o600)).unwrap();
        let mode = hash_tree(&d).unwrap();
        assert_ne!(mode, content);

        fs::remove_file(d.join("link")).unwrap();
        symlink("sub/b", d.join("link")).unwrap();
        let link = hash_tree(&d).unwrap();
        assert_ne!(link, mode);

        fs::rename(d.join("sub/b"), d.join("sub/c")).unwrap();
        assert_ne!(hash_tree(&d).unwrap(), link);
    }

    #[test]
    fn single_file_is_hashed_by_content() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("x"), "hello").unwrap();
        fs::write(t.path().join("y"), "hello").unwrap();
        assert_eq!(
            hash_tree(&t.path().join("x")).unwrap(),
            hash_tree(&t.path().join("y")).unwrap()
        );
        assert!(hash_tree(&t.path().join("missing")).is_err());
    }
}

//! Expanding COPY sources: literal paths and glob patterns, read inside a
//! tree, minus the excluded paths.

use std::io;
use std::path::{Path, PathBuf};

use globset::GlobBuilder;

use super::{Excludes, resolve_in_root};
use crate::digest::{Digest, Hasher};

/// One source a COPY takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    /// The path as matched (relative to the root, cleaned, symlinks not
    /// resolved): what `--parents` keeps and what a file is named after.
    pub matched: PathBuf,
    /// Where its content is: `matched` with every symlink resolved inside the root.
    pub resolved: PathBuf,
    /// A directory (whose contents are copied) rather than a file.
    pub dir: bool,
}

/// A source that selects nothing, or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("'{pattern}' is not in the build context{}", if *.glob { " (no file matches it)" } else { "" })]
    NotFound { pattern: String, glob: bool },
    #[error("cannot read '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("bad pattern '{pattern}': {reason}")]
    Pattern { pattern: String, reason: String },
}

/// Whether `s` has glob characters.
pub fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands `pattern` (a source as written after variable expansion) inside
/// `root`. Literal paths must exist; a glob must match at least one path.
/// Excluded paths are never selected. `..` cannot climb above `root` and an
/// absolute pattern is read relative to it, as Docker reads sources.
/// `source_excludes` (`COPY --exclude`) leave out matches of a glob, read
/// relative to the directory the glob is evaluated in.
pub fn select(
    root: &Path,
    pattern: &str,
    excludes: &Excludes,
    source_excludes: &Excludes,
) -> Result<Vec<Selected>, SelectError> {
    let io_err = |path: &Path, source| SelectError::Io {
        path: path.display().to_string(),
        source,
    };
    // Lexical clean first: `a/../b` is `b`, and `..` stays at the root.
    let comps = super::lexical(pattern);
    let glob = comps.iter().any(|c| has_magic(c));
    let fixed: PathBuf = comps.iter().take_while(|c| !has_magic(c)).collect();
    let mut candidates: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in &comps {
        let mut next = Vec::new();
        for cand in candidates {
            if !has_magic(comp) {
                next.push(cand.join(comp));
                continue;
            }
            let matcher = GlobBuilder::new(comp)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| SelectError::Pattern {
                    pattern: pattern.to_string(),
                    reason: e.kind().to_string(),
                })?
                .compile_matcher();
            let dir = resolve_in_root(root, &cand, true).map_err(|e| io_err(&cand, e))?;
            let entries = match std::fs::read_dir(root.join(&dir)) {
                Ok(rd) => rd,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    continue;
                }
                Err(e) => return Err(io_err(&cand, e)),
            };
            let mut names: Vec<std::ffi::OsString> = entries
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(|e| io_err(&cand, e))?;
            names.sort();
            for name in names {
                if matcher.is_match(Path::new(&name)) {
                    next.push(cand.join(name));
                }
            }
        }
        candidates = next;
    }
    let mut out = Vec::new();
    for matched in candidates {
        if excludes.is_excluded(&matched) {
            continue;
        }
        if glob && source_excludes.is_excluded(matched.strip_prefix(&fixed).unwrap_or(&matched)) {
            continue;
        }
        let resolved = resolve_in_root(root, &matched, true).map_err(|e| io_err(&matched, e))?;
        let meta = match std::fs::metadata(root.join(&resolved)) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&matched, e)),
        };
        out.push(Selected {
            matched,
            resolved,
            dir: meta.is_dir(),
        });
    }
    if out.is_empty() {
        return Err(SelectError::NotFound {
            pattern: pattern.to_string(),
            glob,
        });
    }
    Ok(out)
}

/// The digest of what `sources` select from `root`: names, types, modes,
/// link targets and contents, excluded paths left out (see [`super::hash_tree`]).
pub fn digest(
    root: &Path,
    sources: &[Selected],
    excludes: &Excludes,
    source_excludes: &Excludes,
) -> io::Result<Digest> {
    let mut h = Hasher::new();
    for s in sources {
        let name = s.matched.as_os_str().as_encoded_bytes();
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name);
        super::digest::hash_into(
            &mut h,
            &root.join(&s.resolved),
            Some((root, excludes)),
            Some(source_excludes),
        )?;
    }
    Ok(h.finish().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_literals_and_excludes() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("src/sub")).unwrap();
        for f in ["a.txt", "b.txt", "c.md", "src/x.c", "src/sub/y.c"] {
            std::fs::write(r.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("/src", r.join("srclink")).unwrap();
        let none = Excludes::default();
        let names = |v: Vec<Selected>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.matched.display().to_string())
                .collect()
        };
        assert_eq!(
            names(select(r, "*.txt", &none, &none).unwrap()),
            ["a.txt", "b.txt"]
        );
        assert_eq!(
            names(select(r, "/src/../c.md", &none, &none).unwrap()),
            ["c.md"]
        );
        let ex = Excludes::new(["b.txt"]).unwrap();
        assert_eq!(names(select(r, "*.txt", &ex, &none).unwrap()), ["a.txt"]);
        assert!(matches!(
            select(r, "b.txt", &ex, &none),
            Err(SelectError::NotFound { .. })
        ));
        assert!(matches!(
            select(r, "*.none", &none, &none),
            Err(SelectError::NotFound { glob: true, .. })
        ));
        let link = select(r, "srclink", &none, &none).unwrap();
        assert_eq!(link[0].resolved, PathBuf::from("src"));
        assert!(link[0].dir);
        let all = select(r, ".", &none, &none).unwrap();
        assert_eq!(all[0].resolved, PathBuf::new());

        let whole = digest(r, &select(r, "src", &none, &none).unwrap(), &none, &none).unwrap();
        let ex_y = Excludes::new(["src/sub/y.c"]).unwrap();
        let less = digest(r, &select(r, "src", &ex_y, &none).unwrap(), &ex_y, &none).unwrap();
        assert_ne!(whole, less);
        std::fs::write(r.join("src/sub/y.c"), "changed").unwrap();
        assert_eq!(
            digest(r, &select(r, "src", &ex_y, &none).unwrap(), &ex_y, &none).unwrap(),
            less
        );
        assert_ne!(
            digest(r, &select(r, "src", &none, &none).unwrap(), &none, &none).unwrap(),
            whole
        );
    }
}

#[cfg(test)]
mod source_exclude_tests {
    use super::*;

    #[test]
    fn exclude_reads_paths_inside_the_source() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("src/sub")).unwrap();
        for f in ["a.txt", "b.txt", "src/x.md", "src/sub/y.c"] {
            std::fs::write(r.join(f), f).unwrap();
        }
        let none = Excludes::default();
        let inner = Excludes::new(["*.md"]).unwrap();
        let sel = select(r, "src", &none, &inner).unwrap();
        assert_ne!(
            digest(r, &sel, &none, &inner).unwrap(),
            digest(r, &sel, &none, &none).unwrap()
        );
        let b = Excludes::new(["b.txt"]).unwrap();
        let names: Vec<PathBuf> = select(r, "*.txt", &none, &b)
            .unwrap()
            .into_iter()
            .map(|s| s.matched)
            .collect();
        assert_eq!(names, [PathBuf::from("a.txt")]);
    }
}

//! `.dockerignore` and `COPY --exclude` patterns, with BuildKit's rules: a
//! path is left out when the last pattern that matches it (or one of its
//! parent directories) is not a `!` exception. `*` and `?` stay within one
//! path component, `**` spans any number of them.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

/// A compiled exclusion list.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
struct Rule {
    /// `!pattern`: re-includes what earlier patterns left out.
    exception: bool,
    matcher: GlobMatcher,
}

/// A pattern that cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("bad exclude pattern '{pattern}': {reason}")]
pub struct ExcludesError {
    pub pattern: String,
    pub reason: String,
}

impl Excludes {
    /// Reads a `.dockerignore` text: one pattern per line, `#` comments and
    /// blank lines skipped, surrounding blanks trimmed.
    pub fn from_dockerignore(text: &str) -> Result<Excludes, ExcludesError> {
        let patterns: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        Excludes::new(patterns)
    }

    /// Compiles patterns (`!` prefix for exceptions).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Excludes, ExcludesError> {
        let mut rules = Vec::new();
        for raw in patterns {
            let (exception, pattern) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw),
            };
            let cleaned = clean(pattern);
            if cleaned.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| ExcludesError {
                    pattern: raw.to_string(),
                    reason: e.kind().to_string(),
                })?;
            rules.push(Rule {
                exception,
                matcher: glob.compile_matcher(),
            });
        }
        Ok(Excludes { rules })
    }

    /// Adds `other`'s patterns after this list's (they win).
    pub fn extend(&mut self, other: &Excludes) {
        self.rules.extend(other.rules.iter().cloned());
    }

    /// No pattern at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether some `!` exception may bring back a path below an excluded
    /// directory, so an excluded directory must still be walked.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    /// Whether `rel` (relative to the tree's root, no leading `/` or `./`) is left out.
    pub fn is_excluded(&self, rel: &Path) -> bool {
        let rel = strip_dot(rel);
        if rel.as_os_str().is_empty() {
            return false;
        }
        let mut excluded = false;
        for rule in &self.rules {
            let hit = rel
                .ancestors()
                .any(|p| !p.as_os_str().is_empty() && rule.matcher.is_match(p));
            if hit {
                excluded = !rule.exception;
            }
        }
        excluded
    }
}

fn strip_dot(rel: &Path) -> &Path {
    rel.strip_prefix(".").unwrap_or(rel)
}

/// A pattern as Go's `filepath.Clean` leaves it, without a leading `/`:
/// `./a//b/` → `a/b`, `a/../b` → `b`.
fn clean(pattern: &str) -> String {
    super::lexical(pattern).join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str) -> Excludes {
        Excludes::from_dockerignore(text).unwrap()
    }

    #[test]
    fn last_match_wins_and_parents_count() {
        let e = ex("# comment\n*.log\n!keep.log\nbuild/\n/secret\n**/tmp\n");
        assert!(e.is_excluded(Path::new("a.log")));
        assert!(!e.is_excluded(Path::new("keep.log")));
        assert!(
            !e.is_excluded(Path::new("sub/a.log")),
            "* stays in one component"
        );
        assert!(e.is_excluded(Path::new("build")));
        assert!(e.is_excluded(Path::new("build/x/y.o")));
        assert!(e.is_excluded(Path::new("secret")));
        assert!(e.is_excluded(Path::new("./secret")));
        assert!(e.is_excluded(Path::new("a/b/tmp/c")));
        assert!(e.is_excluded(Path::new("tmp")));
        assert!(!e.is_excluded(Path::new("src/main.c")));
        assert!(e.has_exceptions());
    }

    #[test]
    fn exceptions_inside_excluded_directories() {
        let e = ex("docs\n!docs/README.md\n");
        assert!(e.is_excluded(Path::new("docs/a.md")));
        assert!(!e.is_excluded(Path::new("docs/README.md")));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(Excludes::new(["a[b"]).is_err());
    }
}

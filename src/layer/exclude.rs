//! Paths to leave out of a layer, as globs on absolute paths (`*` stays
//! within one path component, `**` crosses them). Used by fork, whose
//! exclusion list is data (the catalog's `fork-exclude.toml`).

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A glob that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{glob}': {why}")]
pub struct ExcludeError {
    pub glob: String,
    pub why: String,
}

/// A compiled set of exclusion globs.
#[derive(Clone, Debug)]
pub struct Exclusions {
    set: GlobSet,
}

impl Exclusions {
    /// Compiles `globs`.
    pub fn new(globs: &[String]) -> Result<Exclusions, ExcludeError> {
        let mut b = GlobSetBuilder::new();
        for g in globs {
            let glob = GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .map_err(|e| ExcludeError {
                    glob: g.clone(),
                    why: e.kind().to_string(),
                })?;
            b.add(glob);
        }
        let set = b.build().map_err(|e| ExcludeError {
            glob: globs.join(" "),
            why: e.to_string(),
        })?;
        Ok(Exclusions { set })
    }

    /// Whether absolute path `path` (`/root/.ssh`) is excluded.
    pub fn matches(&self, path: &str) -> bool {
        self.set.is_match(path)
    }
}

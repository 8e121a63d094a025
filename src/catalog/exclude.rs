//! `fork-exclude.toml`: the paths `fork` never bakes into an image, as data.

use serde::Deserialize;

use super::CatalogError;

const FILE: &str = "fork-exclude.toml";

/// One group of excluded paths and why they are excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkExclusion {
    pub why: String,
    /// Globs on absolute paths (`*` within a component, `**` across them).
    pub paths: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    exclude: Vec<Raw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    why: String,
    paths: Vec<String>,
}

pub(crate) fn parse(text: &str) -> Result<Vec<ForkExclusion>, CatalogError> {
    let file: File = toml::from_str(text).map_err(|e| CatalogError::parse(FILE, text, &e))?;
    let mut out = Vec::new();
    for r in file.exclude {
        for p in &r.paths {
            if !p.starts_with('/') && !p.starts_with("**/") {
                return Err(CatalogError::invalid(
                    FILE,
                    p,
                    "must be an absolute path glob (or start with **/)",
                ));
            }
            if let Err(e) = globset::Glob::new(p) {
                return Err(CatalogError::invalid(FILE, p, e.kind().to_string()));
            }
        }
        out.push(ForkExclusion {
            why: r.why,
            paths: r.paths,
        });
    }
    Ok(out)
}

//! The catalog's sources, built into the binary (or read from a directory
//! given with `--catalog`).

use std::fs;
use std::path::Path;

use super::CatalogError;

/// The text of every catalog file.
pub(crate) struct Sources {
    pub runtimes: &'static str,
    pub packages: &'static str,
    pub ai_tools: &'static str,
    pub dev_access: &'static str,
    pub templates: &'static str,
    pub fork_exclude: &'static str,
    /// `(file name, recipe text)` of every file in `recipes/templates/`.
    pub template_recipes: &'static [(&'static str, &'static str)],
}

/// The built-in catalog.
pub(crate) const SOURCES: Sources = Sources {
    runtimes: include_str!("../../recipes/catalog/runtimes.toml"),
    packages: include_str!("../../recipes/catalog/packages.toml"),
    ai_tools: include_str!("../../recipes/catalog/ai-tools.toml"),
    dev_access: include_str!("../../recipes/catalog/dev-access.toml"),
    templates: include_str!("../../recipes/catalog/templates.toml"),
    fork_exclude: include_str!("../../recipes/catalog/fork-exclude.toml"),
    template_recipes: &[
        (
            "blank.toml",
            include_str!("../../recipes/templates/blank.toml"),
        ),
        (
            "python-api.toml",
            include_str!("../../recipes/templates/python-api.toml"),
        ),
        (
            "node-fullstack.toml",
            include_str!("../../recipes/templates/node-fullstack.toml"),
        ),
        (
            "go-microservice.toml",
            include_str!("../../recipes/templates/go-microservice.toml"),
        ),
        (
            "java-api.toml",
            include_str!("../../recipes/templates/java-api.toml"),
        ),
        (
            "rust.toml",
            include_str!("../../recipes/templates/rust.toml"),
        ),
        (
            "data-science.toml",
            include_str!("../../recipes/templates/data-science.toml"),
        ),
        (
            "ai-agents.toml",
            include_str!("../../recipes/templates/ai-agents.toml"),
        ),
    ],
};

/// The built-in sources with each file that `dir` has in place of its
/// built-in namesake. The texts are leaked: a catalog lives as long as the
/// process, and [`Sources`] borrows `'static` text like the built-in one.
pub(crate) fn with_dir(dir: &Path) -> Result<Sources, CatalogError> {
    let read = |name: &str, built_in: &'static str| -> Result<&'static str, CatalogError> {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Box::leak(text.into_boxed_str())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(built_in),
            Err(e) => Err(unreadable(&path, &e)),
        }
    };
    let mut recipes: Vec<(&'static str, &'static str)> = SOURCES.template_recipes.to_vec();
    let templates_dir = dir.join("templates");
    if templates_dir.is_dir() {
        let entries = fs::read_dir(&templates_dir).map_err(|e| unreadable(&templates_dir, &e))?;
        for entry in entries {
            let path = entry.map_err(|e| unreadable(&templates_dir, &e))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".toml") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|e| unreadable(&path, &e))?;
            let name: &'static str = Box::leak(name.to_string().into_boxed_str());
            let text: &'static str = Box::leak(text.into_boxed_str());
            recipes.retain(|(n, _)| *n != name);
            recipes.push((name, text));
        }
    }
    Ok(Sources {
        runtimes: read("runtimes.toml", SOURCES.runtimes)?,
        packages: read("packages.toml", SOURCES.packages)?,
        ai_tools: read("ai-tools.toml", SOURCES.ai_tools)?,
        dev_access: read("dev-access.toml", SOURCES.dev_access)?,
        templates: read("templates.toml", SOURCES.templates)?,
        fork_exclude: read("fork-exclude.toml", SOURCES.fork_exclude)?,
        template_recipes: Box::leak(recipes.into_boxed_slice()),
    })
}

fn unreadable(path: &Path, e: &std::io::Error) -> CatalogError {
    CatalogError::Parse {
        file: path.display().to_string(),
        message: format!("cannot read it: {e}"),
    }
}

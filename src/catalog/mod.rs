//! The catalog: what a toolbox recipe can ask for. Runtimes and their
//! versions, system-package categories, AI coding tools, the components of the
//! dev access layer and the templates, each with how it is installed.
//!
//! It is data, kept as TOML in `recipes/catalog/` and `recipes/templates/` and
//! built into the binary; [`Catalog::builtin`] parses and validates it once.
//! `--catalog DIR` (or `$BOXWRIGHT_CATALOG`) replaces any of its files with
//! the same-named file of DIR, for a site that pins its own versions or its
//! own builds of a component ([`Catalog::use_dir`]).
//! The recipe stage checks a recipe's choices against it, and the expansion
//! of a recipe into steps reads install methods, pinned artifacts and PATH
//! additions from it.

mod artifact;
mod data;
mod error;
mod exclude;
mod packages;
mod raw;
mod runtime;
mod templates;
mod tools;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

/// The directory given to [`Catalog::use_dir`].
static OVERRIDE: OnceLock<std::path::PathBuf> = OnceLock::new();

pub use artifact::{Arch, ArtifactFile, ArtifactSpec, Checksum};
pub use error::CatalogError;
pub use exclude::ForkExclusion;
pub use packages::PackageCategory;
pub use runtime::{Runtime, RuntimeVersion, is_package_name};
pub use templates::{Template, template_image};
pub(crate) use tools::is_exact_version;
pub use tools::{AiTool, DevComponent, NpmPackage, PACKAGE_MANAGERS};

/// Everything a toolbox recipe can name.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub runtimes: Vec<Runtime>,
    pub categories: Vec<PackageCategory>,
    pub tools: Vec<AiTool>,
    pub dev_access: Vec<DevComponent>,
    pub templates: Vec<Template>,
    /// What `fork` leaves out of the layers it makes.
    pub fork_exclude: Vec<ForkExclusion>,
}

impl Catalog {
    /// The catalog in use, parsed and validated on first use: the one built
    /// into this binary, with the files of the [`Catalog::use_dir`] directory
    /// in place of the built-in ones.
    pub fn builtin() -> Result<&'static Catalog, CatalogError> {
        static CATALOG: OnceLock<Result<Catalog, CatalogError>> = OnceLock::new();
        CATALOG
            .get_or_init(|| match OVERRIDE.get() {
                Some(dir) => data::with_dir(dir).and_then(|s| Catalog::parse(&s)),
                None => Catalog::parse(&data::SOURCES),
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Makes [`Catalog::builtin`] read `dir`'s catalog files (`runtimes.toml`,
    /// `packages.toml`, `ai-tools.toml`, `dev-access.toml`, `templates.toml`, `fork-exclude.toml`,
    /// `templates/*.toml`) instead of the built-in ones; files it lacks stay
    /// built in. Call it before the catalog's first use; later calls are ignored.
    pub fn use_dir(dir: &std::path::Path) {
        let _ = OVERRIDE.set(dir.to_path_buf());
    }

    /// Parses and validates catalog sources (the built-in ones, or others in tests).
    pub(crate) fn parse(sources: &data::Sources) -> Result<Catalog, CatalogError> {
        let runtimes = runtime::parse(sources.runtimes)?;
        let categories = packages::parse(sources.packages)?;
        let tools = tools::parse_tools(sources.ai_tools)?;
        let dev_access = tools::parse_dev_access(sources.dev_access, &tools)?;
        let templates = templates::parse(sources.templates, sources.template_recipes)?;
        let fork_exclude = exclude::parse(sources.fork_exclude)?;
        Ok(Catalog {
            runtimes,
            categories,
            tools,
            dev_access,
            templates,
            fork_exclude,
        })
    }

    pub fn runtime(&self, name: &str) -> Option<&Runtime> {
        self.runtimes.iter().find(|r| r.name == name)
    }

    pub fn category(&self, name: &str) -> Option<&PackageCategory> {
        self.categories.iter().find(|c| c.name == name)
    }

    pub fn tool(&self, name: &str) -> Option<&AiTool> {
        self.tools.iter().find(|t| t.name == name)
    }

    pub fn dev_component(&self, name: &str) -> Option<&DevComponent> {
        self.dev_access.iter().find(|c| c.name == name)
    }

    pub fn template(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// Names of the runtimes, for "expected one of" messages.
    pub fn runtime_names(&self) -> Vec<&str> {
        self.runtimes.iter().map(|r| r.name.as_str()).collect()
    }
}

/// `a, b or c` for messages.
pub(crate) fn one_of<S: AsRef<str>>(names: &[S]) -> String {
    match names {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [rest @ .., last] => format!(
            "{} or {}",
            rest.iter()
                .map(|s| s.as_ref())
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

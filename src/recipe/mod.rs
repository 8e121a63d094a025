//! Recipe files: the TOML schema, parsing and validation with file:line errors.
//!
//! A recipe (format v1) names a base image, the steps that build on it and the
//! config of the result:
//!
//! ```toml
//! [image]
//! base = "rootfs:base.tar"     # or "scratch", "oci:DIR[:TAG]", a registry reference
//! source_date_epoch = 0        # optional
//!
//! [[steps]]
//! run = "echo hi > /hello"     # shell line; a list is an argv
//!
//! [[steps]]
//! copy = { src = "files/motd", dest = "/etc/motd", mode = "0644", owner = "0:0" }
//!
//! [config]
//! env = { LANG = "C.UTF-8" }
//! entrypoint = ["/bin/sh"]
//! expose = [22, "53/udp"]
//! ```
//!
//! Toolbox recipes add `template` and `dev_access` to `[image]` and the sections
//! `[runtimes]`, `[packages]`, `[ai_tools]`, `[vscode]` and `[dev_access]`
//! (see [`Toolbox`]), checked against the [`crate::catalog`]; `expand` turns
//! them into the ordered steps of the image.
//!
//! [`Recipe::parse`] checks syntax and schema: unknown keys are errors. [`Recipe::load`]
//! also reads the file and checks that the files it names exist
//! ([`Recipe::check_sources`]). Every problem is one [`RecipeError`] line naming
//! file, line and key.

mod config;
mod copy;
mod error;
mod expand;
mod files;
mod image;
mod port;
mod reader;
mod redact;
mod scripts;
mod sources;
mod step;
mod toolbox;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

pub use config::ConfigSection;
pub use copy::CopySpec;
pub use error::{BaseRefError, ExtensionError, Location, NameError, RecipeError, SourceProblem};
pub use expand::{
    ArtifactUse, ExpandError, ExpandedStep, Expansion, InputMount, STANDARD_CACHES, labels,
    with_standard_caches,
};
pub use files::{CacheSharing, ConfigChange, FilesFrom, FilesSpec, StepBind, StepOptions};
pub use image::{Base, ByoiError, ImageSection, byoi_recipe, parse_base as parse_base_ref};
pub use port::{Port, Protocol};
pub use redact::{REDACTED, redact_step_env};
pub use scripts::{ARTIFACTS_DIR, ENTRYPOINT_PATH, LIB_SH, VSIX_DIR};
pub use step::{RunCommand, SUMMARY_CHARS, SecretUse, Step, StepKind, is_secret_id};
pub use toolbox::{CustomTool, Extension, RuntimeChoice, SectionLines, Toolbox};

use reader::{Doc, Keys};

/// A parsed, validated recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The recipe file as the caller named it; used in messages.
    pub path: PathBuf,
    /// Absolute directory of the file; relative paths in the recipe are resolved
    /// against it.
    pub dir: PathBuf,
    /// `[image]`.
    pub image: ImageSection,
    /// `[[steps]]`, in order; may be empty.
    pub steps: Vec<Step>,
    /// `[config]`; all defaults when absent.
    pub config: ConfigSection,
    /// The toolbox sections (`[runtimes]`, `[packages]`, …); empty for plain recipes.
    pub toolbox: Toolbox,
    /// `[args]`: build arguments and their defaults (`--build-arg K=V`
    /// overrides them); every run step sees them as environment variables.
    pub args: std::collections::BTreeMap<String, String>,
    /// sha256 of the recipe text, recorded in toolbox images' labels.
    pub digest: crate::digest::Digest,
}

/// The top-level keys.
const TOP_KEYS: Keys = Keys {
    known: &[
        "image",
        "steps",
        "config",
        "runtimes",
        "packages",
        "ai_tools",
        "vscode",
        "dev_access",
        "args",
    ],
    later: &[],
};

impl Recipe {
    /// Reads, parses and validates the recipe at `path`, including that the files it
    /// names exist ([`Recipe::check_sources`]).
    pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
        let text = fs::read_to_string(path).map_err(|source| RecipeError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let mut recipe = Recipe::parse(&text, path)?;
        recipe.check_sources()?;
        Ok(recipe)
    }

    /// Parses and validates recipe `text` (syntax and schema only: no file is
    /// touched). `path` names the file in messages and locates relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Recipe, RecipeError> {
        let doc = Doc::new(path, text);
        let root = DeTable::parse(text).map_err(|e| doc.syntax(&e))?;
        let dir = recipe_dir(path)?;
        let fields = doc.fields(root.get_ref(), root.span(), "", &TOP_KEYS)?;

        let Some(image) = fields.get("image") else {
            return Err(doc.invalid(
                &(0..0),
                "",
                "the [image] section is missing; add one with a base, such as base = \"scratch\"",
            ));
        };
        let image = image::parse_image(&doc, image, &dir)?;
        let steps = match fields.get("steps") {
            Some(steps) => step::parse_steps(&doc, steps, &dir)?,
            None => Vec::new(),
        };
        let config = match fields.get("config") {
            Some(config) => config::parse_config(&doc, config)?,
            None => ConfigSection::default(),
        };
        let toolbox = toolbox::parse_toolbox(
            &doc,
            &fields,
            matches!(image.base, Base::Template(_)),
            image.dev_access,
            &dir,
        )?;

        let args = match fields.get("args") {
            Some(v) => reader::string_map(&doc, v, "", "args", reader::check_env_name)?,
            None => std::collections::BTreeMap::new(),
        };

        Ok(Recipe {
            path: path.to_path_buf(),
            dir,
            image,
            steps,
            config,
            toolbox,
            args,
            digest: crate::digest::Digest::of(text.as_bytes()),
        })
    }
}

/// The absolute directory holding the recipe file (which need not exist).
fn recipe_dir(path: &Path) -> Result<PathBuf, RecipeError> {
    let absolute = std::path::absolute(path).map_err(|source| RecipeError::Dir {
        file: path.to_path_buf(),
        source,
    })?;
    Ok(absolute
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/")))
}

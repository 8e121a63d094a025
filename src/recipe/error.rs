//! The recipe stage's error type: every problem is one line naming file, line and key.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where in a recipe a problem sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The recipe file, as the user named it (so messages match what they typed).
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// TOML path of the table the problem is in, such as `image` or `step 3.copy` (steps are numbered from 1);
    /// empty at the top level.
    pub table: String,
}

impl fmt::Display for Location {
    /// `recipe.toml:12: step 3`, or `recipe.toml:12` at the top level.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if !self.table.is_empty() {
            write!(f, ": {}", self.table)?;
        }
        Ok(())
    }
}

/// Everything that can be wrong with a recipe.
///
/// Each message is one line of the form `FILE:LINE: TABLE: what is wrong`, e.g.
/// `recipe.toml:12: step 3: 'run' must be a string or a list of strings`.
/// Steps are numbered from 1, as everywhere a user sees them. Parsing stops at the first problem
/// found; tables are checked from the top of the file down, a table's keys before
/// its values.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The recipe file could not be read.
    #[error("{}: cannot read the recipe: {source}", file.display())]
    Read { file: PathBuf, source: io::Error },

    /// The recipe's directory could not be made absolute (no current directory).
    #[error("{}: cannot resolve the recipe's directory: {source}", file.display())]
    Dir { file: PathBuf, source: io::Error },

    /// The text is not valid TOML.
    #[error("{at}: invalid TOML: {message}")]
    Syntax { at: Location, message: String },

    /// A key this format does not have (often a typo).
    #[error("{at}: unknown key '{key}' (expected one of: {expected})")]
    UnknownKey {
        at: Location,
        key: String,
        expected: String,
    },

    /// A key that belongs to a later version of the format (toolbox sections).
    #[error(
        "{at}: '{key}' is not supported by this version of boxwright; remove it or use a newer boxwright"
    )]
    Unsupported { at: Location, key: String },

    /// A value of the wrong type or form, or a required key that is missing.
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },

    /// The built-in catalog is broken (a boxwright bug, caught by its tests).
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),

    /// A file the recipe refers to (base rootfs or OCI layout, copy source) is unusable.
    #[error("{at}: cannot use {what} '{}': {reason}", path.display())]
    Source {
        at: Location,
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
}

impl RecipeError {
    /// Where the problem is, when it is at a place in the file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            RecipeError::Read { .. } | RecipeError::Dir { .. } | RecipeError::Catalog(_) => None,
            RecipeError::Syntax { at, .. }
            | RecipeError::UnknownKey { at, .. }
            | RecipeError::Unsupported { at, .. }
            | RecipeError::Invalid { at, .. }
            | RecipeError::Source { at, .. } => Some(at),
        }
    }
}

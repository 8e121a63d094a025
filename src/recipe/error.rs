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
        /// Boxed: it holds paths, and every recipe result carries this error.
        #[source]
        reason: Box<SourceProblem>,
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

/// Why a file a recipe names on the build host (base rootfs or layout, copy
/// source, `.vsix`) cannot be used: the reason part of [`RecipeError::Source`].
/// Typed so that a caller can tell a missing file (an [`io::Error`] of kind
/// `NotFound`) from one that is there but of the wrong kind.
#[derive(Debug, thiserror::Error)]
pub enum SourceProblem {
    /// The file could not be looked at, resolved or opened.
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it is neither a regular file nor a directory")]
    NotAFileOrDir,
    #[error("it is not a directory")]
    NotADir,
    /// A file of the layout (`oci-layout`, `index.json`) is unusable.
    #[error("it is not an OCI image layout ({name}: {problem})")]
    NotALayout {
        name: &'static str,
        #[source]
        problem: Box<SourceProblem>,
    },
    /// It resolves (through a symlink) outside the build context.
    #[error(
        "it resolves (through a symlink) to {}, outside the build context {}: sources must be inside the recipe's directory; copy the file there instead of linking to it",
        real.display(),
        context.display()
    )]
    OutsideContext { real: PathBuf, context: PathBuf },
}

/// Why a key of an `env`, `args` or `labels` table (or a secret's `env`)
/// is refused; it becomes the message of a [`RecipeError::Invalid`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// An environment variable name that is empty or holds '=' or NUL.
    #[error("variable name '{0}' is invalid: it must be non-empty and contain no '='")]
    Variable(String),
    #[error("label name must not be empty")]
    EmptyLabel,
}

/// Why a `base` string (`scratch`, `rootfs:PATH`, `oci:DIR[:TAG]`,
/// `oci-archive:FILE[:NAME]`, an image reference) is refused; each message
/// completes "'base' ..." (or "--byoi 'REF' ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseRefError {
    #[error("needs a path after 'rootfs:', such as \"rootfs:base.tar\"")]
    RootfsPath,
    #[error("needs a file after 'oci-archive:', such as \"oci-archive:image.tar\"")]
    ArchiveFile,
    #[error("needs a directory after 'oci:', such as \"oci:layout:latest\"")]
    LayoutDir,
    #[error("has an invalid tag after 'oci:DIR:' (letters and digits joined by . _ - : @ + or /)")]
    LayoutTag,
    /// Empty or with blanks: no form of base looks like that.
    #[error("must be {}", super::image::BASE_FORMS)]
    Form,
}

/// Why a `[vscode] extensions` entry is refused; each message completes
/// "extension 'X' ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("must be a path inside the recipe's directory")]
    VsixOutside,
    #[error("needs a pinned version, such as \"ms-python.python@2025.1.0\" (or a .vsix file)")]
    Unpinned,
    #[error("must be PUBLISHER.NAME@VERSION, such as \"ms-python.python@2025.1.0\"")]
    Id,
    #[error("has version '{0}', which is not an exact version such as 2025.1.0")]
    Version(String),
}

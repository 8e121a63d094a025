//! The catalog stage's error type.

/// A catalog file that does not parse or does not hold together. The built-in
/// catalog is checked by the test suite, so users see this for their own
/// `--catalog` files (or a broken build of boxwright).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    /// Not valid TOML, or not the catalog's schema.
    #[error("catalog {file}: {message}")]
    Parse { file: String, message: String },
    /// Parses but is inconsistent (a default that is no version, a bad checksum…).
    #[error("catalog {file}: {entry}: {message}")]
    Invalid {
        file: String,
        entry: String,
        message: String,
    },
}

impl CatalogError {
    pub(crate) fn invalid(file: &str, entry: &str, message: impl Into<String>) -> CatalogError {
        CatalogError::Invalid {
            file: file.to_string(),
            entry: entry.to_string(),
            message: message.into(),
        }
    }

    /// A TOML error in `text` (the file `file`), as `FILE:LINE:COLUMN` and
    /// toml's own first line of explanation.
    pub(crate) fn parse(file: &str, text: &str, err: &toml::de::Error) -> CatalogError {
        let at = match err.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("{file}:{line}:{col}")
            }
            None => file.to_string(),
        };
        CatalogError::Parse {
            file: at,
            message: err.message().trim().replace('\n', "; "),
        }
    }
}

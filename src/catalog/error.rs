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

    pub(crate) fn parse(file: &str, err: &toml::de::Error) -> CatalogError {
        CatalogError::Parse {
            file: file.to_string(),
            message: err.to_string().trim().replace('\n', "; "),
        }
    }
}

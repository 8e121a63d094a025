//! The local settings file, `$XDG_CONFIG_HOME/boxwright/config.toml`: the
//! default image for new sandboxes, the references `default set --registry`
//! was given, and the bound on unpacked layers.
//!
//! ```toml
//! default_image = "toolbox:latest"
//! max_unpacked = "20g"        # unpacked layers kept, least recently used evicted past it
//!
//! [registry_defaults]
//! "registry.example.com/team" = "registry.example.com/team/python:3.12"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::units::{SizeError, parse_size};

/// Why the settings file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, or a key of the wrong type; the message keeps the line and
    /// column, on one line.
    #[error("{}: {}", path.display(), source.to_string().trim().replace('\n', " "))]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{}: max_unpacked: {source}", path.display())]
    Size { path: PathBuf, source: SizeError },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the settings: {0}")]
    Encode(#[from] toml::ser::Error),
}

impl SettingsError {
    /// True when the file is there but wrong (the user fixes it), not when
    /// the machine failed to read or write it.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            SettingsError::Parse { .. } | SettingsError::Size { .. }
        )
    }
}

/// What config.toml holds. Unknown keys are refused, so a typo is not
/// silently ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The image new sandboxes start from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_image: Option<String>,
    /// The most bytes unpacked layers may take (`10g`, `512m`; binary
    /// units); least recently used ones are evicted past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unpacked: Option<String>,
    /// `HOST/ORG` → the reference `default set --registry HOST/ORG` was
    /// given, so that `default show --registry` prints it as given (the
    /// registry keeps only a copy of the manifest, which many tags may share).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub registry_defaults: BTreeMap<String, String>,
}

impl Settings {
    /// Where the settings live: `$XDG_CONFIG_HOME/boxwright/config.toml`
    /// (`~/.config/…`), or `.config/boxwright/config.toml` without a home.
    pub fn path() -> PathBuf {
        crate::xdg::config_home()
            .unwrap_or_else(|| PathBuf::from(".config"))
            .join("boxwright/config.toml")
    }

    /// Reads the settings at `path`; a missing file is the defaults.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let settings: Settings = toml::from_str(&text).map_err(|source| SettingsError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        settings.max_unpacked_bytes(path)?;
        Ok(settings)
    }

    /// Writes the settings to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let text = toml::to_string(self)?;
        crate::store::replace_file(path, text.as_bytes(), None).map_err(|source| {
            SettingsError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// `max_unpacked` in bytes, if set (`path` names the file in errors).
    pub fn max_unpacked_bytes(&self, path: &Path) -> Result<Option<u64>, SettingsError> {
        self.max_unpacked
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|source| SettingsError::Size {
                path: path.to_path_buf(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boxwright/config.toml");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        let s = Settings {
            default_image: Some("toolbox:latest".into()),
            max_unpacked: Some("2g".into()),
            registry_defaults: BTreeMap::from([("r.example/t".into(), "r.example/t/a:1".into())]),
        };
        s.save(&path).unwrap();
        let back = Settings::load(&path).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.max_unpacked_bytes(&path).unwrap(), Some(2 << 30));
    }

    #[test]
    fn bad_files_say_where_and_what() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "max_unpacked = \"lots\"\n").unwrap();
        let e = Settings::load(&path).unwrap_err();
        assert!(e.is_bad_input());
        assert!(
            e.to_string().contains("max_unpacked: 'lots' is not a size"),
            "{e}"
        );
        std::fs::write(&path, "default_image = \"a\"\nmax_unpaked = \"1g\"\n").unwrap();
        let e = Settings::load(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("max_unpaked"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

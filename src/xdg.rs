//! The XDG base directories (freedesktop.org Base Directory Specification),
//! resolved in one place for everything boxwright keeps outside its store:
//! `registries.toml` and `config.toml` under [`config_home`], the default
//! store and the blob-info cache under [`data_home`], podman's `auth.json`
//! under [`runtime_dir`].
//!
//! As the specification says, a variable that is unset, empty or not an
//! absolute path is ignored (and the default used instead): a relative
//! `XDG_CONFIG_HOME=` left over in an environment must not make boxwright
//! read and write files relative to whatever directory it runs in.
//!
//! [`Xdg::with_lookup`] takes the environment as a function, so the rules
//! are tested without touching the process environment.

use std::ffi::OsString;
use std::path::PathBuf;

/// The base directories of one environment.
pub struct Xdg<E = fn(&str) -> Option<OsString>> {
    lookup: E,
}

impl Xdg {
    /// The base directories of this process's environment.
    pub fn process() -> Xdg {
        Xdg {
            lookup: |name| std::env::var_os(name),
        }
    }
}

impl<E: Fn(&str) -> Option<OsString>> Xdg<E> {
    /// The base directories of the environment `lookup` describes
    /// (`lookup("HOME")` is `$HOME`, `None` when unset).
    pub fn with_lookup(lookup: E) -> Xdg<E> {
        Xdg { lookup }
    }

    /// A variable's value, `None` when it is unset or empty.
    pub fn var(&self, name: &str) -> Option<OsString> {
        (self.lookup)(name).filter(|v| !v.is_empty())
    }

    /// A variable holding an absolute directory, `None` otherwise.
    fn dir(&self, name: &str) -> Option<PathBuf> {
        self.var(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    }

    /// `$HOME`, when set to an absolute path.
    pub fn home(&self) -> Option<PathBuf> {
        self.dir("HOME")
    }

    /// `$XDG_CONFIG_HOME`, else `$HOME/.config`.
    pub fn config_home(&self) -> Option<PathBuf> {
        self.dir("XDG_CONFIG_HOME")
            .or_else(|| self.home().map(|h| h.join(".config")))
    }

    /// `$XDG_DATA_HOME`, else `$HOME/.local/share`.
    pub fn data_home(&self) -> Option<PathBuf> {
        self.dir("XDG_DATA_HOME")
            .or_else(|| self.home().map(|h| h.join(".local/share")))
    }

    /// `$XDG_RUNTIME_DIR`. The specification gives it no default.
    pub fn runtime_dir(&self) -> Option<PathBuf> {
        self.dir("XDG_RUNTIME_DIR")
    }
}

/// This process's `$XDG_CONFIG_HOME`, else `$HOME/.config`.
pub fn config_home() -> Option<PathBuf> {
    Xdg::process().config_home()
}

/// This process's `$XDG_DATA_HOME`, else `$HOME/.local/share`.
pub fn data_home() -> Option<PathBuf> {
    Xdg::process().data_home()
}

/// This process's `$XDG_RUNTIME_DIR`, if set.
pub fn runtime_dir() -> Option<PathBuf> {
    Xdg::process().runtime_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&str, &str)]) -> Xdg<impl Fn(&str) -> Option<OsString> + 'a> {
        Xdg::with_lookup(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.into()))
    }

    #[test]
    fn variables_win_over_home() {
        let x = env(&[
            ("HOME", "/h"),
            ("XDG_CONFIG_HOME", "/c"),
            ("XDG_DATA_HOME", "/d"),
            ("XDG_RUNTIME_DIR", "/run/user/7"),
        ]);
        assert_eq!(x.config_home(), Some(PathBuf::from("/c")));
        assert_eq!(x.data_home(), Some(PathBuf::from("/d")));
        assert_eq!(x.runtime_dir(), Some(PathBuf::from("/run/user/7")));
        assert_eq!(x.home(), Some(PathBuf::from("/h")));
    }

    #[test]
    fn empty_and_relative_values_are_ignored() {
        let x = env(&[
            ("HOME", "/h"),
            ("XDG_CONFIG_HOME", ""),
            ("XDG_DATA_HOME", "relative/data"),
            ("XDG_RUNTIME_DIR", ""),
        ]);
        assert_eq!(x.config_home(), Some(PathBuf::from("/h/.config")));
        assert_eq!(x.data_home(), Some(PathBuf::from("/h/.local/share")));
        assert_eq!(x.runtime_dir(), None);
        assert_eq!(x.var("XDG_CONFIG_HOME"), None);
        assert_eq!(x.var("XDG_DATA_HOME"), Some("relative/data".into()));
    }

    #[test]
    fn nothing_set_means_no_directory() {
        let x = env(&[("HOME", "")]);
        assert_eq!(x.home(), None);
        assert_eq!(x.config_home(), None);
        assert_eq!(x.data_home(), None);
        assert_eq!(x.runtime_dir(), None);
    }
}

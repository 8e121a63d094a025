//! `registries.toml`: insecure registries, mirrors and extra CA files.
//!
//! ```toml
//! ca_files = ["/etc/boxwright/corp-ca.pem"]   # trusted for every registry
//! template_registry = "registry.corp/team"      # where `template = "NAME"` is looked up
//!
//! [[registry]]
//! host = "127.0.0.1:5000"
//! insecure = true          # plain HTTP
//!
//! [[registry]]
//! host = "docker.io"
//! mirrors = ["mirror.internal:5000"]
//! mirror_only = false      # true: never fall back to docker.io (air-gapped)
//!
//! [[registry]]
//! host = "registry.corp"
//! ca_files = ["/etc/boxwright/registry-corp.pem"]
//! tls_verify = true
//!
//! [mirrors]                # download mirrors for builds (crate::mirror)
//! "http://deb.debian.org/" = "http://mirror.internal/debian-proxy/"
//! "https://registry.npmjs.org/" = "https://npm.internal/"
//! ```
//!
//! Mirrors serve pulls only (as in containers-registries.conf): they are tried
//! in order, then the registry itself unless `mirror_only`. A push always goes
//! to the registry named in the reference. A mirror is itself configured by its
//! own `[[registry]]` entry (e.g. `insecure = true`).
//!
//! `template_registry = "HOST[/ORG]"` is where a recipe's `template = "NAME"`
//! is pulled from when the template's image is not in the local store: the
//! image `HOST/ORG/boxwright/template-NAME:latest` (the local name under
//! that namespace). `build --template-registry` overrides it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::mirror::{Rule, RuleError};
use crate::registry::error::{RegistryError, Result};
use crate::registry::reference::Reference;

/// The schemes a registry host may be spoken to with (see
/// [`RegistriesConfig::schemes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Schemes {
    /// HTTPS only: a plain-HTTP server is an error that names the fix.
    Https,
    /// Plain HTTP only (`insecure = true`).
    Http,
    /// HTTPS first; plain HTTP when the HTTPS attempt finds no TLS server
    /// there (or no server at all). An untrusted certificate is an error,
    /// not a reason to downgrade.
    HttpsThenHttp,
}

/// Settings for one registry host.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// `host[:port]` as written in references (`docker.io`, `127.0.0.1:5000`).
    pub host: String,
    /// Talk plain HTTP instead of HTTPS.
    #[serde(default)]
    pub insecure: bool,
    /// Verify the TLS certificate (default true).
    #[serde(default)]
    pub tls_verify: Option<bool>,
    /// Extra PEM CA files trusted for this registry.
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    /// Pull mirrors, tried in order (`host[:port]`).
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Pull only from the mirrors, never from the registry itself.
    #[serde(default)]
    pub mirror_only: bool,
}

/// A `[[cache]]` table: the registry step cache of the recipes (or
/// Containerfiles) whose path matches `recipe`, a glob. A pattern without
/// `/` matches the file's name (`toolbox.toml`, `*.Containerfile`); one with
/// `/` matches its absolute path (`/srv/ci/**/toolbox.toml`; a relative
/// pattern is relative to `registries.toml`'s directory, as `ca_files`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeCache {
    pub recipe: String,
    /// Looked up before `cache_from` of the whole file.
    #[serde(default)]
    pub cache_from: Vec<String>,
    /// Wins over `cache_to` of the whole file (`--cache-to` wins over both).
    #[serde(default)]
    pub cache_to: Option<String>,
    #[serde(skip)]
    matcher: Option<globset::GlobMatcher>,
}

// The matcher is compiled from `recipe`: equal tables have equal matchers.
impl PartialEq for RecipeCache {
    fn eq(&self, other: &Self) -> bool {
        (&self.recipe, &self.cache_from, &self.cache_to)
            == (&other.recipe, &other.cache_from, &other.cache_to)
    }
}
impl Eq for RecipeCache {}

impl RecipeCache {
    /// Whether the table is for `recipe`, given also as [`real_path`].
    fn matches(&self, recipe: &Path, real: &Path) -> bool {
        let Some(m) = &self.matcher else {
            return false;
        };
        if self.recipe.contains('/') {
            m.is_match(real)
        } else {
            recipe.file_name().is_some_and(|n| m.is_match(n))
        }
    }
}

/// `path` absolute, with its directory's symlinks and `..` resolved (the
/// last component is kept: a recipe that is a symlink is matched where it
/// is named). A path that does not exist is only made absolute. Recipes
/// and the directory of `registries.toml` both go through it, so patterns
/// written relative to that directory match whichever way either is reached.
fn real_path(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or_else(|_| abs.clone()),
        _ => abs,
    }
}

/// The whole of `registries.toml`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    /// Extra PEM CA files trusted for every registry.
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    /// `HOST[/ORG]` holding the templates' images (see the module docs).
    #[serde(default)]
    pub template_registry: Option<String>,
    /// Registry step caches every build looks steps up in (as `--cache-from`).
    #[serde(default)]
    pub cache_from: Vec<String>,
    /// The registry step cache every build fills (as `--cache-to`).
    #[serde(default)]
    pub cache_to: Option<String>,
    /// Step caches of the recipes (or Containerfiles) a pattern matches,
    /// `[[cache]]` tables, before the global ones.
    #[serde(default, rename = "cache")]
    pub recipe_caches: Vec<RecipeCache>,
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistrySettings>,
    /// Download mirrors of builds, `FROM = TO` (`--mirror FROM=TO` adds to
    /// and overrides them). Checked when the file is read.
    #[serde(default)]
    pub mirrors: std::collections::BTreeMap<String, String>,
}

impl RegistriesConfig {
    /// `$XDG_CONFIG_HOME/boxwright/registries.toml` (or `~/.config/…`).
    pub fn default_path() -> Option<PathBuf> {
        crate::xdg::config_home().map(|d| d.join("boxwright/registries.toml"))
    }

    /// Loads the default file; a missing file is an empty config.
    pub fn load_default() -> Result<RegistriesConfig> {
        match Self::default_path() {
            Some(p) if p.exists() => Self::load(&p),
            _ => Ok(RegistriesConfig::default()),
        }
    }

    /// Loads an explicit file (which must exist).
    pub fn load(path: &Path) -> Result<RegistriesConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            RegistryError::io(format!("reading registries config {}", path.display()), e)
        })?;
        Self::parse(&text, path)
    }

    /// Parses TOML text; `path` is for messages and for resolving relative CA paths.
    pub fn parse(text: &str, path: &Path) -> Result<RegistriesConfig> {
        let mut cfg: RegistriesConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| {
                    format!(
                        "line {}: ",
                        text[..s.start.min(text.len())].matches('\n').count() + 1
                    )
                })
                .unwrap_or_default();
            RegistryError::Config {
                path: path.to_path_buf(),
                message: format!("{line}{}", e.message().trim().replace('\n', " ")),
            }
        })?;
        if let Some(ns) = &cfg.template_registry {
            Reference::in_namespace(ns, "boxwright/template:latest").map_err(|e| {
                RegistryError::Config {
                    path: path.to_path_buf(),
                    message: format!("template_registry: {e}"),
                }
            })?;
        }
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut seen = std::collections::BTreeSet::new();
        for r in &mut cfg.registries {
            if r.host.is_empty() || r.host.contains('/') || r.host.contains("://") {
                return Err(RegistryError::Config {
                    path: path.to_path_buf(),
                    message: format!(
                        "registry host '{}' must be host[:port], without scheme or path",
                        r.host
                    ),
                });
            }
            if !seen.insert(r.host.clone()) {
                return Err(RegistryError::Config {
                    path: path.to_path_buf(),
                    message: format!(
                        "registry '{}' is configured twice: merge the entries",
                        r.host
                    ),
                });
            }
            if r.mirror_only && r.mirrors.is_empty() {
                return Err(RegistryError::Config {
                    path: path.to_path_buf(),
                    message: format!("registry '{}' is mirror_only but names no mirrors", r.host),
                });
            }
            for f in &mut r.ca_files {
                if f.is_relative() {
                    *f = base.join(&*f);
                }
            }
        }
        for f in &mut cfg.ca_files {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        for c in &mut cfg.recipe_caches {
            let pattern = if c.recipe.contains('/') && !c.recipe.starts_with('/') {
                // The directory is literal text in the glob, whatever it holds.
                let abs = base.canonicalize().unwrap_or_else(|_| real_path(base));
                let dir = globset::escape(&abs.to_string_lossy());
                format!("{}/{}", dir.trim_end_matches('/'), c.recipe)
            } else {
                c.recipe.clone()
            };
            let glob = globset::GlobBuilder::new(&pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| RegistryError::Config {
                    path: path.to_path_buf(),
                    message: format!("[[cache]] recipe = '{}': {e}", c.recipe),
                })?;
            if c.cache_from.is_empty() && c.cache_to.is_none() {
                return Err(RegistryError::Config {
                    path: path.to_path_buf(),
                    message: format!(
                        "[[cache]] recipe = '{}' names no cache_from or cache_to",
                        c.recipe
                    ),
                });
            }
            c.matcher = Some(glob.compile_matcher());
        }
        cfg.mirror_rules().map_err(|e| RegistryError::Config {
            path: path.to_path_buf(),
            message: format!("[mirrors]: {e}"),
        })?;
        Ok(cfg)
    }

    /// The step caches of a build of `recipe`: `cache_from` of the
    /// `[[cache]]` tables that match it, then the file's own; `cache_to` of
    /// the first matching table that has one, else the file's.
    pub fn caches_for(&self, recipe: &Path) -> (Vec<String>, Option<String>) {
        let mut from: Vec<String> = Vec::new();
        let mut to = None;
        let real = real_path(recipe);
        for c in self
            .recipe_caches
            .iter()
            .filter(|c| c.matches(recipe, &real))
        {
            from.extend(c.cache_from.iter().cloned());
            to = to.or(c.cache_to.clone());
        }
        from.extend(self.cache_from.iter().cloned());
        (from, to.or(self.cache_to.clone()))
    }

    /// The `[mirrors]` table as rules.
    pub fn mirror_rules(&self) -> std::result::Result<Vec<Rule>, RuleError> {
        self.mirrors
            .iter()
            .map(|(from, to)| Rule::new(from, to))
            .collect()
    }

    /// The settings for `host`, if it has an entry.
    pub fn settings(&self, host: &str) -> Option<&RegistrySettings> {
        self.registries.iter().find(|r| r.host == host)
    }

    /// Adds (or replaces) the settings of one registry.
    pub fn set(&mut self, settings: RegistrySettings) -> &mut Self {
        self.registries.retain(|r| r.host != settings.host);
        self.registries.push(settings);
        self
    }

    /// Marks `host` as plain HTTP (a shorthand for tests and `--tls-verify=false` on HTTP).
    pub fn insecure(mut self, host: &str) -> Self {
        let mut s = self
            .settings(host)
            .cloned()
            .unwrap_or_else(|| RegistrySettings {
                host: host.to_string(),
                ..Default::default()
            });
        s.insecure = true;
        self.set(s);
        self
    }

    /// Whether `host` is spoken to over plain HTTP.
    pub fn is_insecure(&self, host: &str) -> bool {
        self.settings(host).is_some_and(|s| s.insecure)
    }

    /// Whether `host`'s TLS certificates are verified: `tls_verify` (the
    /// command line's `--tls-verify`) when given, else the host's
    /// `tls_verify`, else yes.
    pub fn verifies_tls(&self, host: &str, tls_verify: Option<bool>) -> bool {
        tls_verify.unwrap_or_else(|| {
            self.settings(host)
                .and_then(|s| s.tls_verify)
                .unwrap_or(true)
        })
    }

    /// How `host` may be spoken to, as podman and Docker decide:
    ///
    /// - an explicit `--tls-verify=true` (`tls_verify` `Some(true)`): HTTPS
    ///   only, verified, whatever the config says;
    /// - `insecure = true`: plain HTTP;
    /// - certificates not verified (`--tls-verify=false`, or `tls_verify =
    ///   false` for the host): HTTPS, then plain HTTP when no TLS server answers;
    /// - `tls_verify = true` for the host: HTTPS only;
    /// - a loopback host (`localhost`, 127.0.0.0/8, `::1`): HTTPS, then plain HTTP;
    /// - any other host: HTTPS only.
    pub fn schemes(&self, host: &str, tls_verify: Option<bool>) -> Schemes {
        if tls_verify == Some(true) {
            return Schemes::Https;
        }
        if self.is_insecure(host) {
            return Schemes::Http;
        }
        let explicit = tls_verify.or_else(|| self.settings(host).and_then(|s| s.tls_verify));
        match explicit {
            Some(false) => Schemes::HttpsThenHttp,
            Some(true) => Schemes::Https,
            None if crate::registry::http::is_loopback(host) => Schemes::HttpsThenHttp,
            None => Schemes::Https,
        }
    }

    /// The hosts to pull `registry`'s content from, in order.
    pub fn pull_hosts(&self, registry: &str) -> Vec<String> {
        match self.settings(registry) {
            Some(s) => {
                let mut v = s.mirrors.clone();
                if !s.mirror_only {
                    v.push(registry.to_string());
                }
                v
            }
            None => vec![registry.to_string()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mirrors_insecure_and_cas() {
        let cfg = RegistriesConfig::parse(
            r#"
ca_files = ["ca.pem"]
template_registry = "127.0.0.1:5000/team"
[[registry]]
host = "127.0.0.1:5000"
insecure = true
[[registry]]
host = "docker.io"
mirrors = ["mirror.internal:5000"]
[[registry]]
host = "air.gap"
mirrors = ["m1:5000", "m2:5000"]
mirror_only = true
ca_files = ["/abs/ca.pem"]
"#,
            Path::new("/etc/bw/registries.toml"),
        )
        .unwrap();
        assert_eq!(cfg.ca_files, [PathBuf::from("/etc/bw/ca.pem")]);
        assert_eq!(
            cfg.template_registry.as_deref(),
            Some("127.0.0.1:5000/team")
        );
        assert!(cfg.is_insecure("127.0.0.1:5000"));
        assert!(!cfg.is_insecure("docker.io"));
        assert_eq!(
            cfg.pull_hosts("docker.io"),
            ["mirror.internal:5000", "docker.io"]
        );
        assert_eq!(cfg.pull_hosts("air.gap"), ["m1:5000", "m2:5000"]);
        assert_eq!(cfg.pull_hosts("other.io"), ["other.io"]);
        assert_eq!(
            cfg.settings("air.gap").unwrap().ca_files,
            [PathBuf::from("/abs/ca.pem")]
        );
        assert!(cfg.mirror_rules().unwrap().is_empty());
    }

    #[test]
    fn plain_http_is_allowed_as_podman_and_docker_allow_it() {
        let cfg = RegistriesConfig::parse(
            r#"
[[registry]]
host = "plain.corp:5000"
insecure = true
[[registry]]
host = "selfsigned.corp"
tls_verify = false
[[registry]]
host = "127.0.0.1:5000"
tls_verify = true
"#,
            Path::new("r.toml"),
        )
        .unwrap();
        use Schemes::*;
        let cases: &[(&str, Option<bool>, Schemes)] = &[
            // Another machine: HTTPS only, unless told otherwise.
            ("registry.corp", None, Https),
            ("docker.io", None, Https),
            ("10.1.2.3:5000", None, Https),
            ("registry.corp", Some(false), HttpsThenHttp),
            ("plain.corp:5000", None, Http),
            ("plain.corp:5000", Some(false), Http),
            ("selfsigned.corp", None, HttpsThenHttp),
            // This machine: HTTP as a fallback, as Docker does, unless
            // its entry asks for verified TLS.
            ("127.0.0.1:6000", None, HttpsThenHttp),
            ("127.0.0.1:5000", None, Https),
            ("127.0.0.1:5000", Some(false), HttpsThenHttp),
            ("localhost:5000", None, HttpsThenHttp),
            ("[::1]:5000", None, HttpsThenHttp),
            // An explicit --tls-verify=true means HTTPS, verified, everywhere.
            ("127.0.0.1:5000", Some(true), Https),
            ("plain.corp:5000", Some(true), Https),
            ("selfsigned.corp", Some(true), Https),
        ];
        for (host, flag, want) in cases {
            assert_eq!(cfg.schemes(host, *flag), *want, "{host} {flag:?}");
        }
        assert!(!cfg.verifies_tls("selfsigned.corp", None));
        assert!(cfg.verifies_tls("selfsigned.corp", Some(true)));
        assert!(!cfg.verifies_tls("registry.corp", Some(false)));
        assert!(cfg.verifies_tls("registry.corp", None));
    }

    #[test]
    fn step_caches_per_recipe_come_before_the_global_ones() {
        let dir = Path::new("/etc/bw");
        let cfg = RegistriesConfig::parse(
            r#"
cache_from = ["reg/global"]
cache_to = "reg/global"
[[cache]]
recipe = "toolbox.toml"
cache_from = ["reg/toolbox"]
cache_to = "reg/toolbox"
[[cache]]
recipe = "ci/**/*.toml"
cache_from = ["reg/ci"]
"#,
            &dir.join("registries.toml"),
        )
        .unwrap();
        let (from, to) = cfg.caches_for(Path::new("/src/app/toolbox.toml"));
        assert_eq!(from, ["reg/toolbox", "reg/global"]);
        assert_eq!(to.as_deref(), Some("reg/toolbox"));
        let (from, to) = cfg.caches_for(Path::new("/etc/bw/ci/a/b.toml"));
        assert_eq!(from, ["reg/ci", "reg/global"]);
        assert_eq!(to.as_deref(), Some("reg/global"));
        let (from, _) = cfg.caches_for(Path::new("/elsewhere/b.toml"));
        assert_eq!(from, ["reg/global"]);
        // A file named without a directory (`--registries-conf r.toml`):
        // relative patterns are relative to the current directory.
        let cfg = RegistriesConfig::parse(
            "[[cache]]\nrecipe = \"ci/*.toml\"\ncache_from = [\"reg/ci\"]\n",
            Path::new("r.toml"),
        )
        .unwrap();
        assert_eq!(cfg.caches_for(Path::new("ci/x.toml")).0, ["reg/ci"]);
        assert!(cfg.caches_for(Path::new("other/x.toml")).0.is_empty());
        // The file reached through a symlinked directory, a recipe named
        // through another, and a recipe that is itself a symlink.
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("real/ci")).unwrap();
        std::os::unix::fs::symlink(t.path().join("real"), t.path().join("link")).unwrap();
        std::fs::write(t.path().join("real/ci/x.toml"), "").unwrap();
        std::os::unix::fs::symlink("/dev/null", t.path().join("real/ci/y.toml")).unwrap();
        let cfg = RegistriesConfig::parse(
            "[[cache]]\nrecipe = \"ci/*.toml\"\ncache_from = [\"reg/ci\"]\n",
            &t.path().join("link/registries.toml"),
        )
        .unwrap();
        for recipe in ["real/ci/x.toml", "link/ci/x.toml", "link/ci/../ci/y.toml"] {
            assert_eq!(
                cfg.caches_for(&t.path().join(recipe)).0,
                ["reg/ci"],
                "{recipe}"
            );
        }
        assert!(cfg.caches_for(&t.path().join("real/x.toml")).0.is_empty());
        for (bad, why) in [
            (
                "[[cache]]\nrecipe = \"a[\"\ncache_from = [\"x\"]\n",
                "[[cache]] recipe = 'a['",
            ),
            (
                "[[cache]]\nrecipe = \"a.toml\"\n",
                "names no cache_from or cache_to",
            ),
        ] {
            let e = RegistriesConfig::parse(bad, Path::new("r.toml")).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn download_mirrors() {
        let cfg = RegistriesConfig::parse(
            r#"
[mirrors]
"http://deb.debian.org" = "http://mirror.internal/debian-proxy"
"https://registry.npmjs.org/" = "https://npm.internal/"
"#,
            Path::new("r.toml"),
        )
        .unwrap();
        let m = crate::mirror::Mirrors::new(cfg.mirror_rules().unwrap());
        assert_eq!(
            m.rewrite("http://deb.debian.org/debian").as_deref(),
            Some("http://mirror.internal/debian-proxy/debian")
        );
        assert!(m.covers(crate::mirror::NPM_REGISTRY));
    }

    #[test]
    fn mistakes_are_named() {
        let p = Path::new("r.toml");
        for (text, needle) in [
            (
                "[[registry]]\nhost = \"a\"\nbogus = 1",
                "line 3: unknown field `bogus`",
            ),
            ("[[registry]]\nhost = \"http://a\"", "without scheme"),
            (
                "[[registry]]\nhost = \"a\"\n[[registry]]\nhost = \"a\"",
                "twice",
            ),
            (
                "[[registry]]\nhost = \"a\"\nmirror_only = true",
                "no mirrors",
            ),
            ("ca_files = 3", "invalid type"),
            (
                "[mirrors]\n\"http://a/\" = \"ftp://u:hunter2@b/\"",
                "[mirrors]: mirror http://a/=ftp://***@b/: TO must be an http:// or https:// URL",
            ),
            (
                "template_registry = \"team\"",
                "template_registry: 'team' is not",
            ),
        ] {
            let e = RegistriesConfig::parse(text, p).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("r.toml"), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}

//! Runtimes (`recipes/catalog/runtimes.toml`): versions and install methods.

use std::collections::BTreeMap;

use super::artifact::{ArtifactFile, ArtifactSpec, is_path_segment};
use super::error::CatalogError;
use super::raw::{RawRuntime, RawVersion, RuntimesFile};
use crate::digest::Digest;

const FILE: &str = "runtimes.toml";

/// A language runtime a recipe can ask for in `[runtimes]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// The key in `[runtimes]`, such as `python`.
    pub name: String,
    pub title: String,
    /// The version `boxwright catalog runtimes` recommends.
    pub default: String,
    /// Directories prepended to PATH in the image (for every version).
    pub path: Vec<String>,
    /// Variables added to the image's environment (for every version).
    pub env: BTreeMap<String, String>,
    /// A command that proves the runtime works, run at the end of its step.
    pub check: String,
    pub versions: Vec<RuntimeVersion>,
}

/// One version of a runtime and how to install it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// As written in recipes: `3.12`, `20`, `stable`.
    pub version: String,
    /// Packages of the bases whose distro provides this version, keyed by
    /// `ID:VERSION_ID` from /etc/os-release (`debian:12`).
    pub distro: BTreeMap<String, Vec<String>>,
    /// Shell that installs `$ARTIFACT`.
    pub install: Option<String>,
    pub artifact: Option<ArtifactSpec>,
    /// Variables added for this version, on top of the runtime's.
    pub env: BTreeMap<String, String>,
    /// Why this version cannot be installed (no verified checksum…).
    pub unavailable: Option<String>,
}

impl Runtime {
    pub fn version(&self, version: &str) -> Option<&RuntimeVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// Every known version, in catalog order.
    pub fn version_names(&self) -> Vec<&str> {
        self.versions.iter().map(|v| v.version.as_str()).collect()
    }

    /// The versions that can be installed.
    pub fn available_versions(&self) -> Vec<&str> {
        self.versions
            .iter()
            .filter(|v| v.unavailable.is_none())
            .map(|v| v.version.as_str())
            .collect()
    }

    /// The catalog digest of `version`: the sha256 of its entry in runtimes.toml
    /// (distro packages, pinned artifact files with their checksums, install command,
    /// env), as JSON with sorted keys under the runtime's name. It names what the
    /// runtime's step installs for that version on every base, which an artifact's
    /// checksum alone cannot: a version may come from distro packages only, and the
    /// artifact differs per architecture. Comments and layout of the file do not
    /// count; any change to what gets installed does.
    pub fn entry_digest(&self, version: &RuntimeVersion) -> Digest {
        let file = |f: &Option<ArtifactFile>| {
            f.as_ref().map(|f| {
                serde_json::json!({
                    "file": f.file,
                    "url": f.url,
                    "checksum": f.checksum.to_string(),
                })
            })
        };
        let artifact = version.artifact.as_ref().map(|a| {
            serde_json::json!({
                "component": a.component,
                "version": a.version,
                "amd64": file(&a.amd64),
                "arm64": file(&a.arm64),
                "any": file(&a.any),
            })
        });
        let entry = serde_json::json!({
            "runtime": self.name,
            "version": version.version,
            "distro": version.distro,
            "install": version.install,
            "artifact": artifact,
            "env": version.env,
        });
        // A Value always serializes; its maps iterate in sorted key order.
        Digest::of(&serde_json::to_vec(&entry).unwrap_or_default())
    }
}

impl RuntimeVersion {
    /// `distro packages (debian:12), upstream artifact 20.11.1`: for listings.
    pub fn methods(&self) -> String {
        if let Some(why) = &self.unavailable {
            return format!("unavailable: {why}");
        }
        let mut parts = Vec::new();
        if !self.distro.is_empty() {
            let keys: Vec<&str> = self.distro.keys().map(String::as_str).collect();
            parts.push(format!("distro packages ({})", keys.join(", ")));
        }
        if let Some(a) = &self.artifact {
            parts.push(format!("upstream {} {}", a.component, a.version));
        }
        parts.join("; ")
    }
}

pub(crate) fn parse(text: &str) -> Result<Vec<Runtime>, CatalogError> {
    let file: RuntimesFile =
        toml::from_str(text).map_err(|e| CatalogError::parse(FILE, text, &e))?;
    let mut runtimes: Vec<Runtime> = Vec::new();
    for raw in file.runtime {
        let runtime = convert(raw)?;
        if runtimes.iter().any(|r| r.name == runtime.name) {
            return Err(CatalogError::invalid(FILE, &runtime.name, "listed twice"));
        }
        runtimes.push(runtime);
    }
    Ok(runtimes)
}

fn convert(raw: RawRuntime) -> Result<Runtime, CatalogError> {
    let name = raw.name;
    if !is_name(&name) {
        return Err(CatalogError::invalid(
            FILE,
            &name,
            "a runtime name is lower-case letters, digits and '-'",
        ));
    }
    check_env(&raw.env, &name)?;
    for p in &raw.path {
        if !p.starts_with('/') || p.contains(':') {
            return Err(CatalogError::invalid(
                FILE,
                &name,
                format!("path entry '{p}' must be an absolute directory without ':'"),
            ));
        }
    }
    let mut versions: Vec<RuntimeVersion> = Vec::new();
    for v in raw.version {
        let entry = format!("{name} {}", v.version);
        let version = convert_version(v, &name, &entry)?;
        if versions.iter().any(|o| o.version == version.version) {
            return Err(CatalogError::invalid(FILE, &entry, "listed twice"));
        }
        versions.push(version);
    }
    if !versions.iter().any(|v| v.version == raw.default) {
        return Err(CatalogError::invalid(
            FILE,
            &name,
            format!(
                "default version '{}' is not one of its versions",
                raw.default
            ),
        ));
    }
    Ok(Runtime {
        name,
        title: raw.title,
        default: raw.default,
        path: raw.path,
        env: raw.env,
        check: raw.check,
        versions,
    })
}

fn convert_version(v: RawVersion, name: &str, entry: &str) -> Result<RuntimeVersion, CatalogError> {
    if !is_path_segment(&v.version) {
        return Err(CatalogError::invalid(FILE, entry, "bad version string"));
    }
    check_env(&v.env, entry)?;
    let artifact = v
        .artifact
        .map(|a| ArtifactSpec::from_raw(a, name, FILE, entry))
        .transpose()?;
    if artifact.is_some() != v.install.is_some() {
        return Err(CatalogError::invalid(
            FILE,
            entry,
            "'install' and 'artifact' go together: the install command installs the artifact",
        ));
    }
    for (distro, packages) in &v.distro {
        let valid_key = distro
            .split_once(':')
            .is_some_and(|(id, ver)| !id.is_empty() && !ver.is_empty());
        if !valid_key || packages.is_empty() {
            return Err(CatalogError::invalid(
                FILE,
                entry,
                format!("distro '{distro}' must be ID:VERSION_ID with at least one package"),
            ));
        }
        check_packages(packages, entry)?;
    }
    let installable = artifact.is_some() || !v.distro.is_empty();
    match (&v.unavailable, installable) {
        (Some(_), true) => Err(CatalogError::invalid(
            FILE,
            entry,
            "an unavailable version must not list install methods",
        )),
        (None, false) => Err(CatalogError::invalid(
            FILE,
            entry,
            "a version needs distro packages or an artifact (or 'unavailable' saying why not)",
        )),
        _ => Ok(RuntimeVersion {
            version: v.version,
            distro: v.distro,
            install: v.install,
            artifact,
            env: v.env,
            unavailable: v.unavailable,
        }),
    }
}

fn check_env(env: &BTreeMap<String, String>, entry: &str) -> Result<(), CatalogError> {
    for k in env.keys() {
        let ok = !k.is_empty()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && k != "PATH";
        if !ok {
            return Err(CatalogError::invalid(
                FILE,
                entry,
                format!(
                    "env name '{k}' must be letters, digits and '_' (and not PATH: use 'path')"
                ),
            ));
        }
    }
    Ok(())
}

/// Package names as Debian allows them (also fine for apk and dnf).
pub(crate) fn check_packages(packages: &[String], entry: &str) -> Result<(), CatalogError> {
    for p in packages {
        if !is_package_name(p) {
            return Err(CatalogError::invalid(
                FILE,
                entry,
                format!("'{p}' is not a valid package name"),
            ));
        }
    }
    Ok(())
}

/// Debian's rule: lower-case alphanumerics and `+ - .`, starting alphanumeric.
pub fn is_package_name(p: &str) -> bool {
    let mut bytes = p.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Lower-case letters, digits and `-`, starting with a letter.
pub(crate) fn is_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

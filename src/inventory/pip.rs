//! Python distributions in the site directories: `.dist-info` (pip, wheels)
//! and `.egg-info` (setuptools, distro packages).

use serde::{Deserialize, Serialize};

use super::{Tree, expand_dirs, field, headers, join, json_str, list_entry, read_entry};

/// Where Python distributions live, `*` expanded by listing the tree.
pub(super) const SITE_PATTERNS: [&str; 8] = [
    "/usr/lib/python3*/site-packages",
    "/usr/lib/python3*/dist-packages",
    "/usr/local/lib/python3*/site-packages",
    "/usr/local/lib/python3*/dist-packages",
    "/usr/lib/python3/dist-packages",
    "/opt/*/lib/python3*/site-packages",
    "/root/.local/lib/python3*/site-packages",
    "/home/*/.local/lib/python3*/site-packages",
];

/// A Python distribution installed in a site directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct PipDist {
    /// The name normalized as PEP 503 says (see [`pep503_name`]).
    pub name: String,
    pub version: String,
    /// The site directory, as a path in the tree.
    pub site: String,
    /// The tool that installed it (`pip`, `uv`, …), from the INSTALLER file.
    pub installer: Option<String>,
    /// Where it was installed from, for direct URL installs (`pip install
    /// git+https://…`, a local path): the `url` of direct_url.json.
    pub direct_url: Option<String>,
}

/// A project name normalized as PEP 503 says: lowercase, every run of `-`,
/// `_` and `.` made one `-`.
pub fn pep503_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// The distributions of every site directory, sorted.
pub(super) fn dists(tree: &dyn Tree) -> Vec<PipDist> {
    let mut sites: Vec<String> = SITE_PATTERNS
        .iter()
        .flat_map(|p| expand_dirs(tree, p))
        .collect();
    sites.sort();
    sites.dedup();
    let mut found: Vec<PipDist> = sites.iter().flat_map(|s| site_dists(tree, s)).collect();
    found.sort();
    found.dedup();
    found
}

/// The distributions of one site directory.
fn site_dists(tree: &dyn Tree, site: &str) -> Vec<PipDist> {
    let mut found = Vec::new();
    for entry in list_entry(tree, site) {
        let path = join(site, &entry);
        let dist = if let Some(stem) = entry.strip_suffix(".dist-info") {
            dist_info(tree, &path, stem)
        } else if let Some(stem) = entry.strip_suffix(".egg-info") {
            egg_info(tree, &path, stem)
        } else {
            None
        };
        if let Some(mut dist) = dist {
            dist.site = site.to_string();
            found.push(dist);
        }
    }
    found
}

/// A `NAME-VERSION.dist-info` directory.
fn dist_info(tree: &dyn Tree, dir: &str, stem: &str) -> Option<PipDist> {
    if !tree.is_dir(dir) {
        return None;
    }
    let metadata = read_entry(tree, &join(dir, "METADATA")).unwrap_or_default();
    let (name, version) = name_version(&metadata, stem)?;
    let installer = read_entry(tree, &join(dir, "INSTALLER"))
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|s| !s.is_empty());
    let direct_url = read_entry(tree, &join(dir, "direct_url.json"))
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| json_str(&v, "url"));
    Some(PipDist {
        name,
        version,
        installer,
        direct_url,
        ..PipDist::default()
    })
}

/// A `NAME-VERSION[-pyX.Y].egg-info`: a directory holding PKG-INFO, or a file
/// that is itself PKG-INFO.
fn egg_info(tree: &dyn Tree, path: &str, stem: &str) -> Option<PipDist> {
    let pkg_info = if tree.is_dir(path) {
        read_entry(tree, &join(path, "PKG-INFO"))
    } else {
        read_entry(tree, path)
    };
    let (name, version) = name_version(&pkg_info.unwrap_or_default(), stem)?;
    Some(PipDist {
        name,
        version,
        ..PipDist::default()
    })
}

/// The normalized name and version from the `Name:` and `Version:` headers,
/// each falling back to the directory's `NAME-VERSION…` stem.
fn name_version(metadata: &[u8], stem: &str) -> Option<(String, String)> {
    let fields = headers(metadata);
    let mut parts = stem.split('-');
    let (stem_name, stem_version) = (parts.next(), parts.next());
    let name = field(&fields, "Name")
        .filter(|n| !n.is_empty())
        .or(stem_name)
        .filter(|n| !n.is_empty())?;
    let version = field(&fields, "Version")
        .filter(|v| !v.is_empty())
        .or(stem_version)
        .filter(|v| !v.is_empty())?;
    Some((pep503_name(name), version.to_string()))
}

//! dpkg's installed packages, with apt's auto-installed marks, apt sources and
//! apt keyrings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{InventoryError, Tree, join, list_entry, read_entry};

/// dpkg's database of package states.
const STATUS: &str = "/var/lib/dpkg/status";
/// apt's record of which packages were installed only as dependencies.
const EXTENDED_STATES: &str = "/var/lib/apt/extended_states";
/// Directories of apt keyring files.
const KEYRING_DIRS: [&str; 3] = [
    "/etc/apt/trusted.gpg.d",
    "/etc/apt/keyrings",
    "/usr/share/keyrings",
];
/// The legacy single keyring.
const LEGACY_KEYRING: &str = "/etc/apt/trusted.gpg";

/// A package dpkg has installed.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct DpkgPackage {
    pub name: String,
    pub version: String,
    /// `Architecture` (`amd64`, `all`, …); empty when the stanza has none.
    pub arch: String,
    /// Installed on request rather than as a dependency: apt's
    /// extended_states does not mark it `Auto-Installed: 1`.
    pub manual: bool,
}

/// One apt source: a line of a `.list` file or a stanza of a deb822 `.sources` file.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct AptSource {
    /// The file it is in, as a path in the tree.
    pub file: String,
    /// `deb [options] URI SUITE COMPONENTS…` with runs of blanks made one
    /// space; for a deb822 stanza, its `Types URIs Suites Components` on one line.
    pub entry: String,
}

/// The installed packages of dpkg's status file, sorted.
pub(super) fn packages(tree: &dyn Tree) -> Result<Vec<DpkgPackage>, InventoryError> {
    let Some(status) = tree.read(STATUS)? else {
        return Ok(Vec::new());
    };
    let auto = auto_installed(tree)?;
    let mut packages: Vec<DpkgPackage> = stanzas(&status)
        .iter()
        .filter_map(|s| {
            // "install ok installed"; not "deinstall ok config-files" nor "half-installed".
            if !field(s, "Status")?.ends_with(" installed") {
                return None;
            }
            let name = field(s, "Package").filter(|n| !n.is_empty())?;
            let version = field(s, "Version").filter(|v| !v.is_empty())?;
            let arch = field(s, "Architecture").unwrap_or_default();
            let auto = auto
                .get(name)
                .is_some_and(|archs| archs.iter().any(|a| a.is_empty() || a == arch));
            Some(DpkgPackage {
                name: name.to_string(),
                version: version.to_string(),
                arch: arch.to_string(),
                manual: !auto,
            })
        })
        .collect();
    packages.sort();
    packages.dedup();
    Ok(packages)
}

/// The packages apt marks `Auto-Installed: 1`, each with the architectures
/// marked; an architecture is empty when the stanza names none (older apt).
fn auto_installed(tree: &dyn Tree) -> Result<BTreeMap<String, Vec<String>>, InventoryError> {
    let mut auto: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(states) = tree.read(EXTENDED_STATES)? else {
        return Ok(auto);
    };
    for stanza in stanzas(&states) {
        if field(&stanza, "Auto-Installed") != Some("1") {
            continue;
        }
        if let Some(name) = field(&stanza, "Package") {
            let arch = field(&stanza, "Architecture").unwrap_or_default();
            auto.entry(name.to_string())
                .or_default()
                .push(arch.to_string());
        }
    }
    Ok(auto)
}

/// The apt sources of `/etc/apt/sources.list` and `/etc/apt/sources.list.d`,
/// sorted by file then entry.
/// Sources files are not package databases: one that cannot be read is skipped.
pub(super) fn sources(tree: &dyn Tree) -> Vec<AptSource> {
    let mut found = Vec::new();
    if let Some(text) = read_entry(tree, "/etc/apt/sources.list") {
        one_line_sources("/etc/apt/sources.list", &text, &mut found);
    }
    let dir = "/etc/apt/sources.list.d";
    for name in list_entry(tree, dir) {
        let file = join(dir, &name);
        if name.ends_with(".list") {
            if let Some(text) = read_entry(tree, &file) {
                one_line_sources(&file, &text, &mut found);
            }
        } else if name.ends_with(".sources")
            && let Some(text) = read_entry(tree, &file)
        {
            deb822_sources(&file, &text, &mut found);
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The `deb` and `deb-src` lines of a one-line-style sources file.
fn one_line_sources(file: &str, bytes: &[u8], found: &mut Vec<AptSource>) {
    for line in String::from_utf8_lossy(bytes).lines() {
        // apt treats `#` anywhere on a line as the start of a comment.
        let line = line.split('#').next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        if matches!(words.first(), Some(&("deb" | "deb-src"))) && words.len() >= 3 {
            found.push(AptSource {
                file: file.to_string(),
                entry: words.join(" "),
            });
        }
    }
}

/// The enabled stanzas of a deb822 `.sources` file.
fn deb822_sources(file: &str, bytes: &[u8], found: &mut Vec<AptSource>) {
    for stanza in stanzas(bytes) {
        if field(&stanza, "Enabled").is_some_and(|e| e.eq_ignore_ascii_case("no")) {
            continue;
        }
        let words: Vec<&str> = ["Types", "URIs", "Suites", "Components"]
            .iter()
            .filter_map(|f| field(&stanza, f))
            .flat_map(str::split_whitespace)
            .collect();
        if field(&stanza, "URIs").is_some() && field(&stanza, "Types").is_some() {
            found.push(AptSource {
                file: file.to_string(),
                entry: words.join(" "),
            });
        }
    }
}

/// The paths of apt's keyring files, sorted.
pub(super) fn keyrings(tree: &dyn Tree) -> Vec<String> {
    let mut found = Vec::new();
    for dir in KEYRING_DIRS {
        for name in list_entry(tree, dir) {
            let path = join(dir, &name);
            if !tree.is_dir(&path) {
                found.push(path);
            }
        }
    }
    // Only its presence matters; a file too large to read is still there.
    match tree.read(LEGACY_KEYRING) {
        Ok(None) => {}
        Ok(Some(_)) | Err(InventoryError::TooLarge { .. }) => {
            found.push(LEGACY_KEYRING.to_string())
        }
        Err(e) => tracing::warn!("inventory: skipping {LEGACY_KEYRING}: {e}"),
    }
    found.sort();
    found.dedup();
    found
}

/// The stanzas of a Debian control file (dpkg status, extended_states, deb822
/// sources): `Field: value` lines separated by blank lines, continuation lines
/// starting with a space or tab, `#` lines being comments.
fn stanzas(bytes: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8_lossy(bytes);
    let mut all = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                all.push(std::mem::take(&mut current));
            }
        } else if line.starts_with('#') {
            continue;
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                // A lone `.` stands for an empty line in a multi-line value.
                let more = line.trim();
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(if more == "." { "" } else { more });
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        all.push(current);
    }
    all
}

/// The value of field `name` in a stanza (field names are case-insensitive).
fn field<'a>(stanza: &'a [(String, String)], name: &str) -> Option<&'a str> {
    super::field(stanza, name)
}

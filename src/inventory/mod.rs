//! Boot inventory: what the package managers of a root filesystem have installed,
//! read from their files only (no package manager runs, nothing is mounted).
//!
//! A fork compares the inventory taken when a sandbox booted with one taken now
//! ([`compare`]) to tell what the developer installed, and summarizes it as image
//! labels ([`summary_labels`]). The root filesystem is read through a [`Tree`]: a
//! plain directory ([`DirTree`]) or the overlay layer dirs of an image
//! ([`LayeredTree`]). Both resolve symbolic links inside the tree, as a chroot would.
//!
//! Read: dpkg (with apt's auto-installed marks, sources and keyrings), apk, pip
//! site directories, global npm prefixes and VS Code / code-server extensions.
//! rpm is not read: its database is SQLite (or Berkeley DB on older releases),
//! which is not cheap to read without librpm.
//!
//! The files read are written by whoever controls the sandbox, so parsers never
//! trust them: malformed entries are skipped, text is decoded lossily and every
//! file read is capped at [`MAX_FILE_SIZE`]. A manager's database file (dpkg
//! status, apt extended_states, apk installed) that cannot be read fails the
//! inventory, because an empty list would make every package look new in
//! [`compare`]; any other file or directory (a METADATA, a package.json, a
//! sources file, a home directory that loops) is skipped with a warning so that
//! one bad entry does not hide the others.

mod apk;
mod compare;
mod dpkg;
mod npm;
mod pip;
mod tree;
mod vscode;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use apk::Package;
pub use compare::{AptDelta, Changed, Changes, Delta, Versioned, compare, summary_labels};
pub use dpkg::{AptSource, DpkgPackage};
pub use npm::NpmPackage;
pub use pip::{PipDist, pep503_name};
pub use tree::{DirTree, LayeredTree, Tree};
pub use vscode::Extension;

/// The `format` of the inventories [`take`] writes.
pub const FORMAT: &str = "boxwright-inventory/1";

/// The largest file an inventory reads. Real package databases are a few MiB;
/// the cap keeps a hostile file from exhausting memory.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Symbolic links followed while resolving one path before giving up (the
/// kernel's own limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Why an inventory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A file or directory of the tree could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A file is larger than [`MAX_FILE_SIZE`].
    #[error("{} is larger than {limit} bytes, the most an inventory reads", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// Resolving a path took more than [`MAX_SYMLINK_HOPS`] symbolic links.
    #[error("{path}: more than {MAX_SYMLINK_HOPS} symbolic links (a loop?)")]
    SymlinkLoop { path: String },
}

impl InventoryError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        InventoryError::Io {
            path: path.into(),
            source,
        }
    }
}

/// What the package managers of a root filesystem have installed.
///
/// Every list is sorted (by name, then version) so that the same tree always
/// gives the same JSON. A section is `None` when the inventory does not hold
/// it: [`take`] fills them all, but JSON written elsewhere (the dev access
/// entrypoint's first-boot inventory, an older boxwright) may hold only some.
/// An absent section is unknown, not empty: [`compare`] leaves it out rather
/// than report everything of the other side as new. It is absent again when
/// written back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Inventory {
    /// [`FORMAT`] for inventories written by [`take`].
    pub format: String,
    /// Installed dpkg packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpkg: Option<Vec<DpkgPackage>>,
    /// apt source entries, one per line or deb822 stanza.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apt_sources: Option<Vec<AptSource>>,
    /// Paths of apt keyring files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apt_keyrings: Option<Vec<String>>,
    /// Installed apk packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apk: Option<Vec<Package>>,
    /// Python distributions found in the site directories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pip: Option<Vec<PipDist>>,
    /// Globally installed npm packages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub npm: Option<Vec<NpmPackage>>,
    /// VS Code and code-server extensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vscode_extensions: Option<Vec<Extension>>,
}

impl Inventory {
    /// An inventory that knows every section, each empty (a tree with no
    /// package manager's files).
    pub fn empty() -> Inventory {
        Inventory {
            format: FORMAT.to_string(),
            dpkg: Some(Vec::new()),
            apt_sources: Some(Vec::new()),
            apt_keyrings: Some(Vec::new()),
            apk: Some(Vec::new()),
            pip: Some(Vec::new()),
            npm: Some(Vec::new()),
            vscode_extensions: Some(Vec::new()),
        }
    }
}

/// Takes the inventory of the root filesystem `tree`.
pub fn take(tree: &dyn Tree) -> Result<Inventory, InventoryError> {
    Ok(Inventory {
        format: FORMAT.to_string(),
        dpkg: Some(dpkg::packages(tree)?),
        apt_sources: Some(dpkg::sources(tree)),
        apt_keyrings: Some(dpkg::keyrings(tree)),
        apk: Some(apk::packages(tree)?),
        pip: Some(pip::dists(tree)),
        npm: Some(npm::packages(tree)),
        vscode_extensions: Some(vscode::extensions(tree)),
    })
}

/// Reads a file that concerns one entry only: any error is logged and the entry
/// skipped, so one bad package does not fail the whole inventory.
fn read_entry(tree: &dyn Tree, path: &str) -> Option<Vec<u8>> {
    match tree.read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!("inventory: skipping {path}: {e}");
            None
        }
    }
}

/// Lists a directory met while scanning; errors are logged and give no names.
fn list_entry(tree: &dyn Tree, path: &str) -> Vec<String> {
    match tree.list(path) {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!("inventory: skipping {path}: {e}");
            Vec::new()
        }
    }
}

/// Joins a directory path of the tree and a name.
fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The existing directories matching `pattern`, an absolute path whose
/// components may hold `*` (any run of characters, as in a shell: it does not
/// match a leading `.`). Sorted, without duplicates.
fn expand_dirs(tree: &dyn Tree, pattern: &str) -> Vec<String> {
    let mut found = vec![String::new()];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &found {
            let parent = if dir.is_empty() { "/" } else { dir.as_str() };
            if component.contains('*') {
                for name in list_entry(tree, parent) {
                    if wildcard_match(component, &name) {
                        next.push(join(parent, &name));
                    }
                }
            } else {
                next.push(join(parent, component));
            }
        }
        found = next;
    }
    let mut dirs: Vec<String> = found
        .into_iter()
        .filter(|d| !d.is_empty() && tree.is_dir(d))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    // Shell globs do not let `*` match a hidden name.
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: the whole name must be the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The header fields of an RFC 822 style block, up to its first blank line:
/// `Name: value`, continuation lines starting with a space or tab. Used for
/// Python's METADATA and PKG-INFO.
fn headers(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// The value of the first field called `name` (case-insensitively).
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The string member `key` of a JSON object, when it is a non-empty string.
fn json_str(value: &serde_json::Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

//! Globally installed npm packages.

use serde::{Deserialize, Serialize};

use super::{Tree, expand_dirs, join, json_str, list_entry, read_entry};

/// The global `node_modules` directories, `*` expanded by listing the tree.
pub(super) const PREFIX_PATTERNS: [&str; 5] = [
    "/usr/lib/node_modules",
    "/usr/local/lib/node_modules",
    "/opt/*/lib/node_modules",
    "/root/.npm-global/lib/node_modules",
    "/home/*/.npm-global/lib/node_modules",
];

/// An npm package installed globally.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct NpmPackage {
    /// The package name, `@scope/name` for a scoped package.
    pub name: String,
    pub version: String,
    /// The `node_modules` directory it is in, as a path in the tree.
    pub prefix: String,
}

/// The packages of every global prefix, sorted.
pub(super) fn packages(tree: &dyn Tree) -> Vec<NpmPackage> {
    let mut prefixes: Vec<String> = PREFIX_PATTERNS
        .iter()
        .flat_map(|p| expand_dirs(tree, p))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    let mut found = Vec::new();
    for prefix in &prefixes {
        for entry in visible(list_entry(tree, prefix)) {
            let dir = join(prefix, &entry);
            if entry.starts_with('@') {
                // A scope: its entries are the packages.
                for name in visible(list_entry(tree, &dir)) {
                    found.extend(package(
                        tree,
                        prefix,
                        &join(&dir, &name),
                        &format!("{entry}/{name}"),
                    ));
                }
            } else {
                found.extend(package(tree, prefix, &dir, &entry));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Names npm does not install packages under: `.bin`, `.package-lock.json`
/// and other hidden entries.
fn visible(names: Vec<String>) -> impl Iterator<Item = String> {
    names.into_iter().filter(|n| !n.starts_with('.'))
}

/// The package in `dir`, from its package.json; `dir_name` stands for a
/// missing `name`. Without a readable package.json and version it is skipped.
fn package(tree: &dyn Tree, prefix: &str, dir: &str, dir_name: &str) -> Option<NpmPackage> {
    let bytes = read_entry(tree, &join(dir, "package.json"))?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(NpmPackage {
        name: json_str(&manifest, "name").unwrap_or_else(|| dir_name.to_string()),
        version: json_str(&manifest, "version")?,
        prefix: prefix.to_string(),
    })
}

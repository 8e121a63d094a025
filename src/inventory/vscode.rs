//! VS Code, VS Code Server and code-server extensions.

use serde::{Deserialize, Serialize};

use super::{Tree, expand_dirs, join, json_str, list_entry, read_entry};

/// The extension directories, `*` expanded by listing the tree.
pub(super) const DIR_PATTERNS: [&str; 6] = [
    "/root/.local/share/code-server/extensions",
    "/home/*/.local/share/code-server/extensions",
    "/root/.vscode-server/extensions",
    "/home/*/.vscode-server/extensions",
    "/root/.vscode/extensions",
    "/home/*/.vscode/extensions",
];

/// An installed extension.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Extension {
    /// `publisher.name`, lowercase.
    pub id: String,
    pub version: String,
    /// The extensions directory it is in, as a path in the tree.
    pub dir: String,
}

/// The extensions of every extension directory, sorted.
pub(super) fn extensions(tree: &dyn Tree) -> Vec<Extension> {
    let mut dirs: Vec<String> = DIR_PATTERNS
        .iter()
        .flat_map(|p| expand_dirs(tree, p))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut found = Vec::new();
    for dir in &dirs {
        // The editor's own list is authoritative when it reads; else the folders.
        let listed = from_manifest(tree, dir).unwrap_or_else(|| from_folders(tree, dir));
        found.extend(listed.into_iter().map(|(id, version)| Extension {
            id,
            version,
            dir: dir.clone(),
        }));
    }
    found.sort();
    found.dedup();
    found
}

/// The (id, version) pairs of the directory's `extensions.json`, `None` when
/// it is absent or not a JSON array.
fn from_manifest(tree: &dyn Tree, dir: &str) -> Option<Vec<(String, String)>> {
    let bytes = read_entry(tree, &join(dir, "extensions.json"))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let entries = value.as_array()?;
    Some(
        entries
            .iter()
            .filter_map(|e| {
                let id = json_str(e.get("identifier")?, "id")?;
                Some((id.to_lowercase(), json_str(e, "version")?))
            })
            .collect(),
    )
}

/// The (id, version) pairs of the directory's `publisher.name-VERSION` folders,
/// leaving out those the editor listed in `.obsolete` (uninstalled, not yet
/// deleted).
fn from_folders(tree: &dyn Tree, dir: &str) -> Vec<(String, String)> {
    let obsolete: serde_json::Value = read_entry(tree, &join(dir, ".obsolete"))
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    list_entry(tree, dir)
        .into_iter()
        .filter(|name| !name.starts_with('.') && obsolete.get(name.as_str()).is_none())
        .filter_map(|name| {
            let path = join(dir, &name);
            if !tree.is_dir(&path) {
                return None;
            }
            from_package_json(tree, &path).or_else(|| from_folder_name(&name))
        })
        .collect()
}

/// (id, version) from the extension's package.json: publisher, name, version.
fn from_package_json(tree: &dyn Tree, path: &str) -> Option<(String, String)> {
    let bytes = read_entry(tree, &join(path, "package.json"))?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let publisher = json_str(&manifest, "publisher")?;
    let name = json_str(&manifest, "name")?;
    let version = json_str(&manifest, "version")?;
    Some((format!("{publisher}.{name}").to_lowercase(), version))
}

/// (id, version) from a folder named `publisher.name-VERSION`: the version
/// starts after the last `-` that a digit follows.
fn from_folder_name(name: &str) -> Option<(String, String)> {
    let (at, _) = name
        .char_indices()
        .rev()
        .find(|&(i, c)| c == '-' && name[i + 1..].starts_with(|d: char| d.is_ascii_digit()))?;
    let (id, version) = (&name[..at], &name[at + 1..]);
    (!id.is_empty()).then(|| (id.to_lowercase(), version.to_string()))
}

//! apk's installed packages (Alpine).

use serde::{Deserialize, Serialize};

use super::{InventoryError, Tree};

/// apk's database of installed packages.
const INSTALLED: &str = "/lib/apk/db/installed";

/// A package known by name and version only.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Package {
    pub name: String,
    pub version: String,
}

/// The packages of apk's installed database, sorted: blank-line separated
/// records whose `P:` line is the name and `V:` line the version.
pub(super) fn packages(tree: &dyn Tree) -> Result<Vec<Package>, InventoryError> {
    let Some(db) = tree.read(INSTALLED)? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    let (mut name, mut version) = (None, None);
    // A trailing empty line closes the last record like the others.
    for line in String::from_utf8_lossy(&db).lines().chain([""]) {
        if line.trim().is_empty() {
            if let (Some(name), Some(version)) = (name.take(), version.take()) {
                found.push(Package { name, version });
            }
            (name, version) = (None, None);
        } else if let Some(n) = line.strip_prefix("P:") {
            name = Some(n.trim().to_string()).filter(|n| !n.is_empty());
        } else if let Some(v) = line.strip_prefix("V:") {
            version = Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

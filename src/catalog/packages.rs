//! System-package categories (`recipes/catalog/packages.toml`).

use super::error::CatalogError;
use super::raw::PackagesFile;
use super::runtime::{is_name, is_package_name};

const FILE: &str = "packages.toml";

/// A named set of apt packages, `[packages] categories = ["NAME"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageCategory {
    pub name: String,
    pub title: String,
    pub apt: Vec<String>,
}

impl PackageCategory {
    /// Whether `word` (case-insensitive) is in the name, the title or a package.
    pub fn matches(&self, word: &str) -> bool {
        let word = word.to_lowercase();
        self.name.contains(&word)
            || self.title.to_lowercase().contains(&word)
            || self.apt.iter().any(|p| p.contains(&word))
    }

    /// The packages `word` matches, or all of them when the category itself does.
    pub fn matching_packages(&self, word: &str) -> Vec<&str> {
        let lower = word.to_lowercase();
        if self.name.contains(&lower) || self.title.to_lowercase().contains(&lower) {
            return self.apt.iter().map(String::as_str).collect();
        }
        self.apt
            .iter()
            .filter(|p| p.contains(&lower))
            .map(String::as_str)
            .collect()
    }
}

pub(crate) fn parse(text: &str) -> Result<Vec<PackageCategory>, CatalogError> {
    let file: PackagesFile =
        toml::from_str(text).map_err(|e| CatalogError::parse(FILE, text, &e))?;
    let mut out: Vec<PackageCategory> = Vec::new();
    for c in file.category {
        if !is_name(&c.name) {
            return Err(CatalogError::invalid(FILE, &c.name, "bad category name"));
        }
        if out.iter().any(|o| o.name == c.name) {
            return Err(CatalogError::invalid(FILE, &c.name, "listed twice"));
        }
        if c.apt.is_empty() {
            return Err(CatalogError::invalid(FILE, &c.name, "lists no package"));
        }
        if let Some(bad) = c.apt.iter().find(|p| !is_package_name(p)) {
            return Err(CatalogError::invalid(
                FILE,
                &c.name,
                format!("'{bad}' is not a valid package name"),
            ));
        }
        out.push(PackageCategory {
            name: c.name,
            title: c.title,
            apt: c.apt,
        });
    }
    Ok(out)
}

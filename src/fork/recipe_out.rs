//! `fork --recipe-out`: the recipe that rebuilds a forked image from
//! scratch — the parent's recipe (from its image, or a BYOI recipe of the
//! parent) plus what the package managers installed in the sandbox.
//!
//! Edited with toml_edit so the parent recipe's comments and layout stay.

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use crate::inventory::Changes;

/// The recipe text: `parent_recipe` when the image carries one, else a
/// recipe with `base = parent_ref` (and the dev access layer), plus
/// `[packages] apt`, `[vscode] extensions`, and install steps for pip and
/// npm packages. Packages the sandbox removed, and apt sources it added, are
/// written as comments to act on by hand.
pub fn recipe_text(parent_recipe: Option<&str>, parent_ref: Option<&str>, c: &Changes) -> String {
    let mut doc = parent_recipe
        .and_then(|t| t.parse::<DocumentMut>().ok())
        .unwrap_or_else(|| {
            let mut doc = DocumentMut::new();
            let mut image = Table::new();
            image["base"] = value(parent_ref.unwrap_or("scratch"));
            image["dev_access"] = value(true);
            doc["image"] = Item::Table(image);
            doc
        });

    let apt: Vec<&str> = c
        .apt
        .delta
        .added
        .iter()
        .map(|p| p.name.as_str())
        .chain(c.apt.delta.changed.iter().map(|p| p.name.as_str()))
        .collect();
    if !apt.is_empty() {
        let packages = doc
            .entry("packages")
            .or_insert_with(|| Item::Table(Table::new()));
        if let Some(t) = packages.as_table_like_mut() {
            let list = t.entry("apt").or_insert(Item::Value(Array::new().into()));
            if let Some(arr) = list.as_array_mut() {
                for name in apt {
                    if !arr.iter().any(|v| v.as_str() == Some(name)) {
                        arr.push(name);
                    }
                }
            }
        }
    }
    let exts: Vec<String> = c
        .vscode_extensions
        .added
        .iter()
        .map(|e| format!("{}@{}", e.name, e.version))
        .chain(
            c.vscode_extensions
                .changed
                .iter()
                .map(|e| format!("{}@{}", e.name, e.to)),
        )
        .collect();
    if !exts.is_empty() {
        let vscode = doc
            .entry("vscode")
            .or_insert_with(|| Item::Table(Table::new()));
        if let Some(t) = vscode.as_table_like_mut() {
            let list = t
                .entry("extensions")
                .or_insert(Item::Value(Array::new().into()));
            if let Some(arr) = list.as_array_mut() {
                for e in exts {
                    arr.push(e);
                }
            }
        }
    }
    let pip: Vec<String> = c
        .pip
        .added
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version))
        .chain(
            c.pip
                .changed
                .iter()
                .map(|p| format!("{}=={}", p.name, p.to)),
        )
        .collect();
    let npm: Vec<String> = c
        .npm
        .added
        .iter()
        .map(|p| format!("{}@{}", p.name, p.version))
        .chain(c.npm.changed.iter().map(|p| format!("{}@{}", p.name, p.to)))
        .collect();
    let mut steps: Vec<(&str, String)> = Vec::new();
    if !pip.is_empty() {
        steps.push((
            "pip packages installed in the sandbox",
            format!(
                "python3 -m pip install --no-cache-dir --break-system-packages {}",
                pip.join(" ")
            ),
        ));
    }
    if !npm.is_empty() {
        steps.push((
            "npm packages installed in the sandbox",
            format!("npm install -g {}", npm.join(" ")),
        ));
    }
    if !steps.is_empty() {
        let item = doc
            .entry("steps")
            .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
        if let Some(aot) = item.as_array_of_tables_mut() {
            for (name, run) in steps {
                let mut t = Table::new();
                t["name"] = value(name);
                t["run"] = value(run);
                aot.push(t);
            }
        }
    }

    let mut text = String::from(
        "# Recipe of a boxwright fork: the parent's recipe plus what was installed in the sandbox.\n",
    );
    let notes: Vec<String> = c
        .apt
        .new_sources
        .iter()
        .map(|s| format!("# apt source added in the sandbox (add it in a step before [packages] needs it): {s}"))
        .chain(c.apt.delta.removed.iter().map(|p| format!("# apt package removed in the sandbox: {} {}", p.name, p.version)))
        .chain(c.pip.removed.iter().map(|p| format!("# pip package removed in the sandbox: {} {}", p.name, p.version)))
        .chain(c.npm.removed.iter().map(|p| format!("# npm package removed in the sandbox: {} {}", p.name, p.version)))
        .collect();
    for n in notes {
        text.push_str(&crate::quote::excerpt_n(&n, 400));
        text.push('\n');
    }
    text.push_str(&doc.to_string());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Changed, Versioned};

    fn v(name: &str, version: &str) -> Versioned {
        Versioned {
            name: name.into(),
            version: version.into(),
        }
    }

    #[test]
    fn a_parent_recipe_gains_the_installed_packages_and_keeps_its_comments() {
        let mut c = Changes::default();
        c.apt.delta.added = vec![v("cowsay", "3.03")];
        c.apt.delta.changed = vec![Changed {
            name: "jq".into(),
            from: "1.6".into(),
            to: "1.7".into(),
        }];
        c.pip.added = vec![v("six", "1.16.0")];
        c.npm.added = vec![v("is-number", "7.0.0")];
        c.vscode_extensions.added = vec![v("ms-python.python", "2025.1.0")];
        let parent = "# my toolbox\n[image]\nbase = \"rootfs:base.tar\"\n\n[packages]\napt = [\"jq\"]\n\n[[steps]]\nrun = \"echo hi\"\n";
        let text = recipe_text(Some(parent), None, &c);
        assert!(text.contains("# my toolbox"), "{text}");
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let apt: Vec<&str> = doc["packages"]["apt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(apt, ["jq", "cowsay"]);
        assert_eq!(
            doc["vscode"]["extensions"].as_array().unwrap()[0].as_str(),
            Some("ms-python.python@2025.1.0")
        );
        let steps = doc["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        assert!(steps[1]["run"].as_str().unwrap().ends_with("six==1.16.0"));
        assert_eq!(
            steps[2]["run"].as_str(),
            Some("npm install -g is-number@7.0.0")
        );
    }

    #[test]
    fn without_a_parent_recipe_the_parent_image_is_the_base() {
        let mut c = Changes::default();
        c.apt.delta.added = vec![v("cowsay", "3.03")];
        let text = recipe_text(None, Some("127.0.0.1:5000/team/box:1"), &c);
        let doc: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            doc["image"]["base"].as_str(),
            Some("127.0.0.1:5000/team/box:1")
        );
        assert_eq!(doc["packages"]["apt"].as_array().unwrap().len(), 1);
    }
}

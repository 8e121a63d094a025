//! The toolbox sections: `[runtimes]`, `[packages]`, `[ai_tools]`, `[vscode]`
//! and `[dev_access]`, each checked against the catalog as it is read.
//!
//! A recipe is a *toolbox recipe* when it has a template, `dev_access`, or any
//! of these sections. Toolbox recipes get the dev access layer unless
//! `dev_access = false`; plain recipes (only `[image] base`, `[[steps]]`,
//! `[config]`) build exactly their steps, as before.

use std::path::{Path, PathBuf};

use toml::de::DeValue;

use super::error::{ExtensionError, RecipeError};
use super::reader::{self, Doc, Fields, Keys, Value};
use crate::catalog::{Catalog, is_package_name, one_of};

/// The toolbox part of a recipe. Empty for plain recipes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toolbox {
    /// The recipe uses the toolbox format.
    pub enabled: bool,
    /// Build the dev access layer.
    pub dev_access: bool,
    /// Dev access components left out (`[dev_access] skip`).
    pub skip: Vec<String>,
    /// `[runtimes]`, in the order written.
    pub runtimes: Vec<RuntimeChoice>,
    /// `[packages] apt`.
    pub apt: Vec<String>,
    /// `[packages] categories`.
    pub categories: Vec<String>,
    /// `[ai_tools] install`.
    pub ai_tools: Vec<String>,
    /// `[ai_tools] custom`.
    pub custom_tools: Vec<CustomTool>,
    /// `[vscode] extensions`.
    pub extensions: Vec<Extension>,
    /// Lines of the sections, for messages about them (0 when absent).
    pub lines: SectionLines,
}

/// Where each toolbox section starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SectionLines {
    pub dev_access: usize,
    pub runtimes: usize,
    pub packages: usize,
    pub ai_tools: usize,
    pub vscode: usize,
}

/// `NAME = "VERSION"` in `[runtimes]`, validated against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeChoice {
    pub name: String,
    pub version: String,
    pub line: usize,
}

/// `{ name = "aider", run = "pip install aider-chat" }` in `[ai_tools] custom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomTool {
    pub name: String,
    pub run: String,
    pub line: usize,
}

/// A VS Code extension for code-server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// `publisher.name@version`, from code-server's marketplace (Open VSX).
    Marketplace { id: String, version: String },
    /// A `.vsix` file shipped with the recipe, resolved against its directory.
    Vsix { path: PathBuf, as_written: String },
}

impl Extension {
    /// As written in the recipe.
    pub fn describe(&self) -> String {
        match self {
            Extension::Marketplace { id, version } => format!("{id}@{version}"),
            Extension::Vsix { as_written, .. } => as_written.clone(),
        }
    }
}

const TOOLBOX_SECTIONS: [&str; 5] = ["runtimes", "packages", "ai_tools", "vscode", "dev_access"];

/// Reads the toolbox sections of the top-level table. `template` and
/// `dev_access` come from `[image]`.
pub(super) fn parse_toolbox(
    doc: &Doc<'_>,
    fields: &Fields<'_, '_>,
    has_template: bool,
    dev_access: Option<bool>,
    dir: &Path,
) -> Result<Toolbox, RecipeError> {
    let enabled = has_template
        || dev_access.is_some()
        || TOOLBOX_SECTIONS.iter().any(|s| fields.get(s).is_some());
    let mut tb = Toolbox {
        enabled,
        dev_access: dev_access.unwrap_or(enabled),
        ..Toolbox::default()
    };
    if !enabled {
        return Ok(tb);
    }
    let catalog = Catalog::builtin()?;
    if let Some(v) = fields.get("dev_access") {
        tb.lines.dev_access = doc.line(v.span().start);
        tb.skip = parse_dev_access(doc, v, catalog)?;
        if !tb.dev_access && !tb.skip.is_empty() {
            return Err(doc.invalid(
                &v.span(),
                "dev_access",
                "'skip' has no effect with dev_access = false: remove one of them",
            ));
        }
    }
    if let Some(v) = fields.get("runtimes") {
        tb.lines.runtimes = doc.line(v.span().start);
        tb.runtimes = parse_runtimes(doc, v, catalog)?;
    }
    if let Some(v) = fields.get("packages") {
        tb.lines.packages = doc.line(v.span().start);
        (tb.apt, tb.categories) = parse_packages(doc, v, catalog)?;
    }
    if let Some(v) = fields.get("ai_tools") {
        tb.lines.ai_tools = doc.line(v.span().start);
        (tb.ai_tools, tb.custom_tools) = parse_ai_tools(doc, v, catalog)?;
    }
    if let Some(v) = fields.get("vscode") {
        tb.lines.vscode = doc.line(v.span().start);
        tb.extensions = parse_vscode(doc, v, dir)?;
        let no_code_server = !tb.dev_access || tb.skip.iter().any(|s| s == "code-server");
        if no_code_server && !tb.extensions.is_empty() {
            return Err(doc.invalid(
                &v.span(),
                "vscode",
                "extensions are installed into code-server, which this recipe leaves out (dev_access = false or skip = [\"code-server\"])",
            ));
        }
    }
    Ok(tb)
}

const DEV_ACCESS_KEYS: Keys = Keys {
    known: &["skip"],
    later: &[],
};

fn parse_dev_access(
    doc: &Doc<'_>,
    value: &Value<'_>,
    catalog: &Catalog,
) -> Result<Vec<String>, RecipeError> {
    let table = reader::table(doc, value, "", "dev_access", "written [dev_access]")?;
    let fields = doc.fields(table, value.span(), "dev_access", &DEV_ACCESS_KEYS)?;
    let Some(skip) = fields.get("skip") else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = catalog.dev_access.iter().map(|c| c.name.as_str()).collect();
    let mut out: Vec<String> = Vec::new();
    for (i, name) in reader::string_list(doc, skip, "dev_access", "skip")?
        .into_iter()
        .enumerate()
    {
        if !names.contains(&name.as_str()) {
            return Err(doc.invalid(
                &item_span(skip, i),
                "dev_access",
                format!(
                    "unknown component '{name}' in 'skip' (expected one of: {})",
                    names.join(", ")
                ),
            ));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn parse_runtimes(
    doc: &Doc<'_>,
    value: &Value<'_>,
    catalog: &Catalog,
) -> Result<Vec<RuntimeChoice>, RecipeError> {
    let table = reader::table(
        doc,
        value,
        "",
        "runtimes",
        "of runtime versions, such as python = \"3.12\"",
    )?;
    let mut out = Vec::new();
    for (key, v) in reader::in_file_order(table) {
        let name = key.get_ref().as_ref();
        let Some(runtime) = catalog.runtime(name) else {
            return Err(doc.invalid(
                &key.span(),
                "runtimes",
                format!(
                    "unknown runtime '{name}' (expected one of: {})",
                    catalog.runtime_names().join(", ")
                ),
            ));
        };
        let DeValue::String(version) = v.get_ref() else {
            return Err(doc.invalid(
                &v.span(),
                "runtimes",
                format!(
                    "'{name}' must be a version string such as \"{}\" (quote it: 3.10 as a number is 3.1)",
                    runtime.default
                ),
            ));
        };
        let version: &str = version.as_ref();
        let Some(known) = runtime.version(version) else {
            return Err(doc.invalid(
                &v.span(),
                "runtimes",
                format!(
                    "{} version '{version}' is not known; known versions: {}",
                    runtime.name,
                    runtime.version_names().join(", ")
                ),
            ));
        };
        if let Some(why) = &known.unavailable {
            return Err(doc.invalid(
                &v.span(),
                "runtimes",
                format!("{} {version} cannot be installed: {why}", runtime.name),
            ));
        }
        out.push(RuntimeChoice {
            name: name.to_string(),
            version: version.to_string(),
            line: doc.line(key.span().start),
        });
    }
    Ok(out)
}

const PACKAGES_KEYS: Keys = Keys {
    known: &["apt", "categories"],
    later: &[],
};

fn parse_packages(
    doc: &Doc<'_>,
    value: &Value<'_>,
    catalog: &Catalog,
) -> Result<(Vec<String>, Vec<String>), RecipeError> {
    let table = reader::table(doc, value, "", "packages", "written [packages]")?;
    let fields = doc.fields(table, value.span(), "packages", &PACKAGES_KEYS)?;
    let mut apt = Vec::new();
    if let Some(v) = fields.get("apt") {
        for (i, p) in reader::string_list(doc, v, "packages", "apt")?
            .into_iter()
            .enumerate()
        {
            if !is_apt_spec(&p) {
                return Err(doc.invalid(
                    &item_span(v, i),
                    "packages",
                    format!(
                        "'{p}' is not an apt package name (lower-case letters, digits, '+', '-', '.', optionally =VERSION)"
                    ),
                ));
            }
            if !apt.contains(&p) {
                apt.push(p);
            }
        }
    }
    let mut categories = Vec::new();
    if let Some(v) = fields.get("categories") {
        let names: Vec<&str> = catalog.categories.iter().map(|c| c.name.as_str()).collect();
        for (i, c) in reader::string_list(doc, v, "packages", "categories")?
            .into_iter()
            .enumerate()
        {
            if catalog.category(&c).is_none() {
                return Err(doc.invalid(
                    &item_span(v, i),
                    "packages",
                    format!(
                        "unknown package category '{c}' (expected one of: {})",
                        names.join(", ")
                    ),
                ));
            }
            if !categories.contains(&c) {
                categories.push(c);
            }
        }
    }
    Ok((apt, categories))
}

/// `name` or `name=version` (apt's syntax for a pinned version).
fn is_apt_spec(spec: &str) -> bool {
    match spec.split_once('=') {
        None => is_package_name(spec),
        Some((name, version)) => {
            is_package_name(name)
                && !version.is_empty()
                && version
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.~:".contains(&b))
        }
    }
}

const AI_TOOLS_KEYS: Keys = Keys {
    known: &["install", "custom"],
    later: &[],
};

const CUSTOM_KEYS: Keys = Keys {
    known: &["name", "run"],
    later: &[],
};

fn parse_ai_tools(
    doc: &Doc<'_>,
    value: &Value<'_>,
    catalog: &Catalog,
) -> Result<(Vec<String>, Vec<CustomTool>), RecipeError> {
    let table = reader::table(doc, value, "", "ai_tools", "written [ai_tools]")?;
    let fields = doc.fields(table, value.span(), "ai_tools", &AI_TOOLS_KEYS)?;
    let mut install = Vec::new();
    if let Some(v) = fields.get("install") {
        let names: Vec<&str> = catalog.tools.iter().map(|t| t.name.as_str()).collect();
        for (i, name) in reader::string_list(doc, v, "ai_tools", "install")?
            .into_iter()
            .enumerate()
        {
            let Some(tool) = catalog.tool(&name) else {
                return Err(doc.invalid(
                    &item_span(v, i),
                    "ai_tools",
                    format!(
                        "unknown AI tool '{name}' (expected one of: {}; anything else goes in custom = [{{ name, run }}])",
                        one_of(&names)
                    ),
                ));
            };
            if let Some(why) = &tool.unavailable {
                return Err(doc.invalid(
                    &item_span(v, i),
                    "ai_tools",
                    format!("{name} cannot be installed from the catalog: {why}"),
                ));
            }
            if !install.contains(&name) {
                install.push(name);
            }
        }
    }
    let mut custom: Vec<CustomTool> = Vec::new();
    if let Some(v) = fields.get("custom") {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(doc.invalid(
                &v.span(),
                "ai_tools",
                "'custom' must be a list of tables, such as [{ name = \"aider\", run = \"pip install aider-chat\" }]",
            ));
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("ai_tools.custom[{i}]");
            let t = reader::table(
                doc,
                item,
                "ai_tools",
                &format!("custom[{i}]"),
                "with 'name' and 'run'",
            )?;
            let f = doc.fields(t, item.span(), &path, &CUSTOM_KEYS)?;
            let name = reader::non_empty_string(doc, f.require(doc, "name")?, &path, "name")?;
            let run = reader::non_empty_string(doc, f.require(doc, "run")?, &path, "run")?;
            if custom.iter().any(|c| c.name == name) || install.iter().any(|n| n == name) {
                return Err(doc.invalid(
                    &item.span(),
                    &path,
                    format!("tool '{name}' is listed twice"),
                ));
            }
            custom.push(CustomTool {
                name: name.to_string(),
                run: run.to_string(),
                line: doc.line(item.span().start),
            });
        }
    }
    Ok((install, custom))
}

const VSCODE_KEYS: Keys = Keys {
    known: &["extensions"],
    later: &[],
};

fn parse_vscode(
    doc: &Doc<'_>,
    value: &Value<'_>,
    dir: &Path,
) -> Result<Vec<Extension>, RecipeError> {
    let table = reader::table(doc, value, "", "vscode", "written [vscode]")?;
    let fields = doc.fields(table, value.span(), "vscode", &VSCODE_KEYS)?;
    let Some(v) = fields.get("extensions") else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Extension> = Vec::new();
    for (i, text) in reader::string_list(doc, v, "vscode", "extensions")?
        .into_iter()
        .enumerate()
    {
        let ext = parse_extension(&text, dir).map_err(|why| {
            doc.invalid(
                &item_span(v, i),
                "vscode",
                format!("extension '{text}' {why}"),
            )
        })?;
        if !out.contains(&ext) {
            out.push(ext);
        }
    }
    Ok(out)
}

/// `publisher.name@1.2.3` or `path/to/file.vsix`; the error completes
/// "extension 'X' ...".
fn parse_extension(text: &str, dir: &Path) -> Result<Extension, ExtensionError> {
    if text.ends_with(".vsix") {
        if text.starts_with('/') || text.split('/').any(|p| p == "..") {
            return Err(ExtensionError::VsixOutside);
        }
        return Ok(Extension::Vsix {
            path: dir.join(text),
            as_written: text.to_string(),
        });
    }
    let Some((id, version)) = text.split_once('@') else {
        return Err(ExtensionError::Unpinned);
    };
    let id_ok = id.split_once('.').is_some_and(|(publisher, name)| {
        let part = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        part(publisher) && part(name)
    });
    if !id_ok {
        return Err(ExtensionError::Id);
    }
    if !crate::catalog::is_exact_version(version) {
        return Err(ExtensionError::Version(version.to_string()));
    }
    Ok(Extension::Marketplace {
        id: id.to_string(),
        version: version.to_string(),
    })
}

/// The span of item `i` of a list, or the list's own when it has no such item.
fn item_span(list: &Value<'_>, i: usize) -> std::ops::Range<usize> {
    match list.get_ref() {
        DeValue::Array(items) => items.get(i).map_or(list.span(), |item| item.span()),
        _ => list.span(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_specs() {
        for good in [
            "jq",
            "g++",
            "libc6-dev",
            "python3.11",
            "jq=1.6-2.1",
            "vim=2:9.0.1378-2",
        ] {
            assert!(is_apt_spec(good), "{good}");
        }
        for bad in ["", "Jq", "-x", "jq=", "jq bash", "jq;rm", "a=b c"] {
            assert!(!is_apt_spec(bad), "{bad}");
        }
    }

    #[test]
    fn extensions() {
        let dir = Path::new("/r");
        assert_eq!(
            parse_extension("ms-python.python@2025.1.0", dir),
            Ok(Extension::Marketplace {
                id: "ms-python.python".into(),
                version: "2025.1.0".into()
            })
        );
        assert_eq!(
            parse_extension("vendor/local.vsix", dir),
            Ok(Extension::Vsix {
                path: "/r/vendor/local.vsix".into(),
                as_written: "vendor/local.vsix".into()
            })
        );
        for bad in [
            "ms-python.python",
            "python@1.0.0",
            "ms-python.python@latest",
            "ms-python.python@1.0",
            "/abs.vsix",
            "../up.vsix",
            "a.b@1.0.0;x",
        ] {
            assert!(parse_extension(bad, dir).is_err(), "{bad}");
        }
    }
}

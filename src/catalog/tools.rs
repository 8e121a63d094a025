//! AI coding tools (`ai-tools.toml`) and the dev access layer's components
//! (`dev-access.toml`).

use std::collections::BTreeMap;

use super::artifact::ArtifactSpec;
use super::error::CatalogError;
use super::raw::{DevAccessFile, ToolsFile};
use super::runtime::{is_name, is_package_name};

/// An npm package pinned to a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmPackage {
    pub name: String,
    pub version: String,
}

impl NpmPackage {
    /// `name@version`, as `npm install` takes it.
    pub fn spec(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// An AI coding CLI, `[ai_tools] install = ["NAME"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiTool {
    pub name: String,
    pub title: String,
    pub npm: Option<NpmPackage>,
    /// The command it puts on PATH.
    pub bin: String,
    /// The lowest Node.js major version it declares, when it declares one.
    pub node: Option<u32>,
    /// Why it cannot be installed from the catalog.
    pub unavailable: Option<String>,
}

/// A component of the dev access layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevComponent {
    pub name: String,
    pub title: String,
    /// The TCP port it serves and the image exposes.
    pub port: Option<u16>,
    /// Packages per package manager (`apt`, `apk`, `dnf`).
    pub packages: BTreeMap<String, Vec<String>>,
    /// Shell that installs `$ARTIFACT`.
    pub install: Option<String>,
    pub artifact: Option<ArtifactSpec>,
    /// The AI tool it installs (Claude Code).
    pub tool: Option<String>,
}

const TOOLS: &str = "ai-tools.toml";
const DEV: &str = "dev-access.toml";

/// The package managers the dev access layer knows.
pub const PACKAGE_MANAGERS: [&str; 3] = ["apt", "apk", "dnf"];

pub(crate) fn parse_tools(text: &str) -> Result<Vec<AiTool>, CatalogError> {
    let file: ToolsFile = toml::from_str(text).map_err(|e| CatalogError::parse(TOOLS, text, &e))?;
    let mut out: Vec<AiTool> = Vec::new();
    for t in file.tool {
        if !is_name(&t.name) || t.name == "custom" {
            return Err(CatalogError::invalid(
                TOOLS,
                &t.name,
                "bad tool name ('custom' is reserved)",
            ));
        }
        if out.iter().any(|o| o.name == t.name) {
            return Err(CatalogError::invalid(TOOLS, &t.name, "listed twice"));
        }
        let npm = match (t.npm, t.version) {
            (Some(name), Some(version)) => {
                if !is_npm_name(&name) || !is_exact_version(&version) {
                    return Err(CatalogError::invalid(
                        TOOLS,
                        &t.name,
                        format!("'{name}@{version}' is not an npm package at an exact version"),
                    ));
                }
                Some(NpmPackage { name, version })
            }
            (None, None) => None,
            _ => {
                return Err(CatalogError::invalid(
                    TOOLS,
                    &t.name,
                    "'npm' and 'version' go together",
                ));
            }
        };
        if npm.is_none() == t.unavailable.is_none() {
            return Err(CatalogError::invalid(
                TOOLS,
                &t.name,
                "a tool is either an npm package or 'unavailable' with the reason",
            ));
        }
        out.push(AiTool {
            name: t.name,
            title: t.title,
            npm,
            bin: t.bin,
            node: t.node,
            unavailable: t.unavailable,
        });
    }
    Ok(out)
}

pub(crate) fn parse_dev_access(
    text: &str,
    tools: &[AiTool],
) -> Result<Vec<DevComponent>, CatalogError> {
    let file: DevAccessFile =
        toml::from_str(text).map_err(|e| CatalogError::parse(DEV, text, &e))?;
    let mut out: Vec<DevComponent> = Vec::new();
    for c in file.component {
        let name = c.name;
        if !is_name(&name) {
            return Err(CatalogError::invalid(DEV, &name, "bad component name"));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(CatalogError::invalid(DEV, &name, "listed twice"));
        }
        for (pm, packages) in &c.packages {
            if !PACKAGE_MANAGERS.contains(&pm.as_str()) {
                return Err(CatalogError::invalid(
                    DEV,
                    &name,
                    format!("unknown package manager '{pm}' (expected apt, apk or dnf)"),
                ));
            }
            if let Some(bad) = packages.iter().find(|p| !is_package_name(p)) {
                return Err(CatalogError::invalid(
                    DEV,
                    &name,
                    format!("'{bad}' is not a valid package name"),
                ));
            }
        }
        let artifact = c
            .artifact
            .map(|a| ArtifactSpec::from_raw(a, &name, DEV, &name))
            .transpose()?;
        if artifact.is_some() != c.install.is_some() {
            return Err(CatalogError::invalid(
                DEV,
                &name,
                "'install' and 'artifact' go together",
            ));
        }
        if let Some(tool) = &c.tool {
            let found = tools.iter().find(|t| &t.name == tool);
            if found.is_none_or(|t| t.npm.is_none()) {
                return Err(CatalogError::invalid(
                    DEV,
                    &name,
                    format!("tool '{tool}' is not an npm tool of ai-tools.toml"),
                ));
            }
        }
        let ways = usize::from(!c.packages.is_empty())
            + usize::from(artifact.is_some())
            + usize::from(c.tool.is_some());
        if ways != 1 {
            return Err(CatalogError::invalid(
                DEV,
                &name,
                "a component is installed by exactly one of: packages, an artifact, a tool",
            ));
        }
        out.push(DevComponent {
            name,
            title: c.title,
            port: c.port,
            packages: c.packages,
            install: c.install,
            artifact,
            tool: c.tool,
        });
    }
    Ok(out)
}

/// `name` or `@scope/name`, npm's lower-case rule.
fn is_npm_name(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
    };
    match s.strip_prefix('@') {
        Some(rest) => rest
            .split_once('/')
            .is_some_and(|(scope, name)| part(scope) && part(name)),
        None => part(s),
    }
}

/// `1.2.3` (optionally `-pre`): an exact version, never a range.
pub(crate) fn is_exact_version(v: &str) -> bool {
    let core = v.split_once('-').map_or(v, |(c, _)| c);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

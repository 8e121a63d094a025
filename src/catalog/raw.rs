//! The catalog files as written (serde), before validation. Unknown keys are
//! errors so that a typo in the data cannot silently drop a setting.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuntimesFile {
    pub runtime: Vec<RawRuntime>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRuntime {
    pub name: String,
    pub title: String,
    pub default: String,
    #[serde(default)]
    pub path: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub check: String,
    pub version: Vec<RawVersion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVersion {
    pub version: String,
    #[serde(default)]
    pub distro: BTreeMap<String, Vec<String>>,
    pub install: Option<String>,
    pub artifact: Option<RawArtifact>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub unavailable: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArtifact {
    /// Defaults to the runtime's or component's name.
    pub component: Option<String>,
    pub version: String,
    pub amd64: Option<RawFile>,
    pub arm64: Option<RawFile>,
    /// One file for every architecture (sources, jars, zips of JVM code).
    pub any: Option<RawFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub file: String,
    pub url: String,
    pub sha256: Option<String>,
    pub sha512: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackagesFile {
    pub category: Vec<RawCategory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCategory {
    pub name: String,
    pub title: String,
    pub apt: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolsFile {
    pub tool: Vec<RawTool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTool {
    pub name: String,
    pub title: String,
    pub npm: Option<String>,
    pub version: Option<String>,
    pub bin: String,
    pub node: Option<u32>,
    pub unavailable: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DevAccessFile {
    pub component: Vec<RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawComponent {
    pub name: String,
    pub title: String,
    pub port: Option<u16>,
    /// Package names per package manager: `apt`, `apk`, `dnf`.
    #[serde(default)]
    pub packages: BTreeMap<String, Vec<String>>,
    pub install: Option<String>,
    pub artifact: Option<RawArtifact>,
    /// An AI tool of the catalog that this component installs.
    pub tool: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplatesFile {
    pub template: Vec<RawTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    pub name: String,
    pub title: String,
    pub description: String,
    pub file: String,
}

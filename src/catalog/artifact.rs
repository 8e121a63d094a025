//! Pinned upstream files: where each comes from, per architecture, and the
//! checksum it must have.

use std::fmt;

use super::error::CatalogError;
use super::raw::{RawArtifact, RawFile};

/// A CPU architecture, in OCI/Go naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// The architecture of this machine, which is the one images are built for.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::Amd64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The digest a downloaded file must have. SHA-256 wherever upstream
/// publishes it; SHA-512 where that is all upstream publishes (.NET).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// Lower-case hex, 64 digits.
    Sha256(String),
    /// Lower-case hex, 128 digits.
    Sha512(String),
}

impl Checksum {
    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Sha256(_) => "sha256",
            Checksum::Sha512(_) => "sha512",
        }
    }

    pub fn hex(&self) -> &str {
        match self {
            Checksum::Sha256(h) | Checksum::Sha512(h) => h,
        }
    }
}

impl fmt::Display for Checksum {
    /// `sha256:HEX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm(), self.hex())
    }
}

/// One pinned file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// File name, also its name in a mirror and inside the step.
    pub file: String,
    /// Where upstream publishes it (https).
    pub url: String,
    pub checksum: Checksum,
}

/// An upstream artifact: a component's file at a version, per architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactSpec {
    /// Name used in mirror paths: `MIRROR/<component>/<version>/<file>`.
    pub component: String,
    /// Upstream's exact version, such as `20.11.1`.
    pub version: String,
    pub amd64: Option<ArtifactFile>,
    pub arm64: Option<ArtifactFile>,
    /// The same file for every architecture.
    pub any: Option<ArtifactFile>,
}

impl ArtifactSpec {
    /// The file for `arch`, if upstream has one.
    pub fn for_arch(&self, arch: Arch) -> Option<&ArtifactFile> {
        let specific = match arch {
            Arch::Amd64 => self.amd64.as_ref(),
            Arch::Arm64 => self.arm64.as_ref(),
        };
        specific.or(self.any.as_ref())
    }

    /// Validates `raw` as the artifact of catalog entry `entry` in `file`.
    pub(crate) fn from_raw(
        raw: RawArtifact,
        default_component: &str,
        file: &str,
        entry: &str,
    ) -> Result<ArtifactSpec, CatalogError> {
        let component = raw
            .component
            .unwrap_or_else(|| default_component.to_string());
        for (what, value) in [("component", &component), ("version", &raw.version)] {
            if !is_path_segment(value) {
                return Err(CatalogError::invalid(
                    file,
                    entry,
                    format!("artifact {what} '{value}' must be usable as a path segment"),
                ));
            }
        }
        let convert = |f: Option<RawFile>| f.map(|f| artifact_file(f, file, entry)).transpose();
        let spec = ArtifactSpec {
            component,
            version: raw.version,
            amd64: convert(raw.amd64)?,
            arm64: convert(raw.arm64)?,
            any: convert(raw.any)?,
        };
        if spec.any.is_some() && (spec.amd64.is_some() || spec.arm64.is_some()) {
            return Err(CatalogError::invalid(
                file,
                entry,
                "an artifact has either 'any' or per-architecture files, not both",
            ));
        }
        if spec.for_arch(Arch::Amd64).is_none() {
            return Err(CatalogError::invalid(
                file,
                entry,
                "an artifact needs at least an amd64 (or 'any') file",
            ));
        }
        Ok(spec)
    }
}

fn artifact_file(raw: RawFile, file: &str, entry: &str) -> Result<ArtifactFile, CatalogError> {
    if !is_path_segment(&raw.file) {
        return Err(CatalogError::invalid(
            file,
            entry,
            format!(
                "artifact file name '{}' must be a plain file name",
                raw.file
            ),
        ));
    }
    if !raw.url.starts_with("https://") || raw.url.chars().any(char::is_whitespace) {
        return Err(CatalogError::invalid(
            file,
            entry,
            format!("artifact URL '{}' must be an https URL", raw.url),
        ));
    }
    let checksum = match (raw.sha256, raw.sha512) {
        (Some(h), None) => Checksum::Sha256(hex_of(&h, 64, file, entry)?),
        (None, Some(h)) => Checksum::Sha512(hex_of(&h, 128, file, entry)?),
        _ => {
            return Err(CatalogError::invalid(
                file,
                entry,
                format!(
                    "artifact '{}' needs exactly one of sha256 or sha512 (an unverified download is never installed)",
                    raw.file
                ),
            ));
        }
    };
    Ok(ArtifactFile {
        file: raw.file,
        url: raw.url,
        checksum,
    })
}

fn hex_of(text: &str, digits: usize, file: &str, entry: &str) -> Result<String, CatalogError> {
    let ok = text.len() == digits
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok {
        return Err(CatalogError::invalid(
            file,
            entry,
            format!("checksum '{text}' must be {digits} lower-case hex digits"),
        ));
    }
    Ok(text.to_string())
}

/// Non-empty, no `/`, not `.` or `..`, printable without blanks.
pub(crate) fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains('/')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

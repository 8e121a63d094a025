//! The little of manifests and indexes that moving images needs: what kind a
//! document is, its config and layers, and which child of an index fits a
//! platform. The full types belong to the `image` module; these read only,
//! so that the original bytes are kept and pushed unchanged.

use serde::Deserialize;

use crate::media::{self, Descriptor, Platform};
use crate::registry::error::Malformed;

/// The media types a manifest GET accepts.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A parsed manifest or index.
#[derive(Clone, Debug, PartialEq)]
pub enum ManifestKind {
    /// An image manifest: config and layers.
    Image {
        config: Box<Descriptor>,
        layers: Vec<Descriptor>,
    },
    /// An index / manifest list: one manifest per platform.
    Index { manifests: Vec<Descriptor> },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// Parses `bytes` served with `content_type`. Returns the kind and the media
/// type to record (the document's own, else the served one, else inferred).
pub(crate) fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<(ManifestKind, String), Malformed> {
    let doc: Doc = serde_json::from_slice(bytes).map_err(Malformed::NotJsonManifest)?;
    let served = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    match doc.schema_version {
        Some(2) => {}
        Some(1) => {
            return Err(Malformed::SchemaV1);
        }
        other => return Err(Malformed::SchemaVersion(other)),
    }
    let media_type = doc.media_type.clone().or(served.clone());
    if let (Some(own), Some(served)) = (&doc.media_type, &served)
        && own != served
    {
        return Err(Malformed::MediaTypeConflict {
            served: served.clone(),
            own: own.clone(),
        });
    }
    let is_index = match media_type.as_deref() {
        Some(media::OCI_INDEX | media::DOCKER_MANIFEST_LIST) => true,
        Some(media::OCI_MANIFEST | media::DOCKER_MANIFEST) => false,
        Some(other) => return Err(Malformed::MediaType(other.to_string())),
        None => doc.manifests.is_some(),
    };
    if is_index {
        if doc.config.is_some() || doc.layers.is_some() {
            return Err(Malformed::IndexWithImageFields);
        }
        let manifests = doc.manifests.ok_or(Malformed::IndexWithoutManifests)?;
        Ok((
            ManifestKind::Index { manifests },
            media_type.unwrap_or_else(|| media::OCI_INDEX.to_string()),
        ))
    } else {
        if doc.manifests.is_some() {
            return Err(Malformed::ImageWithManifests);
        }
        let config = doc.config.ok_or(Malformed::ImageWithoutConfig)?;
        let layers = doc.layers.ok_or(Malformed::ImageWithoutLayers)?;
        Ok((
            ManifestKind::Image {
                config: Box::new(config),
                layers,
            },
            media_type.unwrap_or_else(|| media::OCI_MANIFEST.to_string()),
        ))
    }
}

/// The platform this process runs on, in OCI terms.
pub fn host_platform() -> Platform {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        other => (other, None),
    };
    Platform {
        architecture: arch.to_string(),
        os: std::env::consts::OS.to_string(),
        os_version: None,
        os_features: None,
        variant: variant.map(str::to_string),
    }
}

/// A `--platform` value that is not `os/arch[/variant]` (the text as given).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("platform '{0}' must be os/arch[/variant], e.g. linux/arm64/v8")]
pub struct PlatformError(pub String);

/// Parses `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> Result<Platform, PlatformError> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(PlatformError(s.to_string()));
    }
    Ok(Platform {
        os: parts[0].to_string(),
        architecture: parts[1].to_string(),
        os_version: None,
        os_features: None,
        variant: parts.get(2).map(|v| v.to_string()),
    })
}

/// `os/arch[/variant]`.
pub fn platform_string(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The index entry for `wanted`: same os and architecture, and the variant
/// if one is wanted (arm64 without a variant matches v8). Attestation
/// manifests (`unknown/unknown`) never match.
pub(crate) fn select<'a>(manifests: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    let norm_variant = |arch: &str, v: Option<&str>| -> Option<String> {
        match (arch, v) {
            ("arm64", None) => Some("v8".into()),
            (_, v) => v.map(str::to_string),
        }
    };
    let want_v = norm_variant(&wanted.architecture, wanted.variant.as_deref());
    let candidates = manifests.iter().filter(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == wanted.os && p.architecture == wanted.architecture)
    });
    let mut fallback = None;
    for d in candidates {
        let Some(p) = d.platform.as_ref() else {
            continue;
        };
        let have_v = norm_variant(&p.architecture, p.variant.as_deref());
        if have_v == want_v {
            return Some(d);
        }
        // Wanting no particular variant accepts any; keep the first.
        if wanted.variant.is_none() && fallback.is_none() {
            fallback = Some(d);
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn entry(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(
            media::OCI_MANIFEST,
            Digest::of(format!("{os}{arch}{variant:?}").as_bytes()),
            1,
        );
        d.platform = Some(Platform {
            os: os.into(),
            architecture: arch.into(),
            os_version: None,
            os_features: None,
            variant: variant.map(str::to_string),
        });
        d
    }

    #[test]
    fn selects_platforms() {
        let list = vec![
            entry("linux", "amd64", None),
            entry("linux", "arm", Some("v6")),
            entry("linux", "arm", Some("v7")),
            entry("linux", "arm64", Some("v8")),
            entry("unknown", "unknown", None),
        ];
        let pick = |s: &str| {
            select(&list, &parse_platform(s).unwrap()).map(|d| d.platform.clone().unwrap())
        };
        assert_eq!(pick("linux/amd64").unwrap().architecture, "amd64");
        assert_eq!(pick("linux/arm/v7").unwrap().variant.as_deref(), Some("v7"));
        assert_eq!(pick("linux/arm").unwrap().variant.as_deref(), Some("v6"));
        assert_eq!(pick("linux/arm64").unwrap().variant.as_deref(), Some("v8"));
        assert!(pick("linux/s390x").is_none());
        assert!(pick("linux/arm/v5").is_none());
        assert!(parse_platform("linux").is_err());
        assert!(parse_platform("linux//x").is_err());
        assert_eq!(
            platform_string(&parse_platform("linux/arm64/v8").unwrap()),
            "linux/arm64/v8"
        );
        assert_eq!(host_platform().os, "linux");
    }

    #[test]
    fn parses_and_refuses_documents() {
        let d = Digest::of(b"c");
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{d}","size":1}},"layers":[]}}"#,
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG
        );
        let (k, mt) = parse(m.as_bytes(), Some(media::DOCKER_MANIFEST)).unwrap();
        assert_eq!(mt, media::DOCKER_MANIFEST);
        assert!(matches!(k, ManifestKind::Image { ref layers, .. } if layers.is_empty()));
        // OCI manifests may omit mediaType: the served type decides.
        let m2 = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{d}","size":1}},"layers":[]}}"#
        );
        assert_eq!(
            parse(m2.as_bytes(), Some(media::OCI_MANIFEST)).unwrap().1,
            media::OCI_MANIFEST
        );
        for (bad, needle) in [
            ("{", "not a JSON"),
            (r#"{"schemaVersion":1}"#, "schema 1"),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
                "without 'config'",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
                "without 'manifests'",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"text/html"}"#,
                "unsupported media type",
            ),
            (
                r#"{"schemaVersion":2,"config":{"digest":"sha256:zz"}}"#,
                "not a JSON",
            ),
        ] {
            let e = parse(bad.as_bytes(), None).unwrap_err();
            assert!(e.to_string().contains(needle), "{bad}: {e}");
        }
        let e = parse(m.as_bytes(), Some(media::OCI_INDEX)).unwrap_err();
        assert!(matches!(e, Malformed::MediaTypeConflict { .. }), "{e}");
        assert!(e.to_string().contains("served as"), "{e}");
    }
}

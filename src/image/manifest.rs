//! [`Manifest`] and [`ManifestKind`]: image manifests and indexes, OCI and Docker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ImageError;
use super::platform::{platform_name, platform_rank};
use crate::media::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, OCI_INDEX, OCI_MANIFEST, Platform,
};
use crate::store::{Index, to_canonical_json};

const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// An image manifest: OCI (`application/vnd.oci.image.manifest.v1+json`) or Docker v2
/// schema 2 (same shape, Docker media types). Unknown fields are kept in `extra`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Manifest {
    /// An OCI manifest for `config` and `layers`.
    pub fn new_oci(
        config: Descriptor,
        layers: Vec<Descriptor>,
        annotations: BTreeMap<String, String>,
    ) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations,
            extra: BTreeMap::new(),
        }
    }

    /// The canonical JSON bytes: what gets hashed and stored.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, ImageError> {
        to_canonical_json(self).map_err(|source| ImageError::Json {
            what: "image manifest",
            source,
        })
    }
}

/// A parsed manifest-or-index document.
// Unboxed on purpose: one value exists per document parsed, never in bulk, and plain
// variants keep matching simple.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum ManifestKind {
    /// An image manifest (OCI, or Docker v2 schema 2).
    Image(Manifest),
    /// An OCI image index or a Docker manifest list.
    Index(Index),
}

// Which fields a document has, to tell its kind and refuse shapes that are neither.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<Value>,
    config: Option<Value>,
    layers: Option<Value>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Image,
    Index,
}

fn shape_of(media_type: &str) -> Result<Option<Shape>, ImageError> {
    Ok(match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Shape::Image),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(Shape::Index),
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => return Err(ImageError::SchemaV1),
        _ => None,
    })
}

/// The media type a transport's `Content-Type` (or a descriptor's `mediaType`) states,
/// without parameters; `None` for the generic types some registries serve manifests as
/// (`application/json`, `text/plain`), which say nothing about the document.
pub fn declared_media_type(content_type: &str) -> Option<&str> {
    let m = content_type
        .split(';')
        .next()
        .unwrap_or(content_type)
        .trim();
    (!m.is_empty() && m != "application/json" && m != "text/plain").then_some(m)
}

impl ManifestKind {
    /// Parses a manifest or index. `media_type` is what the transport said (a registry's
    /// `Content-Type`, a descriptor's `mediaType`); when absent or generic the document's
    /// own `mediaType`, then its shape (`manifests` → index) decides. A transport type
    /// that contradicts the document's own is refused: content must be what it claims.
    /// So is a document of neither shape (an index with layers, a manifest without).
    pub fn parse(media_type: Option<&str>, bytes: &[u8]) -> Result<ManifestKind, ImageError> {
        let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
            what: "manifest",
            source,
        })?;
        match probe.schema_version {
            Some(2) => {}
            Some(1) => return Err(ImageError::SchemaV1),
            other => return Err(ImageError::SchemaVersion(other)),
        }
        let media_type = media_type.and_then(declared_media_type);
        let declared = match media_type {
            Some(m) => shape_of(m)?,
            None => None,
        };
        let own = match probe.media_type.as_deref() {
            Some(m) => shape_of(m)?,
            None => None,
        };
        // A body that names its own type names one this reader knows, or
        // it is refused, whatever the transport declared: it would be
        // stored under that unknown type and refused on every later read.
        if let (Some(m), None) = (probe.media_type.as_deref(), own) {
            return Err(match media_type.filter(|_| declared.is_some()) {
                Some(d) => ImageError::MediaTypeMismatch {
                    declared: d.to_string(),
                    found: m.to_string(),
                },
                None => ImageError::UnsupportedMediaType(m.to_string()),
            });
        }
        if let (Some(d), Some(o)) = (declared, own)
            && d != o
        {
            return Err(ImageError::MediaTypeMismatch {
                declared: media_type.unwrap_or_default().to_string(),
                found: probe.media_type.unwrap_or_default(),
            });
        }
        let shape = declared.or(own).or_else(|| {
            // No known media type anywhere: an unrecognised type is an error unless
            // nothing was declared at all (OCI allows mediaType to be omitted).
            (probe.media_type.is_none() && media_type.is_none()).then(|| {
                if probe.manifests.is_some() {
                    Shape::Index
                } else {
                    Shape::Image
                }
            })
        });
        let misshapen = match shape {
            Some(Shape::Index) if probe.config.is_some() || probe.layers.is_some() => {
                Some("an index must not have config or layers")
            }
            Some(Shape::Index) if probe.manifests.is_none() => Some("an index without 'manifests'"),
            Some(Shape::Image) if probe.manifests.is_some() => {
                Some("an image manifest must not have 'manifests'")
            }
            Some(Shape::Image) if probe.config.is_none() => {
                Some("an image manifest without 'config'")
            }
            Some(Shape::Image) if probe.layers.is_none() => {
                Some("an image manifest without 'layers'")
            }
            _ => None,
        };
        if let Some(why) = misshapen {
            return Err(ImageError::Misshapen(why));
        }
        match shape {
            Some(Shape::Image) => serde_json::from_slice(bytes)
                .map(ManifestKind::Image)
                .map_err(|source| ImageError::Json {
                    what: "image manifest",
                    source,
                }),
            Some(Shape::Index) => serde_json::from_slice(bytes)
                .map(ManifestKind::Index)
                .map_err(|source| ImageError::Json {
                    what: "image index",
                    source,
                }),
            None => Err(ImageError::UnsupportedMediaType(
                probe
                    .media_type
                    .or(media_type.map(str::to_string))
                    .unwrap_or_default(),
            )),
        }
    }

    /// The document's own `mediaType`, if it states one.
    pub fn media_type(&self) -> Option<&str> {
        match self {
            ManifestKind::Image(m) => m.media_type.as_deref(),
            ManifestKind::Index(i) => i.media_type.as_deref(),
        }
    }

    /// The OCI media type of this kind of document, for one that states none.
    pub fn default_media_type(&self) -> &'static str {
        match self {
            ManifestKind::Image(_) => OCI_MANIFEST,
            ManifestKind::Index(_) => OCI_INDEX,
        }
    }
}

/// No entry of an index runs on the platform asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no image for platform {wanted}; available: {available}")]
pub struct NoPlatform {
    /// The platform asked for, `os/arch[/variant]`.
    pub wanted: String,
    /// The platforms the index names, comma-separated (or `none named`).
    pub available: String,
}

/// The entry of `index` to use on `platform`, as containerd chooses it (see
/// [`super::platform`]): of the entries that run there, the one for the best variant
/// (amd64 `v3` before `v2` before none; arm64 with or without `v8` alike), then the one
/// whose variant is written exactly as asked, then the first in the index. An index of
/// one entry that names no platform gives that entry. `pull` and [`load_image_for`]
/// both choose here, so a registry and an `oci:` layout of one index give one image.
///
/// [`load_image_for`]: super::load_image_for
pub fn select_manifest<'a>(
    index: &'a Index,
    platform: &Platform,
) -> Result<&'a Descriptor, NoPlatform> {
    // `min_by_key` keeps the first of equal ranks: index order breaks the last tie.
    let best = index
        .manifests
        .iter()
        .filter_map(|d| Some((platform_rank(d.platform.as_ref()?, platform)?, d)))
        .min_by_key(|(rank, _)| *rank);
    if let Some((_, d)) = best {
        return Ok(d);
    }
    if let [only] = index.manifests.as_slice()
        && only.platform.is_none()
    {
        return Ok(only);
    }
    let available: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(platform_name))
        .collect();
    Err(NoPlatform {
        wanted: platform_name(platform),
        available: if available.is_empty() {
            "none named".to_string()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::media::{DOCKER_CONFIG, DOCKER_LAYER_GZIP};

    fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn docker_v2_schema2_manifest_parses() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
               "config":{{"mediaType":"{DOCKER_CONFIG}","size":1469,"digest":"sha256:{}"}},
               "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","size":29124,"digest":"sha256:{}"}}]}}"#,
            hex('a'),
            hex('b')
        );
        let ManifestKind::Image(m) =
            ManifestKind::parse(Some(DOCKER_MANIFEST), doc.as_bytes()).unwrap()
        else {
            panic!("not an image manifest");
        };
        assert_eq!(m.config.media_type, DOCKER_CONFIG);
        assert_eq!(m.layers[0].size, 29124);
        assert_eq!(
            m.layers[0].digest,
            format!("sha256:{}", hex('b')).parse::<Digest>().unwrap()
        );
        // Without a transport type the document's own mediaType decides.
        assert!(matches!(
            ManifestKind::parse(None, doc.as_bytes()),
            Ok(ManifestKind::Image(_))
        ));
        // A contradicting transport type is refused.
        assert!(matches!(
            ManifestKind::parse(Some(OCI_INDEX), doc.as_bytes()),
            Err(ImageError::MediaTypeMismatch { .. })
        ));
        // So is a body that calls itself something unknown, declared or not.
        let odd = doc.replace(DOCKER_MANIFEST, "text/html");
        assert!(matches!(
            ManifestKind::parse(Some(OCI_MANIFEST), odd.as_bytes()),
            Err(ImageError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            ManifestKind::parse(None, odd.as_bytes()),
            Err(ImageError::UnsupportedMediaType(t)) if t == "text/html"
        ));
    }

    #[test]
    fn docker_manifest_list_and_oci_index_parse_and_select_the_platform() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
                {{"mediaType":"{DOCKER_MANIFEST}","size":1,"digest":"sha256:{}","platform":{{"architecture":"arm","os":"linux","variant":"v6"}}}},
                {{"mediaType":"{DOCKER_MANIFEST}","size":2,"digest":"sha256:{}","platform":{{"architecture":"arm64","os":"linux"}}}},
                {{"mediaType":"{DOCKER_MANIFEST}","size":3,"digest":"sha256:{}","platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
                {{"mediaType":"{DOCKER_MANIFEST}","size":4,"digest":"sha256:{}","platform":{{"architecture":"amd64","os":"linux"}}}},
                {{"mediaType":"{DOCKER_MANIFEST}","size":5,"digest":"sha256:{}","platform":{{"architecture":"amd64","os":"windows","os.version":"10.0.17763.5329"}}}}
            ]}}"#,
            hex('1'),
            hex('2'),
            hex('3'),
            hex('4'),
            hex('5')
        );
        let ManifestKind::Index(ix) =
            ManifestKind::parse(Some(DOCKER_MANIFEST_LIST), doc.as_bytes()).unwrap()
        else {
            panic!("not an index");
        };
        assert_eq!(
            ix.manifests[4]
                .platform
                .as_ref()
                .unwrap()
                .os_version
                .as_deref(),
            Some("10.0.17763.5329")
        );
        let want = |arch: &str, variant: Option<&str>| Platform {
            architecture: arch.into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: variant.map(Into::into),
        };
        assert_eq!(select_manifest(&ix, &want("amd64", None)).unwrap().size, 4);
        assert_eq!(
            select_manifest(&ix, &want("arm64", Some("v8")))
                .unwrap()
                .size,
            3
        );
        assert_eq!(select_manifest(&ix, &want("arm64", None)).unwrap().size, 2);
        let err = select_manifest(&ix, &want("s390x", None)).unwrap_err();
        assert!(
            err.to_string().contains("linux/arm/v6, linux/arm64"),
            "{err}"
        );
        // An OCI index without mediaType is recognised by its shape.
        let bare = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","size":9,"digest":"sha256:{}"}}]}}"#,
            hex('c')
        );
        let ManifestKind::Index(ix) = ManifestKind::parse(None, bare.as_bytes()).unwrap() else {
            panic!("not an index");
        };
        assert_eq!(select_manifest(&ix, &want("amd64", None)).unwrap().size, 9);
    }

    fn index_of(platforms: &[Option<(&str, &str, Option<&str>)>]) -> Index {
        let manifests = platforms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut d = Descriptor::new(OCI_MANIFEST, Digest::of(&[i as u8]), i as u64);
                d.platform = p.map(|(os, arch, variant)| Platform {
                    architecture: arch.into(),
                    os: os.into(),
                    os_version: None,
                    os_features: None,
                    variant: variant.map(Into::into),
                });
                d
            })
            .collect();
        Index {
            manifests,
            ..Index::default()
        }
    }

    /// The position in the index of the entry chosen for `want`.
    fn pick(ix: &Index, want: &str) -> Result<u64, NoPlatform> {
        let want = super::super::parse_platform(want).unwrap();
        select_manifest(ix, &want).map(|d| d.size)
    }

    #[test]
    fn selection_prefers_the_best_variant_then_the_exact_spelling_then_index_order() {
        // The case where pull and load used to disagree: arm64 written both ways.
        let arm = index_of(&[
            Some(("linux", "arm64", None)),
            Some(("linux", "arm64", Some("v8"))),
        ]);
        assert_eq!(pick(&arm, "linux/arm64/v8"), Ok(1));
        assert_eq!(pick(&arm, "linux/arm64"), Ok(0));
        assert_eq!(pick(&arm, "linux/arm64/v8.2"), Ok(0), "a tie: index order");
        // amd64 levels: the highest the machine runs, never a higher one.
        let amd = index_of(&[
            Some(("unknown", "unknown", None)),
            Some(("linux", "amd64", Some("v4"))),
            Some(("linux", "amd64", Some("v2"))),
            Some(("linux", "amd64", None)),
            Some(("linux", "386", None)),
            Some(("windows", "amd64", None)),
        ]);
        assert_eq!(pick(&amd, "linux/amd64"), Ok(3));
        assert_eq!(pick(&amd, "linux/amd64/v3"), Ok(2));
        assert_eq!(pick(&amd, "linux/amd64/v4"), Ok(1));
        assert_eq!(pick(&amd, "linux/amd64/v1"), Ok(3));
        assert_eq!(pick(&amd, "linux/386"), Ok(4));
        assert_eq!(pick(&amd, "windows/amd64"), Ok(5));
        // 386 is what an amd64 machine falls back to; arm64 runs 32-bit arm.
        let old = index_of(&[
            Some(("linux", "386", None)),
            Some(("linux", "arm", Some("v6"))),
        ]);
        assert_eq!(pick(&old, "linux/amd64"), Ok(0));
        assert_eq!(pick(&old, "linux/arm64"), Ok(1));
        assert_eq!(pick(&old, "linux/arm/v7"), Ok(1));
        assert_eq!(
            pick(&old, "linux/s390x"),
            Err(NoPlatform {
                wanted: "linux/s390x".into(),
                available: "linux/386, linux/arm/v6".into(),
            })
        );
        // One entry naming no platform is the image; two are ambiguous.
        assert_eq!(pick(&index_of(&[None]), "linux/amd64"), Ok(0));
        assert_eq!(
            pick(&index_of(&[None, None]), "linux/amd64")
                .unwrap_err()
                .available,
            "none named"
        );
    }

    #[test]
    fn schema1_and_unknown_types_are_refused_with_a_reason() {
        let s1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(matches!(
            ManifestKind::parse(None, s1),
            Err(ImageError::SchemaV1)
        ));
        let helm = br#"{"schemaVersion":2,"mediaType":"application/vnd.cncf.helm.chart.v1"}"#;
        let err = ManifestKind::parse(None, helm).unwrap_err();
        assert!(
            err.to_string()
                .contains("application/vnd.cncf.helm.chart.v1"),
            "{err}"
        );
        assert!(ManifestKind::parse(None, b"not json").is_err());
    }

    #[test]
    fn manifest_round_trips_unknown_fields() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"x","size":1,"digest":"sha256:{}"}},"layers":[],"x-extra":{{"a":1}}}}"#,
            hex('d')
        );
        let ManifestKind::Image(m) = ManifestKind::parse(None, doc.as_bytes()).unwrap() else {
            panic!("not an image manifest");
        };
        let back: Value = serde_json::from_slice(&m.to_canonical_json().unwrap()).unwrap();
        assert_eq!(back["x-extra"]["a"], 1);
    }
}

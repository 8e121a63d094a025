//! Manifests as a registry serves them: what a GET accepts, and the media type to
//! record for the bytes it returned. The documents themselves are read by
//! [`crate::image::ManifestKind`], the one parser of manifests and indexes; the
//! bytes are kept as served so that pushing them again gives the same digest.

use crate::image::{ManifestKind, declared_media_type};
use crate::registry::error::Malformed;

/// The media types a manifest GET accepts.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Parses `bytes` served with `content_type`. Returns the kind and the media
/// type to record (the document's own, else the served one, else inferred).
pub(crate) fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<(ManifestKind, String), Malformed> {
    let kind =
        ManifestKind::parse(content_type, bytes).map_err(|e| Malformed::Document(Box::new(e)))?;
    let media_type = kind
        .media_type()
        .or(content_type.and_then(declared_media_type))
        .unwrap_or(kind.default_media_type())
        .to_string();
    Ok((kind, media_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::media;

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
        assert!(matches!(k, ManifestKind::Image(ref m) if m.layers.is_empty()));
        // OCI manifests may omit mediaType: the served type decides, parameters dropped.
        let m2 = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{d}","size":1}},"layers":[]}}"#
        );
        assert_eq!(
            parse(
                m2.as_bytes(),
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8")
            )
            .unwrap()
            .1,
            media::OCI_MANIFEST
        );
        // Served as generic JSON with no type of its own: inferred from its shape.
        let ix = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            parse(ix.as_bytes(), Some("application/json")).unwrap().1,
            media::OCI_INDEX
        );
        for (bad, needle) in [
            ("{", "not a valid manifest"),
            (r#"{"schemaVersion":1}"#, "schema 1"),
            (r#"{"schemaVersion":3}"#, "schemaVersion is Some(3)"),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
                "without 'config'",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
                "without 'manifests'",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"layers":[]}"#,
                "must not have config or layers",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"text/html"}"#,
                "'text/html' is not an image manifest",
            ),
            (
                r#"{"schemaVersion":2,"config":{"digest":"sha256:zz"},"layers":[]}"#,
                "not a valid image manifest",
            ),
        ] {
            let e = parse(bad.as_bytes(), None).unwrap_err();
            assert!(e.to_string().contains(needle), "{bad}: {e}");
        }
        let e = parse(m.as_bytes(), Some(media::OCI_INDEX)).unwrap_err();
        assert!(e.to_string().contains("served as"), "{e}");
    }
}

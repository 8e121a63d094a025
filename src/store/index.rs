//! The layout's `index.json`: the [`Index`] document, image names, tag/untag/resolve.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::ErrorKind;

use serde::{Deserialize, Serialize};

use super::canonical_json::to_canonical_json;
use super::error::{Result, StoreError};
use super::fsutil::{read_limited, write_atomic};
use super::layout::{JSON_FILE_LIMIT, Layout};
use crate::digest::Digest;
use crate::media::{ANNOTATION_REF_NAME, Descriptor, OCI_INDEX, OCI_MANIFEST};

/// An OCI image index (also the shape of a Docker manifest list). Unknown top-level
/// fields are kept in `extra` so rewriting a foreign `index.json` loses nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// The name a tag is stored under: the name as given, with `:latest` appended when its
/// last path component has no tag (`demo` → `demo:latest`, `localhost:5000/x` →
/// `localhost:5000/x:latest`). Digest forms (`name@sha256:…`) are returned unchanged.
pub fn normalize_name(name: &str) -> Result<String> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::InvalidName(name.to_string()));
    }
    if name.contains('@') {
        return Ok(name.to_string());
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.is_empty() || last.ends_with(':') {
        return Err(StoreError::InvalidName(name.to_string()));
    }
    Ok(if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    })
}

/// A held exclusive lock on a layout's `index.json`; released on drop.
pub(crate) struct IndexLock(#[allow(dead_code)] File);

impl Layout {
    /// Serialises `index.json` read-modify-write cycles between threads and processes.
    /// The lock is a `flock` on the layout directory itself: it needs no extra file (so
    /// foreign layouts stay clean), and `index.json` cannot carry it because it is
    /// replaced by rename on every write.
    pub(crate) fn lock_index(&self) -> Result<IndexLock> {
        let dir = File::open(self.root()).map_err(|e| StoreError::io(self.root(), e))?;
        dir.lock().map_err(|e| StoreError::io(self.root(), e))?;
        Ok(IndexLock(dir))
    }

    /// Reads `index.json`.
    pub fn index(&self) -> Result<Index> {
        let path = self.root().join("index.json");
        let bytes = match read_limited(&path, JSON_FILE_LIMIT) {
            Err(StoreError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                return Err(StoreError::NotALayout {
                    path: self.root().to_path_buf(),
                    reason: "no index.json".into(),
                });
            }
            other => other?,
        };
        serde_json::from_slice(&bytes).map_err(|e| StoreError::BadJson { path, source: e })
    }

    /// Replaces `index.json`; callers hold [`Layout::lock_index`].
    pub(crate) fn write_index(&self, index: &Index) -> Result<()> {
        let path = self.root().join("index.json");
        let bytes = to_canonical_json(index).map_err(|e| StoreError::BadJson {
            path: path.clone(),
            source: e,
        })?;
        write_atomic(self.temp_root(), &path, &bytes)
    }

    /// Finds the descriptor an image name points at. Tried in order: the name exactly
    /// as given; the name with `:latest` appended when untagged; for `NAME@sha256:HEX`,
    /// a manifest with that digest (listed in the index or present as a blob); for an
    /// empty name, the only image of a layout holding exactly one.
    pub fn resolve(&self, name: &str) -> Result<Descriptor> {
        let index = self.index()?;
        let not_found = |index: &Index| StoreError::NameNotFound {
            name: name.to_string(),
            root: self.root().to_path_buf(),
            known: known_names(index),
        };
        if name.is_empty() {
            return match index.manifests.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(not_found(&index)),
            };
        }
        if let Some(d) = find_named(&index, name) {
            return Ok(d.clone());
        }
        let normalized = normalize_name(name)?;
        if let Some(d) = find_named(&index, &normalized) {
            return Ok(d.clone());
        }
        if let Some((_, digest)) = name.rsplit_once('@') {
            let digest: Digest = digest
                .parse()
                .map_err(|_| StoreError::InvalidName(name.to_string()))?;
            if let Some(d) = index.manifests.iter().find(|d| d.digest == digest) {
                let mut d = d.clone();
                d.annotations.remove(ANNOTATION_REF_NAME);
                return Ok(d);
            }
            if self.has_blob(&digest) {
                return self.describe_manifest_blob(&digest);
            }
        }
        Err(not_found(&index))
    }

    /// A descriptor for a manifest or index blob, its media type read from the blob.
    fn describe_manifest_blob(&self, digest: &Digest) -> Result<Descriptor> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        let bytes = self.read_blob(digest)?;
        let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| StoreError::BadJson {
            path: self.blob_path(digest),
            source: e,
        })?;
        let media_type = match (probe.media_type, probe.manifests) {
            (Some(m), _) => m,
            (None, Some(_)) => OCI_INDEX.to_string(),
            (None, None) => OCI_MANIFEST.to_string(),
        };
        Ok(Descriptor::new(
            media_type,
            digest.clone(),
            bytes.len() as u64,
        ))
    }

    /// Points `name` (normalized, see [`normalize_name`]) at `desc`, replacing any image of
    /// that name. The blob must be present. Safe against concurrent taggers.
    pub fn tag(&self, name: &str, desc: Descriptor) -> Result<()> {
        let name = normalize_name(name)?;
        let _lock = self.lock_index()?;
        // Checked under the lock: garbage collection holds it while it deletes.
        if !self.has_blob(&desc.digest) {
            return Err(self.not_found(&desc.digest));
        }
        let mut index = self.index()?;
        let mut desc = desc;
        desc.annotations
            .insert(ANNOTATION_REF_NAME.to_string(), name.clone());
        let mut placed = false;
        index.manifests.retain_mut(|d| {
            if ref_name(d) != Some(name.as_str()) {
                return true;
            }
            if placed {
                return false;
            }
            placed = true;
            *d = desc.clone();
            true
        });
        if !placed {
            index.manifests.push(desc);
        }
        self.write_index(&index)
    }

    /// Removes the tag `name` (exact, else normalized) and returns what it pointed at.
    /// The blobs stay until garbage collection.
    pub fn untag(&self, name: &str) -> Result<Descriptor> {
        let _lock = self.lock_index()?;
        let mut index = self.index()?;
        let target = if find_named(&index, name).is_some() {
            name.to_string()
        } else {
            normalize_name(name)?
        };
        let Some(found) = find_named(&index, &target).cloned() else {
            return Err(StoreError::NameNotFound {
                name: name.to_string(),
                root: self.root().to_path_buf(),
                known: known_names(&index),
            });
        };
        index
            .manifests
            .retain(|d| ref_name(d) != Some(target.as_str()));
        self.write_index(&index)?;
        Ok(found)
    }

    /// Every named image, in `index.json` order.
    pub fn tags(&self) -> Result<Vec<(String, Descriptor)>> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|d| ref_name(&d).map(|n| (n.to_string(), d.clone())))
            .collect())
    }
}

/// The ref name annotation of an index entry.
pub fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

fn find_named<'a>(index: &'a Index, name: &str) -> Option<&'a Descriptor> {
    index.manifests.iter().find(|d| ref_name(d) == Some(name))
}

fn known_names(index: &Index) -> String {
    let names: Vec<&str> = index.manifests.iter().filter_map(ref_name).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_without_a_tag_get_latest() {
        let n = |s: &str| normalize_name(s).unwrap();
        assert_eq!(n("demo"), "demo:latest");
        assert_eq!(n("demo:1"), "demo:1");
        assert_eq!(n("localhost/x:1"), "localhost/x:1");
        assert_eq!(n("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(n("x@sha256:abc"), "x@sha256:abc");
        for bad in ["", "a b", "x:", "x/", "a\nb"] {
            assert!(normalize_name(bad).is_err(), "{bad:?}");
        }
    }

    fn layout_with_blob() -> (tempfile::TempDir, Layout, Descriptor) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let bytes =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
        let d = layout.write_blob(bytes).unwrap();
        let desc = Descriptor::new(OCI_MANIFEST, d, bytes.len() as u64);
        (dir, layout, desc)
    }

    #[test]
    fn tag_resolve_untag() {
        let (_dir, layout, desc) = layout_with_blob();
        layout.tag("demo", desc.clone()).unwrap();
        layout.tag("localhost/x:1", desc.clone()).unwrap();
        let tags = layout.tags().unwrap();
        let names: Vec<&str> = tags.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["demo:latest", "localhost/x:1"]);
        assert_eq!(layout.resolve("demo").unwrap().digest, desc.digest);
        assert_eq!(layout.resolve("demo:latest").unwrap().digest, desc.digest);
        let by_digest = layout
            .resolve(&format!("whatever@{}", desc.digest))
            .unwrap();
        assert_eq!(by_digest.digest, desc.digest);
        assert_eq!(by_digest.media_type, OCI_MANIFEST);
        // Re-tagging replaces rather than duplicates.
        layout.tag("demo:latest", desc.clone()).unwrap();
        assert_eq!(layout.index().unwrap().manifests.len(), 2);
        let removed = layout.untag("demo").unwrap();
        assert_eq!(removed.digest, desc.digest);
        let err = layout.resolve("demo").unwrap_err();
        assert!(err.to_string().contains("known: localhost/x:1"), "{err}");
        assert!(layout.untag("demo").is_err());
        // A blob that is not there cannot be tagged.
        let ghost = Descriptor::new(OCI_MANIFEST, Digest::of(b"ghost"), 5);
        assert!(matches!(
            layout.tag("ghost", ghost),
            Err(StoreError::BlobNotFound { .. })
        ));
    }

    #[test]
    fn foreign_index_fields_and_bare_tag_names_survive() {
        let (dir, layout, desc) = layout_with_blob();
        let foreign = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [ {
                "mediaType": OCI_MANIFEST, "digest": desc.digest.to_string(), "size": desc.size,
                "annotations": { ANNOTATION_REF_NAME: "latest" }
            } ],
            "x-vendor": {"keep": [1, 2]}
        });
        std::fs::write(dir.path().join("index.json"), foreign.to_string()).unwrap();
        // skopeo's `oci:DIR:latest` stores just the tag; resolving it finds it exactly.
        assert_eq!(layout.resolve("latest").unwrap().digest, desc.digest);
        // A layout with a single image resolves the empty name; with two it cannot.
        assert_eq!(layout.resolve("").unwrap().digest, desc.digest);
        layout.tag("other:2", desc.clone()).unwrap();
        let err = layout.resolve("").unwrap_err();
        assert!(err.to_string().contains("known: latest, other:2"), "{err}");
        let index = layout.index().unwrap();
        assert_eq!(index.extra["x-vendor"], serde_json::json!({"keep": [1, 2]}));
        assert_eq!(index.manifests.len(), 2);
    }
}

//! [`Layout`]: a plain OCI image layout directory (`oci-layout`, `index.json`, `blobs/`).

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::blob_writer::BlobWriter;
use super::canonical_json::to_canonical_json;
use super::error::{Result, StoreError};
use super::fsutil::{read_limited, write_atomic};
use super::index::Index;
use crate::digest::Digest;
use crate::media::OCI_LAYOUT_VERSION;

/// `oci-layout` and `index.json` larger than this are refused as damaged.
pub(crate) const JSON_FILE_LIMIT: u64 = 16 << 20;

/// The `oci-layout` marker file.
#[derive(Serialize, Deserialize)]
struct LayoutMarker {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

/// An OCI image layout on disk. Used for boxwright's own store and equally for foreign
/// layouts (`oci:DIR:TAG` bases and outputs) and unpacked OCI archives.
///
/// Every write is atomic: a temp file, fsynced, verified, renamed, directory fsynced.
/// Concurrent writers in several processes are safe: blobs are content-addressed and
/// `index.json` updates are serialised by a `flock` on the layout directory itself (so
/// foreign layouts gain no extra files).
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    /// Where temp files go; on the same file system as `blobs/` so renames are atomic.
    tmp: PathBuf,
}

impl Layout {
    /// Opens an existing layout; fails clearly if `oci-layout` is missing or not version 1.x.
    pub fn open(dir: &Path) -> Result<Layout> {
        let marker_path = dir.join("oci-layout");
        let bytes = match read_limited(&marker_path, JSON_FILE_LIMIT) {
            Ok(b) => b,
            Err(StoreError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                return Err(StoreError::NotALayout {
                    path: dir.to_path_buf(),
                    reason: "no oci-layout file".into(),
                });
            }
            Err(e) => return Err(e),
        };
        let marker: LayoutMarker =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::NotALayout {
                path: dir.to_path_buf(),
                reason: format!("oci-layout is not valid: {e}"),
            })?;
        if !marker.image_layout_version.starts_with("1.") {
            return Err(StoreError::NotALayout {
                path: dir.to_path_buf(),
                reason: format!(
                    "imageLayoutVersion {} is not supported, only 1.x",
                    marker.image_layout_version
                ),
            });
        }
        Ok(Layout::at(dir))
    }

    /// Opens the layout at `dir`, creating the directory, `oci-layout`, an empty
    /// `index.json` and `blobs/sha256/` as needed.
    pub fn create(dir: &Path) -> Result<Layout> {
        fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| StoreError::io(dir, e))?;
        let layout = Layout::at(dir);
        if !dir.join("oci-layout").exists() {
            let marker = LayoutMarker {
                image_layout_version: OCI_LAYOUT_VERSION.to_string(),
            };
            let bytes = to_canonical_json(&marker).map_err(|e| StoreError::BadJson {
                path: dir.join("oci-layout"),
                source: e,
            })?;
            write_atomic(&layout.tmp, &dir.join("oci-layout"), &bytes)?;
        }
        if !dir.join("index.json").exists() {
            // Under the index lock so a concurrent `create` cannot clobber a first tag.
            let _lock = layout.lock_index()?;
            if !dir.join("index.json").exists() {
                layout.write_index(&Index::default())?;
            }
        }
        Layout::open(dir)
    }

    fn at(dir: &Path) -> Layout {
        Layout {
            root: dir.to_path_buf(),
            tmp: dir.to_path_buf(),
        }
    }

    /// Makes temp files go to `tmp` (which must be on the layout's file system) instead of
    /// the layout root.
    pub(crate) fn with_temp_dir(mut self, tmp: PathBuf) -> Layout {
        self.tmp = tmp;
        self
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn temp_root(&self) -> &Path {
        &self.tmp
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    /// Whether the blob is present (its content is trusted: it was verified when written).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Size in bytes of a present blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(self.not_found(digest)),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Reads a whole blob and checks it against its digest. Meant for small blobs
    /// (manifests, configs); stream layers with [`Layout::open_blob`].
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io(&path, e))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(StoreError::CorruptBlob {
                digest: digest.clone(),
                actual,
                path,
            });
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming (no verification: the caller hashes as it reads).
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                self.not_found(digest)
            } else {
                StoreError::io(path, e)
            }
        })
    }

    /// Stores `bytes` as a blob (atomically, verified) and returns its digest. A blob that
    /// is already present is left alone.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if self.blob_size(&digest).ok() == Some(bytes.len() as u64) {
            return Ok(digest);
        }
        let mut w = self.blob_writer()?;
        w.write_all(bytes)
            .map_err(|e| StoreError::io(w.temp_path(), e))?;
        w.finish(Some(&digest))?;
        Ok(digest)
    }

    /// A writer for a new blob of any size; see [`BlobWriter`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(&self.tmp, self.root.join("blobs").join("sha256"))
    }

    /// Removes a blob; `Ok(false)` if it was not there. Used by garbage collection.
    pub(crate) fn remove_blob(&self, digest: &Digest) -> Result<bool> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    pub(crate) fn not_found(&self, digest: &Digest) -> StoreError {
        StoreError::BlobNotFound {
            digest: digest.clone(),
            root: self.root.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_writes_a_marker_and_empty_index_and_open_accepts_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("layout");
        Layout::create(&root).unwrap();
        let marker: serde_json::Value =
            serde_json::from_slice(&fs::read(root.join("oci-layout")).unwrap()).unwrap();
        assert_eq!(marker["imageLayoutVersion"], "1.0.0");
        let index = Layout::open(&root).unwrap().index().unwrap();
        assert!(index.manifests.is_empty());
        assert_eq!(index.schema_version, 2);
        // Creating again is opening: nothing is clobbered.
        Layout::create(&root).unwrap();
    }

    #[test]
    fn open_refuses_a_directory_without_or_with_a_bad_marker() {
        let dir = tempfile::tempdir().unwrap();
        let err = Layout::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no oci-layout file"), "{err}");
        fs::write(
            dir.path().join("oci-layout"),
            "{\"imageLayoutVersion\":\"2.0.0\"}",
        )
        .unwrap();
        let err = Layout::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("only 1.x"), "{err}");
        fs::write(dir.path().join("oci-layout"), "nope").unwrap();
        let err = Layout::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("oci-layout is not valid"), "{err}");
    }

    #[test]
    fn blobs_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let d = layout.write_blob(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert!(layout.has_blob(&d));
        assert_eq!(layout.read_blob(&d).unwrap(), b"hello");
        assert_eq!(layout.blob_size(&d).unwrap(), 5);
        fs::write(layout.blob_path(&d), b"jello").unwrap();
        assert!(matches!(
            layout.read_blob(&d),
            Err(StoreError::CorruptBlob { actual, .. }) if actual == Digest::of(b"jello")
        ));
        let missing = Digest::of(b"absent");
        assert!(matches!(
            layout.read_blob(&missing),
            Err(StoreError::BlobNotFound { .. })
        ));
        // Only the marker, the index and the blob are in the layout: no temp left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["blobs", "index.json", "oci-layout"]);
    }
}

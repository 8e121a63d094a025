//! Layers the store knows only by where they are: a step-cache hit from a
//! registry (`--cache-from`) whose blob was not needed on this machine.
//!
//! A build that pushes its image to the registry holding the cache does not
//! download those layers: the push mounts them registry-side. The image in
//! the store then names blobs it does not hold; each has a small record,
//! `ROOT.state/remote-layers/<digest hex>.json`, saying which repository
//! holds it and what its diff_id is. Whatever needs the content (a step's
//! lowers, `run`, `save`, a push elsewhere) fetches it first (checking the
//! blob's digest and its content against the diff_id while it streams) and
//! the record goes. `fsck` counts these layers instead of reporting them
//! missing; `gc` drops records no image names.

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::canonical_json::to_canonical_json;
use super::error::{Result, StoreError};
use super::fsutil::{read_limited, write_atomic};
use super::root::Store;
use crate::digest::Digest;
use crate::media::LayerInfo;

/// Records are a few hundred bytes; anything far larger is damage.
const RECORD_LIMIT: u64 = 1 << 16;

/// A layer held by a registry repository, not (yet) by the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteLayer {
    /// The layer: blob digest, size, media type and the diff_id its cache
    /// record claims (checked when the content is fetched).
    pub layer: LayerInfo,
    /// The repository holding the blob, `HOST/PATH` (no tag).
    pub repository: String,
}

impl Store {
    fn remote_layers_dir(&self) -> PathBuf {
        self.state_dir().join("remote-layers")
    }

    fn remote_layer_path(&self, digest: &Digest) -> PathBuf {
        self.remote_layers_dir()
            .join(format!("{}.json", digest.hex()))
    }

    /// Records that `remote.layer`'s blob is in `remote.repository` (atomically).
    pub fn put_remote_layer(&self, remote: &RemoteLayer) -> Result<()> {
        let path = self.remote_layer_path(&remote.layer.digest);
        let dir = self.remote_layers_dir();
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let bytes = to_canonical_json(remote).map_err(|e| StoreError::BadJson {
            path: path.clone(),
            source: e,
        })?;
        write_atomic(&self.tmp_dir(), &path, &bytes)
    }

    /// The record of a blob the store does not hold, if there is one (an
    /// unreadable record is none: the layer is then simply missing).
    pub fn remote_layer(&self, digest: &Digest) -> Option<RemoteLayer> {
        let bytes = read_limited(&self.remote_layer_path(digest), RECORD_LIMIT).ok()?;
        serde_json::from_slice::<RemoteLayer>(&bytes)
            .ok()
            .filter(|r| r.layer.digest == *digest)
    }

    /// Every record's blob digest, with the record if it reads (sorted).
    pub(crate) fn remote_layer_records(&self) -> Result<Vec<(Digest, Option<RemoteLayer>)>> {
        let dir = self.remote_layers_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let name = entry.file_name();
            if let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json"))
                && let Ok(d) = Digest::from_hex(hex)
            {
                let record = self.remote_layer(&d);
                out.push((d, record));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Drops the record of `digest` (its blob is now here, or nothing names it).
    pub fn forget_remote_layer(&self, digest: &Digest) -> Result<()> {
        let path = self.remote_layer_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// The layers of the image (or index: every image in it) `desc` names
    /// whose blobs are only remote.
    pub fn remote_layers_of(&self, desc: &crate::media::Descriptor) -> Result<Vec<RemoteLayer>> {
        let mut reach = super::reach::Reach::default();
        reach.walk(self, desc)?;
        Ok(reach
            .missing
            .iter()
            .filter(|(_, role)| *role == super::reach::Role::Layer)
            .filter_map(|(d, _)| self.remote_layer(d))
            .collect())
    }

    /// The layers among `layers` whose blobs are only remote (recorded and
    /// not in the store).
    pub fn remote_only(&self, layers: &[LayerInfo]) -> Vec<RemoteLayer> {
        layers
            .iter()
            .filter(|l| !self.has_blob(&l.digest))
            .filter_map(|l| self.remote_layer(&l.digest))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: u8) -> LayerInfo {
        LayerInfo {
            digest: Digest::of(&[n]),
            diff_id: Digest::of(&[n, n]),
            size: 1,
            media_type: crate::media::OCI_LAYER_GZIP.to_string(),
        }
    }

    #[test]
    fn records_round_trip_and_a_local_blob_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        assert!(store.remote_layer_records().unwrap().is_empty());
        let remote = RemoteLayer {
            layer: layer(1),
            repository: "127.0.0.1:5000/ci/cache".into(),
        };
        store.put_remote_layer(&remote).unwrap();
        assert_eq!(
            store.remote_layer(&remote.layer.digest),
            Some(remote.clone())
        );
        assert_eq!(
            store.remote_only(&[layer(1), layer(2)]),
            vec![remote.clone()]
        );
        // Once the blob is in the store the record no longer counts.
        let d = store.layout().write_blob(&[1]).unwrap();
        assert_eq!(d, remote.layer.digest);
        assert!(store.remote_only(&[layer(1)]).is_empty());
        // A record under another digest's name is not that digest's.
        let path = store.remote_layer_path(&layer(3).digest);
        fs::copy(store.remote_layer_path(&remote.layer.digest), &path).unwrap();
        assert_eq!(store.remote_layer(&layer(3).digest), None);
        assert_eq!(store.remote_layer_records().unwrap().len(), 2);
        store.forget_remote_layer(&remote.layer.digest).unwrap();
        store.forget_remote_layer(&remote.layer.digest).unwrap();
        assert_eq!(store.remote_layer(&remote.layer.digest), None);
    }
}

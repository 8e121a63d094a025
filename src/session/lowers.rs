//! The layers under a sandbox: each unpacked once into the store (checked
//! against its diff_id on the way) and used as an overlay lowerdir.

use std::path::{Path, PathBuf};

use crate::media::LayerInfo;
use crate::progress::{Event, Sink};
use crate::store::Store;

use super::SessionError;
use super::worker::{Answer, Op, Unpack, Workers};

/// Unpacks layers through the namespace worker.
pub struct Unpacker<'a> {
    pub store: &'a Store,
    pub workers: &'a Workers,
    pub max_layer_size: u64,
    pub sink: &'a dyn Sink,
}

impl<'a> Unpacker<'a> {
    /// An unpacker with the default cap on a layer's size.
    pub fn for_store(store: &'a Store, workers: &'a Workers, sink: &'a dyn Sink) -> Unpacker<'a> {
        Unpacker {
            store,
            workers,
            max_layer_size: crate::layer::DEFAULT_MAX_LAYER_SIZE,
            sink,
        }
    }

    /// The overlay lowerdirs of `layers` (bottom first), topmost first as
    /// overlayfs wants them, each unpacked the first time it is needed.
    /// An empty stack gets one empty dir under `scratch` (overlayfs needs a
    /// lowerdir even on an empty base).
    pub fn lowerdirs(
        &self,
        layers: &[LayerInfo],
        scratch: &Path,
    ) -> Result<Vec<PathBuf>, SessionError> {
        let mut lowerdirs: Vec<PathBuf> = Vec::with_capacity(layers.len().max(1));
        for l in layers.iter().rev() {
            let dir = self.ensure_unpacked(l)?;
            // overlayfs refuses a directory twice in its stack (ELOOP).
            // Two steps with the same result share a layer dir; the
            // topmost copy shadows everything the lower copy shows or
            // hides, so dropping the lower one changes nothing.
            if !lowerdirs.contains(&dir) {
                lowerdirs.push(dir);
            }
        }
        if lowerdirs.is_empty() {
            let empty = scratch.join("empty");
            std::fs::create_dir_all(&empty)
                .map_err(|e| SessionError::io("an empty lowerdir", e))?;
            lowerdirs.push(empty);
        }
        Ok(lowerdirs)
    }

    /// The overlay lowerdir of a layer, unpacking its blob the first time.
    pub fn ensure_unpacked(&self, layer: &LayerInfo) -> Result<PathBuf, SessionError> {
        self.ensure_unpacked_from(layer, None)
    }

    /// [`Unpacker::ensure_unpacked`], reading the blob from `source` (a
    /// fifo a download is writing into) when given, not from the store.
    pub fn ensure_unpacked_from(
        &self,
        layer: &LayerInfo,
        source: Option<&Path>,
    ) -> Result<PathBuf, SessionError> {
        let dir = self.store.layer_dir(&layer.diff_id);
        if self.store.has_layer_dir(&layer.diff_id) {
            self.store.record_layer_use(&layer.diff_id);
            return Ok(dir);
        }
        let tmp = self.store.temp_dir()?;
        let dest = tmp.join("layer");
        let unpacked = self
            .unpack_from(layer, Unpack::OverlayLower, &dest, source)
            .and_then(|()| Ok(self.store.commit_layer_dir(&dest, &layer.diff_id)?));
        // Whether or not the layer was refused: a failed unpack must not
        // leave its temp dir for `fsck` to report.
        self.remove(tmp);
        unpacked.map(|()| dir)
    }

    /// Applies `layer` onto `dest` (flattened, or as a lowerdir of its own).
    pub fn unpack(&self, layer: &LayerInfo, mode: Unpack, dest: &Path) -> Result<(), SessionError> {
        self.unpack_from(layer, mode, dest, None)
    }

    fn unpack_from(
        &self,
        layer: &LayerInfo,
        mode: Unpack,
        dest: &Path,
        source: Option<&Path>,
    ) -> Result<(), SessionError> {
        let op = Op::Unpack {
            store: self.store.root().to_path_buf(),
            layer: layer.clone(),
            mode,
            dest: dest.to_path_buf(),
            max_size: self.max_layer_size,
            source: source.map(Path::to_path_buf),
        };
        match self.workers.run(&op, &mut |_| {})? {
            Answer::Unpacked {
                skipped_devices, ..
            } => {
                if skipped_devices > 0 {
                    self.sink.emit(&Event::Warning {
                        message: format!(
                            "layer {}: {skipped_devices} device node(s) not created where steps run (a user namespace cannot make them; steps get the sandbox's /dev); the image's layer keeps them",
                            layer.digest.short()
                        ),
                    });
                }
                Ok(())
            }
            Answer::Failed { message } => Err(SessionError::Worker(message)),
            other => Err(SessionError::Worker(format!(
                "unexpected worker answer {other:?}"
            ))),
        }
    }

    /// Removes a temporary tree through a worker (it may hold files of
    /// subordinate ids); a failure leaves garbage for `gc`, not a failure.
    pub fn remove(&self, path: PathBuf) {
        let _ = self
            .workers
            .run(&Op::Remove { paths: vec![path] }, &mut |_| {});
    }
}

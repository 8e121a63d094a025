//! Fetching the layers the store knows only remotely (see
//! `store::RemoteLayer`): lazy step-cache hits, fetched when their content
//! is needed. The download is checked against the blob digest as usual and,
//! in the same pass, its decompressed content against the diff_id recorded
//! for it: a forged record never reaches the store.

use std::io::{self, Write};
use std::thread::JoinHandle;

use crate::digest::{Digest, DigestReader};
use crate::media::{Compression, LayerInfo};
use crate::store::{Layout, RemoteLayer, Store};

use super::{BlobSink, BlobWrite, Reference, Registry, RegistryError, Result, TransferEvent};

/// How many remote layers are fetched (or asked for) at once.
const AT_ONCE: usize = 4;

/// Fetches remote layers into the store, [`AT_ONCE`] at a time; one
/// outcome per layer, in order.
pub fn fetch_remote_layers(
    registry: &Registry,
    store: &Store,
    remote: &[RemoteLayer],
    progress: &(dyn Fn(TransferEvent) + Send + Sync),
) -> Vec<Result<()>> {
    in_parallel(remote, |r| fetch_remote_layer(registry, store, r, progress))
}

/// Asks each layer's repository whether it still holds it (a HEAD each,
/// [`AT_ONCE`] at a time); one outcome per layer, in order: an error
/// names a layer that is gone.
pub fn check_remote_layers(registry: &Registry, remote: &[RemoteLayer]) -> Vec<Result<()>> {
    in_parallel(remote, |r| {
        let from: Reference = r.repository.parse()?;
        if registry.has_blob(&from, &r.layer.descriptor())? {
            Ok(())
        } else {
            Err(RegistryError::Invalid(format!(
                "its layer {} is no longer in {}",
                r.layer.digest.short(),
                r.repository
            )))
        }
    })
}

/// `work` on every layer, on [`AT_ONCE`] threads at a time (the client
/// blocks each calling thread; its runtime serves them together).
fn in_parallel(
    remote: &[RemoteLayer],
    work: impl Fn(&RemoteLayer) -> Result<()> + Sync,
) -> Vec<Result<()>> {
    let mut out = Vec::with_capacity(remote.len());
    for batch in remote.chunks(AT_ONCE) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|r| {
                    let work = &work;
                    scope.spawn(move || work(r))
                })
                .collect();
            out.extend(handles.into_iter().map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(RegistryError::io(
                        "fetching a layer",
                        io::Error::other("its thread panicked; this is a bug in boxwright"),
                    ))
                })
            }));
        });
    }
    out
}

/// Fetches one remote layer into the store and drops its record.
pub fn fetch_remote_layer(
    registry: &Registry,
    store: &Store,
    remote: &RemoteLayer,
    progress: &(dyn Fn(TransferEvent) + Send + Sync),
) -> Result<()> {
    fetch_remote_layer_teeing(registry, store, remote, progress, None)
}

/// [`fetch_remote_layer`], also writing the blob's bytes, as they arrive,
/// to `tee` (a fifo an unpack reads: the layer is unpacked as it streams).
/// Only the first download attempt writes there: a retried download starts
/// over, and the reader would see the blob twice. A reader that stops
/// early does not stop the download.
pub fn fetch_remote_layer_teeing(
    registry: &Registry,
    store: &Store,
    remote: &RemoteLayer,
    progress: &(dyn Fn(TransferEvent) + Send + Sync),
    tee: Option<std::fs::File>,
) -> Result<()> {
    let reference: Reference = remote.repository.parse()?;
    let layer = &remote.layer;
    let compression = Compression::from_layer_media_type(&layer.media_type).ok_or_else(|| {
        RegistryError::Invalid(format!(
            "layer {} has media type {}, which is not a layer",
            layer.digest, layer.media_type
        ))
    })?;
    let sink = CheckedLayerSink {
        layout: store.layout(),
        layer,
        repository: &remote.repository,
        compression,
        tee: std::sync::Mutex::new(tee),
    };
    registry
        .fetch_blob(&reference, &layer.descriptor(), &sink, progress)
        .map_err(layer_content)?;
    store
        .forget_remote_layer(&layer.digest)
        .map_err(|e| RegistryError::io("dropping a fetched layer's record", io::Error::other(e)))
}

/// The content check's own error, out of the I/O error that carried it
/// through the blob writer; any other error as it is.
fn layer_content(e: RegistryError) -> RegistryError {
    let RegistryError::Io { context, source } = e else {
        return e;
    };
    let ours = source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<RegistryError>())
        .is_some_and(|inner| matches!(inner, RegistryError::LayerContent { .. }));
    if !ours {
        return RegistryError::Io { context, source };
    }
    let kind = source.kind();
    match source
        .into_inner()
        .map(|inner| inner.downcast::<RegistryError>())
    {
        Some(Ok(inner)) => *inner,
        Some(Err(other)) => RegistryError::io(context, io::Error::new(kind, other)),
        None => RegistryError::io(context, io::Error::from(kind)),
    }
}

/// The store's layout as a sink that also checks a layer's diff_id.
struct CheckedLayerSink<'a> {
    layout: &'a Layout,
    layer: &'a LayerInfo,
    repository: &'a str,
    compression: Compression,
    /// Taken by the first writer.
    tee: std::sync::Mutex<Option<std::fs::File>>,
}

impl BlobSink for CheckedLayerSink<'_> {
    fn has(&self, digest: &Digest) -> bool {
        self.layout.has_blob(digest)
    }

    fn writer(&self) -> io::Result<Box<dyn BlobWrite>> {
        let inner = self.layout.writer()?;
        let (mut rx, tx) = io::pipe()?;
        let compression = self.compression;
        // The content digest is computed beside the download, from a pipe:
        // the blob is read once, off the network, never again from disk.
        let check = std::thread::Builder::new()
            .name("boxwright-diffid".into())
            .spawn(move || -> io::Result<Digest> {
                let mut r = DigestReader::new(crate::layer::open_layer(&mut rx, compression));
                io::copy(&mut r, &mut io::sink())?;
                let (_, content, _) = r.finish();
                // Whatever follows the compressed stream is read too, so
                // the download never blocks on a full pipe.
                io::copy(&mut rx, &mut io::sink())?;
                Ok(content)
            })?;
        let tee = self.tee.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(Box::new(CheckedWrite {
            inner,
            tee,
            tx: Some(tx),
            check: Some(check),
            layer: self.layer.clone(),
            repository: self.repository.to_string(),
        }))
    }
}

/// One layer blob on its way in: written to the store and, through a pipe,
/// to the thread that hashes its content.
struct CheckedWrite {
    inner: Box<dyn BlobWrite>,
    /// Where the bytes also go as they arrive; `None` once its reader left.
    tee: Option<std::fs::File>,
    /// `None` once the checker stopped reading (it failed: commit says why).
    /// Dropped without a commit, the pipe closes and the checker ends.
    tx: Option<io::PipeWriter>,
    check: Option<JoinHandle<io::Result<Digest>>>,
    layer: LayerInfo,
    repository: String,
}

impl Write for CheckedWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(tee) = &mut self.tee
            && tee.write_all(&buf[..n]).is_err()
        {
            // The unpack stopped reading (it failed: its caller says why).
            self.tee = None;
        }
        if let Some(tx) = &mut self.tx
            && tx.write_all(&buf[..n]).is_err()
        {
            // The checker gave up (not a layer of this compression): the
            // download goes on to its end and commit refuses it.
            self.tx = None;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BlobWrite for CheckedWrite {
    fn commit(mut self: Box<Self>, expected: &Digest) -> io::Result<()> {
        drop(self.tx.take());
        // The unpack reading the tee sees the end of the blob now; it checks
        // the content itself.
        drop(self.tee.take());
        let content = match self.check.take().map(JoinHandle::join) {
            Some(Ok(Ok(d))) => d,
            Some(Ok(Err(e))) => {
                return Err(io::Error::other(format!(
                    "layer {} from {} does not decompress: {e}",
                    self.layer.digest, self.repository
                )));
            }
            _ => return Err(io::Error::other("the layer check stopped")),
        };
        if content != self.layer.diff_id {
            return Err(io::Error::other(RegistryError::LayerContent {
                digest: self.layer.digest.clone(),
                repository: self.repository.clone(),
                claimed: self.layer.diff_id.clone(),
                actual: content,
            }));
        }
        self.inner.commit(expected)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::image::image_io_tests::gzip_layer;

    /// A gzip layer's blob and its LayerInfo, made in a scratch layout.
    fn layer() -> (Vec<u8>, LayerInfo) {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Layout::create(dir.path()).unwrap();
        let info = gzip_layer(&scratch, &[("etc/a", b"a\n".as_slice()), ("b", b"bb")]);
        (scratch.read_blob(&info.digest).unwrap(), info)
    }

    fn sink<'a>(
        layout: &'a Layout,
        layer: &'a LayerInfo,
        tee: Option<std::fs::File>,
    ) -> CheckedLayerSink<'a> {
        CheckedLayerSink {
            layout,
            layer,
            repository: "127.0.0.1:5000/ci/cache",
            compression: Compression::Gzip,
            tee: std::sync::Mutex::new(tee),
        }
    }

    #[test]
    fn a_layer_is_stored_only_when_its_content_is_its_diff_id() {
        let (blob, info) = layer();
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        // The tee gets every byte, once (only the first writer has it).
        let (mut rx, tx) = io::pipe().unwrap();
        let tee = std::fs::File::from(std::os::fd::OwnedFd::from(tx));
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            rx.read_to_end(&mut got).unwrap();
            got
        });
        let s = sink(&layout, &info, Some(tee));
        let mut w = s.writer().unwrap();
        for chunk in blob.chunks(7) {
            w.write_all(chunk).unwrap();
        }
        w.commit(&info.digest).unwrap();
        let second = s.writer().unwrap();
        drop(second);
        assert_eq!(reader.join().unwrap(), blob);
        assert_eq!(layout.read_blob(&info.digest).unwrap(), blob);

        // A record that claims another diff_id: refused, nothing stored.
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let mut forged = info.clone();
        forged.diff_id = Digest::of(b"something else");
        let mut w = sink(&layout, &forged, None).writer().unwrap();
        w.write_all(&blob).unwrap();
        let e = w.commit(&info.digest).unwrap_err();
        let inner = layer_content(RegistryError::io("storing blob", e));
        assert!(
            matches!(&inner, RegistryError::LayerContent { actual, .. } if *actual == info.diff_id),
            "{inner}"
        );
        assert!(!layout.has_blob(&info.digest));

        // Bytes that are no gzip: refused, and the writer did not block.
        let mut w = sink(&layout, &info, None).writer().unwrap();
        w.write_all(&vec![7u8; 1 << 20]).unwrap();
        let e = w.commit(&info.digest).unwrap_err();
        assert!(e.to_string().contains("does not decompress"), "{e}");
        assert!(!layout.has_blob(&info.digest));
    }
}

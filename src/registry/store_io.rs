//! The store as a source and sink of registry blobs, and the two moves
//! between them: pull an image into the store, push a stored image out.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::digest::Digest;
use crate::image::ManifestKind;
use crate::media::{Descriptor, Platform};
use crate::store::{BlobWriter, Layout, RemoteLayer, Store};

use super::remote_layers::fetch_remote_layer;
use super::{
    BlobSink, BlobSource, BlobWrite, PulledImage, Reference, Registry, RegistryError, Result,
    TransferEvent,
};

impl BlobSource for Layout {
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.open_blob(digest).map_err(io::Error::other)?))
    }

    fn open_at(&self, digest: &Digest, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut f = self.open_blob(digest).map_err(io::Error::other)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(f))
    }

    fn size(&self, digest: &Digest) -> io::Result<u64> {
        self.blob_size(digest).map_err(io::Error::other)
    }
}

/// A blob on its way into the store: verified and renamed in on commit,
/// removed if dropped.
struct StoreBlob(BlobWriter);

impl Write for StoreBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl BlobWrite for StoreBlob {
    fn commit(self: Box<Self>, expected: &Digest) -> io::Result<()> {
        self.0
            .finish(Some(expected))
            .map(|_| ())
            .map_err(io::Error::other)
    }
}

impl BlobSink for Layout {
    fn has(&self, digest: &Digest) -> bool {
        self.has_blob(digest)
    }

    fn writer(&self) -> io::Result<Box<dyn BlobWrite>> {
        Ok(Box::new(StoreBlob(
            self.blob_writer().map_err(io::Error::other)?,
        )))
    }
}

/// Pulls `reference` into the store and names it there after the
/// reference as written in full (`docker.io/library/ubuntu:24.04`), as
/// podman does. Returns the pull and the manifest descriptor now tagged.
pub fn pull_into_store(
    registry: &Registry,
    store: &Store,
    reference: &Reference,
    platform: Option<&Platform>,
    progress: &(dyn Fn(TransferEvent) + Send + Sync),
) -> Result<(PulledImage, Descriptor)> {
    let pulled = registry.pull(reference, platform, store.layout(), progress)?;
    let desc = Descriptor::new(
        pulled.manifest_media_type.clone(),
        pulled.manifest_digest.clone(),
        pulled.manifest_bytes.len() as u64,
    );
    store
        .layout()
        .tag(&reference.to_string(), desc.clone())
        .map_err(|e| RegistryError::io("tagging the pulled image", io::Error::other(e)))?;
    Ok((pulled, desc))
}

/// Pushes the stored image `desc` to `target`: its config and layers, then
/// its manifest bytes exactly as stored (so the digest stays the same).
/// A layer the store holds only remotely (a lazy step-cache hit) is mounted
/// from its repository when the target is on the same registry, and fetched
/// first otherwise (or when the registry refuses the mount).
pub fn push_from_store(
    registry: &Registry,
    store: &Store,
    desc: &Descriptor,
    target: &Reference,
    progress: &(dyn Fn(TransferEvent) + Send + Sync),
) -> Result<Digest> {
    let layout = store.layout();
    let bytes = layout
        .read_blob(&desc.digest)
        .map_err(|e| RegistryError::io("reading the manifest", io::Error::other(e)))?;
    let manifest = match ManifestKind::parse(Some(&desc.media_type), &bytes) {
        Ok(ManifestKind::Image(m)) => m,
        Ok(ManifestKind::Index(_)) => {
            return Err(RegistryError::Invalid(format!(
                "{} is an image index; push one of its images",
                desc.digest
            )));
        }
        Err(e) => {
            return Err(RegistryError::Invalid(format!(
                "stored manifest {}: {e}",
                desc.digest
            )));
        }
    };
    let mut blobs = Vec::with_capacity(manifest.layers.len() + 1);
    blobs.push(manifest.config.clone());
    blobs.extend(manifest.layers.iter().cloned());
    let remote = || -> Vec<RemoteLayer> {
        manifest
            .layers
            .iter()
            .filter(|l| !layout.has_blob(&l.digest))
            .filter_map(|l| store.remote_layer(&l.digest))
            .collect()
    };
    for r in remote() {
        match r.repository.parse::<Reference>() {
            Ok(from) if from.registry() == target.registry() => {
                registry.remember_blob(&from, &r.layer.digest)
            }
            _ => fetch_remote_layer(registry, store, &r, progress)?,
        }
    }
    let pushed = match registry.push(layout, target, &bytes, &desc.media_type, &blobs, progress) {
        // A refused mount left a remote layer to upload from here: fetch
        // what is still remote and push again (blobs already there are
        // skipped).
        Err(RegistryError::Io { .. }) if !remote().is_empty() => {
            for r in remote() {
                fetch_remote_layer(registry, store, &r, progress)?;
            }
            registry.push(layout, target, &bytes, &desc.media_type, &blobs, progress)
        }
        other => other,
    }?;
    // The pushed image holds its layers now, for as long as it is there (a
    // cache repository is pruned): later fetches come from it.
    let repository = format!("{}/{}", target.registry(), target.repository());
    for r in remote() {
        let moved = RemoteLayer {
            repository: repository.clone(),
            ..r
        };
        if let Err(e) = store.put_remote_layer(&moved) {
            tracing::warn!(error = %e, "could not note where a pushed layer is");
        }
    }
    Ok(pushed)
}

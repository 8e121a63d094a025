//! Writing an image (config + manifest) into a layout and loading one back.

use std::collections::BTreeMap;

use super::ImageError;
use super::config::ImageConfig;
use super::manifest::{Manifest, ManifestKind, select_manifest};
use super::platform::host_platform;
use crate::media::{
    DOCKER_LAYER_GZIP, Descriptor, LayerInfo, OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_TAR,
    OCI_MANIFEST, Platform,
};
use crate::store::Layout;

/// Indexes nest one level in practice; this bounds a hostile chain.
const MAX_INDEX_DEPTH: usize = 4;

/// A loaded image: the manifest chosen for the platform, its config, and the config's
/// exact bytes (keep them when the config is reused unchanged: same bytes, same digest).
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// The descriptor of the image manifest itself (not of an index that led to it).
    pub manifest_descriptor: Descriptor,
    pub manifest: Manifest,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
}

impl Image {
    /// A manifest annotation's value.
    pub fn manifest_annotation(&self, key: &str) -> Option<String> {
        self.manifest.annotations.get(key).cloned()
    }

    /// The image's layers, bottom first, pairing the manifest's blobs with the config's
    /// diff_ids.
    pub fn layers(&self) -> Result<Vec<LayerInfo>, ImageError> {
        let diff_ids = &self.config.rootfs.diff_ids;
        if diff_ids.len() != self.manifest.layers.len() {
            return Err(ImageError::LayerCount {
                layers: self.manifest.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        Ok(self
            .manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(d, diff_id)| LayerInfo {
                digest: d.digest.clone(),
                diff_id: diff_id.clone(),
                size: d.size,
                media_type: d.media_type.clone(),
            })
            .collect())
    }
}

/// Writes `config` and an OCI manifest over `layers` into `layout` (both as canonical
/// JSON, so equal inputs give equal digests) and returns the manifest's descriptor.
/// The layer blobs must already be in the layout, and `config.rootfs.diff_ids` must list
/// exactly the layers' diff_ids. Docker layer media types are written as their OCI
/// equivalents (the bytes are the same), since an OCI manifest names OCI types.
pub fn write_image(
    layout: &Layout,
    config: &ImageConfig,
    layers: &[LayerInfo],
    annotations: BTreeMap<String, String>,
) -> Result<Descriptor, ImageError> {
    write_image_over(layout, config, layers, annotations, &|_| false)
}

/// [`write_image`], where a layer whose blob is absent may be one a
/// registry holds for the store (`held_remotely` says so: a lazy step-cache
/// hit, see `store::RemoteLayer`).
pub(crate) fn write_image_over(
    layout: &Layout,
    config: &ImageConfig,
    layers: &[LayerInfo],
    annotations: BTreeMap<String, String>,
    held_remotely: &dyn Fn(&LayerInfo) -> bool,
) -> Result<Descriptor, ImageError> {
    let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
    if diff_ids != config.rootfs.diff_ids {
        return Err(ImageError::DiffIdsDisagree {
            config: config.rootfs.diff_ids.len(),
            layers: layers.len(),
        });
    }
    for layer in layers {
        match layout.blob_size(&layer.digest) {
            Ok(size) if size == layer.size => {}
            Ok(size) => {
                return Err(ImageError::SizeMismatch {
                    digest: layer.digest.clone(),
                    declared: layer.size,
                    actual: size,
                });
            }
            Err(_) if held_remotely(layer) => {}
            Err(_) => return Err(ImageError::MissingLayer(layer.digest.clone())),
        }
    }
    let config_bytes = config.to_canonical_json()?;
    let config_digest = layout.write_blob(&config_bytes)?;
    let config_desc = Descriptor::new(OCI_CONFIG, config_digest, config_bytes.len() as u64);
    let layer_descs = layers
        .iter()
        .map(|l| {
            let mut d = l.descriptor();
            d.media_type = oci_layer_media_type(&d.media_type).to_string();
            d
        })
        .collect();
    let manifest = Manifest::new_oci(config_desc, layer_descs, annotations);
    let bytes = manifest.to_canonical_json()?;
    let digest = layout.write_blob(&bytes)?;
    Ok(Descriptor::new(OCI_MANIFEST, digest, bytes.len() as u64))
}

fn oci_layer_media_type(media_type: &str) -> &str {
    match media_type {
        DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar" => OCI_LAYER_TAR,
        other => other,
    }
}

/// Loads the image `desc` points at; an index (or Docker manifest list) is followed to
/// the host platform's manifest.
pub fn load_image(layout: &Layout, desc: &Descriptor) -> Result<Image, ImageError> {
    load_image_for(layout, desc, &host_platform())
}

/// [`load_image`] for a chosen platform.
pub fn load_image_for(
    layout: &Layout,
    desc: &Descriptor,
    platform: &Platform,
) -> Result<Image, ImageError> {
    let mut desc = desc.clone();
    for _ in 0..=MAX_INDEX_DEPTH {
        let bytes = read_described(layout, &desc)?;
        match ManifestKind::parse(Some(&desc.media_type), &bytes)? {
            ManifestKind::Index(index) => {
                desc = select_manifest(&index, platform)?.clone();
            }
            ManifestKind::Image(manifest) => {
                let config_bytes = read_described(layout, &manifest.config)?;
                let config = ImageConfig::from_json(&config_bytes)?;
                return Ok(Image {
                    manifest_descriptor: desc,
                    manifest,
                    config,
                    config_bytes,
                });
            }
        }
    }
    Err(ImageError::TooDeep(desc.digest))
}

/// Reads a blob, checking both its digest (the store does) and the descriptor's size.
fn read_described(layout: &Layout, desc: &Descriptor) -> Result<Vec<u8>, ImageError> {
    let bytes = layout.read_blob(&desc.digest)?;
    if bytes.len() as u64 != desc.size {
        return Err(ImageError::SizeMismatch {
            digest: desc.digest.clone(),
            declared: desc.size,
            actual: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

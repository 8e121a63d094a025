//! The image a build starts from: nothing, a rootfs tarball, an image in an
//! OCI layout, a registry image, or a template's image (see [`super::template`]).

use std::fs::File;
use std::io::BufReader;

use crate::digest::{Digest, Hasher};
use crate::image::{self, ImageConfig};
use crate::layer;
use crate::media::{Compression, Descriptor, LayerInfo};
use crate::plan::LayerSettings;
use crate::progress::{Event, Sink};
use crate::recipe::Base;
use crate::store::{CacheEntry, Layout, Store};

use super::remote::{self, RegistryOptions};
use super::{BaseError, BuildError};
use crate::registry::{Reference, RegistriesConfig, Registry, RegistryError};

/// The starting point of a build.
#[derive(Clone, Debug)]
pub struct BaseImage {
    pub config: ImageConfig,
    pub layers: Vec<LayerInfo>,
}

/// Resolves a base (as a recipe's `base =` or a Containerfile's `FROM`
/// names it) into the store. `offline` (with the build's registries.toml)
/// forbids pulling a registry base from a registry that has no mirrors: the
/// copy pulled into the store before is used instead.
pub(crate) fn resolve_base(
    base: &Base,
    epoch: u64,
    store: &Store,
    settings: &LayerSettings,
    registry: &RegistryOptions,
    offline: Option<&RegistriesConfig>,
    sink: &dyn Sink,
) -> Result<BaseImage, BuildError> {
    match base {
        Base::Scratch => Ok(BaseImage {
            config: ImageConfig::new_for_host(epoch),
            layers: Vec::new(),
        }),
        Base::Rootfs(path) => {
            let layer = import_rootfs(path, store, settings.compression, sink)?;
            let mut config = ImageConfig::new_for_host(epoch);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            config.push_layer(
                layer.diff_id.clone(),
                &format!("boxwright: rootfs {name}"),
                epoch,
            );
            Ok(BaseImage {
                config,
                layers: vec![layer],
            })
        }
        Base::Oci { dir, tag } => {
            let layout = Layout::open(dir).map_err(|e| BaseError::Store {
                what: format!("oci:{}", dir.display()),
                source: e,
            })?;
            let desc = layout.resolve(tag).map_err(|e| BaseError::Store {
                what: format!("oci:{}:{tag}", dir.display()),
                source: e,
            })?;
            copy_image(
                &layout,
                &desc,
                store,
                &format!("oci:{}:{tag}", dir.display()),
            )
        }
        Base::OciArchive { file, name } => archive_base(file, name.as_deref(), store),
        Base::Registry(r) => {
            // A name of the local store (no registry host written: `demo`,
            // `team/box:1`) is used as it is, as podman uses local images.
            if let Some(stored) = local_name(r, store) {
                sink.emit(&Event::Info {
                    message: format!("base image {r}: from the store"),
                });
                return load_stored(store, &stored, r);
            }
            let reference: Reference = r.parse().map_err(|e| {
                BuildError::BadInput(format!("base '{r}' is not an image reference: {e}"))
            })?;
            if let Some(stored) = offline_copy(&reference, "base image", offline, store, sink) {
                return stored;
            }
            pull_base(&reference, store, registry, sink)
        }
        Base::Template(name) => super::template::resolve(name, store, registry, offline, sink),
    }
}

/// The stored image `written` names when it names no registry host (its
/// first component has no '.' or ':' and is not `localhost`) and the store
/// has it.
fn local_name(written: &str, store: &Store) -> Option<Descriptor> {
    let first = written.split('/').next().unwrap_or("");
    let has_host = written.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_host {
        return None;
    }
    let name = crate::store::normalize_name(written).ok()?;
    store.layout().resolve(&name).ok()
}

/// An image from an OCI archive: read into a scratch store (every blob
/// verified), then its blobs copied into the store as from a layout.
fn archive_base(
    file: &std::path::Path,
    name: Option<&str>,
    store: &Store,
) -> Result<BaseImage, BuildError> {
    let what = format!("oci-archive:{}", file.display());
    let tmp = store.temp_dir()?;
    let result = (|| {
        let scratch = Store::open(&tmp.join("archive"))?;
        let input = File::open(file).map_err(|e| BuildError::BadInput(format!("{what}: {e}")))?;
        let names = crate::store::load_archive(&scratch, BufReader::new(input)).map_err(|e| {
            BaseError::Store {
                what: what.clone(),
                source: e,
            }
        })?;
        let pick = match name {
            Some(n) => crate::store::normalize_name(n)
                .map_err(|e| BuildError::BadInput(format!("{what}: {e}")))?,
            None if names.len() == 1 => names[0].clone(),
            None => {
                return Err(BuildError::BadInput(format!(
                    "{what} holds {} images ({}): name one, oci-archive:FILE:NAME",
                    names.len(),
                    names.join(", ")
                )));
            }
        };
        let desc = scratch.layout().resolve(&pick).map_err(|_| {
            BuildError::BadInput(format!(
                "{what} has no image {pick} (it has: {})",
                names.join(", ")
            ))
        })?;
        copy_image(scratch.layout(), &desc, store, &what)
    })();
    // The scratch store's files are ours (no subordinate ids): plain removal.
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Under `--offline` (`offline` holds the build's registries.toml), an image
/// from a registry with no mirrors comes from the copy pulled into the store
/// before, or the build fails naming it; `None` when the registry may be asked.
pub(crate) fn offline_copy(
    reference: &Reference,
    what: &str,
    offline: Option<&RegistriesConfig>,
    store: &Store,
    sink: &dyn Sink,
) -> Option<Result<BaseImage, BuildError>> {
    let config = offline?;
    let host = reference.registry();
    // Only mirror_only keeps a pull off the registry itself: plain mirrors
    // fall back to it when they lack the image.
    if config
        .settings(host)
        .is_some_and(|s| s.mirror_only && !s.mirrors.is_empty())
    {
        return None;
    }
    let name = reference.to_string();
    let Ok(desc) = store.layout().resolve(&name) else {
        return Some(Err(BuildError::Offline(format!(
            "--offline: the {what} {name} is not in the store and registry {host} has no mirror_only mirrors in registries.toml: pull it first (boxwright pull {name}), or give {host} internal mirrors with mirror_only = true, or build without --offline"
        ))));
    };
    sink.emit(&Event::Info {
        message: format!("--offline: using {name} as pulled before"),
    });
    Some(copy_image(store.layout(), &desc, store, &name))
}

/// Pulls a registry base into the store (blobs already there are not
/// fetched again) and reads it back as a base.
pub(crate) fn pull_base(
    reference: &Reference,
    store: &Store,
    registry: &RegistryOptions,
    sink: &dyn Sink,
) -> Result<BaseImage, BuildError> {
    let client = remote::client(registry, store).map_err(BaseError::from)?;
    let desc = pull_into_store(&client, reference, store, sink).map_err(BaseError::from)?;
    load_stored(store, &desc, &reference.to_string())
}

/// Pulls `reference` into the store, reporting each blob on `sink`, and
/// names it there after the full reference; returns its manifest.
pub(crate) fn pull_into_store(
    client: &Registry,
    reference: &Reference,
    store: &Store,
    sink: &dyn Sink,
) -> Result<Descriptor, RegistryError> {
    sink.emit(&Event::Info {
        message: format!("pulling {reference}"),
    });
    let report = remote::transfer_reporter(sink);
    let (_, desc) = crate::registry::pull_into_store(client, store, reference, None, &report)?;
    Ok(desc)
}

/// An image already in the store, as a base.
pub(crate) fn load_stored(
    store: &Store,
    desc: &Descriptor,
    what: &str,
) -> Result<BaseImage, BuildError> {
    let img = image::load_image(store.layout(), desc).map_err(|e| image_error(what, e))?;
    let layers = img.layers().map_err(|e| image_error(what, e))?;
    Ok(BaseImage {
        config: img.config,
        layers,
    })
}

fn image_error(what: &str, source: image::ImageError) -> BaseError {
    BaseError::Image {
        what: what.to_string(),
        source,
    }
}

/// Copies an image's blobs from a foreign layout into the store, verifying
/// each, and returns it as a base.
pub(crate) fn copy_image(
    from: &Layout,
    desc: &Descriptor,
    store: &Store,
    what: &str,
) -> Result<BaseImage, BuildError> {
    let img = image::load_image(from, desc).map_err(|e| image_error(what, e))?;
    let layers = img.layers().map_err(|e| image_error(what, e))?;
    for l in &layers {
        if Compression::from_layer_media_type(&l.media_type).is_none() {
            return Err(BaseError::LayerMediaType {
                what: what.to_string(),
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
            }
            .into());
        }
        copy_blob(from, &l.digest, store, what)?;
    }
    Ok(BaseImage {
        config: img.config,
        layers,
    })
}

/// Copies one blob into the store (verified against its digest); `what`
/// names the base in errors.
fn copy_blob(from: &Layout, digest: &Digest, store: &Store, what: &str) -> Result<(), BuildError> {
    if store.layout().has_blob(digest) {
        return Ok(());
    }
    let store_error = |source| BaseError::Store {
        what: what.to_string(),
        source,
    };
    let mut src = from.open_blob(digest).map_err(store_error)?;
    let mut w = store.layout().blob_writer().map_err(store_error)?;
    std::io::copy(&mut src, &mut w).map_err(|e| BaseError::CopyBlob {
        what: what.to_string(),
        digest: digest.clone(),
        source: e,
    })?;
    w.finish(Some(digest)).map_err(store_error)?;
    Ok(())
}

/// Imports a rootfs tarball as a layer, once per content and compression.
fn import_rootfs(
    path: &std::path::Path,
    store: &Store,
    compression: Compression,
    sink: &dyn Sink,
) -> Result<LayerInfo, BuildError> {
    let bad = |e: std::io::Error| BuildError::BadInput(format!("rootfs {}: {e}", path.display()));
    let mut h = Hasher::new();
    h.update(format!("boxwright rootfs import v1 {compression}\n").as_bytes());
    let mut f = File::open(path).map_err(bad)?;
    let mut content = crate::digest::DigestWriter::new(std::io::sink());
    std::io::copy(&mut f, &mut content).map_err(bad)?;
    h.update(content.finish().1.hex().as_bytes());
    let key = h.finish().0;
    if let Some(hit) = store.cache_get(&key)? {
        return Ok(hit.layer);
    }
    sink.emit(&Event::Info {
        message: format!("importing {} as the base layer", path.display()),
    });
    let f = File::open(path).map_err(bad)?;
    let mut w = store.layout().blob_writer()?;
    let layer = layer::import_tar(BufReader::new(f), compression, &mut w)
        .map_err(|e| BuildError::BadInput(format!("rootfs {}: {e}", path.display())))?;
    w.finish(Some(&layer.digest))?;
    store.cache_put(
        &key,
        &CacheEntry {
            layer: layer.clone(),
            created_by: format!("rootfs {}", path.display()),
            created: 0,
        },
    )?;
    Ok(layer)
}

//! Images: OCI config, manifest and index, serialized as canonical JSON.
//!
//! [`ImageConfig`] and [`Manifest`] read OCI and Docker documents and keep fields they do
//! not know. What boxwright writes goes through the store's canonical JSON, so the same
//! inputs always give the same config and manifest digests. [`write_image`] and
//! [`load_image`] move images in and out of any [`crate::store::Layout`].

mod config;
mod derive;
mod image_io;
mod manifest;
mod overrides;
mod platform;
mod rfc3339;

#[cfg(test)]
pub(crate) mod image_io_tests;
#[cfg(test)]
mod tool_tests;

pub use config::{ContainerConfig, History, ImageConfig, RootFs};
pub use derive::Derived;
pub use image_io::{Image, load_image, load_image_for, write_image};
pub use manifest::{Manifest, ManifestKind, NoPlatform, declared_media_type, select_manifest};
pub use overrides::ConfigOverrides;
pub use platform::{PlatformError, host_platform, parse_platform, platform_name};
pub use rfc3339::rfc3339;

use crate::digest::Digest;

/// The manifest annotation that carries the recipe an image was built from
/// (step env values redacted), so `clone` can write it out again.
pub const RECIPE_ANNOTATION: &str = "io.boxwright.recipe";
use crate::store::StoreError;

/// What went wrong with an image. Each message says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("not a valid {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "'{0}' is not an image manifest or index media type boxwright reads (OCI or Docker v2): use an image, not another kind of artifact"
    )]
    UnsupportedMediaType(String),
    #[error(
        "Docker schema 1 manifests are not supported: re-push the image with a current Docker, or convert it with `skopeo copy --format v2s2`"
    )]
    SchemaV1,
    #[error(
        "the manifest was served as {declared} but says it is {found}: refusing content that is not what it claims"
    )]
    MediaTypeMismatch { declared: String, found: String },
    #[error("schemaVersion is {0:?}, expected 2: not an OCI or Docker v2 manifest")]
    SchemaVersion(Option<u32>),
    #[error("not a valid manifest: {0}")]
    Misshapen(&'static str),
    #[error("{0}: pick an image built for this platform")]
    NoPlatform(#[from] NoPlatform),
    #[error(
        "the config lists {config} diff_ids but {layers} layers were given (or they differ): push each layer into the config with push_layer"
    )]
    DiffIdsDisagree { config: usize, layers: usize },
    #[error("layer blob {0} is not in the layout: write the layer before the image")]
    MissingLayer(Digest),
    #[error(
        "blob {digest} is {actual} bytes but its descriptor says {declared}: the image is damaged, pull or build it again"
    )]
    SizeMismatch {
        digest: Digest,
        declared: u64,
        actual: u64,
    },
    #[error(
        "the manifest has {layers} layers but the config {diff_ids} diff_ids: the image is damaged, pull or build it again"
    )]
    LayerCount { layers: usize, diff_ids: usize },
    #[error("image index {0} nests indexes too deep: refusing to follow it")]
    TooDeep(Digest),
}

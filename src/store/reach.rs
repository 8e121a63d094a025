//! Which blobs and layer diff_ids an image (manifest or index) keeps alive.
//!
//! The store sits before `image` in the pipeline, so it reads only the few fields it
//! needs here: child descriptors of indexes, config and layers of manifests, and the
//! config's `rootfs.diff_ids`.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::error::{Result, StoreError};
use super::layout::Layout;
use crate::digest::Digest;
use crate::media::Descriptor;

/// How deep indexes may nest before the walk gives up (real images nest one level).
const MAX_DEPTH: usize = 8;

/// What a blob is to the image that references it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A manifest or index listed by an index.
    Child,
    Config,
    Layer,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Child => "manifest",
            Role::Config => "config",
            Role::Layer => "layer",
        }
    }
}

/// The result of walking one or more images.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    /// Every blob referenced and present, in discovery order without duplicates.
    pub blobs: Vec<Digest>,
    seen: BTreeSet<Digest>,
    /// diff_ids named by reachable configs.
    pub diff_ids: BTreeSet<Digest>,
    /// Referenced blobs that are absent (foreign layers with `urls` excluded).
    pub missing: Vec<(Digest, Role)>,
    /// Present blobs whose size differs from their descriptor's: (digest, promised, actual).
    pub wrong_size: Vec<(Digest, u64, u64)>,
}

/// The descriptors a manifest or index links to, for the store's walks (gc, usage,
/// archives, fsck). Not `image::ManifestKind`: the store comes before `image` in the
/// pipeline, and a walk that keeps blobs alive must follow any document a tag points
/// at, an artifact's manifest of a media type that parser refuses included.
#[derive(Deserialize)]
pub(super) struct Links {
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ConfigLinks {
    rootfs: Option<RootFsLinks>,
}

#[derive(Deserialize)]
struct RootFsLinks {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The `rootfs.diff_ids` of a config blob, as written; `None` for a config that is
/// not an image config (an artifact's), which names no layers.
pub(super) fn config_diff_ids(bytes: &[u8]) -> Option<Vec<String>> {
    match serde_json::from_slice(bytes) {
        Ok(ConfigLinks { rootfs: Some(r) }) => Some(r.diff_ids),
        _ => None,
    }
}

impl Reach {
    /// Marks `desc` (a manifest or index) and everything below it. A top-level
    /// descriptor whose blob is absent is recorded as missing with role `Child`.
    pub(crate) fn walk(&mut self, layout: &Layout, desc: &Descriptor) -> Result<()> {
        self.walk_at(layout, desc, Role::Child, 0)
    }

    fn mark(&mut self, layout: &Layout, desc: &Descriptor, role: Role) -> bool {
        let Ok(size) = layout.blob_size(&desc.digest) else {
            if desc.urls.is_none() {
                self.missing.push((desc.digest.clone(), role));
            }
            return false;
        };
        if size != desc.size {
            self.wrong_size.push((desc.digest.clone(), desc.size, size));
        }
        if self.seen.insert(desc.digest.clone()) {
            self.blobs.push(desc.digest.clone());
        }
        true
    }

    fn walk_at(
        &mut self,
        layout: &Layout,
        desc: &Descriptor,
        role: Role,
        depth: usize,
    ) -> Result<()> {
        let first_visit = !self.seen.contains(&desc.digest);
        if !self.mark(layout, desc, role) || !first_visit {
            return Ok(());
        }
        if depth > MAX_DEPTH {
            return Err(StoreError::TooDeep(desc.digest.clone()));
        }
        let bytes = layout.read_blob(&desc.digest)?;
        let links: Links = serde_json::from_slice(&bytes).map_err(|e| StoreError::BadJson {
            path: layout.blob_path(&desc.digest),
            source: e,
        })?;
        for child in &links.manifests {
            self.walk_at(layout, child, Role::Child, depth + 1)?;
        }
        if let Some(config) = &links.config
            && self.mark(layout, config, Role::Config)
        {
            self.collect_diff_ids(layout, &config.digest)?;
        }
        for layer in &links.layers {
            self.mark(layout, layer, Role::Layer);
        }
        Ok(())
    }

    fn collect_diff_ids(&mut self, layout: &Layout, config: &Digest) -> Result<()> {
        let bytes = layout.read_blob(config)?;
        if let Some(ids) = config_diff_ids(&bytes) {
            self.diff_ids
                .extend(ids.iter().filter_map(|d| d.parse().ok()));
        }
        Ok(())
    }
}

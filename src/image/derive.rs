//! A new image made from a parent: its config and layers, more layers on top
//! (each with its history line), config changes, annotations, written as
//! config + manifest into a layout. Builds and forks both end this way.

use std::collections::BTreeMap;

use crate::media::{Descriptor, LayerInfo};
use crate::store::Layout;

use super::{ConfigOverrides, ImageConfig, ImageError, rfc3339, write_image};

/// An image being derived from a parent (or from nothing).
#[derive(Clone, Debug)]
pub struct Derived {
    /// The config so far: the parent's plus what was added.
    pub config: ImageConfig,
    /// The layers so far, bottom first; the parent's come first, unchanged.
    pub layers: Vec<LayerInfo>,
    annotations: BTreeMap<String, String>,
}

impl Derived {
    /// Starts from a parent's config and layers.
    pub fn new(config: ImageConfig, layers: Vec<LayerInfo>) -> Derived {
        Derived {
            config,
            layers,
            annotations: BTreeMap::new(),
        }
    }

    /// Adds a layer on top, with its history line.
    pub fn add_layer(&mut self, layer: LayerInfo, created_by: &str, created: u64) {
        self.config
            .push_layer(layer.diff_id.clone(), created_by, created);
        self.layers.push(layer);
    }

    /// Changes the config (env, labels, entrypoint…) and records it in the
    /// history as an empty layer; nothing happens when there is nothing to change.
    pub fn apply(&mut self, overrides: &ConfigOverrides, created_by: &str, created: u64) {
        if overrides.is_empty() {
            return;
        }
        self.config.apply(overrides);
        self.config.push_empty_history(created_by, created);
    }

    /// Sets a manifest annotation.
    pub fn annotate(&mut self, key: &str, value: String) {
        self.annotations.insert(key.to_string(), value);
    }

    /// Writes config and manifest (the layer blobs must be in `layout`
    /// already), with `created` as the image's creation time; returns the
    /// manifest's descriptor.
    pub fn write(mut self, layout: &Layout, created: u64) -> Result<Descriptor, ImageError> {
        self.config.created = Some(rfc3339(created));
        write_image(layout, &self.config, &self.layers, self.annotations)
    }

    /// [`Derived::write`] into the store, where a layer may be one a
    /// registry holds for it (a lazy step-cache hit, fetched when needed).
    pub fn write_to_store(
        mut self,
        store: &crate::store::Store,
        created: u64,
    ) -> Result<Descriptor, ImageError> {
        self.config.created = Some(rfc3339(created));
        let held = |l: &LayerInfo| store.remote_layer(&l.digest).is_some_and(|r| r.layer == *l);
        super::image_io::write_image_over(
            store.layout(),
            &self.config,
            &self.layers,
            self.annotations,
            &held,
        )
    }
}

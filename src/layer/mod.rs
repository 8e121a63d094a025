//! Layers: diffs of an upperdir or of two trees, deterministic OCI tars, compression, applying layers.

//! boxwright: a daemonless, rootless builder of OCI toolbox images.
//!
//! The pipeline runs in one direction, one module per stage:
//! `recipe` → `plan` → `sandbox` → `layer` → `store` → `image` → `registry`,
//! with `progress` events alongside and `build` driving the whole.
//! `digest` and `media` hold the primitives every stage shares.

pub mod digest;
pub mod media;

//! boxwright: a daemonless, rootless builder of OCI toolbox images.
//!
//! The pipeline runs in one direction, one module per stage:
//! `catalog` → `recipe` | `containerfile` → `plan` → `sandbox` → `layer` → `store` → `image` → `registry`,
//! with `progress` events alongside and `builder` driving the whole. The two
//! front ends, recipes and Containerfiles, both become plans (`plan` lowers
//! a Containerfile's stages); `context` selects the files a COPY reads, for
//! `plan` (digests) and `sandbox` (copies).
//! `artifact` fetches and verifies the catalog's pinned upstream files for
//! `builder`; `mirror` holds the download mirror rules `artifact`, `sandbox` and
//! `builder` apply. `settings` reads the user's config.toml. `digest`, `media`, `quote` and `units` hold the primitives every stage shares. A module
//! uses the types of the stages before it, never those after it.

pub mod digest;
pub mod media;
pub mod quote;
pub mod units;
pub mod xdg;

pub mod artifact;
pub mod catalog;
pub mod containerfile;
pub mod context;
pub mod mirror;

pub mod builder;
pub mod fork;
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod inventory;
pub mod layer;
pub mod plan;
pub mod progress;
pub mod recipe;
pub mod registry;
pub mod sandbox;
pub mod serve;
pub mod session;
pub mod settings;
pub mod store;

//! What a COPY takes from a source tree — the build context, or the root of
//! another stage or image: sources expanded from glob patterns, resolved
//! inside the tree (a symlink can never lead out of it), with `.dockerignore`
//! and `--exclude` patterns applied; and the digest of that selection, which
//! is what a COPY's cache key covers.
//!
//! Both sides use this module: the planner hashes the selection on the host,
//! and the sandbox copies it from inside the container's namespaces (where
//! the tree is its working directory), so both see the same files.

mod digest;
mod excludes;
mod resolve;
mod select;

pub use digest::hash_tree;
pub use excludes::{Excludes, ExcludesError};
pub use resolve::{lexical, resolve_in_root};
pub use select::{SelectError, Selected, digest, has_magic, select};

//! Images: OCI config, manifest and index, serialized as canonical JSON.

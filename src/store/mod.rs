//! The store: an OCI image layout plus unpacked layers and the build cache; atomic writes.

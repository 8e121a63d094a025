//! Registries: references, auth, pull and push over the OCI distribution API.

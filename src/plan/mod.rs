//! Plans: a recipe turned into ordered steps, each with a cache key.

//! Progress events and their sinks.

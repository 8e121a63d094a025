//! Recipe files: the TOML schema, parsing and validation with file:line errors.

//! Entry points of the fuzz targets (`fuzz/`, cargo fuzz) and of the
//! replay of their corpora as ordinary tests (`tests/fuzz_corpus.rs`). Each
//! takes arbitrary bytes; the only failures are panics, including the
//! invariants asserted here (a rendered Containerfile parses to the same
//! tree, a printed reference reads back the same, a layer never writes
//! outside its directory).

use std::path::Path;

/// The Containerfile parser, its renderer and word processing.
pub fn containerfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("Containerfile");
    let Ok(file) = crate::containerfile::parse(text, path) else {
        return;
    };
    let rendered = crate::containerfile::render(&file);
    let again = match crate::containerfile::parse(&rendered, path) {
        Ok(f) => f,
        Err(e) => panic!("a rendered Containerfile does not parse: {e}\n{rendered}"),
    };
    assert!(
        crate::containerfile::same_ignoring_positions(&file, &again),
        "rendering changed the tree:\n{rendered}"
    );
    let lookup = |name: &str| name.len().is_multiple_of(2).then(|| format!("v-{name}"));
    for stage in &file.stages {
        for ins in &stage.instructions {
            let _ = crate::containerfile::words::process_words(&ins.text, file.escape, &lookup);
            let _ = crate::containerfile::words::process_word(&ins.text, file.escape, &lookup);
        }
    }
}

/// The recipe reader (syntax and schema; it touches no file).
pub fn recipe(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::recipe::Recipe::parse(text, Path::new("/nonexistent/fuzz/recipe.toml"));
    }
}

/// Image references: what parses prints as text that parses the same.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = text.parse::<crate::registry::Reference>() {
        let printed = r.to_string();
        match printed.parse::<crate::registry::Reference>() {
            Ok(again) => assert_eq!(again.to_string(), printed, "{text:?}"),
            Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
        }
    }
}

/// Manifests, indexes and image configs as registries and archives send them.
pub fn manifest(data: &[u8]) {
    use crate::media::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
    for media_type in [
        None,
        Some(OCI_MANIFEST),
        Some(OCI_INDEX),
        Some(DOCKER_MANIFEST),
        Some(DOCKER_MANIFEST_LIST),
    ] {
        let _ = crate::image::ManifestKind::parse(media_type, data);
    }
    if let Ok(config) = crate::image::ImageConfig::from_json(data) {
        let _ = config.to_canonical_json();
        let _ = config.env();
    }
}

/// The layer applier (tar, optionally gzip or zstd, with whiteouts): it
/// may refuse a layer, never write outside its directory.
pub fn layer(data: &[u8]) {
    use crate::media::Compression;
    let Ok(parent) = tempfile::tempdir() else {
        return;
    };
    let canary = parent.path().join("canary");
    let dest = parent.path().join("dest");
    if std::fs::write(&canary, b"canary").is_err() || std::fs::create_dir(&dest).is_err() {
        return;
    }
    let compression = if data.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let checks = crate::layer::ApplyChecks {
        max_size: Some(crate::layer::SizeCap {
            bytes: 64 << 20,
            why: "fuzzing".into(),
        }),
        ..Default::default()
    };
    let _ = crate::layer::apply_layer_checked(
        data,
        compression,
        &dest,
        crate::layer::ApplyMode::Flatten,
        &checks,
    );
    let mut names: Vec<_> = std::fs::read_dir(parent.path())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
        .unwrap_or_default();
    names.sort();
    assert_eq!(
        names,
        ["canary", "dest"],
        "the layer wrote beside its directory"
    );
    assert_eq!(std::fs::read(&canary).ok().as_deref(), Some(&b"canary"[..]));
}

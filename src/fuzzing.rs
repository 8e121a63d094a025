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

/// `WWW-Authenticate` headers as registries (or hostile servers) send them:
/// parsing never panics, and yields at most one challenge per scheme word.
pub fn auth_challenge(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let challenges = crate::registry::challenge::parse(text);
    assert!(
        challenges.len() <= text.split_whitespace().count() + 1,
        "{text:?}"
    );
}

/// Where [`inventory`] puts the pieces of its input (split at 0xFF bytes):
/// every file the fork inventory readers look at.
const INVENTORY_FILES: [&str; 10] = [
    "var/lib/dpkg/status",
    "var/lib/apt/extended_states",
    "etc/apt/sources.list",
    "etc/apt/sources.list.d/fuzz.sources",
    "lib/apk/db/installed",
    "usr/lib/python3/dist-packages/fuzz-1.0.dist-info/METADATA",
    "usr/local/lib/python3.11/site-packages/fuzz.egg-info/PKG-INFO",
    "usr/lib/node_modules/fuzz/package.json",
    "root/.vscode-server/extensions/extensions.json",
    "root/.vscode-server/extensions/pub.ext-1.0.0/package.json",
];

/// The fork inventory readers (dpkg status and apt's marks, apt sources,
/// apk, pip metadata, npm and VS Code manifests) over a tree whose files the
/// input fills: they never panic, an inventory compares equal to itself,
/// and it survives its JSON form (what `snapshot -o` writes and fork reads).
pub fn inventory(data: &[u8]) {
    let Ok(root) = tempfile::tempdir() else {
        return;
    };
    for (path, content) in INVENTORY_FILES.iter().zip(data.split(|b| *b == 0xFF)) {
        let file = root.path().join(path);
        let Some(dir) = file.parent() else { continue };
        if std::fs::create_dir_all(dir).is_err() || std::fs::write(&file, content).is_err() {
            return;
        }
    }
    let tree = crate::inventory::DirTree::new(root.path());
    let Ok(inv) = crate::inventory::take(&tree) else {
        return;
    };
    assert!(crate::inventory::compare(&inv, &inv).is_empty(), "{inv:?}");
    let json = serde_json::to_vec(&inv).expect("an inventory serializes");
    let back: crate::inventory::Inventory =
        serde_json::from_slice(&json).expect("an inventory reads back");
    assert_eq!(back, inv);
}

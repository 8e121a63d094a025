//! Replays the fuzz corpora (fuzz/corpus/TARGET/*, seeds and whatever the
//! fuzzers kept) through the same entry points as the fuzz targets, on
//! stable Rust in every CI run: an input that once crashed stays fixed.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{target}: only {} corpus files",
        files.len()
    );
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: these inputs panic: {failed:?}"
    );
}

#[test]
fn containerfile_corpus() {
    replay("containerfile", boxwright::fuzzing::containerfile);
}

#[test]
fn recipe_corpus() {
    replay("recipe", boxwright::fuzzing::recipe);
}

#[test]
fn reference_corpus() {
    replay("reference", boxwright::fuzzing::reference);
}

#[test]
fn manifest_corpus() {
    replay("manifest", boxwright::fuzzing::manifest);
}

#[test]
fn layer_corpus() {
    replay("layer", boxwright::fuzzing::layer);
}

#[test]
fn auth_challenge_corpus() {
    replay("auth_challenge", boxwright::fuzzing::auth_challenge);
}

#[test]
fn inventory_corpus() {
    replay("inventory", boxwright::fuzzing::inventory);
}

//! Tests of the recipe stage: whole recipes in, structures or exact messages out.

mod demo;
mod errors;
mod expand;
mod parse_ok;
mod sources;
mod toolbox;

use std::path::Path;

use super::Recipe;

/// Parses `text` as `/r/recipe.toml` (no file is read).
fn parse(text: &str) -> Recipe {
    match Recipe::parse(text, Path::new("/r/recipe.toml")) {
        Ok(recipe) => recipe,
        Err(e) => panic!("recipe refused: {e}\n{text}"),
    }
}

/// The error `text` gives when named `recipe.toml`, checked to be one line, and its line.
fn fail(text: &str) -> (String, usize) {
    let err = match Recipe::parse(text, Path::new("recipe.toml")) {
        Ok(recipe) => panic!("recipe accepted: {recipe:?}\n{text}"),
        Err(e) => e,
    };
    let message = err.to_string();
    assert!(!message.contains('\n'), "message spans lines: {message:?}");
    let line = err.location().map(|at| at.line).unwrap_or(0);
    (message, line)
}

/// Asserts that `text` fails with exactly `expected`, which must name line `line`.
#[track_caller]
fn assert_fails(text: &str, expected: &str) {
    let (message, line) = fail(text);
    assert_eq!(message, expected, "for recipe:\n{text}");
    assert!(
        expected.starts_with(&format!("recipe.toml:{line}:")),
        "location line {line} disagrees with the message {expected}"
    );
}

//! The toolbox sections of a later format version are refused as unsupported, not as typos.

use std::path::Path;

use super::assert_fails;
use crate::recipe::{Recipe, RecipeError};

const UNSUPPORTED: &str =
    "is not supported by this version of boxwright; remove it or use a newer boxwright";

#[test]
fn toolbox_sections_at_top_level() {
    for section in ["runtimes", "packages", "ai_tools", "vscode", "dev_access"] {
        let text = format!("[image]\nbase = \"scratch\"\n\n[{section}]\nx = 1\n");
        assert_fails(&text, &format!("recipe.toml:4: '{section}' {UNSUPPORTED}"));
        let err = Recipe::parse(&text, Path::new("recipe.toml")).expect_err("refused");
        assert!(
            matches!(&err, RecipeError::Unsupported { key, .. } if key == section),
            "{err:?}"
        );
    }
    // As a plain key too, not only as a table.
    assert_fails(
        "packages = [\"git\"]\n[image]\nbase = \"scratch\"\n",
        &format!("recipe.toml:1: 'packages' {UNSUPPORTED}"),
    );
}

#[test]
fn toolbox_keys_in_image() {
    assert_fails(
        "[image]\ntemplate = \"python\"\nbase = \"scratch\"\n",
        &format!("recipe.toml:2: image: 'template' {UNSUPPORTED}"),
    );
    assert_fails(
        "[image]\nbase = \"scratch\"\ndev_access = true\n",
        &format!("recipe.toml:3: image: 'dev_access' {UNSUPPORTED}"),
    );
}

#[test]
fn unsupported_and_unknown_read_differently() {
    // Whichever comes first in the file is the one reported.
    assert_fails(
        "[image]\nbase = \"scratch\"\nbsae = 1\ntemplate = \"x\"\n",
        "recipe.toml:3: image: unknown key 'bsae' (expected one of: base, source_date_epoch)",
    );
    assert_fails(
        "[image]\nbase = \"scratch\"\ntemplate = \"x\"\nbsae = 1\n",
        &format!("recipe.toml:3: image: 'template' {UNSUPPORTED}"),
    );
    // A later section name inside another table is just unknown there.
    assert_fails(
        "[image]\nbase = \"scratch\"\n[config]\nruntimes = 1\n",
        "recipe.toml:4: config: unknown key 'runtimes' (expected one of: env, workdir, user, entrypoint, cmd, expose, labels)",
    );
}

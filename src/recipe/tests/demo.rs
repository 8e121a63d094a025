//! `recipes/demo.toml`, the recipe the README builds, stays valid.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use crate::recipe::{Base, Recipe, RunCommand, StepKind};

fn demo_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recipes/demo.toml")
}

fn demo() -> Recipe {
    let path = demo_path();
    let text = fs::read_to_string(&path).expect("recipes/demo.toml is readable");
    // Schema only: the busybox tar is built by rootfs-fixtures/make-busybox.sh and may
    // not exist when the unit tests run.
    match Recipe::parse(&text, &path) {
        Ok(recipe) => recipe,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn demo_recipe_parses() {
    let recipe = demo();
    let recipes = demo_path().parent().expect("recipes dir").to_path_buf();
    assert_eq!(recipe.dir, recipes);
    assert_eq!(
        recipe.image.base,
        Base::Rootfs(recipes.join("../rootfs-fixtures/busybox.tar"))
    );
    let described: Vec<String> = recipe.steps.iter().map(|s| s.describe()).collect();
    assert_eq!(described.len(), 4, "{described:#?}");
    assert!(
        described[0].starts_with("RUN /bin/sh -c echo"),
        "{described:#?}"
    );
    assert_eq!(described[1], "RUN /bin/mkdir -p /home/demo/projects");
    assert_eq!(
        described[2],
        "COPY --chmod=0644 --chown=0:0 files/motd /etc/motd"
    );
    assert!(recipe.steps.iter().all(|s| s.name.is_some()));

    // The demo exercises a whiteout: a file made by one step is deleted by a later one.
    let StepKind::Run {
        command: RunCommand::Shell(first),
        ..
    } = &recipe.steps[0].kind
    else {
        panic!("first step is not a shell step")
    };
    let StepKind::Run {
        command: RunCommand::Shell(last),
        env,
    } = &recipe.steps[3].kind
    else {
        panic!("last step is not a shell step")
    };
    assert!(first.contains("> /etc/busybox-demo-remove-me"));
    assert!(last.contains("rm /etc/busybox-demo-remove-me"));
    assert!(env.contains_key("GREETING"));

    let config = &recipe.config;
    assert!(config.env.contains_key("PATH"));
    assert_eq!(config.workdir.as_deref(), Some("/home/demo"));
    assert!(config.entrypoint.is_some() && config.cmd.is_some());
    let ports: Vec<String> = config.expose.iter().map(|p| p.to_string()).collect();
    assert_eq!(ports, ["22/tcp", "8443/tcp", "7681/tcp"]);
    assert_ne!(config.labels, BTreeMap::new());
}

#[test]
fn demo_copy_sources_exist() {
    // The base tar may be absent (it is built by a script), so check the copy sources
    // with the base swapped for scratch.
    let mut recipe = demo();
    recipe.image.base = Base::Scratch;
    if let Err(e) = recipe.check_sources() {
        panic!("{e}");
    }
    let motd = demo_path().with_file_name("files/motd");
    let text = fs::read_to_string(&motd).expect("recipes/files/motd is readable");
    assert!(text.contains("boxwright"));
}

//! `template = "NAME"` starts from the template's image in the local store
//! (`boxwright/template-NAME:latest`) and builds only the recipe's own
//! components: its layers are the template's plus the new ones.

mod support;

use support::*;

#[test]
fn a_template_child_reuses_the_template_layers() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    // Stand-in for the rust template's image: a busybox image under its name.
    let template = write_recipe(
        t.path(),
        "template.toml",
        &format!(
            "{}[[steps]]\nrun = \"echo template > /template\"\n",
            busybox_base()
        ),
    );
    boxwright(&[
        "build",
        "--store",
        s,
        "-t",
        "boxwright/template-rust",
        template.to_str().unwrap(),
    ])
    .ok();

    let child = write_recipe(
        t.path(),
        "child.toml",
        "[image]\ntemplate = \"rust\"\n[ai_tools]\ncustom = [{ name = \"hello\", run = \"echo hello > /hello-tool\" }]\n",
    );
    let run = boxwright(&[
        "build",
        "--store",
        s,
        "-t",
        "child",
        child.to_str().unwrap(),
    ])
    .ok();
    assert!(
        run.stderr.contains("STEP 1/1"),
        "only the child's own component runs: {}",
        run.stderr
    );

    let layers = |tag: &str| -> Vec<serde_json::Value> {
        let out = boxwright(&["inspect", "--store", s, tag]).ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v["manifest"]["layers"].as_array().unwrap().clone()
    };
    let parent = layers("boxwright/template-rust");
    let mine = layers("child");
    assert_eq!(mine.len(), parent.len() + 1);
    assert_eq!(
        mine[..parent.len()],
        parent[..],
        "the template's layers are reused as they are"
    );
    let inspect = boxwright(&["inspect", "--store", s, "child"]).ok();
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(
        v["config"]["config"]["Labels"]["io.boxwright.template"],
        "rust"
    );
    assert_eq!(
        v["config"]["config"]["Labels"]["io.boxwright.ai-tools"],
        "custom:hello"
    );

    // Without the template's image in the store, the error says how to make it.
    let other = tempfile::tempdir().unwrap();
    let fail = boxwright(&[
        "build",
        "--store",
        other.path().join("store").to_str().unwrap(),
        child.to_str().unwrap(),
    ]);
    assert_ne!(fail.code, 0);
    assert!(
        fail.stderr
            .contains("template 'rust': boxwright/template-rust:latest is not in the store"),
        "{}",
        fail.stderr
    );
}

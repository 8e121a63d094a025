//! `template = "NAME"` starts from the template's image in the local store
//! (`boxwright/template-NAME:latest`), else from a registry
//! (`HOST/ORG/boxwright/template-NAME:latest`, with `--template-registry
//! HOST/ORG` or `template_registry` in registries.toml), and builds only the
//! recipe's own components: its layers are the template's plus the new ones.

#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::path::Path;

use regsupport::proxy::{Action, FaultProxy};
use regsupport::registry::TestRegistry;
use serde_json::Value;
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

/// A stand-in for the rust template: a toolbox recipe on the busybox
/// fixture (no dev access layer: its artifacts are not reachable here) with
/// one component and one step, so the image carries a template's labels.
fn stand_in_template(dir: &Path) -> std::path::PathBuf {
    write_recipe(
        dir,
        "template.toml",
        &format!(
            "{}dev_access = false\n[ai_tools]\ncustom = [{{ name = \"tmpl\", run = \"echo template > /template-tool\" }}]\n[[steps]]\nrun = \"echo template > /template\"\n",
            busybox_base()
        ),
    )
}

/// The JSON events of a `--progress json` run.
fn events(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event"] == kind).count()
}

fn inspect(store: &str, name: &str) -> Value {
    let out = boxwright(&["inspect", "--store", store, name]).ok();
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
fn a_template_from_a_registry_is_pulled_once_and_only_the_child_steps_run() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(reg.port);
    let host = proxy.host();
    let t = tempfile::tempdir().unwrap();
    let plain_conf = write_recipe(
        t.path(),
        "registries.toml",
        &format!("[[registry]]\nhost = \"{host}\"\ninsecure = true\n"),
    );
    let team_conf = write_recipe(
        t.path(),
        "registries-team.toml",
        &format!(
            "template_registry = \"{host}/team\"\n[[registry]]\nhost = \"{host}\"\ninsecure = true\n"
        ),
    );
    let (plain_conf, team_conf) = (plain_conf.to_str().unwrap(), team_conf.to_str().unwrap());

    // The template, built in one store and pushed under the scheme.
    let builder = t.path().join("builder");
    let b = builder.to_str().unwrap();
    let template = stand_in_template(t.path());
    boxwright(&[
        "build",
        "--store",
        b,
        "-t",
        "boxwright/template-rust",
        template.to_str().unwrap(),
    ])
    .ok();
    let remote = format!("{host}/team/boxwright/template-rust:latest");
    boxwright(&[
        "push",
        "--store",
        b,
        "--registries-conf",
        plain_conf,
        "boxwright/template-rust",
        &remote,
    ])
    .ok();
    let parent = inspect(b, "boxwright/template-rust");
    let parent_layers = parent["manifest"]["layers"].as_array().unwrap().clone();
    assert_eq!(parent_layers.len(), 3, "rootfs, component, step");

    // A fresh store: the child pulls the template and runs only its own steps.
    let child_text = "[image]\ntemplate = \"rust\"\n[ai_tools]\ncustom = [{ name = \"hello\", run = \"echo hello > /hello-tool\" }]\n[[steps]]\nrun = \"cat /template > /seen-template\"\n";
    let child = write_recipe(t.path(), "child.toml", child_text);
    let store = t.path().join("store");
    let s = store.to_str().unwrap();
    proxy.clear_log();
    let first = boxwright(&[
        "build",
        "--store",
        s,
        "--registries-conf",
        plain_conf,
        "--progress",
        "json",
        "--template-registry",
        &format!("{host}/team"),
        "-t",
        "child",
        child.to_str().unwrap(),
    ])
    .ok();
    let ev = events(&first);
    assert_eq!(
        (count(&ev, "step_started"), count(&ev, "step_cached")),
        (2, 0),
        "only the child's component and step run: {}",
        first.stdout
    );
    let finished = ev.last().unwrap();
    assert_eq!(finished["event"], "finished");
    assert_eq!(
        finished["total_steps"], 2,
        "the template's steps are not the child's"
    );
    assert!(
        ev.iter()
            .any(|e| e["event"] == "info" && e["message"] == format!("pulling {remote}")),
        "{}",
        first.stdout
    );
    assert_eq!(
        count(&ev, "transfer_done"),
        parent_layers.len() + 1,
        "config and layers pulled once each: {}",
        first.stdout
    );
    assert!(
        proxy.count(|l| l.method == "GET" && l.path.contains("/blobs/")) > 0,
        "{:?}",
        proxy.log()
    );

    let mine = inspect(s, "child");
    let layers = mine["manifest"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), parent_layers.len() + 2);
    assert_eq!(
        layers[..parent_layers.len()],
        parent_layers[..],
        "the template's layers (digests, sizes, media types) are reused as they are"
    );
    let labels = &mine["config"]["config"]["Labels"];
    assert_eq!(labels["io.boxwright.template"], "rust");
    assert_eq!(
        labels["io.boxwright.recipe.digest"],
        boxwright::digest::Digest::of(child_text.as_bytes()).to_string(),
        "the child's own recipe digest, not the template's"
    );
    assert_ne!(
        labels["io.boxwright.recipe.digest"],
        parent["config"]["config"]["Labels"]["io.boxwright.recipe.digest"]
    );
    assert_eq!(labels["io.boxwright.ai-tools"], "custom:tmpl,custom:hello");

    // Again, with the registry named in registries.toml: one manifest
    // request, no blob, every step cached, the same image.
    proxy.clear_log();
    let second = boxwright(&[
        "build",
        "--store",
        s,
        "--registries-conf",
        team_conf,
        "--progress",
        "json",
        "-t",
        "child",
        child.to_str().unwrap(),
    ])
    .ok();
    let ev2 = events(&second);
    assert_eq!(
        (count(&ev2, "step_started"), count(&ev2, "step_cached")),
        (0, 2)
    );
    assert_eq!(count(&ev2, "transfer_done"), 0, "{}", second.stdout);
    let blob_gets = proxy.count(|l| l.method == "GET" && l.path.contains("/blobs/"));
    let manifest_gets = proxy.count(|l| l.path.contains("/manifests/"));
    assert_eq!((blob_gets, manifest_gets), (0, 1), "{:?}", proxy.log());
    assert_eq!(ev2.last().unwrap()["digest"], finished["digest"]);

    // A registry that fails: the copy pulled earlier serves, with a warning.
    proxy.add_rule(None, "/manifests/", 100, Action::Status(503));
    let offline = boxwright(&[
        "build",
        "--store",
        s,
        "--registries-conf",
        team_conf,
        "-t",
        "child",
        child.to_str().unwrap(),
    ])
    .ok();
    assert!(
        offline.stderr.contains("using the copy pulled earlier"),
        "{}",
        offline.stderr
    );
    assert_eq!(offline.stdout.trim(), finished["digest"].as_str().unwrap());
    proxy.clear_rules();

    // Refused credentials are reported, not papered over with the old copy.
    proxy.add_rule(None, "/manifests/", 100, Action::Status(403));
    let refused = boxwright(&[
        "build",
        "--store",
        s,
        "--registries-conf",
        team_conf,
        "-t",
        "child",
        child.to_str().unwrap(),
    ]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("the registry refused access to ")
            && refused.stderr.contains("log in: boxwright login "),
        "{}",
        refused.stderr
    );
    proxy.clear_rules();

    // --offline: the registry is not asked; the stored copy serves.
    proxy.clear_log();
    let stored = boxwright(&[
        "build",
        "--store",
        s,
        "--registries-conf",
        team_conf,
        "--offline",
        "-t",
        "child",
        child.to_str().unwrap(),
    ])
    .ok();
    assert!(
        stored.stderr.contains("--offline: using "),
        "{}",
        stored.stderr
    );
    assert_eq!(stored.stdout.trim(), finished["digest"].as_str().unwrap());
    assert!(
        proxy.log().is_empty(),
        "offline asked the registry: {:?}",
        proxy.log()
    );

    // Neither in the store nor in the registry: one line naming both.
    let empty = t.path().join("empty");
    let fail = boxwright(&[
        "build",
        "--store",
        empty.to_str().unwrap(),
        "--registries-conf",
        plain_conf,
        "--template-registry",
        &format!("{host}/nobody"),
        child.to_str().unwrap(),
    ]);
    assert_eq!(fail.code, 2, "{}", fail.stderr);
    let line = fail
        .stderr
        .lines()
        .find(|l| l.contains("is not in the registry"))
        .unwrap_or_else(|| panic!("{}", fail.stderr));
    assert!(
        line.contains(&format!(
            "template 'rust': boxwright/template-rust:latest is not in the store and {host}/nobody/boxwright/template-rust:latest is not in the registry"
        )),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "boxwright push boxwright/template-rust:latest {host}/nobody/boxwright/template-rust:latest"
        )),
        "{line}"
    );
    // --offline with the template in neither store: named up front.
    let fail = boxwright(&[
        "build",
        "--store",
        empty.to_str().unwrap(),
        "--registries-conf",
        team_conf,
        "--offline",
        child.to_str().unwrap(),
    ]);
    assert_eq!(fail.code, 1, "{}", fail.stderr);
    assert!(
        fail.stderr.contains("--offline: the template ")
            && fail.stderr.contains("is not in the store"),
        "{}",
        fail.stderr
    );
    // A namespace without a host is refused before anything is asked.
    let bad = boxwright(&[
        "build",
        "--store",
        empty.to_str().unwrap(),
        "--template-registry",
        "team",
        child.to_str().unwrap(),
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("'team' is not a registry namespace"),
        "{}",
        bad.stderr
    );
}

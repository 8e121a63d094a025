//! Image management against a real registry: images --registry, clone,
//! default, rmi --remote and tag --remote, checked with skopeo.

#[path = "registry_support/mod.rs"]
mod regsupport;
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use regsupport::registry::{RegistryOptions, TestRegistry};
use support::*;

struct Env {
    _t: tempfile::TempDir,
    dir: std::path::PathBuf,
    store: String,
    conf: String,
    config_home: String,
}

impl Env {
    fn new(host: &str) -> Env {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        let conf = dir.join("registries.toml");
        fs::write(
            &conf,
            format!("[[registry]]\nhost = \"{host}\"\ninsecure = true\n"),
        )
        .unwrap();
        Env {
            store: dir.join("store").display().to_string(),
            conf: conf.display().to_string(),
            config_home: dir.join("config").display().to_string(),
            dir,
            _t: t,
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--store", &self.store, "--registries-conf", &self.conf];
        all.extend_from_slice(args);
        boxwright_env(&all, &[("XDG_CONFIG_HOME", &self.config_home)])
    }
}

fn skopeo_digest(image: &str) -> Option<String> {
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{image}"),
        ])
        .output()
        .unwrap();
    if !o.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["Digest"].as_str().map(str::to_string)
}

fn build_and_push(env: &Env, name: &str, text: &str, target: &str) -> String {
    let recipe = write_recipe(&env.dir, name, text);
    env.run(&["build", "-t", target, "--push", recipe.to_str().unwrap()])
        .ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn images_clone_default_tag_and_rmi_against_a_registry() {
    require_tool("skopeo", "skopeo");
    let reg = TestRegistry::start();
    let host = reg.host();
    let env = Env::new(&host);
    let app_text = format!("{}\n[[steps]]\nrun = \"echo app > /app\"\n", busybox_base());
    let app = build_and_push(&env, "app.toml", &app_text, &format!("{host}/team/app:1"));
    let tools = build_and_push(
        &env,
        "tools.toml",
        &format!(
            "{}\n[[steps]]\nrun = \"echo tools > /tools\"\n",
            busybox_base()
        ),
        &format!("{host}/team/tools:1"),
    );
    build_and_push(
        &env,
        "other.toml",
        &app_text,
        &format!("{host}/elsewhere/app:1"),
    );

    // images --registry lists the org's images with their digests, as skopeo sees them.
    let list = env
        .run(&[
            "images",
            "--no-trunc",
            "--registry",
            &format!("{host}/team"),
        ])
        .ok()
        .stdout;
    assert!(
        list.contains(&format!("{host}/team/app:1")) && list.contains(&app),
        "{list}"
    );
    assert!(
        list.contains(&format!("{host}/team/tools:1")) && list.contains(&tools),
        "{list}"
    );
    assert!(
        !list.contains("elsewhere"),
        "only the org's repositories: {list}"
    );
    assert_eq!(
        skopeo_digest(&format!("{host}/team/app:1")).as_deref(),
        Some(app.as_str())
    );

    // clone writes the recipe out; rebuilding it gives the same image.
    let cloned = env.dir.join("copy.toml");
    env.run(&[
        "clone",
        &format!("{host}/team/app:1"),
        "copy",
        "-o",
        cloned.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(fs::read_to_string(&cloned).unwrap(), app_text);
    let rebuilt = env
        .run(&["build", "-t", "copy", cloned.to_str().unwrap()])
        .ok()
        .stdout;
    assert_eq!(rebuilt.trim(), app);
    // ... also from a local image.
    let local = env.dir.join("local.toml");
    env.run(&[
        "clone",
        &format!("{host}/team/app:1"),
        "x",
        "-o",
        local.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(fs::read_to_string(&local).unwrap(), app_text);

    // clone --image tags the same manifest server-side.
    env.run(&[
        "clone",
        "--image",
        &format!("{host}/team/app:1"),
        &format!("{host}/team/app-copy:1"),
    ])
    .ok();
    assert_eq!(
        skopeo_digest(&format!("{host}/team/app-copy:1")).as_deref(),
        Some(app.as_str())
    );
    env.run(&[
        "tag",
        "--remote",
        &format!("{host}/team/tools:1"),
        &format!("{host}/team/tools:stable"),
    ])
    .ok();
    assert_eq!(
        skopeo_digest(&format!("{host}/team/tools:stable")).as_deref(),
        Some(tools.as_str())
    );

    // default set/show, locally and as HOST/ORG/default:latest.
    env.run(&[
        "default",
        "set",
        &format!("{host}/team/tools:1"),
        "--registry",
        &format!("{host}/team"),
    ])
    .ok();
    assert_eq!(
        skopeo_digest(&format!("{host}/team/default:latest")).as_deref(),
        Some(tools.as_str())
    );
    let shown = env
        .run(&["default", "show", "--registry", &format!("{host}/team")])
        .ok()
        .stdout;
    assert!(
        shown.contains(&format!("{host}/team/tools:")) && shown.contains(&tools),
        "{shown}"
    );
    assert_eq!(
        env.run(&["default", "show"]).ok().stdout.trim(),
        format!("{host}/team/tools:1")
    );
    let list = env
        .run(&["images", "--registry", &format!("{host}/team")])
        .ok()
        .stdout;
    let marked: Vec<&str> = list
        .lines()
        .filter(|l| l.trim_end().ends_with('*'))
        .collect();
    assert!(
        !marked.is_empty() && marked.iter().all(|l| l.contains("tools")),
        "{list}"
    );

    // rmi --remote deletes the manifest: skopeo no longer finds it.
    env.run(&["rmi", "--remote", &format!("{host}/team/app-copy:1")])
        .ok();
    assert_eq!(skopeo_digest(&format!("{host}/team/app-copy:1")), None);
    let tags = sh(Command::new("skopeo").args([
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{host}/team/app-copy"),
    ]));
    assert!(!tags.contains("\"1\""), "{tags}");
}

#[test]
fn rmi_remote_reports_a_registry_that_refuses_deletes() {
    let reg = TestRegistry::start_with(RegistryOptions {
        deletes_disabled: true,
        ..Default::default()
    });
    let host = reg.host();
    let env = Env::new(&host);
    build_and_push(
        &env,
        "a.toml",
        &format!("{}\n[[steps]]\nrun = \"true\"\n", busybox_base()),
        &format!("{host}/team/a:1"),
    );
    let run = env.run(&["rmi", "--remote", &format!("{host}/team/a:1")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&host) && last.contains("405"),
        "the registry's refusal is reported: {last}"
    );
    assert!(skopeo_digest(&format!("{host}/team/a:1")).is_some());
    let _ = Path::new(&env.store);
}

//! Recipes that are valid parse to the expected structures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::parse;
use crate::recipe::{
    Base, ConfigSection, CopySpec, ImageSection, Port, Protocol, Recipe, RunCommand, Step,
    StepKind, Toolbox,
};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const FULL: &str = r#"[image]
base = "rootfs:rootfs-fixtures/busybox.tar"
source_date_epoch = 0
[[steps]]
run = "echo hi > /hello"
[[steps]]
copy = { src = "files/motd", dest = "/etc/motd", mode = "0644" }
[config]
env = { LANG = "C.UTF-8" }
workdir = "/root"
user = "root"
entrypoint = ["/bin/sh"]
cmd = []
expose = [22]
labels = { "org.example.team" = "platform" }
"#;

#[test]
fn full_example() {
    let recipe = parse(FULL);
    let expected = Recipe {
        path: PathBuf::from("/r/recipe.toml"),
        dir: PathBuf::from("/r"),
        image: ImageSection {
            base: Base::Rootfs(PathBuf::from("/r/rootfs-fixtures/busybox.tar")),
            base_line: 2,
            source_date_epoch: Some(0),
            dev_access: None,
        },
        steps: vec![
            Step {
                index: 0,
                line: 4,
                name: None,
                kind: StepKind::Run {
                    command: RunCommand::Shell("echo hi > /hello".into()),
                    env: BTreeMap::new(),
                },
                cache: vec![],
                timeout: None,
                secrets: vec![],
                options: Default::default(),
            },
            Step {
                index: 1,
                line: 6,
                name: None,
                kind: StepKind::Copy(CopySpec {
                    src: PathBuf::from("/r/files/motd"),
                    src_as_written: "files/motd".into(),
                    src_line: 7,
                    dest: "/etc/motd".into(),
                    mode: Some(0o644),
                    owner: None,
                }),
                cache: vec![],
                timeout: None,
                secrets: vec![],
                options: Default::default(),
            },
        ],
        config: ConfigSection {
            env: map(&[("LANG", "C.UTF-8")]),
            workdir: Some("/root".into()),
            user: Some("root".into()),
            entrypoint: Some(strings(&["/bin/sh"])),
            cmd: Some(vec![]),
            expose: vec![Port {
                number: 22,
                protocol: Protocol::Tcp,
            }],
            labels: map(&[("org.example.team", "platform")]),
        },
        toolbox: Toolbox::default(),
        args: BTreeMap::new(),
        digest: crate::digest::Digest::of(FULL.as_bytes()),
    };
    assert_eq!(recipe, expected);
    assert_eq!(
        recipe.steps[0].describe(),
        "RUN /bin/sh -c echo hi > /hello"
    );
    assert_eq!(
        recipe.steps[1].describe(),
        "COPY --chmod=0644 files/motd /etc/motd"
    );
}

#[test]
fn minimal_recipe_has_defaults() {
    let recipe = parse("[image]\nbase = \"scratch\"\n");
    assert_eq!(recipe.image.base, Base::Scratch);
    assert_eq!(recipe.image.source_date_epoch, None);
    assert!(recipe.steps.is_empty());
    assert_eq!(recipe.config, ConfigSection::default());
    // Absent entrypoint/cmd mean "inherit", unlike the explicit [] of the full example.
    assert_eq!(recipe.config.entrypoint, None);
    assert_eq!(recipe.config.cmd, None);
}

#[test]
fn base_forms_resolve_against_the_recipe_dir() {
    let base = |b: &str| parse(&format!("[image]\nbase = {b:?}\n")).image.base;
    assert_eq!(
        base("oci:layouts/deb"),
        Base::Oci {
            dir: "/r/layouts/deb".into(),
            tag: "latest".into()
        }
    );
    assert_eq!(
        base("oci:/srv/oci:bookworm-1"),
        Base::Oci {
            dir: "/srv/oci".into(),
            tag: "bookworm-1".into()
        }
    );
    assert_eq!(
        base("rootfs:/abs/base.tar"),
        Base::Rootfs("/abs/base.tar".into())
    );
    assert_eq!(
        base("ghcr.io/acme/base:1.2"),
        Base::Registry("ghcr.io/acme/base:1.2".into())
    );
}

#[test]
fn relative_recipe_path_gives_absolute_dir() {
    let recipe = Recipe::parse(
        "[image]\nbase = \"rootfs:b.tar\"\n",
        Path::new("sub/recipe.toml"),
    )
    .expect("valid recipe");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(recipe.path, PathBuf::from("sub/recipe.toml"));
    assert_eq!(recipe.dir, cwd.join("sub"));
    assert_eq!(recipe.image.base, Base::Rootfs(cwd.join("sub/b.tar")));
}

#[test]
fn run_steps_in_every_form() {
    let recipe = parse(
        r#"[image]
base = "scratch"

[[steps]]
name = "say hi"
run = ["/bin/echo", "hi there"]
env = { GREETING = "hello", A_B = "" }

[[steps]]
run = """
set -e
mkdir -p /x
"""
"#,
    );
    let [first, second] = recipe.steps.as_slice() else {
        panic!("expected two steps: {:?}", recipe.steps)
    };
    assert_eq!(first.index, 0);
    assert_eq!(first.line, 4);
    assert_eq!(first.name.as_deref(), Some("say hi"));
    assert_eq!(
        first.kind,
        StepKind::Run {
            command: RunCommand::Exec(strings(&["/bin/echo", "hi there"])),
            env: map(&[("A_B", ""), ("GREETING", "hello")]),
        }
    );
    assert_eq!(
        first.describe(),
        "RUN --env=A_B,GREETING /bin/echo hi there"
    );
    assert_eq!(first.summary(), format!("say hi: {}", first.describe()));
    assert_eq!(second.summary(), "RUN /bin/sh -c set -e mkdir -p /x");
    assert_eq!(second.index, 1);
    assert_eq!(second.line, 9);
    let StepKind::Run { command, .. } = &second.kind else {
        panic!("not a run step: {second:?}")
    };
    assert_eq!(
        command.argv(),
        strings(&["/bin/sh", "-c", "set -e\nmkdir -p /x\n"])
    );
}

#[test]
fn copy_as_subtable_with_owner() {
    let recipe = parse(
        r#"[image]
base = "scratch"

[[steps]]
name = "dotfiles"

[steps.copy]
src = "/etc/skel/"
dest = "/home/dev/"
owner = "1000:1000"
mode = "4755"
"#,
    );
    let step = &recipe.steps[0];
    assert_eq!(step.line, 4);
    assert_eq!(
        step.kind,
        StepKind::Copy(CopySpec {
            src: "/r/etc/skel".into(),
            src_as_written: "/etc/skel/".into(),
            src_line: 8,
            dest: "/home/dev/".into(),
            mode: Some(0o4755),
            owner: Some((1000, 1000)),
        })
    );
    assert_eq!(
        step.describe(),
        "COPY --chmod=4755 --chown=1000:1000 /etc/skel/ /home/dev/"
    );
}

#[test]
fn inline_steps_array() {
    let recipe = parse(
        r#"steps = [
  { run = "a" },

  { copy = { src = "f", dest = "/f" } },
]
[image]
base = "scratch"
"#,
    );
    assert_eq!(recipe.steps.len(), 2);
    assert_eq!(recipe.steps[0].line, 2);
    assert_eq!(recipe.steps[1].line, 4);
    assert_eq!(recipe.steps[1].describe(), "COPY f /f");
}

#[test]
fn config_ports_and_maps() {
    let recipe = parse(
        r#"[image]
base = "scratch"
source_date_epoch = 1_700_000_000
[config]
expose = [22, "8443/tcp", "53/udp", "7681", 22]
user = "1000:1000"
env = { PATH = "/usr/bin:/bin", "X-Y" = "1" }
"#,
    );
    assert_eq!(recipe.image.source_date_epoch, Some(1_700_000_000));
    let ports: Vec<String> = recipe.config.expose.iter().map(Port::to_string).collect();
    assert_eq!(ports, ["22/tcp", "8443/tcp", "53/udp", "7681/tcp"]);
    assert_eq!(recipe.config.user.as_deref(), Some("1000:1000"));
    assert_eq!(
        recipe.config.env,
        map(&[("PATH", "/usr/bin:/bin"), ("X-Y", "1")])
    );
}

#[test]
fn config_subtables_before_config() {
    // [config.env] may come before [config]; both land in the one section.
    let recipe = parse(
        r#"[image]
base = "scratch"
[config.labels]
a = "1"
[config]
workdir = "/w"
"#,
    );
    assert_eq!(recipe.config.labels, map(&[("a", "1")]));
    assert_eq!(recipe.config.workdir.as_deref(), Some("/w"));
}

#[test]
fn long_steps_are_summarised_on_one_line() {
    let long = "echo ".repeat(40);
    let recipe = parse(&format!(
        "[image]\nbase = \"scratch\"\n[[steps]]\nrun = \"\"\"\n{long}\n\"\"\"\n"
    ));
    let step = &recipe.steps[0];
    assert!(step.describe().contains('\n'));
    let summary = step.summary();
    assert_eq!(summary.chars().count(), crate::recipe::SUMMARY_CHARS);
    assert!(summary.starts_with("RUN /bin/sh -c echo echo"), "{summary}");
    assert!(
        summary.ends_with('…') && !summary.contains('\n'),
        "{summary}"
    );
}

#[test]
fn named_and_generated_steps_are_summarised_by_name_and_title() {
    let recipe = parse(
        "[image]\nbase = \"scratch\"\n[[steps]]\nname = \"deps\"\nrun = \"make deps\"\n\
         [[steps]]\nrun = \"# boxwright: runtime go 1.23\\nset -eu\\ntar xf go.tgz\"\n",
    );
    assert_eq!(recipe.steps[0].summary(), "deps: RUN /bin/sh -c make deps");
    assert_eq!(recipe.steps[1].summary(), "RUN [boxwright] runtime go 1.23");
}

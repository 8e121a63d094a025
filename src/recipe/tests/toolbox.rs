//! The toolbox sections: parsed against the catalog, every mistake one exact
//! line naming file and line.

use std::path::Path;

use super::{assert_fails, fail, parse};
use crate::catalog::Catalog;
use crate::recipe::{Base, Extension, Recipe, RuntimeChoice};

const HEAD: &str = "[image]\nbase = \"scratch\"\n";

fn with_head(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

#[test]
fn every_template_parses_validates_and_expands() {
    let catalog = Catalog::builtin().unwrap();
    assert_eq!(catalog.templates.len(), 8);
    for t in &catalog.templates {
        let path = format!("recipes/templates/{}", t.file);
        let recipe = Recipe::parse(t.recipe, Path::new(&path))
            .unwrap_or_else(|e| panic!("template {}: {e}", t.name));
        assert!(recipe.toolbox.enabled, "{}", t.name);
        assert!(recipe.toolbox.dev_access, "{}", t.name);
        if t.name != "blank" {
            assert_eq!(
                recipe.image.base,
                Base::Template("blank".into()),
                "{}",
                t.name
            );
        }
        for arch in [crate::catalog::Arch::Amd64, crate::catalog::Arch::Arm64] {
            let x = recipe
                .expand_for(arch)
                .unwrap_or_else(|e| panic!("template {} on {arch}: {e}", t.name));
            assert!(!x.steps.is_empty(), "{}", t.name);
        }
    }
}

#[test]
fn all_sections_parse() {
    let recipe = parse(
        r#"[image]
base = "scratch"
dev_access = true
[runtimes]
python = "3.12"
node = "20"
[packages]
apt = ["jq", "ripgrep", "vim=2:9.0.1378-2"]
categories = ["build-essentials", "databases"]
[ai_tools]
install = ["claude-code", "codex", "gemini", "opencode"]
custom = [{ name = "aider", run = "pip install aider-chat" }]
[vscode]
extensions = ["ms-python.python@2025.1.0", "vendor/local.vsix"]
[dev_access]
skip = ["ttyd"]
"#,
    );
    let tb = &recipe.toolbox;
    assert!(tb.enabled && tb.dev_access);
    assert_eq!(
        tb.runtimes,
        [
            RuntimeChoice {
                name: "python".into(),
                version: "3.12".into(),
                line: 5
            },
            RuntimeChoice {
                name: "node".into(),
                version: "20".into(),
                line: 6
            }
        ]
    );
    assert_eq!(tb.apt, ["jq", "ripgrep", "vim=2:9.0.1378-2"]);
    assert_eq!(tb.categories, ["build-essentials", "databases"]);
    assert_eq!(tb.ai_tools, ["claude-code", "codex", "gemini", "opencode"]);
    assert_eq!(tb.custom_tools[0].name, "aider");
    assert_eq!(tb.custom_tools[0].run, "pip install aider-chat");
    assert_eq!(
        tb.extensions,
        [
            Extension::Marketplace {
                id: "ms-python.python".into(),
                version: "2025.1.0".into()
            },
            Extension::Vsix {
                path: "/r/vendor/local.vsix".into(),
                as_written: "vendor/local.vsix".into()
            }
        ]
    );
    assert_eq!(tb.skip, ["ttyd"]);
    assert_eq!(tb.lines.vscode, 13);
}

#[test]
fn plain_recipes_stay_plain_and_toolbox_ones_get_dev_access() {
    let plain = parse("[image]\nbase = \"scratch\"\n[[steps]]\nrun = \"true\"\n");
    assert!(!plain.toolbox.enabled && !plain.toolbox.dev_access);
    let toolbox = parse(&with_head("[packages]\napt = [\"jq\"]\n"));
    assert!(toolbox.toolbox.enabled && toolbox.toolbox.dev_access);
    let without =
        parse("[image]\nbase = \"scratch\"\ndev_access = false\n[packages]\napt = [\"jq\"]\n");
    assert!(without.toolbox.enabled && !without.toolbox.dev_access);
    let explicit = parse("[image]\nbase = \"scratch\"\ndev_access = true\n");
    assert!(explicit.toolbox.enabled && explicit.toolbox.dev_access);
}

#[test]
fn unknown_versions_are_refused_with_the_known_ones() {
    assert_fails(
        &with_head("[runtimes]\npython = \"3.10\"\n"),
        "recipe.toml:4: runtimes: python version '3.10' is not known; known versions: 3.11, 3.12, 3.13",
    );
    assert_fails(
        &with_head("\n[runtimes]\nnode = \"21\"\n"),
        "recipe.toml:5: runtimes: node version '21' is not known; known versions: 18, 20, 22",
    );
    assert_fails(
        &with_head("[runtimes]\ngo = \"1.22\"\n"),
        "recipe.toml:4: runtimes: go version '1.22' is not known; known versions: 1.19, 1.23, 1.24",
    );
    // A number is not a version: 3.10 would read as 3.1.
    let (message, line) = fail(&with_head("[runtimes]\npython = 3.12\n"));
    assert_eq!(line, 4);
    assert!(
        message.contains("'python' must be a version string such as \"3.12\""),
        "{message}"
    );
    // Known but not installable: the catalog's reason is given.
    let (message, line) = fail(&with_head("[runtimes]\nswift = \"5.9\"\n"));
    assert_eq!(line, 4);
    assert!(message.starts_with("recipe.toml:4: runtimes: swift 5.9 cannot be installed: swift.org publishes only PGP signatures"), "{message}");
    assert_fails(
        &with_head("[runtimes]\npyhton = \"3.12\"\n"),
        "recipe.toml:4: runtimes: unknown runtime 'pyhton' (expected one of: python, node, go, rust, java, ruby, dotnet, php, elixir, kotlin, swift)",
    );
}

#[test]
fn template_and_base() {
    assert_fails(
        "[image]\nbase = \"scratch\"\ntemplate = \"blank\"\n",
        "recipe.toml:3: image: 'template' and 'base' are exclusive (a template is the base): keep one",
    );
    assert_fails(
        "[image]\ntemplate = \"blnak\"\n",
        "recipe.toml:2: image: unknown template 'blnak' (expected one of: blank, python-api, node-fullstack, go-microservice, java-api, rust, data-science, ai-agents)",
    );
    let r = parse("[image]\ntemplate = \"rust\"\n");
    assert_eq!(r.image.base, Base::Template("rust".into()));
    assert_eq!(r.image.base_line, 2);
    assert!(r.toolbox.enabled);
    assert_fails(
        "[image]\nbase = \"scratch\"\ndev_access = \"yes\"\n",
        "recipe.toml:3: image: 'dev_access' must be true or false",
    );
}

#[test]
fn packages_tools_and_extensions_are_checked() {
    assert_fails(
        &with_head("[packages]\ncategories = [\"databases\", \"games\"]\n"),
        "recipe.toml:4: packages: unknown package category 'games' (expected one of: build-essentials, databases, networking, editors, cli-tools, containers, dev-libraries)",
    );
    let (message, _) = fail(&with_head("[packages]\napt = [\"jq; rm -rf /\"]\n"));
    assert!(
        message.starts_with("recipe.toml:4: packages: 'jq; rm -rf /' is not an apt package name"),
        "{message}"
    );
    assert_fails(
        &with_head("[ai_tools]\ninstall = [\"cursor\"]\n"),
        "recipe.toml:4: ai_tools: unknown AI tool 'cursor' (expected one of: claude-code, codex, gemini, opencode or plandex; anything else goes in custom = [{ name, run }])",
    );
    let (message, _) = fail(&with_head("[ai_tools]\ninstall = [\"plandex\"]\n"));
    assert!(message.starts_with("recipe.toml:4: ai_tools: plandex cannot be installed from the catalog: Plandex ships only as a GitHub release binary"), "{message}");
    assert_fails(
        &with_head("[ai_tools]\ncustom = [{ name = \"aider\" }]\n"),
        "recipe.toml:4: ai_tools.custom[0]: 'run' is required",
    );
    assert_fails(
        &with_head("[vscode]\nextensions = [\"ms-python.python\"]\n"),
        "recipe.toml:4: vscode: extension 'ms-python.python' needs a pinned version, such as \"ms-python.python@2025.1.0\" (or a .vsix file)",
    );
    assert_fails(
        &with_head("[dev_access]\nskip = [\"vnc\"]\n"),
        "recipe.toml:4: dev_access: unknown component 'vnc' in 'skip' (expected one of: openssh-server, code-server, ttyd, gh, claude-code)",
    );
    assert_fails(
        "[image]\nbase = \"scratch\"\ndev_access = false\n[dev_access]\nskip = [\"ttyd\"]\n",
        "recipe.toml:4: dev_access: 'skip' has no effect with dev_access = false: remove one of them",
    );
    assert_fails(
        &with_head(
            "[dev_access]\nskip = [\"code-server\"]\n[vscode]\nextensions = [\"a.b@1.0.0\"]\n",
        ),
        "recipe.toml:5: vscode: extensions are installed into code-server, which this recipe leaves out (dev_access = false or skip = [\"code-server\"])",
    );
}

#[test]
fn a_missing_vsix_is_reported_at_the_vscode_section() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("r.toml");
    std::fs::write(&path, with_head("[vscode]\nextensions = [\"x.vsix\"]\n")).unwrap();
    let err = Recipe::load(&path).expect_err("missing vsix");
    let message = err.to_string();
    assert!(
        message.contains(":3: vscode: cannot use VS Code extension"),
        "{message}"
    );
    std::fs::write(t.path().join("x.vsix"), "PK").unwrap();
    Recipe::load(&path).unwrap();
}

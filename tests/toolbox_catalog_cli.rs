//! `boxwright catalog`: listings of what toolbox recipes can ask for.

mod support;

use support::*;

#[test]
fn runtimes_list_every_version_and_mark_defaults() {
    let run = boxwright(&["catalog", "runtimes"]).ok();
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["RUNTIME", "VERSION", "DEFAULT", "INSTALLED", "FROM"]
    );
    let has = |name: &str, version: &str, default: bool| {
        lines
            .iter()
            .any(|l| l.len() > 2 && l[0] == name && l[1] == version && (l[2] == "*") == default)
    };
    assert!(has("python", "3.12", true));
    assert!(has("python", "3.11", false));
    assert!(has("node", "20", true));
    assert!(has("java", "21", true));
    let names: std::collections::BTreeSet<&str> = lines[1..].iter().map(|l| l[0]).collect();
    assert_eq!(names.len(), 11, "{names:?}");
}

#[test]
fn package_search_and_templates() {
    let run = boxwright(&["catalog", "packages", "--search", "ripgrep"]).ok();
    let rows: Vec<&str> = run.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", run.stdout);
    assert!(
        rows[0].starts_with("cli-tools") && rows[0].ends_with("ripgrep"),
        "{}",
        rows[0]
    );
    let none = boxwright(&[
        "catalog",
        "packages",
        "--search",
        "no-such-package-anywhere",
    ]);
    assert_eq!(none.code, 1);
    assert!(
        none.stderr
            .contains("no package category or package matches"),
        "{}",
        none.stderr
    );

    let all = boxwright(&["catalog", "templates"]).ok();
    assert!(all.stdout.contains("boxwright/template-blank:latest"));
    let t = tempfile::tempdir().unwrap();
    let shown = boxwright(&["catalog", "templates", "--show", "python-api"]).ok();
    let path = write_recipe(t.path(), "python-api.toml", &shown.stdout);
    assert!(shown.stdout.contains("template = \"blank\""));
    // What --show prints is a recipe boxwright accepts as is.
    let parsed = boxwright::recipe::Recipe::load(&path).unwrap();
    assert!(parsed.toolbox.enabled);
    let bad = boxwright(&["catalog", "templates", "--show", "nope"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .starts_with("boxwright: unknown template 'nope' (expected one of: blank,"),
        "{}",
        bad.stderr
    );

    let tools = boxwright(&["catalog", "ai-tools"]).ok();
    assert!(tools.stdout.contains("npm @anthropic-ai/claude-code@"));
    let dev = boxwright(&["catalog", "dev-access"]).ok();
    assert!(
        dev.stdout
            .lines()
            .any(|l| l.starts_with("code-server") && l.contains("8443"))
    );
}

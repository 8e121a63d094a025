//! The built-in catalog parses and holds together; broken data is refused.

use super::data::{SOURCES, Sources};
use super::*;

#[test]
fn builtin_catalog_parses_and_validates() {
    let c = Catalog::builtin().unwrap_or_else(|e| panic!("{e}"));
    let names = c.runtime_names();
    assert_eq!(
        names,
        [
            "python", "node", "go", "rust", "java", "ruby", "dotnet", "php", "elixir", "kotlin",
            "swift"
        ]
    );
    let defaults: Vec<(&str, &str)> = c
        .runtimes
        .iter()
        .map(|r| (r.name.as_str(), r.default.as_str()))
        .collect();
    for expected in [
        ("python", "3.12"),
        ("node", "20"),
        ("go", "1.23"),
        ("rust", "stable"),
        ("java", "21"),
        ("dotnet", "8.0"),
        ("swift", "5.9"),
    ] {
        assert!(defaults.contains(&expected), "{expected:?} in {defaults:?}");
    }
    assert_eq!(c.categories.len(), 7);
    let tools: Vec<&str> = c.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        tools,
        ["claude-code", "codex", "gemini", "opencode", "plandex"]
    );
    let dev: Vec<&str> = c.dev_access.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        dev,
        ["openssh-server", "code-server", "ttyd", "gh", "claude-code"]
    );
    let ports: Vec<u16> = c.dev_access.iter().filter_map(|d| d.port).collect();
    assert_eq!(ports, [22, 8443, 7681]);
    assert_eq!(c.templates.len(), 8);
}

#[test]
fn the_briefs_npm_packages_are_pinned() {
    let c = Catalog::builtin().unwrap();
    let npm = |name: &str| c.tool(name).and_then(|t| t.npm.clone()).map(|p| p.name);
    assert_eq!(
        npm("claude-code").as_deref(),
        Some("@anthropic-ai/claude-code")
    );
    assert_eq!(npm("codex").as_deref(), Some("@openai/codex"));
    assert_eq!(npm("gemini").as_deref(), Some("@google/gemini-cli"));
    assert_eq!(npm("opencode").as_deref(), Some("opencode-ai"));
    assert!(c.tool("plandex").unwrap().unavailable.is_some());
}

#[test]
fn debian_bookworm_versions_come_from_its_packages() {
    let c = Catalog::builtin().unwrap();
    let distro = |rt: &str, v: &str| {
        c.runtime(rt)
            .and_then(|r| r.version(v))
            .map(|v| v.distro.contains_key("debian:12"))
    };
    assert_eq!(distro("python", "3.11"), Some(true));
    assert_eq!(distro("node", "18"), Some(true));
    assert_eq!(distro("python", "3.12"), Some(false));
    // Versions Debian lacks come from a pinned artifact for both architectures.
    for (rt, v) in [
        ("python", "3.12"),
        ("node", "20"),
        ("go", "1.23"),
        ("java", "21"),
    ] {
        let a = c
            .runtime(rt)
            .unwrap()
            .version(v)
            .unwrap()
            .artifact
            .as_ref()
            .unwrap();
        assert!(a.for_arch(Arch::Amd64).is_some() && a.for_arch(Arch::Arm64).is_some());
    }
    let swift = c.runtime("swift").unwrap().version("5.9").unwrap();
    assert!(
        swift
            .unavailable
            .as_deref()
            .unwrap()
            .contains("no checksum")
    );
}

#[test]
fn every_checksum_is_well_formed_and_urls_are_https() {
    let c = Catalog::builtin().unwrap();
    let mut specs: Vec<&ArtifactSpec> = c
        .runtimes
        .iter()
        .flat_map(|r| r.versions.iter().filter_map(|v| v.artifact.as_ref()))
        .collect();
    specs.extend(c.dev_access.iter().filter_map(|d| d.artifact.as_ref()));
    assert!(specs.len() >= 14, "{}", specs.len());
    for s in specs {
        for f in [&s.amd64, &s.arm64, &s.any].into_iter().flatten() {
            assert!(f.url.starts_with("https://"), "{}", f.url);
            let n = match &f.checksum {
                Checksum::Sha256(h) => (h.len() == 64).then_some(()),
                Checksum::Sha512(h) => (h.len() == 128).then_some(()),
            };
            assert!(n.is_some(), "{}", f.checksum);
        }
    }
}

#[test]
fn package_search_finds_names_titles_and_packages() {
    let c = Catalog::builtin().unwrap();
    let hits: Vec<&str> = c
        .categories
        .iter()
        .filter(|cat| cat.matches("postgres"))
        .map(|cat| cat.name.as_str())
        .collect();
    assert_eq!(hits, ["databases"]);
    let db = c.category("databases").unwrap();
    assert_eq!(db.matching_packages("postgres"), ["postgresql-client"]);
    assert_eq!(db.matching_packages("DATABASE").len(), db.apt.len());
    assert!(c.categories.iter().all(|cat| !cat.matches("no-such-thing")));
}

fn with_runtimes(runtimes: &'static str) -> Result<Catalog, CatalogError> {
    Catalog::parse(&Sources {
        runtimes,
        ..SOURCES
    })
}

#[test]
fn broken_runtime_data_is_refused() {
    let head = "[[runtime]]\nname = \"x\"\ntitle = \"X\"\ncheck = \"x\"\n";
    let cases: [(&str, &str); 5] = [
        (
            "default = \"2\"\n[[runtime.version]]\nversion = \"1\"\ndistro = { \"debian:12\" = [\"x\"] }\n",
            "default version '2' is not one of its versions",
        ),
        (
            "default = \"1\"\n[[runtime.version]]\nversion = \"1\"\n",
            "needs distro packages or an artifact",
        ),
        (
            "default = \"1\"\n[[runtime.version]]\nversion = \"1\"\ninstall = \"x\"\n[runtime.version.artifact]\nversion = \"1\"\n[runtime.version.artifact.amd64]\nfile = \"f\"\nurl = \"https://x/f\"\n",
            "needs exactly one of sha256 or sha512",
        ),
        (
            "default = \"1\"\n[[runtime.version]]\nversion = \"1\"\ninstall = \"x\"\n[runtime.version.artifact]\nversion = \"1\"\n[runtime.version.artifact.amd64]\nfile = \"f\"\nurl = \"https://x/f\"\nsha256 = \"ABC\"\n",
            "must be 64 lower-case hex digits",
        ),
        (
            "default = \"1\"\nbogus = 1\n[[runtime.version]]\nversion = \"1\"\ndistro = { \"debian:12\" = [\"x\"] }\n",
            "unknown field `bogus`",
        ),
    ];
    for (rest, expected) in cases {
        let text: &'static str = Box::leak(format!("{head}{rest}").into_boxed_str());
        let err = with_runtimes(text).expect_err(expected).to_string();
        assert!(err.contains(expected), "{err} lacks {expected}");
        assert!(err.starts_with("catalog runtimes.toml"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn template_images_have_a_conventional_name() {
    assert_eq!(template_image("blank"), "boxwright/template-blank:latest");
    let c = Catalog::builtin().unwrap();
    for t in &c.templates {
        assert!(t.recipe.contains("[image]"), "{}", t.name);
    }
}

#[test]
fn a_catalog_dir_replaces_only_the_files_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let same = Catalog::parse(&data::with_dir(dir.path()).unwrap()).unwrap();
    assert_eq!(same.runtimes.len(), 11);

    // A site pinning its own ttyd: only that entry changes.
    let text = data::SOURCES.dev_access.replace(
        "8a217c968aba172e0dbf3f34447218dc015bc4d5e59bf51db2f2cd12b7be4f55",
        &"ab".repeat(32),
    );
    std::fs::write(dir.path().join("dev-access.toml"), text).unwrap();
    let site = Catalog::parse(&data::with_dir(dir.path()).unwrap()).unwrap();
    let ttyd = site.dev_component("ttyd").unwrap();
    let pinned = format!("{:?}", ttyd);
    assert!(pinned.contains(&"ab".repeat(32)), "{pinned}");
    assert_eq!(site.runtimes.len(), 11, "runtimes stay built in");

    std::fs::write(dir.path().join("runtimes.toml"), "[[runtime]]\nname = 3\n").unwrap();
    let err = Catalog::parse(&data::with_dir(dir.path()).unwrap()).unwrap_err();
    // The file, line and column of the problem, on one line.
    assert!(
        err.to_string().starts_with("catalog runtimes.toml:2:8: "),
        "{err}"
    );
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn fork_exclusions_parse_and_bad_ones_are_refused() {
    let c = Catalog::parse(&SOURCES).unwrap();
    let all: Vec<&str> = c
        .fork_exclude
        .iter()
        .flat_map(|e| e.paths.iter().map(String::as_str))
        .collect();
    for must in [
        "/root/.ssh",
        "/etc/ssh/ssh_host_*",
        "/tmp",
        "**/.bash_history",
    ] {
        assert!(all.contains(&must), "{must}");
    }
    for (text, why) in [
        (
            "[[exclude]]\nwhy = \"x\"\npaths = [\"relative\"]\n",
            "absolute",
        ),
        ("[[exclude]]\nwhy = \"x\"\npaths = [\"/a/[\"]\n", "/a/["),
        ("[[exclude]]\nwhy = \"x\"\n", "paths"),
    ] {
        let err = Catalog::parse(&Sources {
            fork_exclude: text,
            ..SOURCES
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("fork-exclude.toml") && err.contains(why),
            "{err}"
        );
    }
}

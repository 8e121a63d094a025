use super::apt::{redirect_sources, rewrite_sources};
use super::*;

fn rule(text: &str) -> Rule {
    Rule::parse(text).unwrap()
}

fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn rules_are_directory_prefixes() {
    let r = rule("http://deb.debian.org=http://127.0.0.1:8080/deb");
    assert_eq!(r.from(), "http://deb.debian.org/");
    assert_eq!(r.to(), "http://127.0.0.1:8080/deb/");
    let m = Mirrors::new([r]);
    assert_eq!(
        m.rewrite("http://deb.debian.org/debian/dists/bookworm/InRelease")
            .as_deref(),
        Some("http://127.0.0.1:8080/deb/debian/dists/bookworm/InRelease")
    );
    // The directory itself without its slash, as apt sources write it.
    let m = Mirrors::new([rule(
        "http://deb.debian.org/debian/=https://m.internal/debian-mirror/",
    )]);
    assert_eq!(
        m.rewrite("http://deb.debian.org/debian").as_deref(),
        Some("https://m.internal/debian-mirror")
    );
    assert_eq!(m.rewrite("http://deb.debian.org/debian-security"), None);
    assert_eq!(m.rewrite("https://deb.debian.org/debian/"), None);
    assert!(!m.covers("http://deb.debian.org/"));
}

#[test]
fn the_longest_from_wins_and_a_later_rule_replaces_an_earlier_one() {
    let m = Mirrors::new([
        rule("https://example.org/=http://a/"),
        rule("https://example.org/deep/=http://b/"),
        rule("https://registry.npmjs.org/=http://config/"),
        // The command line comes last and wins over the config file.
        rule("https://registry.npmjs.org=http://cli/npm"),
    ]);
    assert_eq!(
        m.rewrite("https://example.org/deep/x").as_deref(),
        Some("http://b/x")
    );
    assert_eq!(
        m.rewrite("https://example.org/y").as_deref(),
        Some("http://a/y")
    );
    assert_eq!(m.rules().len(), 3);
    assert_eq!(
        get(&m.step_env(), "NPM_CONFIG_REGISTRY"),
        Some("http://cli/npm/")
    );
}

#[test]
fn bad_rules_are_one_line_and_hide_credentials() {
    for (text, needle) in [
        ("http://a/", "is not FROM=TO"),
        (
            "ftp://a/=http://b/",
            "FROM must be an http:// or https:// URL",
        ),
        ("http://a/=", "TO must be an http:// or https:// URL"),
        ("http://a/=https:///x", "TO has no host"),
        ("http://a/=http://b/x y", "space"),
        ("http://a/=http://b/?q=1", "query"),
        ("=http://b/", "FROM must be"),
    ] {
        let e = Rule::parse(text).unwrap_err().to_string();
        assert!(e.contains(needle), "{text}: {e}");
        assert!(!e.contains('\n'));
    }
    let e = Rule::parse("ftp://x/=https://me:hunter2-secret@m.internal/")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("hunter2"), "{e}");
    assert!(e.contains("https://***@m.internal/"), "{e}");
    let e = Rule::parse("https://me:hunter2-secret@m.internal/")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("hunter2"), "{e}");
    // A raw '/' in a password: refused, and not shown.
    let e = Rule::parse("http://deb.debian.org/=http://bob:s3cr/t@mirror/")
        .unwrap_err()
        .to_string();
    assert!(e.contains("has a port that is no number"), "{e}");
    assert!(!e.contains("s3cr"), "{e}");
    assert!(Rule::parse("http://a/=http://[::1]:8080/x/").is_ok());
    assert!(Rule::parse("http://a/=http://h:8080/@scope/").is_ok());
    let r = rule("https://pypi.org/simple=https://me:hunter2-secret@m.internal/pypi/");
    assert!(!format!("{r:?} {r}").contains("hunter2"));
}

#[test]
fn redaction() {
    assert_eq!(redact("https://u:p@h:1/x@y"), "https://***@h:1/x@y");
    assert_eq!(redact("https://token@h/"), "https://***@h/");
    assert_eq!(redact("http://h/a@b"), "http://h/a@b");
    assert_eq!(redact("not a url"), "not a url");
}

#[test]
fn step_variables_for_npm_pypi_and_open_vsx() {
    assert!(Mirrors::default().step_env().is_empty());
    let m = Mirrors::new([
        rule("https://registry.npmjs.org/=https://npm.internal/"),
        rule("https://pypi.org/=http://127.0.0.1:3141/root/pypi/+simple-root/"),
        rule("https://open-vsx.org/=https://vsx.internal/"),
    ]);
    let env = m.step_env();
    assert_eq!(
        get(&env, "NPM_CONFIG_REGISTRY"),
        Some("https://npm.internal/")
    );
    assert_eq!(
        get(&env, "PIP_INDEX_URL"),
        Some("http://127.0.0.1:3141/root/pypi/+simple-root/simple/")
    );
    assert_eq!(get(&env, "PIP_TRUSTED_HOST"), Some("127.0.0.1:3141"));
    let gallery: serde_json::Value =
        serde_json::from_str(get(&env, "EXTENSIONS_GALLERY").unwrap()).unwrap();
    assert_eq!(gallery["serviceUrl"], "https://vsx.internal/vscode/gallery");
    assert_eq!(
        gallery["resourceUrlTemplate"],
        "https://vsx.internal/vscode/unpkg/{publisher}/{name}/{version}/{path}"
    );
    // HTTPS needs no trusted host; uncovered indexes get no variable.
    let m = Mirrors::new([rule(
        "https://pypi.org/simple/=https://u:secret-pass@pypi.internal/simple/",
    )]);
    let env = m.step_env();
    assert_eq!(get(&env, "PIP_TRUSTED_HOST"), None);
    assert_eq!(get(&env, "NPM_CONFIG_REGISTRY"), None);
    assert_eq!(get(&env, "EXTENSIONS_GALLERY"), None);
    assert_eq!(
        get(&env, "PIP_INDEX_URL"),
        Some("https://u:secret-pass@pypi.internal/simple/")
    );
}

#[test]
fn step_output_has_mirror_credentials_masked() {
    let m = Mirrors::new([rule(
        "https://pypi.org/simple/=https://me:secret-pass@pypi.internal/simple/",
    )]);
    assert_eq!(
        m.scrub("Looking in indexes: https://me:secret-pass@pypi.internal/simple/"),
        "Looking in indexes: https://***@pypi.internal/simple/"
    );
    assert_eq!(m.scrub("password secret-pass"), "password ***");
    assert_eq!(m.scrub("nothing here"), "nothing here");
}

fn debian_mirrors() -> Mirrors {
    Mirrors::new([
        rule("http://deb.debian.org/=http://127.0.0.1:8080/deb/"),
        rule("http://security.debian.org/=http://127.0.0.1:8080/sec/"),
    ])
}

#[test]
fn one_line_sources_are_rewritten_keeping_options_and_comments() {
    let text = "# deb http://deb.debian.org/debian bookworm main\n\
deb http://deb.debian.org/debian bookworm main\n\
deb-src [ arch=amd64 signed-by=/usr/share/keyrings/k.gpg ] http://deb.debian.org/debian  bookworm-updates main\n\
deb http://security.debian.org/debian-security bookworm-security main\n\
deb https://download.docker.com/linux/debian bookworm stable";
    let got = rewrite_sources(text, &debian_mirrors()).unwrap();
    assert_eq!(
        got,
        "# deb http://deb.debian.org/debian bookworm main\n\
deb http://127.0.0.1:8080/deb/debian bookworm main\n\
deb-src [ arch=amd64 signed-by=/usr/share/keyrings/k.gpg ] http://127.0.0.1:8080/deb/debian  bookworm-updates main\n\
deb http://127.0.0.1:8080/sec/debian-security bookworm-security main\n\
deb https://download.docker.com/linux/debian bookworm stable"
    );
    assert_eq!(
        rewrite_sources(
            "deb https://download.docker.com/linux/debian x y\n",
            &debian_mirrors()
        ),
        None
    );
}

#[test]
fn deb822_sources_are_rewritten() {
    let text = "Types: deb\n\
URIs: http://deb.debian.org/debian http://deb.debian.org/debian-ports\n\
Suites: bookworm bookworm-updates\n\
Components: main\n\
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\
\n\
Types: deb\n\
URIs: http://security.debian.org/debian-security\n\
Suites: bookworm-security\n";
    let got = rewrite_sources(text, &debian_mirrors()).unwrap();
    assert!(got.contains(
        "URIs: http://127.0.0.1:8080/deb/debian http://127.0.0.1:8080/deb/debian-ports\n"
    ));
    assert!(got.contains("URIs: http://127.0.0.1:8080/sec/debian-security\n"));
    assert!(got.contains("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"));
    // Ubuntu's archive, as Ubuntu 24.04's ubuntu.sources names it.
    let ubuntu = "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\nSuites: noble\n";
    let m = Mirrors::new([rule(
        "http://archive.ubuntu.com/ubuntu/=https://u.internal/ubuntu/",
    )]);
    assert_eq!(
        rewrite_sources(ubuntu, &m).unwrap(),
        "Types: deb\nURIs: https://u.internal/ubuntu/\nSuites: noble\n"
    );
}

#[test]
fn redirected_sources_are_copies_and_the_originals_stay() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let parts = root.join("etc/apt/sources.list.d");
    std::fs::create_dir_all(&parts).unwrap();
    let original = "deb http://deb.debian.org/debian bookworm main\n";
    std::fs::write(root.join("etc/apt/sources.list"), original).unwrap();
    std::fs::write(
        parts.join("debian.sources"),
        "Types: deb\nURIs: http://security.debian.org/debian-security\n",
    )
    .unwrap();
    std::fs::write(parts.join("other.list"), "deb https://other.example/ x y\n").unwrap();
    std::fs::write(parts.join("README"), "not a source\n").unwrap();
    let out = t.path().join("run/apt");
    let conf = redirect_sources(&root, &out, "/run/boxwright/apt", &debian_mirrors())
        .unwrap()
        .expect("rewritten");
    assert_eq!(
        conf,
        "Dir::Etc::SourceList \"/run/boxwright/apt/sources.list\";\n\
         Dir::Etc::SourceParts \"/run/boxwright/apt/sources.list.d\";\n"
    );
    let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
    assert_eq!(
        read("sources.list"),
        "deb http://127.0.0.1:8080/deb/debian bookworm main\n"
    );
    assert_eq!(
        read("sources.list.d/debian.sources"),
        "Types: deb\nURIs: http://127.0.0.1:8080/sec/debian-security\n"
    );
    // Sources no rule covers are copied as they are; other files are not.
    assert_eq!(
        read("sources.list.d/other.list"),
        "deb https://other.example/ x y\n"
    );
    assert!(!out.join("sources.list.d/README").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/apt/sources.list")).unwrap(),
        original
    );

    // Nothing covered, no mirrors or no apt: nothing written.
    let other = Mirrors::new([rule("https://pypi.org/=http://p/")]);
    let none = t.path().join("none");
    assert_eq!(redirect_sources(&root, &none, "/x", &other).unwrap(), None);
    assert_eq!(
        redirect_sources(&root, &none, "/x", &Mirrors::default()).unwrap(),
        None
    );
    assert_eq!(
        redirect_sources(&t.path().join("no-apt"), &none, "/x", &debian_mirrors()).unwrap(),
        None
    );
    assert!(!none.exists());
}

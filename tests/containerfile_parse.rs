//! The Containerfile parser on the Dockerfiles in tests/containerfiles/parse/:
//! each parses, rendering round-trips, and a few carry checks of what they
//! exercise (CRLF, BOM, escape directive, heredocs, mounts).

use std::path::{Path, PathBuf};

use boxwright::containerfile::{
    self, Command, Containerfile, Healthcheck, InstructionKind, RunMount,
};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/containerfiles/parse");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "Dockerfile"))
        .collect();
    files.sort();
    files
}

fn parse_file(path: &Path) -> Containerfile {
    let text = std::fs::read_to_string(path).unwrap();
    containerfile::parse(&text, path).unwrap_or_else(|e| panic!("{e}"))
}

fn fixture(name: &str) -> Containerfile {
    let path = fixtures()
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(name))
        .unwrap_or_else(|| panic!("no fixture {name}"));
    parse_file(&path)
}

fn kinds(cf: &Containerfile, stage: usize) -> Vec<&InstructionKind> {
    cf.stages[stage]
        .instructions
        .iter()
        .map(|i| &i.kind)
        .collect()
}

#[test]
fn there_are_at_least_fifty_fixtures_and_all_parse() {
    let files = fixtures();
    assert!(files.len() >= 50, "only {} fixtures", files.len());
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (number, rest) = name.split_once('-').unwrap_or(("", ""));
        assert!(
            number.len() == 2 && number.chars().all(|c| c.is_ascii_digit()) && !rest.is_empty(),
            "{name} is not NN-description.Dockerfile"
        );
        let cf = parse_file(path);
        assert!(!cf.stages.is_empty(), "{name}");
        assert_eq!(cf.path, *path);
    }
}

#[test]
fn render_round_trips_every_fixture() {
    for path in fixtures() {
        let cf = parse_file(&path);
        let rendered = containerfile::render(&cf);
        let again = containerfile::parse(&rendered, &path).unwrap_or_else(|e| {
            panic!(
                "{}: rendered text does not parse: {e}\n{rendered}",
                path.display()
            )
        });
        assert!(
            containerfile::same_ignoring_positions(&cf, &again),
            "{}: round trip changed the tree\n--- rendered ---\n{rendered}",
            path.display()
        );
        let twice = containerfile::render(&again);
        assert_eq!(twice, rendered, "{}: render is not stable", path.display());
    }
}

#[test]
fn a_three_hundred_line_file_parses() {
    let mut text = String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\n");
    let mut stage = 0;
    while text.lines().count() < 300 {
        text.push_str(&format!("FROM ${{BASE}} AS s{stage}\n"));
        text.push_str("RUN apt-get update \\\n    && apt-get install -y curl \\\n    && rm -rf /var/lib/apt/lists/*\n");
        text.push_str(&format!("ENV STAGE={stage} PATH=/opt/s{stage}/bin:$PATH\n"));
        text.push_str(
            "RUN --mount=type=cache,target=/root/.cache <<EOF\nset -e\necho $STAGE\nEOF\n",
        );
        text.push_str(&format!(
            "COPY --from=s{} /etc/hostname /s{stage}\n",
            stage.max(1) - 1
        ));
        text.push_str("# a comment\nWORKDIR /app\nEXPOSE 80 443\n");
        stage += 1;
    }
    assert!(text.lines().count() >= 300);
    let cf = containerfile::parse(&text, Path::new("Generated.Dockerfile")).unwrap();
    assert_eq!(cf.stages.len(), stage);
    assert!(cf.stages.iter().all(|s| s.instructions.len() == 6));
    let last = cf.stages.last().unwrap();
    assert_eq!(
        last.name.as_deref(),
        Some(format!("s{}", stage - 1).as_str())
    );
    let again = containerfile::parse(
        &containerfile::render(&cf),
        Path::new("Generated.Dockerfile"),
    )
    .unwrap();
    assert!(containerfile::same_ignoring_positions(&cf, &again));
}

#[test]
fn crlf_bom_and_trailing_blanks_read_as_plain_text() {
    let cf = fixture("22-");
    assert_eq!(
        kinds(&cf, 0)[0],
        &InstructionKind::Run(containerfile::Run {
            command: Command::Shell("apk add --no-cache     curl     jq".into()),
            mounts: vec![],
            network: None,
            heredocs: vec![],
        })
    );
    assert_eq!(
        kinds(&cf, 0)[1],
        &InstructionKind::Env(vec![("A".into(), "1".into())])
    );
    let cf = fixture("23-");
    assert_eq!(cf.stages[0].base, "alpine");
    assert_eq!(kinds(&cf, 0)[2], &InstructionKind::Workdir("/app".into()));
    let cf = fixture("24-");
    assert_eq!(cf.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(cf.stages[0].pos.column, 1);
}

#[test]
fn escape_directive_and_heredocs() {
    let cf = fixture("09-");
    assert_eq!(cf.escape, '`');
    match kinds(&cf, 0)[2] {
        InstructionKind::Run(r) => assert_eq!(
            r.command,
            Command::Shell(
                "New-Item -ItemType Directory C:\\app ;     Set-Location C:\\app ;     C:\\setup\\setup.ps1"
                    .into()
            )
        ),
        other => panic!("{other:?}"),
    }
    let cf = fixture("38-");
    match kinds(&cf, 0)[1] {
        InstructionKind::Copy(c) => {
            assert_eq!(c.sources, vec!["<<robots.txt", "<<humans.txt"]);
            assert_eq!(c.heredocs[1].content, "Made by humans\n");
        }
        other => panic!("{other:?}"),
    }
    let cf = fixture("39-");
    match kinds(&cf, 0)[0] {
        InstructionKind::Run(r) => {
            assert_eq!(r.heredocs[0].content, "if true; then\necho indented\nfi\n")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mounts_healthchecks_and_stage_names() {
    let cf = fixture("05-");
    match kinds(&cf, 0)[4] {
        InstructionKind::Run(r) => {
            assert_eq!(r.mounts.len(), 3);
            assert!(
                matches!(&r.mounts[2].value, RunMount::Bind { target, source: None, .. } if target == ".")
            );
        }
        other => panic!("{other:?}"),
    }
    let cf = fixture("12-");
    assert!(matches!(
        kinds(&cf, 1)[0],
        InstructionKind::Healthcheck(Healthcheck::None)
    ));
    let cf = fixture("47-");
    let names: Vec<Option<&str>> = cf.stages.iter().map(|s| s.name.as_deref()).collect();
    assert_eq!(names, vec![Some("one"), Some("two"), None]);
}

/// Each fixture mutated at random (fragments inserted, characters removed):
/// parsing never panics, and whatever still parses round-trips.
/// `CF_SEED` and `CF_MUTATIONS` widen the search when run by hand.
#[test]
fn mutated_fixtures_never_panic_and_round_trip() {
    let fragments = [
        "\\",
        "\\\n",
        "`",
        "\"",
        "'",
        "$",
        "${",
        "}",
        "[",
        "]",
        "<<EOF",
        "<<-X",
        "\nEOF\n",
        "--",
        "--link",
        "=",
        ",",
        " ",
        "\t",
        "\n",
        "\r\n",
        "#",
        "é",
        "\u{feff}",
        "AS",
        "--mount=type=cache",
        ",target=/c",
        "\"a,b\"",
        "CMD ",
        "NONE",
    ];
    let rounds: usize = std::env::var("CF_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("CF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut parsed = 0;
    for path in fixtures() {
        let original: Vec<char> = std::fs::read_to_string(&path).unwrap().chars().collect();
        for _ in 0..rounds {
            let mut chars = original.clone();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..=chars.len());
                if rng.bool() && at < chars.len() {
                    let end = (at + rng.usize(1..4)).min(chars.len());
                    chars.drain(at..end);
                } else {
                    let f = fragments[rng.usize(..fragments.len())];
                    chars.splice(at..at, f.chars());
                }
            }
            let text: String = chars.into_iter().collect();
            let Ok(cf) = containerfile::parse(&text, &path) else {
                continue;
            };
            parsed += 1;
            let rendered = containerfile::render(&cf);
            let again = containerfile::parse(&rendered, &path).unwrap_or_else(|e| {
                panic!("{e}\n--- text ---\n{text:?}\n--- rendered ---\n{rendered:?}")
            });
            assert!(
                containerfile::same_ignoring_positions(&cf, &again),
                "--- text ---\n{text:?}\n--- rendered ---\n{rendered:?}"
            );
        }
    }
    assert!(parsed > 100, "only {parsed} mutated files parsed");
}

/// Every source a `COPY`/`ADD` of the context names, made as a file (or a
/// directory for a trailing `/`), so the fixture can be planned.
fn make_context(cf: &Containerfile, dir: &Path) {
    for stage in &cf.stages {
        for ins in &stage.instructions {
            if let InstructionKind::Run(r) = &ins.kind {
                for m in &r.mounts {
                    if let RunMount::Bind {
                        source: Some(src),
                        from: None,
                        ..
                    } = &m.value
                    {
                        let path = dir.join(src.trim_start_matches('/'));
                        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                        if !path.exists() {
                            std::fs::write(&path, "x").unwrap();
                        }
                    }
                }
            }
            let InstructionKind::Copy(c) = &ins.kind else {
                continue;
            };
            if c.from.is_some() {
                continue;
            }
            for raw in &c.sources {
                if raw.starts_with("<<") || raw.contains("://") {
                    continue;
                }
                let lookup = |_: &str| Some("x".to_string());
                let Ok(src) = containerfile::words::process_word(raw, cf.escape, &lookup) else {
                    continue;
                };
                // Globs match a file named like them with the stars as "x".
                let name: String = src
                    .trim_start_matches('/')
                    .replace(['*', '?'], "x")
                    .replace(['[', ']'], "");
                let path = dir.join(&name);
                if src.ends_with('/') || name.is_empty() || name == "." {
                    std::fs::create_dir_all(&path).unwrap();
                    std::fs::write(path.join("file"), "x").unwrap();
                } else {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    if !path.exists() {
                        std::fs::write(&path, "x").unwrap();
                    }
                }
            }
        }
    }
}

#[test]
fn every_fixture_plans() {
    use boxwright::plan::containerfile::{self as lower, LowerInput};
    let platform = lower::platform_args(&boxwright::image::host_platform());
    let args = std::collections::BTreeMap::new();
    for path in fixtures() {
        let cf = parse_file(&path);
        let ctx = tempfile::tempdir().unwrap();
        make_context(&cf, ctx.path());
        let names = lower::stage_names(&cf).unwrap_or_else(|e| panic!("{e}"));
        let globals = lower::global_args(&cf, &args, &platform).unwrap_or_else(|e| panic!("{e}"));
        for stage in &cf.stages {
            lower::stage_deps(&cf, stage, &names, &globals).unwrap_or_else(|e| panic!("{e}"));
            let input = LowerInput {
                file: &cf,
                context: ctx.path(),
                dockerignore: &[],
                build_args: &args,
                base_env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                base_shell: None,
                stages: &names,
                staging: ctx.path(),
                platform_args: &platform,
                check_only: false,
            };
            let planned = lower::lower_stage(&input, stage).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                planned.steps.len() >= stage.instructions.len(),
                "{}: a step per instruction",
                path.display()
            );
        }
    }
}

/// `sharing=` of a cache mount reaches the step: `locked` and `private`
/// are kept by target, `shared` (the default) is left out.
#[test]
fn cache_mount_sharing_is_lowered_per_target() {
    use boxwright::plan::containerfile::{self as lower, LowerInput};
    use boxwright::recipe::CacheSharing;
    let text = "FROM scratch\nRUN --mount=type=cache,target=/a,sharing=locked \
                --mount=type=cache,target=/b,sharing=private \
                --mount=type=cache,target=/c,sharing=shared --mount=type=cache,target=/d true\n";
    let cf = containerfile::parse(text, Path::new("Containerfile")).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let names = lower::stage_names(&cf).unwrap();
    let platform = lower::platform_args(&boxwright::image::host_platform());
    let args = std::collections::BTreeMap::new();
    let input = LowerInput {
        file: &cf,
        context: ctx.path(),
        dockerignore: &[],
        build_args: &args,
        base_env: Vec::new(),
        base_shell: None,
        stages: &names,
        staging: ctx.path(),
        platform_args: &platform,
        check_only: false,
    };
    let planned = lower::lower_stage(&input, &cf.stages[0]).unwrap();
    let step = &planned.steps[0];
    for c in ["/a", "/b", "/c", "/d"] {
        assert!(step.caches.iter().any(|x| x == c), "{c}: {:?}", step.caches);
    }
    assert_eq!(
        step.step.options.cache_sharing,
        [
            ("/a".to_string(), CacheSharing::Locked),
            ("/b".to_string(), CacheSharing::Private)
        ]
    );
}

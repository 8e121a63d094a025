//! Documentation generated from the CLI's definition: shell completions
//! (`boxwright completion SHELL`), man pages (`boxwright man --dir DIR`), and
//! help that lists the global options once, under their own heading.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};

use support::*;

/// The commands `boxwright --help` lists (without `help`).
fn commands() -> Vec<String> {
    let help = boxwright(&["--help"]).ok().stdout;
    let section = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands section")
        .split("\n\n")
        .next()
        .unwrap();
    let names: Vec<String> = section
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect();
    assert!(names.len() > 20, "{help}");
    names
}

/// The sections of a help text: heading → the option names listed under it.
fn sections(help: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            out.push((line.trim_end_matches(':').to_string(), Vec::new()));
        } else if let Some((_, opts)) = out.last_mut() {
            let words = line.split_whitespace();
            opts.extend(
                words
                    .take(2)
                    .filter(|w| w.starts_with("--"))
                    .map(|w| w.trim_end_matches(',').to_string()),
            );
        }
    }
    out
}

#[test]
fn completions_cover_every_command_in_each_shell() {
    let commands = commands();
    for shell in ["bash", "zsh", "fish"] {
        let run = boxwright(&["completion", shell]).ok();
        for c in &commands {
            assert!(
                run.stdout.contains(c.as_str()),
                "{shell} completion lacks {c}"
            );
        }
        // fish writes options without their dashes (`-l store`).
        for needle in ["store", "format", "no-trunc", "runtimes", "dev-access"] {
            assert!(run.stdout.contains(needle), "{shell}: {needle}");
        }
    }
    // The bash script is valid bash, and completes `boxwright im` to images.
    let script = boxwright(&["completion", "bash"]).ok().stdout;
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("boxwright.bash");
    fs::write(&file, &script).unwrap();
    let probe = format!(
        "source {} && COMP_WORDS=(boxwright im) && COMP_CWORD=1 && _boxwright boxwright im boxwright && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = sh(Command::new("bash")
        .args(["--norc", "-c", &probe])
        .stdin(Stdio::null()));
    assert_eq!(out.trim(), "images", "{out}");
    // A shell it does not know: bad input, one line.
    let bad = boxwright(&["completion", "tcsh"]);
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
}

#[test]
fn man_pages_one_per_command_with_the_global_options_apart() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("man/man1");
    let run = boxwright(&["man", "--dir", dir.to_str().unwrap()]).ok();
    let files: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let printed: BTreeSet<String> = run
        .stdout
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(printed, files, "it prints what it wrote");
    assert!(files.contains("boxwright.1"));
    for c in commands() {
        assert!(
            files.contains(&format!("boxwright-{c}.1")),
            "{c}: {files:?}"
        );
    }
    for nested in [
        "boxwright-catalog-runtimes.1",
        "boxwright-catalog-templates.1",
        "boxwright-system-df.1",
    ] {
        assert!(files.contains(nested), "{nested}: {files:?}");
    }
    let page = fs::read_to_string(dir.join("boxwright-build.1")).unwrap();
    assert!(page.contains(".TH boxwright-build 1"), "{page}");
    assert!(page.contains(&format!("\"boxwright {}\"", env!("CARGO_PKG_VERSION"))));
    assert_eq!(page.matches(".SH \"GLOBAL OPTIONS\"").count(), 1);
    let options = page.split_once(".SH OPTIONS").unwrap().1;
    let (own, global) = options.split_once(".SH \"GLOBAL OPTIONS\"").unwrap();
    assert!(own.contains("\\-\\-tag") && !own.contains("\\-\\-store"));
    assert!(global.contains("\\-\\-store"));
    // man(1) renders it, when man is installed.
    if let Ok(out) = Command::new("man")
        .arg("-l")
        .arg(dir.join("boxwright-df.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        && out.status.success()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("GLOBAL OPTIONS"), "{text}");
        assert!(text.contains("--format"), "{text}");
    }
}

#[test]
fn subcommand_help_lists_the_global_options_once_under_their_heading() {
    for cmd in [
        &["build"][..],
        &["images"],
        &["df"],
        &["catalog", "runtimes"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let help = boxwright(&args).ok().stdout;
        assert_eq!(help.matches("--store").count(), 1, "{cmd:?}:\n{help}");
        let sections = sections(&help);
        let global = sections
            .iter()
            .find(|(h, _)| h == "Global options")
            .unwrap_or_else(|| panic!("no Global options heading in {cmd:?}:\n{help}"));
        for opt in ["--store", "--log-level", "--progress", "--max-layer-size"] {
            assert!(global.1.iter().any(|o| o == opt), "{opt}: {global:?}");
        }
        let own = sections.iter().find(|(h, _)| h == "Options").unwrap();
        assert!(!own.1.iter().any(|o| o == "--store"), "{own:?}");
        assert!(own.1.iter().any(|o| o == "--help"), "{own:?}");
    }
    // Global options still go before or after the command.
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("s");
    let s = store.to_str().unwrap();
    boxwright(&["--store", s, "images"]).ok();
    boxwright(&["images", "--store", s]).ok();
}

/// Enumerated flags are clap value enums: a value outside the set is refused
/// before anything runs (exit 2), naming the accepted values, and `--help`
/// lists them.
#[test]
fn enumerated_flags_refuse_unknown_values_and_list_the_accepted_ones() {
    let cases: &[(&[&str], &str)] = &[
        (&["build", "--network", "bridge", "x.toml"], "host, none"),
        (
            &["build", "--compression", "xz", "x.toml"],
            "gzip, zstd, none",
        ),
        (
            &["build", "--diff", "btrfs", "x.toml"],
            "auto, overlay, snapshot",
        ),
        (&["fork", "--compression", "lz4", "box"], "gzip, zstd, none"),
        (&["run", "--network", "slirp", "img"], "host, none"),
        (&["--progress", "fancy", "images"], "auto, tty, plain, json"),
        (
            &["--log-level", "verbose", "images"],
            "error, warn, info, debug, trace",
        ),
    ];
    for (args, values) in cases {
        let r = boxwright(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("[possible values: {values}]")),
            "{args:?}: {}",
            r.stderr
        );
    }
    // The environment variable goes through the same check.
    let r = boxwright_env(&["images"], &[("BOXWRIGHT_PROGRESS", "fancy")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("auto, tty, plain, json"), "{}", r.stderr);
    let help = boxwright(&["build", "--help"]).ok().stdout;
    assert!(help.contains("[possible values: host, none]"), "{help}");
    assert!(help.contains("[default: gzip]"), "{help}");
}

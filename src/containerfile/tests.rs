//! Unit tests of the Containerfile parser, words and renderer.

use std::collections::HashMap;
use std::path::Path;

use super::words::{WordError, process_word, process_words, references};
use super::*;

fn parse_ok(text: &str) -> Containerfile {
    parse(text, Path::new("Containerfile")).unwrap_or_else(|e| panic!("{e}\n--- in ---\n{text}"))
}

/// The error, as `Containerfile:LINE:COL: message`.
fn parse_err(text: &str) -> String {
    match parse(text, Path::new("Containerfile")) {
        Ok(cf) => panic!("expected an error, got {cf:#?}"),
        Err(e) => e.to_string(),
    }
}

/// The instructions of the only stage of `FROM scratch` + `body`.
fn stage(body: &str) -> Vec<Instruction> {
    let cf = parse_ok(&format!("FROM scratch\n{body}"));
    assert_eq!(cf.stages.len(), 1);
    cf.stages.into_iter().next().unwrap().instructions
}

/// The one instruction of `body`.
fn one(body: &str) -> InstructionKind {
    let mut ins = stage(body);
    assert_eq!(ins.len(), 1, "{ins:#?}");
    ins.remove(0).kind
}

fn run_of(body: &str) -> Run {
    match one(body) {
        InstructionKind::Run(r) => r,
        other => panic!("not a RUN: {other:?}"),
    }
}

fn copy_of(body: &str) -> Copy {
    match one(body) {
        InstructionKind::Copy(c) => c,
        other => panic!("not a COPY: {other:?}"),
    }
}

fn shell(s: &str) -> Command {
    Command::Shell(s.to_string())
}

fn exec(v: &[&str]) -> Command {
    Command::Exec(v.iter().map(|s| s.to_string()).collect())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pos(line: usize, column: usize) -> Pos {
    Pos { line, column }
}

/// Checks that rendering and parsing again gives the same tree.
fn round_trips(text: &str) {
    let cf = parse_ok(text);
    let rendered = render(&cf);
    let again = parse(&rendered, Path::new("Containerfile"))
        .unwrap_or_else(|e| panic!("{e}\n--- rendered ---\n{rendered}"));
    assert!(
        same_ignoring_positions(&cf, &again),
        "--- rendered ---\n{rendered}\n--- first ---\n{:#?}\n--- again ---\n{:#?}",
        normalized(&cf),
        normalized(&again)
    );
    assert_eq!(render(&again), rendered);
}

// ---------------------------------------------------------------- directives

#[test]
fn directives_at_the_top_are_read() {
    let cf =
        parse_ok("# syntax=docker/dockerfile:1.7\n#ESCAPE = `\n#  check=skip=all\nFROM scratch\n");
    assert_eq!(cf.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(cf.escape, '`');
    assert_eq!(cf.ignored_directives, pairs(&[("check", "skip=all")]));
}

#[test]
fn directives_after_a_comment_or_blank_line_are_comments() {
    let cf = parse_ok("# a comment\n# escape=`\nFROM scratch\n");
    assert_eq!(cf.escape, '\\');
    let cf = parse_ok("\n# syntax=x\nFROM scratch\n");
    assert_eq!(cf.syntax, None);
    // An unknown directive is a comment and ends the directives.
    let cf = parse_ok("# foo=bar\n# escape=`\nFROM scratch\n");
    assert_eq!(cf.escape, '\\');
    assert!(cf.ignored_directives.is_empty());
    let cf = parse_ok("FROM scratch\n# escape=`\nRUN echo \\\n  hi\n");
    assert_eq!(cf.escape, '\\');
}

#[test]
fn directive_errors() {
    assert_eq!(
        parse_err("# escape=x\nFROM scratch\n"),
        "Containerfile:1:10: invalid escape character 'x' in # escape=: use \\ or `"
    );
    assert_eq!(
        parse_err("# escape=\\\n# escape=`\nFROM scratch\n"),
        "Containerfile:2:1: the # escape= directive is given twice: keep one of them"
    );
}

#[test]
fn windows_style_escape() {
    let text = "# escape=`\n\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\n\
                COPY testfile.txt C:\\\n\
                RUN dir C:\\ `\n    && echo done\n\
                WORKDIR C:\\app\\\n";
    let cf = parse_ok(text);
    assert_eq!(cf.escape, '`');
    let ins = &cf.stages[0].instructions;
    match &ins[0].kind {
        InstructionKind::Copy(c) => {
            assert_eq!(c.sources, strings(&["testfile.txt"]));
            assert_eq!(c.dest, "C:\\");
        }
        other => panic!("{other:?}"),
    }
    match &ins[1].kind {
        InstructionKind::Run(r) => assert_eq!(r.command, shell("dir C:\\     && echo done")),
        other => panic!("{other:?}"),
    }
    assert_eq!(ins[1].text, "RUN dir C:\\ && echo done");
    assert_eq!(ins[2].kind, InstructionKind::Workdir("C:\\app\\".into()));
    round_trips(text);
}

// ---------------------------------------------------------------- lines

#[test]
fn continuations_with_comments_and_blank_lines() {
    let text = "FROM debian\nRUN apt-get update && \\\n    # a comment inside\n\n    apt-get install -y \\\n  # another\n      curl\nUSER app\n";
    let cf = parse_ok(text);
    let ins = &cf.stages[0].instructions;
    assert_eq!(ins.len(), 2);
    assert_eq!(
        ins[0].kind,
        InstructionKind::Run(Run {
            command: shell("apt-get update &&     apt-get install -y       curl"),
            mounts: vec![],
            network: None,
            heredocs: vec![],
        })
    );
    assert_eq!(ins[0].text, "RUN apt-get update && apt-get install -y curl");
    assert_eq!(ins[0].pos, pos(2, 1));
    assert_eq!(ins[1].pos, pos(8, 1));
}

#[test]
fn continuation_joins_without_a_space_as_docker_does() {
    assert_eq!(run_of("RUN echo hel\\\nlo\n").command, shell("echo hello"));
    // Blanks after the escape still continue the line.
    assert_eq!(run_of("RUN echo a \\   \n b\n").command, shell("echo a  b"));
}

#[test]
fn crlf_bom_trailing_blanks_and_indentation() {
    let text =
        "\u{feff}FROM alpine:3.20 AS base  \r\n\r\n   run echo a \\\r\n  b   \r\n\tUSER nobody\r\n";
    let cf = parse_ok(text);
    assert_eq!(cf.stages[0].name.as_deref(), Some("base"));
    assert_eq!(cf.stages[0].base_pos, pos(1, 6));
    let ins = &cf.stages[0].instructions;
    assert_eq!(
        ins[0].kind,
        InstructionKind::Run(Run {
            command: shell("echo a   b"),
            mounts: vec![],
            network: None,
            heredocs: vec![],
        })
    );
    assert_eq!(ins[0].pos, pos(3, 4));
    assert_eq!(ins[1].kind, InstructionKind::User("nobody".into()));
    assert_eq!(ins[1].pos, pos(5, 2));
}

#[test]
fn stray_carriage_returns_are_blanks() {
    assert_eq!(
        run_of("RUN echo \\\r   \r\n  b\r\r\n").command,
        shell("echo   b")
    );
    let r = run_of("RUN <<EOF\r\nx\r\r\nEOF\r\n");
    assert_eq!(r.heredocs[0].content, "x\n");
}

#[test]
fn a_comment_line_ending_in_escape_does_not_continue() {
    let ins = stage("# note \\\nUSER a\n");
    assert_eq!(ins.len(), 1);
    assert_eq!(ins[0].kind, InstructionKind::User("a".into()));
}

#[test]
fn continuation_at_end_of_file() {
    assert_eq!(run_of("RUN echo a \\\n").command, shell("echo a"));
    assert_eq!(run_of("RUN echo a \\\n\n# c\n").command, shell("echo a"));
}

#[test]
fn keywords_are_case_insensitive() {
    let cf = parse_ok("from alpine as Build\nrun echo\nCoPy a b\nhealthcheck cmd true\n");
    assert_eq!(cf.stages[0].name.as_deref(), Some("build"));
    let ins = &cf.stages[0].instructions;
    assert!(matches!(ins[0].kind, InstructionKind::Run(_)));
    assert!(matches!(ins[1].kind, InstructionKind::Copy(_)));
    assert!(matches!(
        ins[2].kind,
        InstructionKind::Healthcheck(Healthcheck::Check { .. })
    ));
}

// ---------------------------------------------------------------- FROM / ARG

#[test]
fn from_forms_and_global_args() {
    let text = "ARG BASE=debian\nARG TAG=bookworm-slim OTHER\nFROM --platform=$BUILDPLATFORM ${BASE}:${TAG} AS build\nFROM build\nFROM scratch AS final\n";
    let cf = parse_ok(text);
    assert_eq!(
        cf.global_args,
        vec![
            Located {
                pos: pos(1, 5),
                value: ArgDecl {
                    name: "BASE".into(),
                    default: Some("debian".into())
                }
            },
            Located {
                pos: pos(2, 5),
                value: ArgDecl {
                    name: "TAG".into(),
                    default: Some("bookworm-slim".into())
                }
            },
            Located {
                pos: pos(2, 23),
                value: ArgDecl {
                    name: "OTHER".into(),
                    default: None
                }
            },
        ]
    );
    let s = &cf.stages;
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].base, "${BASE}:${TAG}");
    assert_eq!(s[0].platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s[0].name.as_deref(), Some("build"));
    assert_eq!(s[0].pos, pos(3, 1));
    assert_eq!(s[0].base_pos, pos(3, 32));
    assert_eq!(
        (s[1].index, s[1].name.as_deref(), s[1].base.as_str()),
        (1, None, "build")
    );
    assert_eq!((s[2].index, s[2].name.as_deref()), (2, Some("final")));
    round_trips(text);
}

#[test]
fn arg_in_a_stage_with_quotes() {
    assert_eq!(
        one("ARG A=\"x y\" B C=\n"),
        InstructionKind::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: Some("\"x y\"".into())
            },
            ArgDecl {
                name: "B".into(),
                default: None
            },
            ArgDecl {
                name: "C".into(),
                default: Some(String::new())
            },
        ])
    );
}

#[test]
fn from_errors() {
    assert_eq!(
        parse_err("FROM\n"),
        "Containerfile:1:1: FROM needs an image, such as FROM debian:bookworm"
    );
    assert_eq!(
        parse_err("FROM a AS\n"),
        "Containerfile:1:8: AS needs a stage name, such as FROM golang:1.22 AS build"
    );
    assert_eq!(
        parse_err("FROM a b\n"),
        "Containerfile:1:8: FROM takes an image and an optional AS name: expected AS, found 'b' (such as FROM golang:1.22 AS build)"
    );
    assert_eq!(
        parse_err("FROM a AS b c\n"),
        "Containerfile:1:13: FROM takes an image and an optional AS name, such as FROM golang:1.22 AS build: remove 'c'"
    );
    assert_eq!(
        parse_err("FROM a AS 1st\n"),
        "Containerfile:1:11: invalid stage name '1st': a name starts with a letter and has only letters, digits, '-', '_' and '.'"
    );
    assert_eq!(
        parse_err("FROM a AS b@x\n"),
        "Containerfile:1:11: invalid stage name 'b@x': a name starts with a letter and has only letters, digits, '-', '_' and '.'"
    );
    assert_eq!(
        parse_err("FROM a AS Build\nFROM b AS build\n"),
        "Containerfile:2:11: duplicate stage name 'build' (line 1 names a stage so already): give each stage its own name"
    );
    assert_eq!(
        parse_err("FROM --plaform=linux/amd64 a\n"),
        "Containerfile:1:6: unknown flag --plaform for FROM: flags are --platform"
    );
    assert_eq!(
        parse_err("FROM --platform a\n"),
        "Containerfile:1:6: --platform needs a value, such as --platform=linux/amd64"
    );
}

#[test]
fn ordering_errors() {
    assert_eq!(
        parse_err("# c\n\nRUN make\nFROM a\n"),
        "Containerfile:3:1: RUN before the first FROM: a Containerfile starts with FROM (ARG may come before it)"
    );
    assert_eq!(
        parse_err("ARG A\n  ENV A=1\n"),
        "Containerfile:2:3: ENV before the first FROM: a Containerfile starts with FROM (ARG may come before it)"
    );
    assert_eq!(
        parse_err(""),
        "Containerfile:1:1: no FROM instruction: a Containerfile starts with FROM, such as FROM debian:bookworm"
    );
    assert_eq!(
        parse_err("# only\nARG A=1\n"),
        "Containerfile:1:1: no FROM instruction: a Containerfile starts with FROM, such as FROM debian:bookworm"
    );
}

#[test]
fn unknown_instructions() {
    let list = "FROM, RUN, COPY, ADD, ARG, ENV, LABEL, WORKDIR, USER, EXPOSE, CMD, ENTRYPOINT, SHELL, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER";
    assert_eq!(
        parse_err("FROM a\nRUNN make\n"),
        format!(
            "Containerfile:2:1: unknown instruction 'RUNN': did you mean RUN? (instructions: {list})"
        )
    );
    assert_eq!(
        parse_err("FROM a\n  cpoy a b\n"),
        format!(
            "Containerfile:2:3: unknown instruction 'cpoy': did you mean COPY? (instructions: {list})"
        )
    );
    assert_eq!(
        parse_err("FROM a\nRUN apt-get update &&\n    apt-get install -y curl\n"),
        format!(
            "Containerfile:3:5: unknown instruction 'apt-get' (instructions: {list}): if this line continues the one above, end that line with \\"
        )
    );
    assert_eq!(
        parse_err("BOGUS a\n"),
        format!("Containerfile:1:1: unknown instruction 'BOGUS' (instructions: {list})")
    );
}

#[test]
fn arg_errors() {
    assert_eq!(
        parse_err("ARG\nFROM a\n"),
        "Containerfile:1:1: ARG needs a name, such as ARG VERSION=1.0"
    );
    assert_eq!(
        parse_err("FROM a\nARG OK=1 1BAD=2\n"),
        "Containerfile:2:10: invalid ARG name '1BAD': a name has only letters, digits and '_' and does not start with a digit"
    );
}

// ---------------------------------------------------------------- ENV / LABEL

#[test]
fn env_forms() {
    assert_eq!(
        one("ENV A=1 B=\"two words\" C='$x' D=a\\ b E=\n"),
        InstructionKind::Env(pairs(&[
            ("A", "1"),
            ("B", "\"two words\""),
            ("C", "'$x'"),
            ("D", "a\\ b"),
            ("E", "")
        ]))
    );
    assert_eq!(
        one("ENV PATH /opt/bin:$PATH   \n"),
        InstructionKind::Env(pairs(&[("PATH", "/opt/bin:$PATH")]))
    );
    assert_eq!(
        one("ENV GREETING hello   big world\n"),
        InstructionKind::Env(pairs(&[("GREETING", "hello   big world")]))
    );
    assert_eq!(
        one("ENV A=1 \\\n    B=2\n"),
        InstructionKind::Env(pairs(&[("A", "1"), ("B", "2")]))
    );
    round_trips(
        "FROM a\nENV GREETING hello   big world\nENV A=1 B=\"two words\"\nENV X=\"a=b\" Y=\n",
    );
}

#[test]
fn label_with_quoted_keys_and_values() {
    assert_eq!(
        one(
            "LABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0 description=\"a \\\"quoted\\\" word\"\n"
        ),
        InstructionKind::Label(pairs(&[
            ("\"com.example.vendor\"", "\"ACME Inc\""),
            ("version", "1.0"),
            ("description", "\"a \\\"quoted\\\" word\""),
        ]))
    );
    assert_eq!(
        one("LABEL \"a=b\"=c\n"),
        InstructionKind::Label(pairs(&[("\"a=b\"", "c")]))
    );
    round_trips(
        "FROM a\nLABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0\nLABEL maintainer legacy form here\n",
    );
}

#[test]
fn env_label_errors() {
    assert_eq!(
        parse_err("FROM a\nENV\n"),
        "Containerfile:2:1: ENV needs NAME=value, such as ENV PATH=/opt/tool/bin:$PATH"
    );
    assert_eq!(
        parse_err("FROM a\nENV ONLY\n"),
        "Containerfile:2:5: ENV ONLY needs a value: write ENV NAME=value (NAME= for an empty value)"
    );
    assert_eq!(
        parse_err("FROM a\nENV A=1 b c=2\n"),
        "Containerfile:2:9: 'b' is not NAME=value: ENV takes NAME=value pairs; quote a value that has blanks, such as ENV A=\"x y\""
    );
    assert_eq!(
        parse_err("FROM a\nLABEL a=1 =2\n"),
        "Containerfile:2:11: '=2' has no name before '=': write LABEL NAME=value"
    );
}

// ---------------------------------------------------------------- RUN

#[test]
fn run_shell_and_exec_forms() {
    assert_eq!(
        run_of("RUN echo \"$HOME\"\n").command,
        shell("echo \"$HOME\"")
    );
    assert_eq!(
        run_of("RUN [\"/bin/sh\", \"-c\", \"echo hi\"]\n").command,
        exec(&["/bin/sh", "-c", "echo hi"])
    );
    // Not valid JSON: shell form, as Docker does.
    assert_eq!(
        run_of("RUN [ -f /etc/os-release ] && cat /etc/os-release\n").command,
        shell("[ -f /etc/os-release ] && cat /etc/os-release")
    );
    assert_eq!(
        run_of("RUN ['single', 'quotes']\n").command,
        shell("['single', 'quotes']")
    );
    assert_eq!(run_of("RUN [\"a\", 1]\n").command, shell("[\"a\", 1]"));
    // JSON split over lines.
    assert_eq!(
        run_of("RUN [\"echo\", \\\n     \"a\\\\b\"]\n").command,
        exec(&["echo", "a\\b"])
    );
}

#[test]
fn run_mounts() {
    let r = run_of(
        "RUN --mount=type=cache,target=/root/.cache/pip,id=pip,sharing=locked \\\n    --mount=type=secret,id=npmrc,target=/root/.npmrc,required=true \\\n    --mount=type=bind,from=build,source=/out,target=/mnt,rw \\\n    --mount=target=/src \\\n    --mount=type=tmpfs,dst=/tmp,size=64m \\\n    --mount=type=secret,id=tok,env=TOKEN \\\n    --network=none \\\n    pip install -r requirements.txt\n",
    );
    assert_eq!(r.network, Some(RunNetwork::None));
    assert_eq!(r.command, shell("pip install -r requirements.txt"));
    let mounts: Vec<RunMount> = r.mounts.iter().map(|m| m.value.clone()).collect();
    assert_eq!(
        mounts,
        vec![
            RunMount::Cache {
                target: "/root/.cache/pip".into(),
                id: Some("pip".into()),
                sharing: Some("locked".into()),
                readonly: false,
                mode: None,
                uid: None,
                gid: None,
                from: None,
                source: None,
            },
            RunMount::Secret {
                id: "npmrc".into(),
                target: Some("/root/.npmrc".into()),
                env: None,
                required: true,
                mode: None,
                uid: None,
                gid: None,
            },
            RunMount::Bind {
                target: "/mnt".into(),
                source: Some("/out".into()),
                from: Some("build".into()),
                readwrite: true,
            },
            RunMount::Bind {
                target: "/src".into(),
                source: None,
                from: None,
                readwrite: false,
            },
            RunMount::Tmpfs {
                target: "/tmp".into(),
                size: Some("64m".into()),
            },
            RunMount::Secret {
                id: "tok".into(),
                target: None,
                env: Some("TOKEN".into()),
                required: false,
                mode: None,
                uid: None,
                gid: None,
            },
        ]
    );
    assert_eq!(r.mounts[0].pos, pos(2, 5));
    assert_eq!(r.mounts[1].pos, pos(3, 5));
}

#[test]
fn mount_values_quoted_and_aliases() {
    let r = run_of(
        "RUN --mount=type=cache,\"target=/a,b\",ro,uid=1000,gid=1000,mode=0755 --mount=type=bind,target=\"/x y\",readonly --mount=type=secret,target=/run/secrets/api_key,mode=0440,uid=1000 true\n",
    );
    let mounts: Vec<RunMount> = r.mounts.iter().map(|m| m.value.clone()).collect();
    assert_eq!(
        mounts,
        vec![
            RunMount::Cache {
                target: "/a,b".into(),
                id: None,
                sharing: None,
                readonly: true,
                mode: Some("0755".into()),
                uid: Some("1000".into()),
                gid: Some("1000".into()),
                from: None,
                source: None,
            },
            RunMount::Bind {
                target: "\"/x y\"".into(),
                source: None,
                from: None,
                readwrite: false,
            },
            RunMount::Secret {
                id: "api_key".into(),
                target: Some("/run/secrets/api_key".into()),
                env: None,
                required: false,
                mode: Some("0440".into()),
                uid: Some("1000".into()),
                gid: None,
            },
        ]
    );
    assert_eq!(r.command, shell("true"));
    round_trips(
        "FROM a\nRUN --mount=type=cache,\"target=/a,b\",ro --mount=type=bind,target=\"/x y\" --mount=type=cache,target=/c,from=seed,source=/s,sharing=private true\n",
    );
}

#[test]
fn run_flag_errors() {
    assert_eq!(
        parse_err("FROM a\nRUN --mount=type=ssh git clone git@github.com:x/y\n"),
        "Containerfile:2:13: RUN --mount=type=ssh is not supported: boxwright forwards no SSH agent; fetch with https and a token from a secret mount (--mount=type=secret,id=...) instead"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --mount=type=cache,id=x make\n"),
        "Containerfile:2:5: RUN --mount=type=cache needs target=, such as --mount=type=cache,target=/root/.cache/pip"
    );
    assert_eq!(
        parse_err("FROM a\nRUN  --mount=type=volume,target=/x make\n"),
        "Containerfile:2:14: unknown mount type 'volume': use bind, cache, tmpfs or secret"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --mount=type=tmpfs,target=/x,id=y make\n"),
        "Containerfile:2:34: unknown option 'id' for a tmpfs mount: options are target (dst, destination), size"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --mount=type=cache,target make\n"),
        "Containerfile:2:24: mount option 'target' needs a value, such as target=/root/.cache"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --mount=type=cache,target=/x,sharing=all make\n"),
        "Containerfile:2:34: mount option sharing takes shared, private or locked, not 'all'"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --mount=type=secret make\n"),
        "Containerfile:2:5: RUN --mount=type=secret needs id=, such as --mount=type=secret,id=npmrc,target=/root/.npmrc"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --mount=type=secret,id=a,required=maybe make\n"),
        "Containerfile:2:30: mount option 'required' takes true or false, not 'maybe'"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --network=bridge make\n"),
        "Containerfile:2:5: unknown network 'bridge' for RUN --network: use default, none or host"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --network=none --network=host make\n"),
        "Containerfile:2:20: --network is given twice: give it once"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --security=insecure make\n"),
        "Containerfile:2:5: RUN --security=insecure is not supported: boxwright builds rootless and cannot grant extra privileges; remove the flag and do the privileged step outside the build"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --mount=type=cache,target=/x \\\n  --mout=x make\n"),
        "Containerfile:3:3: unknown flag --mout for RUN: flags are --mount, --network, --security"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --mount=type=cache,\\\nDST=/x,Bogus=1 make\n"),
        "Containerfile:3:8: unknown option 'Bogus' for a cache mount: options are target (dst, destination), id, sharing, ro (readonly), rw (readwrite), mode, uid, gid, from, source (src)"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --mount make\n"),
        "Containerfile:2:5: --mount needs a value, such as --mount=type=cache,target=/root/.cache"
    );
    assert_eq!(
        parse_err("FROM a\nRUN\n"),
        "Containerfile:2:1: RUN needs a command, such as RUN make install"
    );
    assert_eq!(
        parse_err("FROM a\nRUN --network=none\n"),
        "Containerfile:2:1: RUN needs a command, such as RUN make install"
    );
    assert_eq!(
        parse_err("FROM a\nRUN []\n"),
        "Containerfile:2:1: RUN needs a command, such as RUN make install"
    );
    // --security=sandbox is the default, accepted.
    assert_eq!(
        run_of("RUN --security=sandbox make\n").command,
        shell("make")
    );
}

#[test]
fn double_dash_ends_flags() {
    assert_eq!(run_of("RUN -- --version\n").command, shell("--version"));
    round_trips("FROM a\nRUN -- --version\n");
}

// ---------------------------------------------------------------- heredocs

#[test]
fn run_heredoc_unquoted_and_quoted() {
    let text = "FROM a\nRUN <<EOF\napt-get update\necho $HOME\nEOF\nRUN <<'EOT' bash\necho '$HOME'\nEOT\nRUN python3 <<\"PY\"\nprint(1)\nPY\nUSER x\n";
    let ins = parse_ok(text).stages.remove(0).instructions;
    assert_eq!(ins.len(), 4);
    let InstructionKind::Run(r) = &ins[0].kind else {
        panic!()
    };
    assert_eq!(r.command, shell("<<EOF"));
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "apt-get update\necho $HOME\n".into(),
            expand: true,
            strip_tabs: false
        }]
    );
    assert_eq!(ins[0].text, "RUN <<EOF");
    let InstructionKind::Run(r) = &ins[1].kind else {
        panic!()
    };
    assert_eq!(r.command, shell("<<'EOT' bash"));
    assert_eq!(r.heredocs[0].name, "EOT");
    assert!(!r.heredocs[0].expand);
    let InstructionKind::Run(r) = &ins[2].kind else {
        panic!()
    };
    assert_eq!(r.heredocs[0].name, "PY");
    assert_eq!(r.heredocs[0].content, "print(1)\n");
    assert!(!r.heredocs[0].expand);
    assert_eq!(ins[3].pos, pos(12, 1));
    round_trips(text);
}

#[test]
fn heredoc_strip_tabs_and_several_per_line() {
    let text = "FROM a\nRUN <<-A cat - <<B > /out\n\t\tone\n\tA\n  two\n\t#not a comment\nB\n";
    let r = run_of(&text["FROM a\n".len()..]);
    assert_eq!(r.command, shell("<<-A cat - <<B > /out"));
    assert_eq!(
        r.heredocs,
        vec![
            Heredoc {
                name: "A".into(),
                content: "one\n".into(),
                expand: true,
                strip_tabs: true
            },
            Heredoc {
                name: "B".into(),
                content: "  two\n\t#not a comment\n".into(),
                expand: true,
                strip_tabs: false
            },
        ]
    );
    round_trips(text);
}

#[test]
fn copy_heredoc_and_not_heredocs() {
    let c = copy_of("COPY <<EOF /etc/app.conf\nkey = value\n\nEOF\n");
    assert_eq!(c.sources, strings(&["<<EOF"]));
    assert_eq!(c.dest, "/etc/app.conf");
    assert_eq!(c.heredocs[0].content, "key = value\n\n");
    let c = copy_of(
        "COPY --chmod=755 <<run.sh <<\"other\" /usr/local/bin/\n#!/bin/sh\nrun.sh\n$X\nother\n",
    );
    assert_eq!(c.sources, strings(&["<<run.sh", "<<\"other\""]));
    assert_eq!(c.heredocs.len(), 2);
    assert_eq!(c.heredocs[0].content, "#!/bin/sh\n");
    assert_eq!(
        (c.heredocs[1].name.as_str(), c.heredocs[1].expand),
        ("other", false)
    );
    // `<< EOF` (with a space), `<<<` and a JSON form are not heredocs.
    assert!(run_of("RUN cat << EOF\n").heredocs.is_empty());
    assert!(run_of("RUN cat <<<word\n").heredocs.is_empty());
    assert!(run_of("RUN [\"cat\", \"<<EOF\"]\n").heredocs.is_empty());
    assert!(copy_of("COPY [\"<<EOF\", \"/x\"]\n").heredocs.is_empty());
    // A file descriptor before the marker.
    assert_eq!(
        run_of("RUN cat 3<<X\nbody\nX\n").heredocs[0].content,
        "body\n"
    );
    round_trips("FROM a\nCOPY [\"<<EOF\", \"/x\"]\nCOPY <<EOF /y\nhi\nEOF\n");
}

#[test]
fn heredoc_errors() {
    assert_eq!(
        parse_err("FROM a\nRUN echo && cat <<EOF\nline\n"),
        "Containerfile:2:17: heredoc <<EOF is not terminated: end its body with a line that is exactly EOF"
    );
    assert_eq!(
        parse_err("FROM a\nRUN <<-END\nline\n  END \n"),
        "Containerfile:2:5: heredoc <<-END is not terminated: end its body with a line that is exactly END (line 4 has END with blanks around it: the terminator must be exactly END)"
    );
}

// ---------------------------------------------------------------- COPY / ADD

#[test]
fn copy_flags_and_forms() {
    let c = copy_of(
        "COPY --from=build --chown=app:app --chmod=0644 --link --parents --exclude=*.md --exclude=tests/ src/ README* /app/\n",
    );
    assert_eq!(
        c,
        Copy {
            add: false,
            sources: strings(&["src/", "README*"]),
            dest: "/app/".into(),
            from: Some("build".into()),
            chown: Some("app:app".into()),
            chmod: Some("0644".into()),
            link: true,
            parents: true,
            excludes: strings(&["*.md", "tests/"]),
            checksum: None,
            keep_git_dir: false,
            unpack: None,
            heredocs: vec![],
        }
    );
    let c = copy_of("COPY --link=false [\"my file.txt\", \"/dest dir/\"]\n");
    assert_eq!(c.sources, strings(&["my file.txt"]));
    assert_eq!(c.dest, "/dest dir/");
    assert!(!c.link);
    let c = copy_of("COPY \"a b.txt\" 'c d' /x/\n");
    assert_eq!(c.sources, strings(&["\"a b.txt\"", "'c d'"]));
    let c = copy_of(
        "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --unpack=false --keep-git-dir https://example.com/a.tar.gz /opt/\n",
    );
    assert!(c.add);
    assert_eq!(
        c.checksum.as_deref(),
        Some("sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d")
    );
    assert_eq!(c.unpack, Some(false));
    assert!(c.keep_git_dir);
    round_trips(
        "FROM a\nCOPY --link=false [\"my file.txt\", \"/dest dir/\"]\nCOPY --from=0 --chown=1:1 a b /c/\nADD --unpack=true --checksum=sha256:00 x.tar /y\n",
    );
}

#[test]
fn copy_errors() {
    assert_eq!(
        parse_err("FROM a\nCOPY app.py\n"),
        "Containerfile:2:1: COPY needs at least a source and a destination, such as COPY app.py /app/"
    );
    assert_eq!(
        parse_err("FROM a\nADD [\"x\"]\n"),
        "Containerfile:2:1: ADD needs at least a source and a destination, such as ADD https://example.com/tool.tar.gz /opt/"
    );
    assert_eq!(
        parse_err("FROM a\nCOPY --chwon=1 a b\n"),
        "Containerfile:2:6: unknown flag --chwon for COPY: flags are --from, --chown, --chmod, --link, --parents, --exclude"
    );
    assert_eq!(
        parse_err("FROM a\nCOPY --checksum=sha256:0 a b\n"),
        "Containerfile:2:6: unknown flag --checksum for COPY: flags are --from, --chown, --chmod, --link, --parents, --exclude"
    );
    assert_eq!(
        parse_err("FROM a\nCOPY --link=yes a b\n"),
        "Containerfile:2:6: --link takes true or false, not 'yes'"
    );
    assert_eq!(
        parse_err("FROM a\nCOPY --from= a b\n"),
        "Containerfile:2:6: --from needs a value, such as --from=build"
    );
}

// ---------------------------------------------------------------- the others

#[test]
fn simple_instructions() {
    assert_eq!(
        one("WORKDIR /home/$USER/my app\n"),
        InstructionKind::Workdir("/home/$USER/my app".into())
    );
    assert_eq!(
        one("USER 1000:1000\n"),
        InstructionKind::User("1000:1000".into())
    );
    assert_eq!(
        one("USER ${UID}:${GID}\n"),
        InstructionKind::User("${UID}:${GID}".into())
    );
    assert_eq!(
        one("EXPOSE 80 443/tcp 53/udp 8000-8010 $PORT\n"),
        InstructionKind::Expose(strings(&["80", "443/tcp", "53/udp", "8000-8010", "$PORT"]))
    );
    assert_eq!(
        one("STOPSIGNAL SIGQUIT\n"),
        InstructionKind::StopSignal("SIGQUIT".into())
    );
    assert_eq!(
        one("CMD [\"nginx\", \"-g\", \"daemon off;\"]\n"),
        InstructionKind::Cmd(exec(&["nginx", "-g", "daemon off;"]))
    );
    assert_eq!(one("CMD []\n"), InstructionKind::Cmd(exec(&[])));
    assert_eq!(
        one("CMD echo $HOME\n"),
        InstructionKind::Cmd(shell("echo $HOME"))
    );
    assert_eq!(
        one("ENTRYPOINT [\"/docker-entrypoint.sh\"]\n"),
        InstructionKind::Entrypoint(exec(&["/docker-entrypoint.sh"]))
    );
    assert_eq!(
        one("ENTRYPOINT exec top -b\n"),
        InstructionKind::Entrypoint(shell("exec top -b"))
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n"),
        InstructionKind::Shell(strings(&["/bin/bash", "-o", "pipefail", "-c"]))
    );
    assert_eq!(
        one("VOLUME [\"/data\", \"/var/log/my app\"]\n"),
        InstructionKind::Volume(strings(&["/data", "/var/log/my app"]))
    );
    assert_eq!(
        one("VOLUME /data /cache\n"),
        InstructionKind::Volume(strings(&["/data", "/cache"]))
    );
    assert_eq!(
        one("MAINTAINER Jane Doe <jane@example.com>\n"),
        InstructionKind::Maintainer("Jane Doe <jane@example.com>".into())
    );
    assert_eq!(
        one("ONBUILD COPY . /app/src\n"),
        InstructionKind::OnBuild("COPY . /app/src".into())
    );
    assert_eq!(
        one("onbuild run --mount=type=cache,target=/c make\n"),
        InstructionKind::OnBuild("run --mount=type=cache,target=/c make".into())
    );
    round_trips(
        "FROM a\nWORKDIR /home/$USER/my app\nUSER 1000:1000\nEXPOSE 80 53/udp\nSTOPSIGNAL 9\nCMD []\nCMD echo hi\nENTRYPOINT [\"a b\"]\nSHELL [\"pwsh\", \"-c\"]\nVOLUME [\"/a b\"]\nVOLUME /x /y\nMAINTAINER me\nONBUILD RUN make\n",
    );
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        one("HEALTHCHECK NONE\n"),
        InstructionKind::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        one(
            "HEALTHCHECK --interval=30s --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 \\\n  CMD curl -f http://localhost/ || exit 1\n"
        ),
        InstructionKind::Healthcheck(Healthcheck::Check {
            test: shell("curl -f http://localhost/ || exit 1"),
            interval: Some("30s".into()),
            timeout: Some("3s".into()),
            start_period: Some("1m30s".into()),
            start_interval: Some("500ms".into()),
            retries: Some("3".into()),
        })
    );
    assert_eq!(
        one("HEALTHCHECK CMD [\"/bin/check\", \"--quiet\"]\n"),
        InstructionKind::Healthcheck(Healthcheck::Check {
            test: exec(&["/bin/check", "--quiet"]),
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        })
    );
    round_trips("FROM a\nHEALTHCHECK NONE\nHEALTHCHECK --interval=1.5s --retries=0 CMD --check\n");
}

#[test]
fn other_instruction_errors() {
    let cases = [
        ("WORKDIR", "2:1: WORKDIR needs a path, such as WORKDIR /app"),
        (
            "USER",
            "2:1: USER needs a user[:group], such as USER 1000:1000",
        ),
        (
            "USER a b",
            "2:8: USER takes a user[:group], such as USER 1000:1000: remove 'b'",
        ),
        (
            "STOPSIGNAL TERM KILL",
            "2:17: STOPSIGNAL takes a signal, such as STOPSIGNAL SIGTERM: remove 'KILL'",
        ),
        (
            "EXPOSE",
            "2:1: EXPOSE needs a port, such as EXPOSE 8080 or EXPOSE 53/udp",
        ),
        (
            "CMD",
            "2:1: CMD needs a command, such as CMD [\"python\", \"app.py\"]",
        ),
        (
            "CMD --verbose",
            "2:5: unknown flag --verbose for CMD: CMD takes no flags",
        ),
        (
            "ENTRYPOINT",
            "2:1: ENTRYPOINT needs a command, such as ENTRYPOINT [\"/usr/bin/tini\", \"--\"]",
        ),
        (
            "SHELL /bin/bash -c",
            "2:7: SHELL needs the JSON form, such as SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]",
        ),
        (
            "SHELL []",
            "2:1: SHELL needs a shell, such as SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]",
        ),
        ("VOLUME", "2:1: VOLUME needs a path, such as VOLUME /data"),
        (
            "VOLUME []",
            "2:1: VOLUME needs a path, such as VOLUME /data",
        ),
        (
            "VOLUME [\"/a\", \"\"]",
            "2:8: VOLUME paths cannot be empty: remove the \"\"",
        ),
        (
            "MAINTAINER",
            "2:1: MAINTAINER needs a name, such as MAINTAINER Jane Doe <jane@example.com>",
        ),
        (
            "HEALTHCHECK",
            "2:1: HEALTHCHECK needs NONE or CMD, such as HEALTHCHECK --interval=30s CMD curl -f http://localhost/ || exit 1",
        ),
        (
            "HEALTHCHECK --interval=5s NONE",
            "2:13: HEALTHCHECK NONE takes no options: remove --interval",
        ),
        (
            "HEALTHCHECK NONE now",
            "2:18: HEALTHCHECK NONE takes no arguments: remove 'now'",
        ),
        (
            "HEALTHCHECK curl -f http://x/",
            "2:13: HEALTHCHECK needs CMD before the command, such as HEALTHCHECK --interval=30s CMD curl -f http://localhost/ || exit 1",
        ),
        (
            "HEALTHCHECK --interval=5s CMD",
            "2:27: HEALTHCHECK CMD needs a command, such as HEALTHCHECK --interval=30s CMD curl -f http://localhost/ || exit 1",
        ),
        (
            "HEALTHCHECK --interval=5 CMD true",
            "2:13: --interval takes a duration such as 30s, 1m30s or 500ms, not '5'",
        ),
        (
            "HEALTHCHECK --timeout=1x CMD true",
            "2:13: --timeout takes a duration such as 30s, 1m30s or 500ms, not '1x'",
        ),
        (
            "HEALTHCHECK --retries=three CMD true",
            "2:13: --retries takes a whole number, such as --retries=3, not 'three'",
        ),
        (
            "HEALTHCHECK --intervall=5s CMD true",
            "2:13: unknown flag --intervall for HEALTHCHECK: flags are --interval, --timeout, --start-period, --start-interval, --retries",
        ),
        (
            "ONBUILD",
            "2:1: ONBUILD needs an instruction, such as ONBUILD COPY . /app",
        ),
        (
            "ONBUILD ONBUILD RUN x",
            "2:9: ONBUILD ONBUILD is not allowed: a trigger cannot be another ONBUILD",
        ),
        (
            "ONBUILD from x",
            "2:9: ONBUILD FROM is not allowed: a trigger cannot start a stage",
        ),
        (
            "ONBUILD MAINTAINER me",
            "2:9: ONBUILD MAINTAINER is not allowed: use ONBUILD LABEL org.opencontainers.image.authors=... instead",
        ),
        (
            "ONBUILD COPY x",
            "2:9: COPY needs at least a source and a destination, such as COPY app.py /app/",
        ),
        (
            "ONBUILD RUN --mount=type=ssh x",
            "2:21: RUN --mount=type=ssh is not supported: boxwright forwards no SSH agent; fetch with https and a token from a secret mount (--mount=type=secret,id=...) instead",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            parse_err(&format!("FROM a\n{body}\n")),
            format!("Containerfile:{expected}"),
            "for {body}"
        );
    }
    let list = "FROM, RUN, COPY, ADD, ARG, ENV, LABEL, WORKDIR, USER, EXPOSE, CMD, ENTRYPOINT, SHELL, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER";
    assert_eq!(
        parse_err("FROM a\nONBUILD RUNN x\n"),
        format!(
            "Containerfile:2:9: unknown instruction 'RUNN': did you mean RUN? (instructions: {list})"
        )
    );
}

#[test]
fn error_display_names_the_file() {
    let e = parse("FROM a\nRUNN x\n", Path::new("dir/Dockerfile.dev")).unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.line, e.column),
        ("dir/Dockerfile.dev", 2, 1)
    );
    assert!(
        e.to_string()
            .starts_with("dir/Dockerfile.dev:2:1: unknown instruction 'RUNN'")
    );
    assert!(!e.message.contains('\n'));
}

#[test]
fn messages_quote_hostile_text_on_one_line() {
    let e = parse(
        "FROM a\nRUN --mount=type=\u{1b}[31m\u{7}x make\n",
        Path::new("f"),
    )
    .unwrap_err();
    assert!(!e.message.chars().any(char::is_control), "{e}");
}

#[test]
fn instruction_text_and_positions() {
    let ins = stage("  COPY --chown=a \\\n     x \\\n     y\nRUN <<EOF\nbody\nEOF\n");
    assert_eq!(ins[0].text, "COPY --chown=a x y");
    assert_eq!(ins[0].pos, pos(2, 3));
    assert_eq!(ins[1].text, "RUN <<EOF");
    assert_eq!(ins[1].pos, pos(5, 1));
}

// ---------------------------------------------------------------- words

fn vars() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("HOME", "/root"),
        ("EMPTY", ""),
        ("WORDS", "a  b c"),
        ("FILE", "archive.tar.gz"),
        ("PATH_", "/usr/local/bin:/usr/bin:/bin"),
        ("B", "bee"),
    ])
}

fn w(raw: &str) -> Result<String, WordError> {
    let v = vars();
    process_word(raw, '\\', &|name| v.get(name).map(|s| s.to_string()))
}

fn ws(raw: &str) -> Vec<String> {
    let v = vars();
    process_words(raw, '\\', &|name| v.get(name).map(|s| s.to_string())).unwrap()
}

#[test]
fn words_quotes_and_escapes() {
    assert_eq!(w("plain").unwrap(), "plain");
    assert_eq!(w("'$HOME is $HOME'").unwrap(), "$HOME is $HOME");
    assert_eq!(w("\"$HOME is ${HOME}\"").unwrap(), "/root is /root");
    assert_eq!(w("\\$HOME").unwrap(), "$HOME");
    assert_eq!(w("a\\ b").unwrap(), "a b");
    assert_eq!(
        w("\"a \\\"q\\\" \\$x \\\\ \\n\"").unwrap(),
        "a \"q\" $x \\ \\n"
    );
    assert_eq!(w("it'\"'s").unwrap(), "it\"s");
    assert_eq!(w("x\\").unwrap(), "x");
    assert_eq!(w("a  b").unwrap(), "a  b");
    assert_eq!(w("$").unwrap(), "$");
    assert_eq!(w("a$/b").unwrap(), "a$/b");
    assert_eq!(w("$$").unwrap(), "");
    assert_eq!(w("$1x").unwrap(), "x");
    let backtick = process_word("C:\\dir `$HOME", '`', &|_| Some("v".into())).unwrap();
    assert_eq!(backtick, "C:\\dir $HOME");
}

#[test]
fn words_expansion_operators() {
    assert_eq!(w("$HOME/x").unwrap(), "/root/x");
    assert_eq!(w("${HOME}x").unwrap(), "/rootx");
    assert_eq!(w("$UNSET-x").unwrap(), "-x");
    assert_eq!(w("${UNSET:-def}").unwrap(), "def");
    assert_eq!(w("${EMPTY:-def}").unwrap(), "def");
    assert_eq!(w("${EMPTY-def}").unwrap(), "");
    assert_eq!(w("${UNSET-def}").unwrap(), "def");
    assert_eq!(w("${HOME:-def}").unwrap(), "/root");
    assert_eq!(w("${HOME:+alt}").unwrap(), "alt");
    assert_eq!(w("${EMPTY:+alt}").unwrap(), "");
    assert_eq!(w("${EMPTY+alt}").unwrap(), "alt");
    assert_eq!(w("${UNSET+alt}").unwrap(), "");
    assert_eq!(w("${UNSET:-${B}}").unwrap(), "bee");
    assert_eq!(w("${UNSET:-${ALSO:-\"x y\"}}").unwrap(), "x y");
    assert_eq!(w("${UNSET:-$HOME/a}").unwrap(), "/root/a");
    assert_eq!(w("${HOME:?}").unwrap(), "/root");
    assert_eq!(w("${EMPTY?}").unwrap(), "");
}

#[test]
fn words_patterns() {
    assert_eq!(w("${FILE#*.}").unwrap(), "tar.gz");
    assert_eq!(w("${FILE##*.}").unwrap(), "gz");
    assert_eq!(w("${FILE%.*}").unwrap(), "archive.tar");
    assert_eq!(w("${FILE%%.*}").unwrap(), "archive");
    assert_eq!(w("${FILE#nomatch}").unwrap(), "archive.tar.gz");
    assert_eq!(w("${PATH_/:/;}").unwrap(), "/usr/local/bin;/usr/bin:/bin");
    assert_eq!(w("${PATH_//:/;}").unwrap(), "/usr/local/bin;/usr/bin;/bin");
    assert_eq!(
        w("${PATH_//\\//|}").unwrap(),
        "|usr|local|bin:|usr|bin:|bin"
    );
    assert_eq!(w("${FILE/.tar}").unwrap(), "archive.gz");
    assert_eq!(w("${FILE/[a-c]/X}").unwrap(), "Xrchive.tar.gz");
    assert_eq!(w("${FILE#\\*}").unwrap(), "archive.tar.gz");
    assert_eq!(w("${UNSET#x}").unwrap(), "");
}

#[test]
fn word_errors_have_offsets() {
    let e = w("ab'cd").unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (2, "unterminated single quote: add the closing '")
    );
    let e = w("x\"abc").unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (1, "unterminated double quote: add the closing \"")
    );
    let e = w("ab${HOME").unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (2, "unterminated ${: add the closing }")
    );
    let e = w("${HOME:-x").unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (0, "unterminated ${: add the closing }")
    );
    let e = w("a${}").unwrap_err();
    assert_eq!(e.offset, 1);
    assert!(
        e.message.starts_with("bad substitution: use ${NAME}"),
        "{e}"
    );
    assert!(w("${:x}").is_err());
    assert!(w("${{x}}").is_err());
    assert!(w("${HOME!}").is_err());
    let e = w("${HOME:1}").unwrap_err();
    assert_eq!(
        e.message,
        "unsupported modifier ':1' in ${HOME:1...}: use :- :+ or :?"
    );
    let e = w("x${UNSET:?set UNSET with --build-arg}").unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (1, "UNSET: set UNSET with --build-arg")
    );
    assert_eq!(
        w("${UNSET?}").unwrap_err().message,
        "UNSET: is not allowed to be unset"
    );
    assert_eq!(
        w("${EMPTY:?}").unwrap_err().message,
        "EMPTY: is not allowed to be empty"
    );
    assert_eq!(
        w("${UNSET:?}").unwrap_err().message,
        "UNSET: is not allowed to be unset"
    );
    let deep = format!("{}x{}", "${A:-".repeat(100), "}".repeat(100));
    assert!(w(&deep).unwrap_err().message.contains("nested"));
    let ok = format!("{}x{}", "${A:-".repeat(20), "}".repeat(20));
    assert_eq!(w(&ok).unwrap(), "x");
}

#[test]
fn words_splitting() {
    assert_eq!(ws("a b  c"), strings(&["a", "b", "c"]));
    assert_eq!(ws("\"a b\" c\\ d 'e  f'"), strings(&["a b", "c d", "e  f"]));
    assert_eq!(ws("$WORDS x"), strings(&["a", "b", "c", "x"]));
    assert_eq!(ws("\"$WORDS\" x"), strings(&["a  b c", "x"]));
    assert_eq!(ws("pre$WORDS"), strings(&["prea", "b", "c"]));
    assert_eq!(ws("\"\" $UNSET x"), strings(&["x"]));
    assert_eq!(ws("  "), Vec::<String>::new());
    assert_eq!(ws("80/tcp ${PORT:-8080}"), strings(&["80/tcp", "8080"]));
}

#[test]
fn words_references() {
    assert_eq!(
        references("${A:-$B}/$C '$D' \\$E \"$F\" $1 $$ ${G#x}", '\\'),
        vec![
            ("A".to_string(), 0),
            ("B".to_string(), 5),
            ("C".to_string(), 9),
            ("F".to_string(), 22),
            ("G".to_string(), 32),
        ]
    );
    assert_eq!(
        references("$A ${B", '\\'),
        vec![("A".to_string(), 0), ("B".to_string(), 3)]
    );
    assert_eq!(references("${A:?must}", '\\'), vec![("A".to_string(), 0)]);
    assert_eq!(references("`$A $B", '`'), vec![("B".to_string(), 4)]);
    assert!(references("no refs", '\\').is_empty());
}

// ---------------------------------------------------------------- robustness

#[test]
fn never_panics_on_odd_input() {
    let samples = [
        "",
        "\n",
        "\\",
        "#",
        "# escape=",
        "\u{feff}",
        "FROM",
        "FROM a\nRUN <<",
        "FROM a\nRUN <<-",
        "FROM a\nRUN <<''\n",
        "FROM a\nCOPY <<\"\n",
        "FROM a\nRUN --mount=\"",
        "FROM a\nRUN --mount=,,,,x",
        "FROM a\nRUN --=x y",
        "FROM a\nRUN --- x",
        "FROM a\n\\\n\\\n",
        "FROM a\nENV \"",
        "FROM a\nENV '=",
        "FROM a\nLABEL =",
        "FROM a\nHEALTHCHECK --retries=99999999999999999999 CMD x",
        "FROM é\nRUN é\\\né",
        "FROM a\nRUN [\"\\ud800\"]",
        "FROM a\nONBUILD ONBUILD",
        "FROM a\nONBUILD \\\n",
        "FROM a\nARG =",
        "FROM a AS ",
        "FROM a\nRUN --mount=type=secret,target=/ x",
        "FROM a\nRUN --mount=\"\"\"\" x",
        "\r\r\n\r",
        "FROM a\r\nRUN x\\\r\n",
        "FROM a\nCOPY --exclude a b",
    ];
    for s in samples {
        let _ = parse(s, Path::new("f"));
    }
    for s in [
        "${", "${A", "${A:", "${A/", "${A//", "${A/x/", "\"", "'", "$", "\\", "${A#[", "${A%[!",
    ] {
        let _ = w(s);
        let _ = references(s, '\\');
        let _ = process_words(s, '`', &|_| Some("v".into()));
    }
}

#[test]
fn many_bytes_mixed_never_panic() {
    // A cheap deterministic fuzz: every 1- and 2-character combination of
    // the characters that matter, after a FROM and inside instructions.
    let alphabet = [
        "\\", "`", "\"", "'", "$", "{", "}", "[", "]", "<<", "-", "=", ",", " ", "\n", "#", "é",
        "\t", "\r",
    ];
    for a in alphabet {
        for b in alphabet {
            for prefix in [
                "FROM x\nRUN ",
                "FROM x\nCOPY ",
                "FROM x\nENV A",
                "FROM x\nRUN --mount=",
                "# escape=`\nFROM x\nLABEL ",
            ] {
                let text = format!("{prefix}{a}{b}\n{b}{a}");
                let _ = parse(&text, Path::new("f"));
                let _ = w(&format!("{a}{b}{a}"));
            }
        }
    }
}

/// Random files made of Containerfile fragments: parsing never panics, and
/// whatever parses renders to text that parses back to the same tree.
/// `CF_SEED` and `CF_ITER` widen the search when run by hand.
#[test]
fn random_fragments_parse_without_panic_and_round_trip() {
    let fragments = [
        "FROM ",
        "RUN ",
        "COPY ",
        "ADD ",
        "ENV ",
        "LABEL ",
        "ARG ",
        "ONBUILD ",
        "HEALTHCHECK ",
        "CMD ",
        "VOLUME ",
        "EXPOSE ",
        "USER ",
        "WORKDIR ",
        "SHELL ",
        "ENTRYPOINT ",
        "AS ",
        "CMD",
        "NONE",
        "a",
        "b",
        "/x",
        "=",
        "\"",
        "'",
        "$",
        "${",
        "}",
        "A",
        ":-",
        "[",
        "]",
        "\"a\"",
        ",",
        " ",
        " ",
        " ",
        "\n",
        "\n",
        "\n",
        "\\",
        "\\\n",
        "`",
        "# c\n",
        "<<EOF",
        "<<-E",
        "EOF\n",
        "\tE\n",
        "--mount=",
        "type=cache,target=/c",
        "type=bind,target=\"/a b\"",
        "--from=x",
        "--link",
        "--chown=",
        "--network=none",
        "--interval=3s",
        "--",
        "é",
        "\r\n",
        "\t",
        "[\"a\", \"b c\"]",
        "# escape=`\n",
        "\u{feff}",
        "--platform=p",
    ];
    let seed: u64 = std::env::var("CF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0b0c);
    let iterations: usize = std::env::var("CF_ITER")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut parsed = 0;
    let keywords = [
        "FROM",
        "RUN",
        "COPY",
        "ADD",
        "ARG",
        "ENV",
        "LABEL",
        "WORKDIR",
        "USER",
        "EXPOSE",
        "CMD",
        "ENTRYPOINT",
        "SHELL",
        "VOLUME",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "ONBUILD",
        "MAINTAINER",
    ];
    for n in 0..iterations {
        let mut text = String::from(if rng.bool() { "FROM img\n" } else { "" });
        if n % 2 == 0 {
            // Free-form soup.
            for _ in 0..rng.usize(1..30) {
                text.push_str(fragments[rng.usize(..fragments.len())]);
            }
        } else {
            // Lines that start with a keyword, so that more of them parse.
            for _ in 0..rng.usize(1..6) {
                text.push_str(keywords[rng.usize(..keywords.len())]);
                text.push(' ');
                for _ in 0..rng.usize(1..6) {
                    let f = fragments[rng.usize(..fragments.len())];
                    text.push_str(if f.contains('\n') && rng.bool() {
                        "x"
                    } else {
                        f
                    });
                }
                text.push('\n');
            }
        }
        let Ok(cf) = parse(&text, Path::new("f")) else {
            continue;
        };
        parsed += 1;
        let rendered = render(&cf);
        let again = parse(&rendered, Path::new("f")).unwrap_or_else(|e| {
            panic!("{e}\n--- text ---\n{text:?}\n--- rendered ---\n{rendered:?}")
        });
        assert!(
            same_ignoring_positions(&cf, &again),
            "--- text ---\n{text:?}\n--- rendered ---\n{rendered:?}\n{:#?}\n{:#?}",
            normalized(&cf),
            normalized(&again)
        );
    }
    eprintln!("parsed {parsed}");
    assert!(parsed > 100, "only {parsed} random files parsed");
}

#[test]
fn render_writes_one_line_per_instruction() {
    let text = "# syntax=docker/dockerfile:1\n# check=skip=all\nARG BASE=debian\nFROM ${BASE} AS build\nRUN --mount=type=cache,target=/root/.cache,sharing=locked \\\n    --network=none \\\n    make\nRUN <<EOF\necho hi\nEOF\nCOPY [\"a b\", \"/c/\"]\nENV LEGACY value with spaces\nHEALTHCHECK --interval=5s CMD [\"check\"]\nfrom scratch\nCOPY --from=build --link /out /\n";
    let expected = "# syntax=docker/dockerfile:1\n# check=skip=all\nARG BASE=debian\n\nFROM ${BASE} AS build\nRUN --mount=type=cache,target=/root/.cache,sharing=locked --network=none make\nRUN <<EOF\necho hi\nEOF\nCOPY [\"a b\", \"/c/\"]\nENV LEGACY value with spaces\nHEALTHCHECK --interval=5s CMD [\"check\"]\n\nFROM scratch\nCOPY --from=build --link /out /\n";
    assert_eq!(render(&parse_ok(text)), expected);
    let windows = parse_ok("# escape=`\nFROM a\nWORKDIR C:\\\n");
    assert_eq!(render(&windows), "# escape=`\n\nFROM a\nWORKDIR C:\\\n");
    // A value ending in the escape can only come from the last line; it is
    // written back with one more escape for the continuation to remove.
    let tail = parse_ok("FROM a\nWORKDIR /x\\\\\n");
    assert_eq!(
        tail.stages[0].instructions[0].kind,
        InstructionKind::Workdir("/x\\".into())
    );
    assert_eq!(render(&tail), "FROM a\nWORKDIR /x\\\\\n");
}

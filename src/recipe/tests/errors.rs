//! Each class of problem gives one exact line: file, line, table, what is wrong.

use super::{assert_fails, fail};

/// A valid head for recipes whose problem is further down (lines 1-2).
const HEAD: &str = "[image]\nbase = \"scratch\"\n";

fn with_head(rest: &str) -> String {
    format!("{HEAD}{rest}")
}

#[test]
fn the_briefs_example_message() {
    let text = r#"# A recipe
[image]
base = "scratch"

[[steps]]
run = "a"

[[steps]]
run = ["b"]

[[steps]]
run = 5
"#;
    assert_fails(
        text,
        "recipe.toml:12: step 3: 'run' must be a string or a list of strings",
    );
}

#[test]
fn unknown_key_at_top_level() {
    assert_fails(
        "name = \"x\"\n[image]\nbase = \"scratch\"\n",
        "recipe.toml:1: unknown key 'name' (expected one of: image, steps, config, runtimes, packages, ai_tools, vscode, dev_access, args)",
    );
    assert_fails(
        &with_head("[build]\njobs = 2\n"),
        "recipe.toml:3: unknown key 'build' (expected one of: image, steps, config, runtimes, packages, ai_tools, vscode, dev_access, args)",
    );
}

#[test]
fn unknown_key_in_image() {
    assert_fails(
        &with_head("bsae = \"x\"\n"),
        "recipe.toml:3: image: unknown key 'bsae' (expected one of: base, template, source_date_epoch, dev_access)",
    );
}

#[test]
fn unknown_key_in_step() {
    assert_fails(
        &with_head("\n[[steps]]\nrun = \"x\"\ncwd = \"/tmp\"\n"),
        "recipe.toml:6: step 1: unknown key 'cwd' (expected one of: name, run, env, copy, cache, timeout, secrets)",
    );
    // `cache` is for run steps only, and names absolute, normalized directories.
    assert_fails(
        &with_head("[[steps]]\ncopy = { src = \"a\", dest = \"/a\" }\ncache = [\"/c\"]\n"),
        "recipe.toml:5: step 1: 'cache' applies only to run steps",
    );
    for (bad, why) in [
        ("c", "must be an absolute path"),
        ("/a/../b", "must be a normalized path"),
        ("/", "must be a normalized path"),
        ("/run/x", "is inside /proc, /sys, /dev or /run"),
    ] {
        let (message, line) = fail(&with_head(&format!(
            "[[steps]]\nrun = \"x\"\ncache = [\"{bad}\"]\n"
        )));
        assert!(
            message.starts_with(&format!(
                "recipe.toml:5: step 1: cache directory '{bad}' {why}"
            )),
            "{message}"
        );
        assert_eq!(line, 5);
    }
}

#[test]
fn unknown_key_in_copy() {
    assert_fails(
        &with_head(
            "[[steps]]\nrun = \"a\"\n[[steps]]\nrun = \"b\"\n[[steps]]\ncopy = { src = \"a\", dest = \"/a\", chmod = \"0644\" }\n",
        ),
        "recipe.toml:8: step 3.copy: unknown key 'chmod' (expected one of: src, dest, mode, owner)",
    );
    assert_fails(
        &with_head("[[steps]]\n[steps.copy]\nsrc = \"a\"\ndest = \"/a\"\nuser = \"x\"\n"),
        "recipe.toml:7: step 1.copy: unknown key 'user' (expected one of: src, dest, mode, owner)",
    );
}

#[test]
fn unknown_key_in_config() {
    assert_fails(
        &with_head("[config]\nworkdir = \"/\"\nports = [22]\n"),
        "recipe.toml:5: config: unknown key 'ports' (expected one of: env, workdir, user, entrypoint, cmd, expose, labels)",
    );
}

#[test]
fn first_bad_key_in_file_order_is_reported() {
    // The table is sorted by name internally; the report follows the file.
    assert_fails(
        &with_head("zzz = 1\naaa = 2\n"),
        "recipe.toml:3: image: unknown key 'zzz' (expected one of: base, template, source_date_epoch, dev_access)",
    );
}

#[test]
fn wrong_types() {
    let cases: &[(&str, &str)] = &[
        (
            "image = \"scratch\"\n",
            "recipe.toml:1: 'image' must be a table with a 'base', written [image]",
        ),
        (
            "[image]\nbase = 1\n",
            "recipe.toml:2: image: 'base' must be a string",
        ),
        (
            "[image]\nbase = \"scratch\"\nsource_date_epoch = -1\n",
            "recipe.toml:3: image: 'source_date_epoch' must be a non-negative integer (seconds since 1970-01-01 UTC)",
        ),
        (
            "[image]\nbase = \"scratch\"\nsource_date_epoch = \"0\"\n",
            "recipe.toml:3: image: 'source_date_epoch' must be a non-negative integer (seconds since 1970-01-01 UTC)",
        ),
        (
            "[image]\nbase = \"scratch\"\n[steps]\nrun = \"a\"\n",
            "recipe.toml:3: 'steps' must be an array of tables, written [[steps]]",
        ),
        (
            "steps = [1]\n[image]\nbase = \"scratch\"\n",
            "recipe.toml:1: step 1: a step must be a table with 'run' or 'copy'",
        ),
        (
            "[image]\nbase = \"scratch\"\n[[steps]]\nname = 3\nrun = \"a\"\n",
            "recipe.toml:4: step 1: 'name' must be a string",
        ),
        (
            "[image]\nbase = \"scratch\"\n[[steps]]\ncopy = \"a\"\n",
            "recipe.toml:4: step 1: 'copy' must be a table with 'src' and 'dest', such as { src = \"files/motd\", dest = \"/etc/motd\" }",
        ),
        (
            "[image]\nbase = \"scratch\"\n[[steps]]\nrun = \"a\"\nenv = [\"A=1\"]\n",
            "recipe.toml:5: step 1: 'env' must be a table of string values, such as { NAME = \"value\" }",
        ),
        (
            "[image]\nbase = \"scratch\"\n[[steps]]\ncopy = { src = 1, dest = \"/a\" }\n",
            "recipe.toml:4: step 1.copy: 'src' must be a string",
        ),
        (
            "[image]\nbase = \"scratch\"\n[config]\nexpose = \"22\"\n",
            "recipe.toml:4: config: 'expose' must be a list of ports, such as [22, \"53/udp\"]",
        ),
        (
            "[image]\nbase = \"scratch\"\n[config]\nentrypoint = \"/bin/sh\"\n",
            "recipe.toml:4: config: 'entrypoint' must be a list of strings",
        ),
        (
            "[image]\nbase = \"scratch\"\n[config]\ncmd = [\n  \"-c\",\n  1,\n]\n",
            "recipe.toml:6: config: 'cmd[1]' must be a string",
        ),
        (
            "[image]\nbase = \"scratch\"\n[config]\nworkdir = true\n",
            "recipe.toml:4: config: 'workdir' must be a string",
        ),
        (
            "[image]\nbase = \"scratch\"\n[config.env]\nLANG = \"C\"\nPORT = 8080\n",
            "recipe.toml:5: config.env: 'PORT' must be a string",
        ),
        (
            "[image]\nbase = \"scratch\"\n[config]\nlabels = { team = [\"a\"] }\n",
            "recipe.toml:4: config.labels: 'team' must be a string",
        ),
        (
            "[image]\nbase = \"scratch\"\n[config]\n\n\nlabels = 1\n",
            "recipe.toml:6: config: 'labels' must be a table of string values, such as { NAME = \"value\" }",
        ),
        (
            "[image]\nbase = \"scratch\"\nconfig = []\n",
            "recipe.toml:3: image: unknown key 'config' (expected one of: base, template, source_date_epoch, dev_access)",
        ),
        (
            "config = []\n[image]\nbase = \"scratch\"\n",
            "recipe.toml:1: 'config' must be a table written [config]",
        ),
    ];
    for (text, expected) in cases {
        assert_fails(text, expected);
    }
}

#[test]
fn step_with_both_run_and_copy_or_neither() {
    assert_fails(
        &with_head("[[steps]]\nrun = \"a\"\ncopy = { src = \"a\", dest = \"/a\" }\n"),
        "recipe.toml:3: step 1: a step has either 'run' or 'copy', not both; split it into two steps",
    );
    assert_fails(
        &with_head("[[steps]]\nrun = \"a\"\n\n[[steps]]\nname = \"nothing\"\n"),
        "recipe.toml:6: step 2: a step needs 'run' (a command) or 'copy' (a file to add)",
    );
    assert_fails(
        "steps = [\n  {},\n]\n[image]\nbase = \"scratch\"\n",
        "recipe.toml:2: step 1: a step needs 'run' (a command) or 'copy' (a file to add)",
    );
}

#[test]
fn empty_or_malformed_commands() {
    assert_fails(
        &with_head("[[steps]]\nrun = []\n"),
        "recipe.toml:4: step 1: 'run' must not be an empty list; give the program and its arguments, such as [\"/bin/echo\", \"hi\"]",
    );
    assert_fails(
        &with_head("[[steps]]\nrun = [\"\", \"x\"]\n"),
        "recipe.toml:4: step 1: 'run[0]' (the program to run) must not be empty",
    );
    assert_fails(
        &with_head("[[steps]]\nrun = \"  \"\n"),
        "recipe.toml:4: step 1: 'run' must not be empty",
    );
    // A bad element is reported at its own line.
    assert_fails(
        &with_head("[[steps]]\nrun = [\n  \"echo\",\n  1,\n]\n"),
        "recipe.toml:6: step 1: 'run' must be a string or a list of strings",
    );
    assert_fails(
        &with_head("[[steps]]\nrun = \"a\\u0000b\"\n"),
        "recipe.toml:4: step 1: 'run' must not contain a NUL character",
    );
    assert_fails(
        &with_head("[[steps]]\nrun = [\"echo\", \"a\\u0000\"]\n"),
        "recipe.toml:4: step 1: 'run[1]' must not contain a NUL character",
    );
    assert_fails(
        &with_head("[[steps]]\nname = \"\"\nrun = \"a\"\n"),
        "recipe.toml:4: step 1: 'name' must not be empty",
    );
}

#[test]
fn bad_copy_fields() {
    let copy = |fields: &str| with_head(&format!("[[steps]]\ncopy = {{ {fields} }}\n"));
    let cases: &[(&str, &str)] = &[
        (
            "src = \"a\", dest = \"/a\", mode = \"999\"",
            "'mode' must be an octal string no greater than \"07777\", such as \"0644\"; got \"999\"",
        ),
        (
            "src = \"a\", dest = \"/a\", mode = \"abc\"",
            "'mode' must be an octal string no greater than \"07777\", such as \"0644\"; got \"abc\"",
        ),
        (
            "src = \"a\", dest = \"/a\", mode = \"17777\"",
            "'mode' must be an octal string no greater than \"07777\", such as \"0644\"; got \"17777\"",
        ),
        (
            "src = \"a\", dest = \"/a\", mode = 644",
            "'mode' must be an octal string no greater than \"07777\", such as \"0644\"; got 644",
        ),
        (
            "src = \"a\", dest = \"/a\", owner = \"root\"",
            "'owner' must be \"UID:GID\" with numeric ids, such as \"1000:1000\"; got \"root\"",
        ),
        (
            "src = \"a\", dest = \"/a\", owner = \"1000\"",
            "'owner' must be \"UID:GID\" with numeric ids, such as \"1000:1000\"; got \"1000\"",
        ),
        (
            "src = \"a\", dest = \"/a\", owner = \"1000:-1\"",
            "'owner' must be \"UID:GID\" with numeric ids, such as \"1000:1000\"; got \"1000:-1\"",
        ),
        (
            "src = \"a\", dest = \"etc/motd\"",
            "'dest' must be an absolute path in the image, such as \"/etc/motd\"; got \"etc/motd\"",
        ),
        ("dest = \"/a\"", "'src' is required"),
        ("src = \"a\"", "'dest' is required"),
        ("src = \"\", dest = \"/a\"", "'src' must not be empty"),
    ];
    for (fields, message) in cases {
        assert_fails(
            &copy(fields),
            &format!("recipe.toml:4: step 1.copy: {message}"),
        );
    }
    assert_fails(
        &with_head("[[steps]]\nenv = { A = \"1\" }\ncopy = { src = \"a\", dest = \"/a\" }\n"),
        "recipe.toml:4: step 1: 'env' applies only to run steps",
    );
}

#[test]
fn bad_ports() {
    let expose = |list: &str| with_head(&format!("[config]\nexpose = {list}\n"));
    let tail = "must be a port number 1-65535 or a string \"PORT/tcp\" or \"PORT/udp\"; got";
    assert_fails(
        &expose("[22, 0]"),
        &format!("recipe.toml:4: config: 'expose[1]' {tail} 0"),
    );
    assert_fails(
        &expose("[70000]"),
        &format!("recipe.toml:4: config: 'expose[0]' {tail} 70000"),
    );
    assert_fails(
        &expose("[\"80/sctp\"]"),
        &format!("recipe.toml:4: config: 'expose[0]' {tail} \"80/sctp\""),
    );
    assert_fails(
        &expose("[\n  22,\n  -1,\n]"),
        &format!("recipe.toml:6: config: 'expose[1]' {tail} -1"),
    );
    assert_fails(
        &expose("[22.5]"),
        &format!("recipe.toml:4: config: 'expose[0]' {tail} 22.5"),
    );
}

#[test]
fn bad_names_and_paths_in_config() {
    let cases: &[(&str, &str)] = &[
        (
            "[config]\nenv = { \"A=B\" = \"1\" }\n",
            "recipe.toml:4: config.env: variable name 'A=B' is invalid: it must be non-empty and contain no '='",
        ),
        (
            "[config.env]\nOK = \"1\"\n\"\" = \"1\"\n",
            "recipe.toml:5: config.env: variable name '' is invalid: it must be non-empty and contain no '='",
        ),
        (
            "[config.labels]\n\"\" = \"x\"\n",
            "recipe.toml:4: config.labels: label name must not be empty",
        ),
        (
            "[config]\nworkdir = \"root\"\n",
            "recipe.toml:4: config: 'workdir' must be an absolute path, such as \"/root\"; got \"root\"",
        ),
        (
            "[config]\nuser = \"\"\n",
            "recipe.toml:4: config: 'user' must be a user name or uid, optionally with ':group' or ':gid', such as \"1000:1000\"; got \"\"",
        ),
        (
            "[config]\nuser = \"a:b:c\"\n",
            "recipe.toml:4: config: 'user' must be a user name or uid, optionally with ':group' or ':gid', such as \"1000:1000\"; got \"a:b:c\"",
        ),
    ];
    for (rest, expected) in cases {
        assert_fails(&with_head(rest), expected);
    }
    assert_fails(
        &with_head("[[steps]]\nrun = \"a\"\nenv = { \"=x\" = \"1\" }\n"),
        "recipe.toml:5: step 1.env: variable name '=x' is invalid: it must be non-empty and contain no '='",
    );
}

#[test]
fn bad_bases() {
    let base = |b: &str| format!("\n[image]\nbase = {b}\n");
    assert_fails(
        &base("\"\""),
        "recipe.toml:3: image: 'base' must be \"scratch\", \"rootfs:PATH\", \"oci:DIR[:TAG]\", \"oci-archive:FILE[:NAME]\" or an image reference such as \"debian:bookworm\"; got \"\"",
    );
    assert_fails(
        &base("\"debian bookworm\""),
        "recipe.toml:3: image: 'base' must be \"scratch\", \"rootfs:PATH\", \"oci:DIR[:TAG]\", \"oci-archive:FILE[:NAME]\" or an image reference such as \"debian:bookworm\"; got \"debian bookworm\"",
    );
    assert_fails(
        &base("\"rootfs:\""),
        "recipe.toml:3: image: 'base' needs a path after 'rootfs:', such as \"rootfs:base.tar\"; got \"rootfs:\"",
    );
    assert_fails(
        &base("\"oci::v1\""),
        "recipe.toml:3: image: 'base' needs a directory after 'oci:', such as \"oci:layout:latest\"; got \"oci::v1\"",
    );
    assert_fails(
        &base("\"oci:dir:\""),
        "recipe.toml:3: image: 'base' has an invalid tag after 'oci:DIR:' (letters and digits joined by . _ - : @ + or /); got \"oci:dir:\"",
    );
}

#[test]
fn missing_sections_and_keys() {
    let missing_image = "recipe.toml:1: the [image] section is missing; add one with a base, such as base = \"scratch\"";
    assert_fails("", missing_image);
    assert_fails("\n\n[[steps]]\nrun = \"a\"\n", missing_image);
    assert_fails(
        "# comment\n[image]\nsource_date_epoch = 0\n",
        "recipe.toml:2: image: 'base' or 'template' is required, such as base = \"scratch\" or template = \"blank\"",
    );
}

#[test]
fn toml_syntax_errors() {
    assert_fails(
        "[image]\nbase = \"scratch\"\n[[steps]]\nrun = echo hi\n",
        "recipe.toml:4: invalid TOML: string values must be quoted, expected literal string",
    );
    assert_fails(
        "[image]\nbase = \"scratch\n",
        "recipe.toml:2: invalid TOML: invalid basic string, expected `\"`",
    );
    assert_fails(
        "[image]\nbase = \"scratch\"\n\n[image]\n",
        "recipe.toml:4: invalid TOML: duplicate key",
    );
    assert_fails(
        "[image]\nbase = \"scratch\"\nbase = \"scratch\"\n",
        "recipe.toml:3: invalid TOML: duplicate key",
    );
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "x".repeat(100);
    let (message, line) = fail(&with_head(&format!("[config]\nworkdir = \"{long}\"\n")));
    assert_eq!(line, 4);
    assert!(
        message.ends_with(&format!("; got \"{}…", "x".repeat(39))),
        "{message}"
    );
    let (message, _) = fail(&with_head("[config]\nexpose = [\n  { a = 1,\n b = 2 }]\n"));
    assert!(!message.contains('\n'), "{message}");
}

//! Writing a [`Containerfile`] back as text: one line per instruction (no
//! continuations), heredoc bodies after their instruction, the JSON form
//! where a word could not be written as a plain word. Parsing the result
//! gives the same tree except for positions and `text`.

use super::ast::{
    Command, Containerfile, Copy, Healthcheck, Instruction, InstructionKind, Pos, Run, RunMount,
    RunNetwork,
};
use super::heredoc::marker;
use super::instructions::{json_array, unquoted_eq};
use super::mounts::csv_fields;
use super::words::{raw_word_end, split_spans};

/// The text of `file`: parsing it gives `file` again, positions and
/// instruction `text` aside (see [`same_ignoring_positions`]).
pub fn render(file: &Containerfile) -> String {
    let e = file.escape;
    let mut out = String::new();
    if let Some(syntax) = &file.syntax {
        out.push_str(&format!("# syntax={syntax}\n"));
    }
    if e != '\\' {
        out.push_str(&format!("# escape={e}\n"));
    }
    for (name, value) in &file.ignored_directives {
        out.push_str(&format!("# {name}={value}\n"));
    }
    for arg in &file.global_args {
        out.push_str(&format!("ARG {}\n", arg_decl(&arg.value)));
    }
    for stage in &file.stages {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("FROM");
        if let Some(p) = &stage.platform {
            out.push_str(&format!(" --platform={p}"));
        }
        out.push(' ');
        out.push_str(&guard(&stage.base));
        if let Some(name) = &stage.name {
            out.push_str(&format!(" AS {name}"));
        }
        out.push('\n');
        for ins in &stage.instructions {
            out.push_str(&instruction(&ins.kind, e));
        }
    }
    // A parsed value can end in the escape character only when its line
    // was the last of the file (a continuation at the end): written at the
    // end again, it needs one more escape for the continuation to remove.
    if out.strip_suffix('\n').is_some_and(|body| body.ends_with(e)) {
        out.pop();
        out.push(e);
        out.push('\n');
    }
    out
}

/// `file` with every position zeroed and every instruction `text` emptied:
/// what a render round trip keeps.
pub fn normalized(file: &Containerfile) -> Containerfile {
    let mut f = file.clone();
    for arg in &mut f.global_args {
        arg.pos = Pos::default();
    }
    for stage in &mut f.stages {
        stage.pos = Pos::default();
        stage.base_pos = Pos::default();
        for Instruction { pos, text, kind } in &mut stage.instructions {
            *pos = Pos::default();
            text.clear();
            if let InstructionKind::Run(run) = kind {
                for m in &mut run.mounts {
                    m.pos = Pos::default();
                }
            }
        }
    }
    f
}

/// Whether `a` and `b` are the same file apart from positions and `text`.
pub fn same_ignoring_positions(a: &Containerfile, b: &Containerfile) -> bool {
    normalized(a) == normalized(b)
}

/// One instruction and its heredoc bodies, each line ending in `\n`.
fn instruction(kind: &InstructionKind, e: char) -> String {
    let mut line = match kind {
        InstructionKind::Arg(decls) => {
            let decls: Vec<String> = decls.iter().map(arg_decl).collect();
            format!("ARG {}", decls.join(" "))
        }
        InstructionKind::Env(pairs) => return key_values("ENV", pairs, e),
        InstructionKind::Label(pairs) => return key_values("LABEL", pairs, e),
        InstructionKind::Run(run) => return self::run(run, e),
        InstructionKind::Copy(copy) => return self::copy(copy, e),
        InstructionKind::Workdir(path) => format!("WORKDIR {}", guard(path)),
        InstructionKind::User(user) => format!("USER {}", guard(user)),
        InstructionKind::Expose(ports) => format!("EXPOSE {}", guard(&ports.join(" "))),
        InstructionKind::Cmd(c) => format!("CMD {}", command(c, true)),
        InstructionKind::Entrypoint(c) => format!("ENTRYPOINT {}", command(c, true)),
        InstructionKind::Shell(argv) => format!("SHELL {}", json(argv)),
        InstructionKind::Volume(paths) => match plain_words(paths, e) {
            Some(words) if json_array(&words).is_none() => format!("VOLUME {}", guard(&words)),
            _ => format!("VOLUME {}", json(paths)),
        },
        InstructionKind::StopSignal(s) => format!("STOPSIGNAL {}", guard(s)),
        InstructionKind::Healthcheck(Healthcheck::None) => "HEALTHCHECK NONE".to_string(),
        InstructionKind::Healthcheck(Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        }) => {
            let mut s = "HEALTHCHECK".to_string();
            for (name, value) in [
                ("interval", interval),
                ("timeout", timeout),
                ("start-period", start_period),
                ("start-interval", start_interval),
                ("retries", retries),
            ] {
                if let Some(v) = value {
                    s.push_str(&format!(" --{name}={v}"));
                }
            }
            s.push_str(&format!(" CMD {}", command(test, false)));
            s
        }
        InstructionKind::OnBuild(trigger) => format!("ONBUILD {trigger}"),
        InstructionKind::Maintainer(name) => format!("MAINTAINER {}", guard(name)),
    };
    line.push('\n');
    line
}

fn arg_decl(d: &super::ast::ArgDecl) -> String {
    match &d.default {
        Some(v) => format!("{}={v}", d.name),
        None => d.name.clone(),
    }
}

/// `ENV`/`LABEL`: `K=V` pairs when they read back as themselves (the parser
/// splits words and pairs as [`pairs_of`] does), else the legacy `K value`
/// form, one pair per line.
fn key_values(kw: &str, pairs: &[(String, String)], e: char) -> String {
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let joined = joined.join(" ");
    if pairs_of(&joined, e).as_deref() == Some(pairs) {
        return format!("{kw} {}\n", guard(&joined));
    }
    pairs
        .iter()
        .map(|(k, v)| {
            let one = format!("{k}={v}");
            if pairs_of(&one, e).as_deref() == Some(std::slice::from_ref(&(k.clone(), v.clone()))) {
                format!("{kw} {}\n", guard(&one))
            } else {
                format!("{kw} {} {v}\n", guard(k))
            }
        })
        .collect()
}

/// How the parser reads `args` in the `K=V` form: `None` when a word has
/// no `=` outside quotes.
fn pairs_of(args: &str, e: char) -> Option<Vec<(String, String)>> {
    let chars: Vec<char> = args.chars().collect();
    split_spans(&chars, e)
        .into_iter()
        .map(|(a, b)| {
            let word = &chars[a..b];
            let text: String = word.iter().collect();
            let eq = unquoted_eq(&text, e)?;
            Some((word[..eq].iter().collect(), word[eq + 1..].iter().collect()))
        })
        .collect()
}

/// A command after a keyword; `after_flags` when flags may precede it, so
/// a shell command starting with `--` needs `--` before it.
fn command(c: &Command, after_flags: bool) -> String {
    match c {
        Command::Exec(argv) => json(argv),
        Command::Shell(s) if after_flags => guard(s),
        Command::Shell(s) => s.clone(),
    }
}

/// Arguments that would read as flags (every instruction's words are
/// checked for flags first) get `-- ` before them, which ends the flags.
fn guard(s: &str) -> String {
    if s.starts_with("--") {
        format!("-- {s}")
    } else {
        s.to_string()
    }
}

/// `words` joined by spaces when the parser splits that back into `words`.
fn plain_words(words: &[String], e: char) -> Option<String> {
    let joined = words.join(" ");
    let chars: Vec<char> = joined.chars().collect();
    let split: Vec<String> = split_spans(&chars, e)
        .into_iter()
        .map(|(a, b)| chars[a..b].iter().collect())
        .collect();
    // A trailing escape character would join the next line (found by the
    // containerfile fuzz target: `VOLUME ["\\"]` rendered as `VOLUME \`).
    (split == words && !joined.ends_with(e)).then_some(joined)
}

/// The JSON form, spaced as people write it: `["a", "b"]`.
fn json(argv: &[String]) -> String {
    let items: Vec<String> = argv
        .iter()
        .map(|a| serde_json::to_string(a).unwrap_or_else(|_| "\"\"".to_string()))
        .collect();
    format!("[{}]", items.join(", "))
}

fn run(run: &Run, e: char) -> String {
    let mut s = "RUN".to_string();
    for m in &run.mounts {
        s.push(' ');
        s.push_str(&mount(&m.value, e));
    }
    if let Some(network) = run.network {
        let name = match network {
            RunNetwork::Default => "default",
            RunNetwork::None => "none",
            RunNetwork::Host => "host",
        };
        s.push_str(&format!(" --network={name}"));
    }
    s.push(' ');
    s.push_str(&command(&run.command, true));
    s.push('\n');
    push_heredocs(&mut s, &run.heredocs);
    s
}

fn push_heredocs(s: &mut String, heredocs: &[super::ast::Heredoc]) {
    for h in heredocs {
        s.push_str(&h.content);
        if !h.content.is_empty() && !h.content.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&h.name);
        s.push('\n');
    }
}

fn mount(m: &RunMount, e: char) -> String {
    type Fields = Vec<(&'static str, Option<String>)>;
    let mut fields: Fields = Vec::new();
    let opt = |fields: &mut Fields, key: &'static str, value: &Option<String>| {
        if let Some(v) = value {
            fields.push((key, Some(v.clone())));
        }
    };
    let kind = match m {
        RunMount::Bind {
            target,
            source,
            from,
            readwrite,
        } => {
            fields.push(("target", Some(target.clone())));
            opt(&mut fields, "source", source);
            opt(&mut fields, "from", from);
            if *readwrite {
                fields.push(("rw", None));
            }
            "bind"
        }
        RunMount::Cache {
            target,
            id,
            sharing,
            readonly,
            mode,
            uid,
            gid,
            from,
            source,
        } => {
            fields.push(("target", Some(target.clone())));
            opt(&mut fields, "id", id);
            opt(&mut fields, "sharing", sharing);
            if *readonly {
                fields.push(("ro", None));
            }
            opt(&mut fields, "mode", mode);
            opt(&mut fields, "uid", uid);
            opt(&mut fields, "gid", gid);
            opt(&mut fields, "from", from);
            opt(&mut fields, "source", source);
            "cache"
        }
        RunMount::Tmpfs { target, size } => {
            fields.push(("target", Some(target.clone())));
            opt(&mut fields, "size", size);
            "tmpfs"
        }
        RunMount::Secret {
            id,
            target,
            env,
            required,
            mode,
            uid,
            gid,
        } => {
            fields.push(("id", Some(id.clone())));
            opt(&mut fields, "target", target);
            opt(&mut fields, "env", env);
            if *required {
                fields.push(("required", None));
            }
            opt(&mut fields, "mode", mode);
            opt(&mut fields, "uid", uid);
            opt(&mut fields, "gid", gid);
            "secret"
        }
    };
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(key, value)| match value {
            Some(v) => csv_quote(format!("{key}={v}"), e),
            None => key.to_string(),
        })
        .collect();
    // A field ending in the escape character must not end the flag word
    // (it would escape the blank after it): such fields go first.
    let (escaped, plain): (Vec<String>, Vec<String>) =
        fields.into_iter().partition(|f| f.ends_with(e));
    let mut parts = escaped;
    parts.push(format!("type={kind}"));
    parts.extend(plain);
    format!("--mount={}", parts.join(","))
}

/// A mount field as is when it reads back as itself and leaves no quote
/// or `${` open, else quoted whole (CSV: `"` doubled). A field ending in
/// the escape stays as is: quotes would not help it (the caller places it
/// where the escape is harmless).
fn csv_quote(field: String, e: char) -> String {
    let plain = !field.starts_with('"')
        && csv_fields(&field) == [(field.clone(), 0)]
        && ends_word(&field, e);
    if plain || field.ends_with(e) {
        field
    } else {
        format!("\"{}\"", field.replace('"', "\"\""))
    }
}

/// Whether a blank after `s` ends the word: no quote or `${` left open.
fn ends_word(s: &str, e: char) -> bool {
    let chars: Vec<char> = s.chars().chain(" x".chars()).collect();
    raw_word_end(&chars, 0, e) == chars.len() - 2
}

fn copy(c: &Copy, e: char) -> String {
    let mut s = if c.add { "ADD" } else { "COPY" }.to_string();
    let mut flag = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            s.push_str(&format!(" --{name}={v}"));
        }
    };
    flag("from", &c.from);
    flag("chown", &c.chown);
    flag("chmod", &c.chmod);
    flag("checksum", &c.checksum);
    if c.link {
        s.push_str(" --link");
    }
    if c.parents {
        s.push_str(" --parents");
    }
    for x in &c.excludes {
        s.push_str(&format!(" --exclude={x}"));
    }
    if c.keep_git_dir {
        s.push_str(" --keep-git-dir");
    }
    if let Some(unpack) = c.unpack {
        s.push_str(&format!(" --unpack={unpack}"));
    }
    let words: Vec<String> = c.sources.iter().chain([&c.dest]).cloned().collect();
    let has_marker = words.iter().any(|w| marker(w, e).is_some());
    s.push(' ');
    // Heredoc markers only in the shell form, and only with their bodies.
    match plain_words(&words, e) {
        Some(plain) if has_marker != c.heredocs.is_empty() && json_array(&plain).is_none() => {
            s.push_str(&guard(&plain))
        }
        _ => s.push_str(&json(&words)),
    }
    s.push('\n');
    push_heredocs(&mut s, &c.heredocs);
    s
}

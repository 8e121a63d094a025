//! The parser's driver: directives, then one logical line per instruction,
//! its heredoc bodies, and the stages the instructions belong to.

use std::collections::HashMap;
use std::path::Path;

use super::ContainerfileError;
use super::ast::{
    ArgDecl, Containerfile, Heredoc, Instruction, InstructionKind, Located, Pos, Stage,
};
use super::heredoc::Marker;
use super::instructions::{self, Parsed};
use super::lexer::{Lexer, Logical};
use super::suggest::closest;

/// A problem at a position; the driver adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    pub pos: Pos,
    pub message: String,
}

impl Fail {
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Fail {
        Fail {
            pos,
            message: message.into(),
        }
    }
}

/// An instruction keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keyword {
    From,
    Run,
    Copy,
    Add,
    Arg,
    Env,
    Label,
    Workdir,
    User,
    Expose,
    Cmd,
    Entrypoint,
    Shell,
    Volume,
    StopSignal,
    Healthcheck,
    OnBuild,
    Maintainer,
}

/// Every keyword, in the order messages list them.
pub(crate) const KEYWORDS: [(&str, Keyword); 18] = [
    ("FROM", Keyword::From),
    ("RUN", Keyword::Run),
    ("COPY", Keyword::Copy),
    ("ADD", Keyword::Add),
    ("ARG", Keyword::Arg),
    ("ENV", Keyword::Env),
    ("LABEL", Keyword::Label),
    ("WORKDIR", Keyword::Workdir),
    ("USER", Keyword::User),
    ("EXPOSE", Keyword::Expose),
    ("CMD", Keyword::Cmd),
    ("ENTRYPOINT", Keyword::Entrypoint),
    ("SHELL", Keyword::Shell),
    ("VOLUME", Keyword::Volume),
    ("STOPSIGNAL", Keyword::StopSignal),
    ("HEALTHCHECK", Keyword::Healthcheck),
    ("ONBUILD", Keyword::OnBuild),
    ("MAINTAINER", Keyword::Maintainer),
];

impl Keyword {
    /// The keyword in capitals.
    pub(crate) fn name(self) -> &'static str {
        KEYWORDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }
}

/// Reads the keyword at the start of `line`: the keyword and the index just
/// after it. `after_instruction` adds a hint for a line that looks like the
/// rest of the previous instruction.
pub(crate) fn keyword(
    line: &Logical,
    escape: char,
    after_instruction: bool,
) -> Result<(Keyword, usize), Fail> {
    let end = line
        .chars
        .iter()
        .position(|c| c.is_whitespace())
        .unwrap_or(line.chars.len());
    let word = line.slice(0, end);
    let upper = word.to_ascii_uppercase();
    if let Some((_, k)) = KEYWORDS.iter().find(|(n, _)| *n == upper) {
        return Ok((*k, end));
    }
    let names: Vec<&str> = KEYWORDS.iter().map(|(n, _)| *n).collect();
    let list = names.join(", ");
    let shown = crate::quote::excerpt(&word);
    let message = match closest(&word, &names) {
        Some(k) => {
            format!("unknown instruction '{shown}': did you mean {k}? (instructions: {list})")
        }
        None if after_instruction => format!(
            "unknown instruction '{shown}' (instructions: {list}): if this line continues the one above, end that line with {escape}"
        ),
        None => format!("unknown instruction '{shown}' (instructions: {list})"),
    };
    Err(Fail::new(line.pos_at(0), message))
}

/// Parses a whole Containerfile. See [`super::parse`].
pub(crate) fn parse(text: &str, path: &Path) -> Result<Containerfile, ContainerfileError> {
    let file = path.display().to_string();
    let located = |f: Fail| ContainerfileError {
        file: file.clone(),
        line: f.pos.line,
        column: f.pos.column,
        message: f.message,
    };
    let mut lexer = Lexer::new(text);
    let directives = lexer
        .directives()
        .map_err(|e| located(Fail::new(e.pos, e.message)))?;
    let escape = directives.escape.unwrap_or('\\');
    let mut cf = Containerfile {
        path: path.to_path_buf(),
        escape,
        syntax: directives.syntax,
        ignored_directives: directives.ignored,
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    let mut seen_instruction = false;
    // Stage name → the line of its FROM.
    let mut stage_lines: HashMap<String, usize> = HashMap::new();
    while let Some(line) = lexer.next_logical(escape) {
        let (keyword, start) = keyword(&line, escape, seen_instruction).map_err(located)?;
        seen_instruction = true;
        let pos = line.pos_at(0);
        if cf.stages.is_empty() && !matches!(keyword, Keyword::From | Keyword::Arg) {
            return Err(located(Fail::new(
                pos,
                format!(
                    "{} before the first FROM: a Containerfile starts with FROM (ARG may come before it)",
                    keyword.name()
                ),
            )));
        }
        let (parsed, markers) =
            instructions::parse(keyword, &line, start, escape, true).map_err(located)?;
        let heredocs = read_heredocs(&mut lexer, markers).map_err(located)?;
        match parsed {
            Parsed::From {
                base,
                base_pos,
                name,
                platform,
            } => {
                let name = match name {
                    Some((name, name_pos)) => {
                        if let Some(first) = stage_lines.get(&name) {
                            return Err(located(Fail::new(
                                name_pos,
                                format!(
                                    "duplicate stage name '{name}' (line {first} names a stage so already): give each stage its own name"
                                ),
                            )));
                        }
                        stage_lines.insert(name.clone(), pos.line);
                        Some(name)
                    }
                    None => None,
                };
                cf.stages.push(Stage {
                    index: cf.stages.len(),
                    name,
                    base,
                    platform,
                    pos,
                    base_pos,
                    instructions: Vec::new(),
                });
            }
            Parsed::Arg(decls) if cf.stages.is_empty() => cf.global_args.extend(decls),
            Parsed::Arg(decls) => push(&mut cf, pos, &line, arg_kind(decls)),
            Parsed::Other(mut kind) => {
                match &mut kind {
                    InstructionKind::Run(run) => run.heredocs = heredocs,
                    InstructionKind::Copy(copy) => copy.heredocs = heredocs,
                    _ => {}
                }
                push(&mut cf, pos, &line, kind);
            }
        }
    }
    if cf.stages.is_empty() {
        return Err(located(Fail::new(
            Pos { line: 1, column: 1 },
            "no FROM instruction: a Containerfile starts with FROM, such as FROM debian:bookworm",
        )));
    }
    Ok(cf)
}

fn arg_kind(decls: Vec<Located<ArgDecl>>) -> InstructionKind {
    InstructionKind::Arg(decls.into_iter().map(|d| d.value).collect())
}

/// Adds an instruction to the current stage (the caller checked there is one).
fn push(cf: &mut Containerfile, pos: Pos, line: &Logical, kind: InstructionKind) {
    if let Some(stage) = cf.stages.last_mut() {
        stage.instructions.push(Instruction {
            pos,
            text: line.text.clone(),
            kind,
        });
    }
}

/// Reads the bodies of `markers`, in order, from the lines after the instruction.
fn read_heredocs(lexer: &mut Lexer, markers: Vec<Marker>) -> Result<Vec<Heredoc>, Fail> {
    let mut heredocs = Vec::new();
    for m in markers {
        match lexer.heredoc(&m.name, m.strip_tabs) {
            Ok(content) => heredocs.push(Heredoc {
                name: m.name,
                content,
                expand: m.expand,
                strip_tabs: m.strip_tabs,
            }),
            Err(near) => {
                let name = crate::quote::excerpt(&m.name);
                let dash = if m.strip_tabs { "-" } else { "" };
                let hint = match near {
                    Some(line) => format!(
                        " (line {line} has {name} with blanks around it: the terminator must be exactly {name})"
                    ),
                    None => String::new(),
                };
                return Err(Fail::new(
                    m.pos,
                    format!(
                        "heredoc <<{dash}{name} is not terminated: end its body with a line that is exactly {name}{hint}"
                    ),
                ));
            }
        }
    }
    Ok(heredocs)
}

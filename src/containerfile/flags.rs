//! Instruction flags (`--name=value` words right after the keyword) and the
//! flags each instruction accepts.

use super::ast::Pos;
use super::lexer::Logical;
use super::parse::Fail;
use super::words::{process_word, raw_word_end};

/// One `--name[=value]` as written.
#[derive(Clone, Debug)]
pub(crate) struct Flag {
    /// The name without `--`, as written.
    pub name: String,
    /// The raw value after `=` (quotes kept), `None` for `--name` alone.
    pub value: Option<String>,
    /// Where `--` is.
    pub pos: Pos,
    /// The index in the line where the value starts.
    pub value_at: usize,
}

/// What a flag takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--name=value`, once.
    Value,
    /// `--name=value`, any number of times.
    Repeated,
    /// `--name` or `--name=true|false`, once.
    Bool,
}

/// A flag an instruction accepts.
pub(crate) struct Spec {
    pub name: &'static str,
    pub kind: Kind,
    /// A use of it, for the "needs a value" message.
    pub example: &'static str,
}

const fn spec(name: &'static str, kind: Kind, example: &'static str) -> Spec {
    Spec {
        name,
        kind,
        example,
    }
}

pub(crate) const FROM: &[Spec] = &[spec("platform", Kind::Value, "--platform=linux/amd64")];

pub(crate) const RUN: &[Spec] = &[
    spec(
        "mount",
        Kind::Repeated,
        "--mount=type=cache,target=/root/.cache",
    ),
    spec("network", Kind::Value, "--network=none"),
    spec("security", Kind::Value, "--security=sandbox"),
];

pub(crate) const COPY: &[Spec] = &[
    spec("from", Kind::Value, "--from=build"),
    spec("chown", Kind::Value, "--chown=1000:1000"),
    spec("chmod", Kind::Value, "--chmod=755"),
    spec("link", Kind::Bool, "--link"),
    spec("parents", Kind::Bool, "--parents"),
    spec("exclude", Kind::Repeated, "--exclude=*.tmp"),
];

pub(crate) const ADD: &[Spec] = &[
    spec("from", Kind::Value, "--from=build"),
    spec("chown", Kind::Value, "--chown=1000:1000"),
    spec("chmod", Kind::Value, "--chmod=755"),
    spec("link", Kind::Bool, "--link"),
    spec("parents", Kind::Bool, "--parents"),
    spec("exclude", Kind::Repeated, "--exclude=*.tmp"),
    spec("checksum", Kind::Value, "--checksum=sha256:<hex digest>"),
    spec("keep-git-dir", Kind::Bool, "--keep-git-dir"),
    spec("unpack", Kind::Bool, "--unpack=false"),
];

pub(crate) const HEALTHCHECK: &[Spec] = &[
    spec("interval", Kind::Value, "--interval=30s"),
    spec("timeout", Kind::Value, "--timeout=10s"),
    spec("start-period", Kind::Value, "--start-period=5s"),
    spec("start-interval", Kind::Value, "--start-interval=1s"),
    spec("retries", Kind::Value, "--retries=3"),
];

/// Reads the flags starting at `i` (blanks first allowed): every word that
/// starts with `--`, up to the first that does not or up to a `--` alone.
/// Returns them and the index of the rest of the line.
pub(crate) fn extract(line: &Logical, mut i: usize, escape: char) -> (Vec<Flag>, usize) {
    let mut flags = Vec::new();
    loop {
        i = line.skip_blanks(i);
        let chars = &line.chars;
        if !(chars.get(i) == Some(&'-') && chars.get(i + 1) == Some(&'-')) {
            return (flags, i);
        }
        let end = raw_word_end(chars, i, escape);
        let word = line.slice(i + 2, end);
        let pos = line.pos_at(i);
        let start = i;
        i = end;
        if word.is_empty() {
            return (flags, line.skip_blanks(i));
        }
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (word, None),
        };
        let value_at = start + 2 + name.chars().count() + 1;
        flags.push(Flag {
            name,
            value,
            pos,
            value_at,
        });
    }
}

/// The flags, checked against what the instruction accepts.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    flags: Vec<Flag>,
}

impl Flags {
    /// Checks `flags` for `keyword` against `specs`: unknown flags,
    /// missing values, repeated single flags.
    pub(crate) fn check(keyword: &str, specs: &[Spec], flags: Vec<Flag>) -> Result<Flags, Fail> {
        for (n, flag) in flags.iter().enumerate() {
            let Some(spec) = specs.iter().find(|s| s.name == flag.name) else {
                let list = if specs.is_empty() {
                    format!("{keyword} takes no flags")
                } else {
                    let names: Vec<String> =
                        specs.iter().map(|s| format!("--{}", s.name)).collect();
                    format!("flags are {}", names.join(", "))
                };
                return Err(Fail::new(
                    flag.pos,
                    format!(
                        "unknown flag --{} for {keyword}: {list}",
                        crate::quote::excerpt(&flag.name)
                    ),
                ));
            };
            if spec.kind != Kind::Bool && flag.value.as_deref().is_none_or(str::is_empty) {
                return Err(Fail::new(
                    flag.pos,
                    format!("--{} needs a value, such as {}", spec.name, spec.example),
                ));
            }
            if spec.kind != Kind::Repeated && flags[..n].iter().any(|f| f.name == flag.name) {
                return Err(Fail::new(
                    flag.pos,
                    format!("--{} is given twice: give it once", spec.name),
                ));
            }
        }
        Ok(Flags { flags })
    }

    /// The raw value of a single-value flag.
    pub(crate) fn value(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|f| f.value.clone())
    }

    /// The flag itself, for its position.
    pub(crate) fn get(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    /// The first flag given, if any.
    pub(crate) fn first(&self) -> Option<&Flag> {
        self.flags.first()
    }

    /// Every use of a repeatable flag.
    pub(crate) fn all(&self, name: &str) -> impl Iterator<Item = &Flag> {
        self.flags.iter().filter(move |f| f.name == name)
    }

    /// A boolean flag: absent is `None`; `--name` alone is true.
    pub(crate) fn bool(&self, name: &str, escape: char) -> Result<Option<bool>, Fail> {
        let Some(flag) = self.get(name) else {
            return Ok(None);
        };
        let Some(raw) = &flag.value else {
            return Ok(Some(true));
        };
        match parse_bool(&unquote(raw, escape)) {
            Some(b) => Ok(Some(b)),
            None => Err(Fail::new(
                flag.pos,
                format!(
                    "--{name} takes true or false, not '{}'",
                    crate::quote::excerpt(raw)
                ),
            )),
        }
    }
}

/// A value with its quotes removed and nothing expanded (for values that
/// must be known when parsing, such as `--network`).
pub(crate) fn unquote(raw: &str, escape: char) -> String {
    process_word(raw, escape, &|_| None).unwrap_or_else(|_| raw.to_string())
}

/// `true`/`false` as Go's `strconv.ParseBool` reads them (Docker's flags do).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

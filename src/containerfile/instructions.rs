//! The arguments of each instruction, after its keyword.

use super::ast::{
    ArgDecl, Command, Copy, Healthcheck, InstructionKind, Located, Pos, Run, RunNetwork,
};
use super::flags::{self, Flags, unquote};
use super::heredoc::{Marker, markers};
use super::lexer::Logical;
use super::mounts::parse_mount;
use super::parse::{Fail, Keyword, keyword};
use super::words::{is_identifier, split_spans};
use crate::quote::excerpt;

/// What an instruction line is.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// `FROM`: becomes a stage, not an instruction.
    From {
        base: String,
        base_pos: Pos,
        /// `AS name`, lowercased, and where the name is.
        name: Option<(String, Pos)>,
        platform: Option<String>,
    },
    /// `ARG`, with the position of each name (global ARGs keep them).
    Arg(Vec<Located<ArgDecl>>),
    Other(InstructionKind),
}

/// A raw word of the line and where it is.
#[derive(Debug)]
struct Word {
    text: String,
    pos: Pos,
    /// The index in the line just after the word.
    end: usize,
}

/// The instruction `kw` whose arguments start at index `start` of `line`,
/// and the heredocs whose bodies follow it (when `heredocs` allows them:
/// not for an `ONBUILD` trigger).
pub(crate) fn parse(
    kw: Keyword,
    line: &Logical,
    start: usize,
    escape: char,
    heredocs: bool,
) -> Result<(Parsed, Vec<Marker>), Fail> {
    let (raw_flags, i) = flags::extract(line, start, escape);
    let specs: &[flags::Spec] = match kw {
        Keyword::From => flags::FROM,
        Keyword::Run => flags::RUN,
        Keyword::Copy => flags::COPY,
        Keyword::Add => flags::ADD,
        Keyword::Healthcheck => flags::HEALTHCHECK,
        _ => &[],
    };
    let flags = Flags::check(kw.name(), specs, raw_flags)?;
    let a = Args {
        kw,
        line,
        i,
        escape,
        flags,
    };
    let kind = match kw {
        Keyword::From => return a.from().map(|p| (p, Vec::new())),
        Keyword::Arg => return a.arg().map(|p| (Parsed::Arg(p), Vec::new())),
        Keyword::Run => return a.run(heredocs),
        Keyword::Copy | Keyword::Add => return a.copy(heredocs),
        Keyword::Env => InstructionKind::Env(a.pairs("ENV PATH=/opt/tool/bin:$PATH")?),
        Keyword::Label => InstructionKind::Label(
            a.pairs("LABEL org.opencontainers.image.source=\"https://example.com/repo\"")?,
        ),
        Keyword::Workdir => {
            InstructionKind::Workdir(a.rest_needed("a path, such as WORKDIR /app")?)
        }
        Keyword::User => {
            InstructionKind::User(a.one_word("a user[:group], such as USER 1000:1000")?)
        }
        Keyword::StopSignal => {
            InstructionKind::StopSignal(a.one_word("a signal, such as STOPSIGNAL SIGTERM")?)
        }
        Keyword::Expose => {
            let words = a.words();
            if words.is_empty() {
                return Err(a.missing("a port, such as EXPOSE 8080 or EXPOSE 53/udp"));
            }
            InstructionKind::Expose(words.into_iter().map(|w| w.text).collect())
        }
        Keyword::Cmd => InstructionKind::Cmd(a.command(true, "CMD [\"python\", \"app.py\"]")?),
        Keyword::Entrypoint => {
            InstructionKind::Entrypoint(a.command(true, "ENTRYPOINT [\"/usr/bin/tini\", \"--\"]")?)
        }
        Keyword::Shell => a.shell()?,
        Keyword::Volume => a.volume()?,
        Keyword::Healthcheck => InstructionKind::Healthcheck(a.healthcheck()?),
        Keyword::OnBuild => a.onbuild()?,
        Keyword::Maintainer => InstructionKind::Maintainer(
            a.rest_needed("a name, such as MAINTAINER Jane Doe <jane@example.com>")?,
        ),
    };
    Ok((Parsed::Other(kind), Vec::new()))
}

/// One instruction's arguments being read.
struct Args<'a> {
    kw: Keyword,
    line: &'a Logical,
    /// Where the arguments start, after the flags.
    i: usize,
    escape: char,
    flags: Flags,
}

impl Args<'_> {
    /// Where the keyword is.
    fn kw_pos(&self) -> Pos {
        self.line.pos_at(0)
    }

    /// "KW needs WHAT", at the keyword.
    fn missing(&self, what: &str) -> Fail {
        Fail::new(self.kw_pos(), format!("{} needs {what}", self.kw.name()))
    }

    /// The raw words of the arguments.
    fn words(&self) -> Vec<Word> {
        self.words_from(self.i)
    }

    fn words_from(&self, from: usize) -> Vec<Word> {
        let from = from.min(self.line.chars.len());
        split_spans(&self.line.chars[from..], self.escape)
            .into_iter()
            .map(|(a, b)| Word {
                text: self.line.slice(from + a, from + b),
                pos: self.line.pos_at(from + a),
                end: from + b,
            })
            .collect()
    }

    /// The arguments from `from` on as one string (trimmed).
    fn rest_from(&self, from: usize) -> String {
        let from = self.line.skip_blanks(from);
        self.line.slice(from, self.line.chars.len())
    }

    fn rest_needed(&self, what: &str) -> Result<String, Fail> {
        let rest = self.rest_from(self.i);
        if rest.is_empty() {
            return Err(self.missing(what));
        }
        Ok(rest)
    }

    /// Exactly one word.
    fn one_word(&self, what: &str) -> Result<String, Fail> {
        let mut words = self.words();
        match words.len() {
            0 => Err(self.missing(what)),
            1 => Ok(words.remove(0).text),
            _ => Err(Fail::new(
                words[1].pos,
                format!(
                    "{} takes {what}: remove '{}'",
                    self.kw.name(),
                    excerpt(&words[1].text)
                ),
            )),
        }
    }

    /// The shell or exec form from `from` on; `None` when there is nothing.
    fn command_from(&self, from: usize) -> Option<Command> {
        let rest = self.rest_from(from);
        if rest.is_empty() {
            return None;
        }
        Some(match json_array(&rest) {
            Some(v) => Command::Exec(v),
            None => Command::Shell(rest),
        })
    }

    /// The command of `CMD`/`ENTRYPOINT`/`RUN`: `[]` is allowed when `empty_ok`.
    fn command(&self, empty_ok: bool, example: &str) -> Result<Command, Fail> {
        match self.command_from(self.i) {
            Some(Command::Exec(v)) if v.is_empty() && !empty_ok => {
                Err(self.missing(&format!("a command, such as {example}")))
            }
            Some(c) => Ok(c),
            None => Err(self.missing(&format!("a command, such as {example}"))),
        }
    }

    fn from(&self) -> Result<Parsed, Fail> {
        let example = "FROM golang:1.22 AS build";
        let words = self.words();
        let is_as = |w: &Word| w.text.eq_ignore_ascii_case("as");
        let name = match words.len() {
            0 => return Err(self.missing("an image, such as FROM debian:bookworm")),
            1 => None,
            2 if is_as(&words[1]) => {
                return Err(Fail::new(
                    words[1].pos,
                    format!("AS needs a stage name, such as {example}"),
                ));
            }
            2 | 3 if !is_as(&words[1]) => {
                return Err(Fail::new(
                    words[1].pos,
                    format!(
                        "FROM takes an image and an optional AS name: expected AS, found '{}' (such as {example})",
                        excerpt(&words[1].text)
                    ),
                ));
            }
            3 => {
                let name = words[2].text.to_lowercase();
                if !valid_stage_name(&name) {
                    return Err(Fail::new(
                        words[2].pos,
                        format!(
                            "invalid stage name '{}': a name starts with a letter and has only letters, digits, '-', '_' and '.'",
                            excerpt(&words[2].text)
                        ),
                    ));
                }
                Some((name, words[2].pos))
            }
            _ => {
                return Err(Fail::new(
                    words[3].pos,
                    format!(
                        "FROM takes an image and an optional AS name, such as {example}: remove '{}'",
                        excerpt(&words[3].text)
                    ),
                ));
            }
        };
        Ok(Parsed::From {
            base: words[0].text.clone(),
            base_pos: words[0].pos,
            name,
            platform: self.flags.value("platform"),
        })
    }

    fn arg(&self) -> Result<Vec<Located<ArgDecl>>, Fail> {
        let words = self.words();
        if words.is_empty() {
            return Err(self.missing("a name, such as ARG VERSION=1.0"));
        }
        words
            .into_iter()
            .map(|w| {
                let (name, default) = match w.text.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w.text.clone(), None),
                };
                if !is_identifier(&name) {
                    return Err(Fail::new(
                        w.pos,
                        format!(
                            "invalid ARG name '{}': a name has only letters, digits and '_' and does not start with a digit",
                            excerpt(&name)
                        ),
                    ));
                }
                Ok(Located {
                    pos: w.pos,
                    value: ArgDecl { name, default },
                })
            })
            .collect()
    }

    /// `ENV`/`LABEL`: `K=V ...`, or the legacy `K value with spaces`.
    fn pairs(&self, example: &str) -> Result<Vec<(String, String)>, Fail> {
        let kw = self.kw.name();
        let words = self.words();
        let Some(first) = words.first() else {
            return Err(self.missing(&format!("NAME=value, such as {example}")));
        };
        if unquoted_eq(&first.text, self.escape).is_none() {
            let value = self.rest_from(first.end);
            if value.is_empty() {
                return Err(Fail::new(
                    first.pos,
                    format!(
                        "{kw} {} needs a value: write {kw} NAME=value (NAME= for an empty value)",
                        excerpt(&first.text)
                    ),
                ));
            }
            return Ok(vec![(first.text.clone(), value)]);
        }
        words
            .iter()
            .map(|w| {
                let Some(eq) = unquoted_eq(&w.text, self.escape) else {
                    return Err(Fail::new(
                        w.pos,
                        format!(
                            "'{}' is not NAME=value: {kw} takes NAME=value pairs; quote a value that has blanks, such as {kw} A=\"x y\"",
                            excerpt(&w.text)
                        ),
                    ));
                };
                let chars: Vec<char> = w.text.chars().collect();
                let name: String = chars[..eq].iter().collect();
                if name.is_empty() {
                    return Err(Fail::new(
                        w.pos,
                        format!(
                            "'{}' has no name before '=': write {kw} NAME=value",
                            excerpt(&w.text)
                        ),
                    ));
                }
                Ok((name, chars[eq + 1..].iter().collect()))
            })
            .collect()
    }

    fn run(&self, heredocs: bool) -> Result<(Parsed, Vec<Marker>), Fail> {
        let mut mounts = Vec::new();
        for f in self.flags.all("mount") {
            let raw = f.value.as_deref().unwrap_or_default();
            mounts.push(Located {
                pos: f.pos,
                value: parse_mount(
                    raw,
                    f.pos,
                    &|offset| self.line.pos_at(f.value_at + offset),
                    self.escape,
                )?,
            });
        }
        let network = match self.flags.get("network") {
            None => None,
            Some(f) => {
                let raw = f.value.as_deref().unwrap_or_default();
                Some(
                    match unquote(raw, self.escape).to_ascii_lowercase().as_str() {
                        "default" => RunNetwork::Default,
                        "none" => RunNetwork::None,
                        "host" => RunNetwork::Host,
                        _ => {
                            return Err(Fail::new(
                                f.pos,
                                format!(
                                    "unknown network '{}' for RUN --network: use default, none or host",
                                    excerpt(raw)
                                ),
                            ));
                        }
                    },
                )
            }
        };
        if let Some(f) = self.flags.get("security") {
            let raw = f.value.as_deref().unwrap_or_default();
            match unquote(raw, self.escape).to_ascii_lowercase().as_str() {
                "sandbox" => {}
                "insecure" => {
                    return Err(Fail::new(
                        f.pos,
                        "RUN --security=insecure is not supported: boxwright builds rootless and cannot grant extra privileges; remove the flag and do the privileged step outside the build",
                    ));
                }
                _ => {
                    return Err(Fail::new(
                        f.pos,
                        format!(
                            "unknown value '{}' for RUN --security: only sandbox (the default) is supported",
                            excerpt(raw)
                        ),
                    ));
                }
            }
        }
        let command = self.command(false, "RUN make install")?;
        let markers = match &command {
            Command::Shell(_) if heredocs => markers(self.line, self.i, self.escape),
            _ => Vec::new(),
        };
        let run = Run {
            command,
            mounts,
            network,
            heredocs: Vec::new(),
        };
        Ok((Parsed::Other(InstructionKind::Run(run)), markers))
    }

    fn copy(&self, heredocs: bool) -> Result<(Parsed, Vec<Marker>), Fail> {
        let add = self.kw == Keyword::Add;
        let rest = self.rest_from(self.i);
        let (mut words, markers) = match json_array(&rest) {
            Some(v) => (v, Vec::new()),
            None => {
                let words = self.words().into_iter().map(|w| w.text).collect();
                let found = if heredocs {
                    markers(self.line, self.i, self.escape)
                } else {
                    Vec::new()
                };
                (words, found)
            }
        };
        if words.len() < 2 {
            let example = if add {
                "ADD https://example.com/tool.tar.gz /opt/"
            } else {
                "COPY app.py /app/"
            };
            return Err(self.missing(&format!(
                "at least a source and a destination, such as {example}"
            )));
        }
        let dest = words.pop().unwrap_or_default();
        let f = &self.flags;
        let copy = Copy {
            add,
            sources: words,
            dest,
            from: f.value("from"),
            chown: f.value("chown"),
            chmod: f.value("chmod"),
            link: f.bool("link", self.escape)?.unwrap_or(false),
            parents: f.bool("parents", self.escape)?.unwrap_or(false),
            excludes: f.all("exclude").filter_map(|x| x.value.clone()).collect(),
            checksum: f.value("checksum"),
            keep_git_dir: f.bool("keep-git-dir", self.escape)?.unwrap_or(false),
            unpack: f.bool("unpack", self.escape)?,
            heredocs: Vec::new(),
        };
        Ok((Parsed::Other(InstructionKind::Copy(copy)), markers))
    }

    fn shell(&self) -> Result<InstructionKind, Fail> {
        let example = "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]";
        match json_array(&self.rest_from(self.i)) {
            Some(v) if !v.is_empty() => Ok(InstructionKind::Shell(v)),
            Some(_) => Err(self.missing(&format!("a shell, such as {example}"))),
            None if self.rest_from(self.i).is_empty() => {
                Err(self.missing(&format!("a shell, such as {example}")))
            }
            None => Err(Fail::new(
                self.line.pos_at(self.line.skip_blanks(self.i)),
                format!("SHELL needs the JSON form, such as {example}"),
            )),
        }
    }

    fn volume(&self) -> Result<InstructionKind, Fail> {
        let paths = match json_array(&self.rest_from(self.i)) {
            Some(v) => {
                if v.iter().any(|p| p.trim().is_empty()) {
                    return Err(Fail::new(
                        self.line.pos_at(self.line.skip_blanks(self.i)),
                        "VOLUME paths cannot be empty: remove the \"\"",
                    ));
                }
                v
            }
            None => self.words().into_iter().map(|w| w.text).collect(),
        };
        if paths.is_empty() {
            return Err(self.missing("a path, such as VOLUME /data"));
        }
        Ok(InstructionKind::Volume(paths))
    }

    fn healthcheck(&self) -> Result<Healthcheck, Fail> {
        let example = "HEALTHCHECK --interval=30s CMD curl -f http://localhost/ || exit 1";
        let words = self.words();
        let Some(first) = words.first() else {
            return Err(self.missing(&format!("NONE or CMD, such as {example}")));
        };
        if first.text.eq_ignore_ascii_case("none") {
            if let Some(f) = self.flags.first() {
                return Err(Fail::new(
                    f.pos,
                    format!(
                        "HEALTHCHECK NONE takes no options: remove --{}",
                        excerpt(&f.name)
                    ),
                ));
            }
            if let Some(extra) = words.get(1) {
                return Err(Fail::new(
                    extra.pos,
                    format!(
                        "HEALTHCHECK NONE takes no arguments: remove '{}'",
                        excerpt(&extra.text)
                    ),
                ));
            }
            return Ok(Healthcheck::None);
        }
        if !first.text.eq_ignore_ascii_case("cmd") {
            return Err(Fail::new(
                first.pos,
                format!("HEALTHCHECK needs CMD before the command, such as {example}"),
            ));
        }
        let test = match self.command_from(first.end) {
            Some(Command::Exec(v)) if v.is_empty() => None,
            other => other,
        };
        let Some(test) = test else {
            return Err(Fail::new(
                first.pos,
                format!("HEALTHCHECK CMD needs a command, such as {example}"),
            ));
        };
        let duration = |name: &str| -> Result<Option<String>, Fail> {
            let Some(f) = self.flags.get(name) else {
                return Ok(None);
            };
            let raw = f.value.clone().unwrap_or_default();
            if !valid_duration(&raw) {
                return Err(Fail::new(
                    f.pos,
                    format!(
                        "--{name} takes a duration such as 30s, 1m30s or 500ms, not '{}'",
                        excerpt(&raw)
                    ),
                ));
            }
            Ok(Some(raw))
        };
        let retries = match self.flags.get("retries") {
            None => None,
            Some(f) => {
                let raw = f.value.clone().unwrap_or_default();
                if raw.is_empty() || !raw.chars().all(|c| c.is_ascii_digit()) || raw.len() > 9 {
                    return Err(Fail::new(
                        f.pos,
                        format!(
                            "--retries takes a whole number, such as --retries=3, not '{}'",
                            excerpt(&raw)
                        ),
                    ));
                }
                Some(raw)
            }
        };
        Ok(Healthcheck::Check {
            test,
            interval: duration("interval")?,
            timeout: duration("timeout")?,
            start_period: duration("start-period")?,
            start_interval: duration("start-interval")?,
            retries,
        })
    }

    fn onbuild(&self) -> Result<InstructionKind, Fail> {
        let at = self.line.skip_blanks(self.i);
        if at >= self.line.chars.len() {
            return Err(self.missing("an instruction, such as ONBUILD COPY . /app"));
        }
        let trigger = self.line.tail(at);
        let (kw, start) = keyword(&trigger, self.escape, false)?;
        let refuse = match kw {
            Keyword::OnBuild => {
                Some("ONBUILD ONBUILD is not allowed: a trigger cannot be another ONBUILD")
            }
            Keyword::From => Some("ONBUILD FROM is not allowed: a trigger cannot start a stage"),
            Keyword::Maintainer => Some(
                "ONBUILD MAINTAINER is not allowed: use ONBUILD LABEL org.opencontainers.image.authors=... instead",
            ),
            _ => None,
        };
        if let Some(message) = refuse {
            return Err(Fail::new(trigger.pos_at(0), message));
        }
        // Checked now so a broken trigger is reported here, not in the child image.
        parse(kw, &trigger, start, self.escape, false)?;
        Ok(InstructionKind::OnBuild(trigger.chars.iter().collect()))
    }
}

/// The exec (JSON) form: a JSON array of strings, or `None` (then the text
/// is the shell form, even when it starts with `[`, as in Docker).
pub(crate) fn json_array(text: &str) -> Option<Vec<String>> {
    if !text.starts_with('[') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// The character index of the first `=` outside quotes and not escaped.
pub(crate) fn unquoted_eq(word: &str, escape: char) -> Option<usize> {
    let mut quote = None;
    let mut chars = word.chars().enumerate();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == escape => {
                chars.next();
            }
            Some(_) => {}
            None if c == escape => {
                chars.next();
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '=' => return Some(i),
            None => {}
        }
    }
    None
}

/// `[a-z][a-z0-9-_.]*`, as Docker requires of (lowercased) stage names.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// A Go duration (`300ms`, `1.5s`, `1m30s`, `0`): what Docker accepts.
pub(crate) fn valid_duration(s: &str) -> bool {
    if s == "0" {
        return true;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    if chars.is_empty() {
        return false;
    }
    while i < chars.len() {
        let start = i;
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        let mut digits = i - start;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let frac = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            digits += i - frac;
        }
        if digits == 0 {
            return false;
        }
        let unit_start = i;
        while chars.get(i).is_some_and(|c| c.is_alphabetic()) {
            i += 1;
        }
        let unit: String = chars[unit_start..i].iter().collect();
        if !matches!(
            unit.as_str(),
            "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h"
        ) {
            return false;
        }
    }
    true
}

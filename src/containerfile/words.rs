//! Shell-word processing as Docker does it for Containerfile words: quote
//! removal (`'single'` literal, `"double"` with expansion inside), the
//! escape character, and `$VAR` / `${VAR...}` expansion.
//!
//! This is not a shell: there is no command substitution, globbing of file
//! names or arithmetic. An unset variable expands to the empty string, as in
//! Docker. The parser keeps words raw; the lowering calls these functions once
//! build arguments and the environment are known.

use super::glob::Pattern;

/// A problem in a word, with the character offset (in the raw word) where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WordError {
    /// 0-based character offset in the raw word: the quote, `$` or escape at fault.
    pub offset: usize,
    /// What is wrong and what to do, on one line.
    pub message: String,
}

/// How deep `${A:-${B:-${C}}}` may nest: deeper is an error rather than a
/// stack overflow on hostile input.
const MAX_DEPTH: usize = 32;

/// Processes one word: quotes removed, escapes applied, variables expanded.
/// Whitespace is kept as it is (the word is not split).
///
/// `lookup` returns a variable's value, or `None` when it is unset.
pub fn process_word(
    raw: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let mut engine = Engine::new(raw, escape, lookup, false);
    let mut words = Words::default();
    engine.run(&[], false, &mut words).map(|(s, _)| s)
}

/// Splits `raw` into words on whitespace that is neither quoted nor escaped,
/// then processes each word as [`process_word`] does. As in Docker, the value
/// of an unquoted `$VAR` is split on its whitespace too, and empty words are
/// dropped (`""` alone yields no word).
pub fn process_words(
    raw: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, WordError> {
    let mut engine = Engine::new(raw, escape, lookup, false);
    let mut words = Words::default();
    engine.run(&[], false, &mut words)?;
    Ok(words.finish())
}

/// The variables `raw` refers to (`$NAME`, `${NAME...}`, also inside
/// defaults such as `${A:-$B}`), each with the character offset of its `$`,
/// in order. Single-quoted and escaped `$` are not references; special
/// parameters (`$1`, `$$`, `$@`) are left out. Never fails: after a syntax
/// error, the references before it are returned.
pub fn references(raw: &str, escape: char) -> Vec<(String, usize)> {
    let unset = |_: &str| None;
    let mut engine = Engine::new(raw, escape, &unset, true);
    let mut words = Words::default();
    let _ = engine.run(&[], false, &mut words);
    let mut refs = engine.refs;
    refs.sort_by_key(|(_, offset)| *offset);
    refs
}

/// Splits raw text into raw words (quotes and escapes kept), on whitespace
/// that is neither quoted nor escaped: the spans `(start, end)` of `chars`.
pub(crate) fn split_spans(chars: &[char], escape: char) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let end = raw_word_end(chars, i, escape);
        spans.push((i, end));
        i = end;
    }
    spans
}

/// The end of the raw word starting at `start`: the first whitespace outside
/// quotes and `${...}` and not escaped, or the end. An unterminated quote or
/// `${` runs to the end (processing the word reports it).
///
/// Docker splits `ENV A=${X:-a b}` inside the braces and then fails on the
/// pieces; keeping `${...}` whole, as a shell does, makes such words work.
pub(crate) fn raw_word_end(chars: &[char], start: usize, escape: char) -> usize {
    let n = chars.len();
    let mut i = start;
    // How many `${` are open.
    let mut braces = 0usize;
    while i < n {
        let c = chars[i];
        if c.is_whitespace() && braces == 0 {
            break;
        }
        if c == escape {
            i += 2;
        } else if c == '\'' {
            i += 1;
            while i < n && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == '"' {
            i += 1;
            while i < n && chars[i] != '"' {
                if chars[i] == escape {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '$' && chars.get(i + 1) == Some(&'{') {
            braces += 1;
            i += 2;
        } else {
            if c == '}' && braces > 0 {
                braces -= 1;
            }
            i += 1;
        }
    }
    i.min(n)
}

/// Words being assembled by [`process_words`]: characters from quotes and
/// escapes stay in the current word; plain whitespace ends it.
#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
}

impl Words {
    /// A character that splits on whitespace (unquoted text, `$VAR` values).
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
            }
        } else {
            self.word.push(c);
        }
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    /// A character kept as is (quoted or escaped).
    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
    }

    fn add_raw_str(&mut self, s: &str) {
        self.word.push_str(s);
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

/// The expansion state over one raw word.
struct Engine<'a> {
    chars: Vec<char>,
    i: usize,
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// For [`references`]: `${A:?}` is not an error, names are recorded.
    collecting: bool,
    refs: Vec<(String, usize)>,
    depth: usize,
}

impl<'a> Engine<'a> {
    fn new(
        raw: &str,
        escape: char,
        lookup: &'a dyn Fn(&str) -> Option<String>,
        collecting: bool,
    ) -> Engine<'a> {
        Engine {
            chars: raw.chars().collect(),
            i: 0,
            escape,
            lookup,
            collecting,
            refs: Vec::new(),
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn error<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, WordError> {
        Err(WordError {
            offset,
            message: message.into(),
        })
    }

    /// Processes until one of `stop` (consumed) or the end. Returns the text
    /// and the stop character met (`None` at the end). With a non-empty
    /// `stop`, the end is an error reported by the caller. `raw_escapes`
    /// keeps escapes in the result (patterns need them to quote `*`).
    fn run(
        &mut self,
        stop: &[char],
        raw_escapes: bool,
        words: &mut Words,
    ) -> Result<(String, Option<char>), WordError> {
        let mut result = String::new();
        while let Some(c) = self.peek() {
            if stop.contains(&c) {
                self.i += 1;
                return Ok((result, Some(c)));
            }
            match c {
                '\'' => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_str(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    result.push_str(&s);
                    words.add_raw_str(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_str(&s);
                }
                c if c == self.escape => {
                    self.i += 1;
                    if raw_escapes {
                        result.push(c);
                        words.add_raw_char(c);
                    }
                    // A lone escape at the end is dropped, as in Docker.
                    if let Some(next) = self.peek() {
                        self.i += 1;
                        result.push(next);
                        words.add_raw_char(next);
                    }
                }
                c => {
                    self.i += 1;
                    result.push(c);
                    words.add_char(c);
                }
            }
        }
        Ok((result, None))
    }

    fn single_quote(&mut self) -> Result<String, WordError> {
        let open = self.i;
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => {
                    return self.error(open, "unterminated single quote: add the closing '");
                }
                Some('\'') => {
                    self.i += 1;
                    return Ok(s);
                }
                Some(c) => {
                    self.i += 1;
                    s.push(c);
                }
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, WordError> {
        let open = self.i;
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => {
                    return self.error(open, "unterminated double quote: add the closing \"");
                }
                Some('"') => {
                    self.i += 1;
                    return Ok(s);
                }
                Some('$') => s.push_str(&self.dollar()?),
                Some(c) => {
                    self.i += 1;
                    if c == self.escape {
                        // Only `"`, `$` and the escape itself can be escaped
                        // inside double quotes; other escapes stay as written.
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.i += 1;
                                s.push(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    s.push(c);
                }
            }
        }
    }

    /// Reads a name after `$` or `${`: letters, digits and `_`; or a run of
    /// digits (`$1`); or one special parameter (`$$`, `$@`, ...).
    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.i += 1;
                }
                return name;
            }
            if matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.i += 1;
                name.push(c);
                return name;
            }
        }
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.i += 1;
        }
        name
    }

    /// Records a reference for [`references`] (as soon as the name is read,
    /// so that an unterminated `${NAME` still counts).
    fn note(&mut self, name: &str, offset: usize) {
        if self.collecting && is_identifier(name) {
            self.refs.push((name.to_string(), offset));
        }
    }

    /// The value of `name`.
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn dollar(&mut self) -> Result<String, WordError> {
        let start = self.i;
        self.i += 1; // `$`
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            self.note(&name, start);
            return Ok(self.get(&name).unwrap_or_default());
        }
        self.i += 1; // `{`
        let unterminated = "unterminated ${: add the closing }";
        let bad = "bad substitution: use ${NAME}, ${NAME:-default}, ${NAME:+alternative}, \
                   ${NAME:?message}, ${NAME#pattern}, ${NAME%pattern} or ${NAME/pattern/replacement}";
        match self.peek() {
            None => return self.error(start, unterminated),
            Some('{') | Some('}') | Some(':') => return self.error(start, bad),
            Some(_) => {}
        }
        let name = self.name();
        if name.is_empty() {
            return self.error(start, bad);
        }
        self.note(&name, start);
        let Some(op) = self.peek() else {
            return self.error(start, unterminated);
        };
        self.i += 1;
        match op {
            '}' => Ok(self.get(&name).unwrap_or_default()),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let (colon, op) = if op == ':' {
                    match self.peek() {
                        None => return self.error(start, unterminated),
                        Some(o @ ('+' | '-' | '?')) => {
                            self.i += 1;
                            (true, o)
                        }
                        Some(o) => {
                            return self.error(
                                start,
                                format!(
                                    "unsupported modifier ':{o}' in ${{{name}:{o}...}}: use :- :+ or :?"
                                ),
                            );
                        }
                    }
                } else {
                    (false, op)
                };
                let word = self.nested(&['}'], op == '#' || op == '%', start)?.0;
                let value = self.get(&name);
                // With `:`, an empty value counts as unset.
                let unset = match &value {
                    None => true,
                    Some(v) => colon && v.is_empty(),
                };
                match op {
                    '-' => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => {
                        if !unset || self.collecting {
                            return Ok(value.unwrap_or_default());
                        }
                        let message = if !word.is_empty() {
                            word
                        } else if value.is_none() {
                            "is not allowed to be unset".to_string()
                        } else {
                            "is not allowed to be empty".to_string()
                        };
                        self.error(start, format!("{name}: {message}"))
                    }
                    _ => {
                        // `#`/`%` remove the shortest match; `##`/`%%` the longest.
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let value = value.unwrap_or_default();
                        let pattern = Pattern::new(pattern, self.escape);
                        Ok(if op == '#' {
                            trim_prefix(&value, &pattern, greedy)
                        } else {
                            trim_suffix(&value, &pattern, greedy)
                        })
                    }
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.i += 1;
                }
                let (pattern, stopped) = self.nested(&['/', '}'], true, start)?;
                let replacement = if stopped == Some('/') {
                    self.nested(&['}'], false, start)?.0
                } else {
                    String::new()
                };
                let value = self.get(&name).unwrap_or_default();
                let pattern = Pattern::new(&pattern, self.escape);
                Ok(replace(&value, &pattern, &replacement, all))
            }
            _ => self.error(start, bad),
        }
    }

    /// Processes a word inside `${...}` up to one of `stop`, one level deeper.
    fn nested(
        &mut self,
        stop: &[char],
        raw_escapes: bool,
        start: usize,
    ) -> Result<(String, Option<char>), WordError> {
        if self.depth >= MAX_DEPTH {
            return self.error(
                start,
                format!("substitutions nested more than {MAX_DEPTH} deep: simplify the word"),
            );
        }
        self.depth += 1;
        let mut ignored = Words::default();
        let result = self.run(stop, raw_escapes, &mut ignored);
        self.depth -= 1;
        let (text, stopped) = result?;
        if stopped.is_none() {
            return self.error(start, "unterminated ${: add the closing }");
        }
        Ok((text, stopped))
    }
}

/// Whether `name` is a variable name that can be declared (`ARG`, `ENV`).
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn trim_prefix(value: &str, pattern: &Pattern, greedy: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let lengths = pattern.prefix_lengths(&chars);
    let k = if greedy {
        lengths.last()
    } else {
        lengths.first()
    };
    match k {
        Some(&k) => chars[k..].iter().collect(),
        None => value.to_string(),
    }
}

fn trim_suffix(value: &str, pattern: &Pattern, greedy: bool) -> String {
    // Suffixes of the value are prefixes of it reversed, matched by the
    // pattern reversed.
    let reversed: Vec<char> = value.chars().rev().collect();
    let lengths = pattern.reversed().prefix_lengths(&reversed);
    let k = if greedy {
        lengths.last()
    } else {
        lengths.first()
    };
    match k {
        Some(&k) => reversed[k..].iter().rev().collect(),
        None => value.to_string(),
    }
}

/// `${VAR/pat/repl}` (first match) and `${VAR//pat/repl}` (every match):
/// the leftmost, then longest, non-empty match, as a regular expression would.
fn replace(value: &str, pattern: &Pattern, replacement: &str, all: bool) -> String {
    if pattern.is_empty() {
        return value.to_string();
    }
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i < n {
        if !replaced || all {
            let longest = pattern.prefix_lengths(&chars[i..]).last().copied();
            if let Some(len) = longest.filter(|&len| len > 0) {
                out.push_str(replacement);
                i += len;
                replaced = true;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

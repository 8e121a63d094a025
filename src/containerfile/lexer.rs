//! From text to logical lines: the byte-order mark, CRLF, parser directives,
//! comments, line continuations, and heredoc bodies (read on demand, since
//! only the parsed instruction knows it has any).

use super::ast::Pos;

/// The parser directives at the top of the file.
#[derive(Debug, Default)]
pub(crate) struct Directives {
    /// `# escape=`: `None` when absent.
    pub escape: Option<char>,
    /// `# syntax=`.
    pub syntax: Option<String>,
    /// `# check=` and any other directive that has no effect, in order.
    pub ignored: Vec<(String, String)>,
}

/// A problem found while lexing.
#[derive(Debug)]
pub(crate) struct LexError {
    pub pos: Pos,
    pub message: String,
}

/// One instruction's text with continuations joined, and where each of its
/// characters is in the file.
#[derive(Clone, Debug)]
pub(crate) struct Logical {
    /// Joined as Docker joins them: escape (and the blanks after it) and the
    /// line break removed, the next line's leading blanks kept; comment and
    /// empty lines inside the continuation left out; trimmed.
    pub chars: Vec<char>,
    /// `pos[i]` is where `chars[i]` is.
    pub pos: Vec<Pos>,
    /// Each line trimmed, its continuation escape removed, joined by a space.
    pub text: String,
    /// Just past the last character (for "missing argument" errors).
    pub end: Pos,
}

impl Logical {
    /// Where character `i` is (the end for an index past it).
    pub(crate) fn pos_at(&self, i: usize) -> Pos {
        self.pos.get(i).copied().unwrap_or(self.end)
    }

    /// The characters `a..b` as a string.
    pub(crate) fn slice(&self, a: usize, b: usize) -> String {
        let b = b.min(self.chars.len());
        self.chars[a.min(b)..b].iter().collect()
    }

    /// The index of the first non-blank character at or after `i`.
    pub(crate) fn skip_blanks(&self, mut i: usize) -> usize {
        while i < self.chars.len() && self.chars[i].is_whitespace() {
            i += 1;
        }
        i
    }

    /// The line from `i` on, as a logical line of its own (an `ONBUILD` trigger).
    pub(crate) fn tail(&self, i: usize) -> Logical {
        let i = i.min(self.chars.len());
        let chars = self.chars[i..].to_vec();
        Logical {
            text: chars.iter().collect(),
            chars,
            pos: self.pos[i..].to_vec(),
            end: self.end,
        }
    }
}

/// The physical lines of a file and a cursor over them.
pub(crate) struct Lexer<'a> {
    /// Lines without their `\n` (and `\r`s before it); the first without a BOM.
    lines: Vec<&'a str>,
    /// The index of the next line to read.
    next: usize,
}

/// The recognized directive names. Others are ordinary comments.
const DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Lexer<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines: Vec<&str> = text
            .split('\n')
            // Every CR at the end: a stray one would otherwise survive into
            // a value and not read back the same when written again.
            .map(|l| l.trim_end_matches('\r'))
            .collect();
        // A final line break does not start another line.
        if text.ends_with('\n') {
            lines.pop();
        }
        Lexer { lines, next: 0 }
    }

    /// Reads the parser directives: `# name=value` lines at the very top.
    /// The first line that is not a recognized directive ends them (it is
    /// then read again as a comment, blank line or instruction).
    pub(crate) fn directives(&mut self) -> Result<Directives, LexError> {
        let mut d = Directives::default();
        let mut seen: Vec<String> = Vec::new();
        while let Some(&line) = self.lines.get(self.next) {
            let Some((name, value, value_col)) = directive(line) else {
                break;
            };
            let lower = name.to_ascii_lowercase();
            if !DIRECTIVES.contains(&lower.as_str()) {
                break;
            }
            let line_no = self.next + 1;
            if seen.contains(&lower) {
                return Err(LexError {
                    pos: Pos {
                        line: line_no,
                        column: 1 + leading_blanks(line),
                    },
                    message: format!("the # {lower}= directive is given twice: keep one of them"),
                });
            }
            seen.push(lower.clone());
            match lower.as_str() {
                "escape" => {
                    let mut chars = value.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c @ ('\\' | '`')), None) => d.escape = Some(c),
                        _ => {
                            return Err(LexError {
                                pos: Pos {
                                    line: line_no,
                                    column: value_col,
                                },
                                message: format!(
                                    "invalid escape character '{}' in # escape=: use \\ or `",
                                    crate::quote::excerpt(&value)
                                ),
                            });
                        }
                    }
                }
                "syntax" => d.syntax = Some(value),
                _ => d.ignored.push((lower, value)),
            }
            self.next += 1;
        }
        Ok(d)
    }

    /// The next instruction's logical line, or `None` at the end.
    pub(crate) fn next_logical(&mut self, escape: char) -> Option<Logical> {
        loop {
            let &line = self.lines.get(self.next)?;
            self.next += 1;
            let line_no = self.next;
            let blanks = leading_blanks(line);
            let content: Vec<char> = line.chars().skip(blanks).collect();
            if content.is_empty() || content[0] == '#' {
                continue;
            }
            let mut logical = Logical {
                chars: Vec::new(),
                pos: Vec::new(),
                text: String::new(),
                end: Pos::default(),
            };
            let mut parts: Vec<String> = Vec::new();
            let mut continues =
                push_line(&mut logical, &mut parts, &content, line_no, blanks, escape);
            while continues {
                let Some(&line) = self.lines.get(self.next) else {
                    break;
                };
                self.next += 1;
                let line_no = self.next;
                let blanks = leading_blanks(line);
                let rest: Vec<char> = line.chars().skip(blanks).collect();
                // Comment lines and empty lines inside a continuation are
                // dropped; the continuation goes on past them.
                if rest.is_empty() || rest[0] == '#' {
                    continue;
                }
                let whole: Vec<char> = line.chars().collect();
                continues = push_line(&mut logical, &mut parts, &whole, line_no, 0, escape);
            }
            while logical.chars.last().is_some_and(|c| c.is_whitespace()) {
                logical.chars.pop();
                logical.pos.pop();
            }
            let lead = logical
                .chars
                .iter()
                .take_while(|c| c.is_whitespace())
                .count();
            logical.chars.drain(..lead);
            logical.pos.drain(..lead);
            if logical.chars.is_empty() {
                continue;
            }
            logical.text = parts.join(" ");
            logical.end = logical.pos.last().map_or(Pos::default(), |p| Pos {
                line: p.line,
                column: p.column + 1,
            });
            return Some(logical);
        }
    }

    /// Reads a heredoc body from the lines after the current instruction, up
    /// to the line that is exactly `name` (after removing leading tabs when
    /// `strip_tabs`). `Err` holds the line number of a line that is the
    /// delimiter with blanks around it, if any, when there is no terminator.
    pub(crate) fn heredoc(
        &mut self,
        name: &str,
        strip_tabs: bool,
    ) -> Result<String, Option<usize>> {
        let mut body = String::new();
        let mut near = None;
        while let Some(&line) = self.lines.get(self.next) {
            self.next += 1;
            let line = if strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if line == name {
                return Ok(body);
            }
            if near.is_none() && line.trim() == name {
                near = Some(self.next);
            }
            body.push_str(line);
            body.push('\n');
        }
        Err(near)
    }
}

/// Appends one physical line to `logical`: `chars` are the line after its
/// first `skipped` characters, on line `line_no`. Returns whether the line
/// continues on the next (it ends in `escape`, blanks aside), in which case
/// the escape is not appended.
fn push_line(
    logical: &mut Logical,
    parts: &mut Vec<String>,
    chars: &[char],
    line_no: usize,
    skipped: usize,
    escape: char,
) -> bool {
    // Docker allows spaces and tabs after the escape; any whitespace is
    // allowed here, the same set that is trimmed from the end of a logical
    // line, so a value never ends in the escape except at the end of file.
    let mut end = chars.len();
    while end > 0 && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    let continues = end > 0 && chars[end - 1] == escape;
    let keep = if continues { end - 1 } else { chars.len() };
    for (i, &c) in chars[..keep].iter().enumerate() {
        logical.chars.push(c);
        logical.pos.push(Pos {
            line: line_no,
            column: skipped + i + 1,
        });
    }
    let part: String = chars[..keep].iter().collect::<String>().trim().to_string();
    if !part.is_empty() {
        parts.push(part);
    }
    continues
}

/// The number of leading whitespace characters of `line`.
fn leading_blanks(line: &str) -> usize {
    line.chars().take_while(|c| c.is_whitespace()).count()
}

/// `# name = value` (blanks allowed around each part): the name, the value
/// (trimmed, not empty) and the value's 1-based column.
fn directive(line: &str) -> Option<(String, String, usize)> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = leading_blanks(line);
    if chars.get(i) != Some(&'#') {
        return None;
    }
    i += 1;
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    let start = i;
    if !chars.get(i).is_some_and(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    while chars.get(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
        i += 1;
    }
    let name: String = chars[start..i].iter().collect();
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    if chars.get(i) != Some(&'=') {
        return None;
    }
    i += 1;
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    let value: String = chars[i..].iter().collect::<String>().trim_end().to_string();
    if value.is_empty() {
        return None;
    }
    Some((name, value, i + 1))
}

//! Heredoc markers on an instruction line: `<<EOF`, `<<-EOF`, `<<"EOF"`,
//! `<<'EOF'` (and a file descriptor before, `3<<EOF`), each a whole word.
//! Their bodies follow the instruction, in the order of the markers.

use super::ast::Pos;
use super::lexer::Logical;
use super::words::{process_words, split_spans};

/// A heredoc marker whose body is still to be read.
#[derive(Clone, Debug)]
pub(crate) struct Marker {
    /// The delimiter, quotes removed.
    pub name: String,
    /// No quote in the delimiter: the body is expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are removed from the body and the delimiter line.
    pub strip_tabs: bool,
    /// Where the marker word is.
    pub pos: Pos,
}

/// The heredoc markers among the words of `line` from index `from` on.
pub(crate) fn markers(line: &Logical, from: usize, escape: char) -> Vec<Marker> {
    let tail = &line.chars[from.min(line.chars.len())..];
    split_spans(tail, escape)
        .into_iter()
        .filter_map(|(a, b)| {
            let word: String = tail[a..b].iter().collect();
            let (name, expand, strip_tabs) = marker(&word, escape)?;
            Some(Marker {
                name,
                expand,
                strip_tabs,
                pos: line.pos_at(from + a),
            })
        })
        .collect()
}

/// Reads one raw word as a heredoc marker: the name, whether the body is
/// expanded, whether tabs are stripped. `None` for any other word.
pub(crate) fn marker(word: &str, escape: char) -> Option<(String, bool, bool)> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    // As in Docker: `<<` alone, `<<<` and `<< EOF` are not heredocs.
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let mut names = process_words(rest, escape, &|_| None).ok()?;
    if names.len() != 1 {
        return None;
    }
    let name = names.pop()?;
    let expand = !rest.contains(['"', '\'']);
    Some((name, expand, strip_tabs))
}

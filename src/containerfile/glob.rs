//! The shell patterns of `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/repl}`:
//! `*`, `?`, `[...]` classes and the escape character for a literal.
//!
//! Matching runs the pattern as an automaton over the text (a set of
//! positions in the pattern), so a hostile pattern costs O(pattern × text),
//! never exponential backtracking.

/// One element of a compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    Any,
    /// `*`
    Star,
    /// `[...]`: ranges (a single char is `(c, c)`), negated with `!` or `^`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::Any => true,
            Token::Star => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles `pattern`, where `escape` makes the next character literal.
    /// An unclosed `[` is a literal `[`, as in the shell.
    pub(crate) fn new(pattern: &str, escape: char) -> Pattern {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == escape {
                if let Some(&next) = chars.get(i + 1) {
                    tokens.push(Token::Literal(next));
                }
                i += 2;
                continue;
            }
            match c {
                '*' => {
                    // Consecutive stars match the same as one.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                '[' => match class(&chars, i + 1, escape) {
                    Some((token, end)) => {
                        tokens.push(token);
                        i = end;
                    }
                    None => {
                        tokens.push(Token::Literal('['));
                        i += 1;
                    }
                },
                _ => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        Pattern { tokens }
    }

    /// Whether the pattern has nothing to match.
    pub(crate) fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The same pattern read backwards: its matches of a reversed text are
    /// the reversed matches of the text (for suffixes).
    pub(crate) fn reversed(&self) -> Pattern {
        Pattern {
            tokens: self.tokens.iter().rev().cloned().collect(),
        }
    }

    /// Every `k` (ascending) such that the pattern matches `text[..k]`, by
    /// running the pattern as an automaton once over `text`: O(text × pattern).
    pub(crate) fn prefix_lengths(&self, text: &[char]) -> Vec<usize> {
        let m = self.tokens.len();
        let mut states = vec![false; m + 1];
        states[0] = true;
        self.close(&mut states);
        let mut lengths = Vec::new();
        if states[m] {
            lengths.push(0);
        }
        for (k, &c) in text.iter().enumerate() {
            let mut next = vec![false; m + 1];
            let mut any = false;
            for p in (0..m).filter(|&p| states[p]) {
                match &self.tokens[p] {
                    Token::Star => next[p] = true,
                    token if token.matches(c) => next[p + 1] = true,
                    _ => continue,
                }
                any = true;
            }
            if !any {
                break;
            }
            self.close(&mut next);
            states = next;
            if states[m] {
                lengths.push(k + 1);
            }
        }
        lengths
    }

    /// Adds the states reachable by letting stars match nothing.
    fn close(&self, states: &mut [bool]) {
        for p in 0..self.tokens.len() {
            if states[p] && self.tokens[p] == Token::Star {
                states[p + 1] = true;
            }
        }
    }
}

/// Parses a class whose contents start at `start` (after `[`): the token and
/// the index after `]`, or `None` when there is no closing `]`.
fn class(chars: &[char], start: usize, escape: char) -> Option<(Token, usize)> {
    let mut i = start;
    let mut negated = false;
    if matches!(chars.get(i), Some('!') | Some('^')) {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let mut c = *chars.get(i)?;
        // `]` right after `[` (or `[!`) is a member, as in the shell.
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        if c == escape {
            i += 1;
            c = *chars.get(i)?;
        }
        i += 1;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let mut hi = chars[i + 1];
            i += 2;
            if hi == escape {
                hi = *chars.get(i)?;
                i += 1;
            }
            ranges.push((c.min(hi), c.max(hi)));
        } else {
            ranges.push((c, c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        Pattern::new(pattern, '\\').prefix_lengths(&chars).last() == Some(&chars.len())
    }

    #[test]
    fn wildcards_classes_and_escapes() {
        assert!(m("*", ""));
        assert!(m("*", "abc"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbb"));
        assert!(m("?b?", "abc"));
        assert!(!m("?", ""));
        assert!(m("[abc]x", "bx"));
        assert!(!m("[!abc]x", "bx"));
        assert!(m("[^abc]x", "dx"));
        assert!(m("[a-z]*[0-9]", "k99"));
        assert!(m("[]]", "]"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("[", "["));
        assert!(m("a[b", "a[b"));
        assert!(m("*.tar.gz", "x.tar.gz"));
        assert!(!m("*.tar.gz", "x.tar.bz2"));
    }

    #[test]
    fn prefixes_and_reversal() {
        let text: Vec<char> = "a/b/c".chars().collect();
        let p = Pattern::new("*/", '\\');
        assert_eq!(p.prefix_lengths(&text), vec![2, 4]);
        assert_eq!(Pattern::new("", '\\').prefix_lengths(&text), vec![0]);
        assert_eq!(
            Pattern::new("*", '\\').prefix_lengths(&text),
            vec![0, 1, 2, 3, 4, 5]
        );
        let rev: Vec<char> = text.iter().rev().copied().collect();
        assert_eq!(
            Pattern::new("/*", '\\').reversed().prefix_lengths(&rev),
            vec![2, 4]
        );
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(200);
        let text = "a".repeat(199);
        assert!(!m(&pattern, &text));
    }
}

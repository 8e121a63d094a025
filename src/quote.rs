//! Quoting data boxwright did not expect inside a message.
//!
//! An error about a file that is not what it should be (a "tar" that is a
//! password file, a "manifest" that is an HTML page) must not carry that
//! file into stderr, build logs and events: it may be secret, and it may hold
//! newlines or terminal escapes that forge log lines. Messages quote at most
//! a short excerpt, on one line.

/// The longest excerpt, in characters, before the ellipsis.
pub const EXCERPT_CHARS: usize = 48;

/// `text` cut to [`EXCERPT_CHARS`] characters (with `…` when cut), control
/// characters escaped (`\n`, `\u{1b}`), so it is one short printable line.
pub fn excerpt(text: &str) -> String {
    excerpt_n(text, EXCERPT_CHARS)
}

/// [`excerpt`] with a chosen length.
pub fn excerpt_n(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        assert_eq!(excerpt("short"), "short");
        let shadow =
            "root:*:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\nbin:*:20228:0:99999:7:::\n";
        let e = excerpt(shadow);
        assert!(!e.contains('\n'));
        assert!(e.ends_with('…'));
        assert!(!e.contains("bin:*"), "{e}");
        assert_eq!(excerpt_n("a\u{1b}[31mb", 10), "a\\u{1b}[31mb");
    }
}

//! Making a step's output line safe to draw inside a live display.
//!
//! Steps print colours, cursor movement, carriage-return progress bars and
//! tabs; drawn as they are, these move indicatif's cursor and garble the
//! bars. [`terminal_line`] turns a line into what a terminal would finally
//! show on that row, as plain printable text.

/// What a terminal would show for `line`: escape sequences (CSI, OSC, DCS,
/// charset selections) removed, `\r` and backspace overwrite as they do on
/// a terminal, tabs expanded to 8 columns, other control characters dropped.
pub fn terminal_line(line: &str) -> String {
    let mut row: Vec<char> = Vec::with_capacity(line.len());
    let mut col = 0usize;
    let put = |row: &mut Vec<char>, col: &mut usize, c: char| {
        if *col < row.len() {
            row[*col] = c;
        } else {
            row.push(c);
        }
        *col += 1;
    };
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\r' => col = 0,
            '\u{8}' => col = col.saturating_sub(1),
            '\t' => {
                let next = (col / 8 + 1) * 8;
                while col < next {
                    put(&mut row, &mut col, ' ');
                }
            }
            c if c.is_control() => {}
            c => put(&mut row, &mut col, c),
        }
    }
    let s: String = row.into_iter().collect();
    s.trim_end().to_string()
}

/// Consumes the rest of an escape sequence whose ESC was just read.
fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        // CSI: parameters and intermediates, then one final byte @..~.
        Some('[') => {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
        // OSC, DCS, SOS, PM, APC: a string ended by BEL or ESC \.
        Some(']' | 'P' | 'X' | '^' | '_') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' {
                    if chars.peek() == Some(&'\\') {
                        chars.next();
                    }
                    break;
                }
            }
        }
        // nF sequences (e.g. ESC ( B): intermediates, then one final byte.
        Some(c) if (' '..='/').contains(&c) => {
            while let Some(&n) = chars.peek() {
                chars.next();
                if !(' '..='/').contains(&n) {
                    break;
                }
            }
        }
        // Two-character sequences (ESC 7, ESC M, …) or a lone ESC at the end.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_cursor_moves_vanish() {
        assert_eq!(terminal_line("\u{1b}[1;31mred\u{1b}[0m ok"), "red ok");
        assert_eq!(terminal_line("a\u{1b}[2K\u{1b}[1Ab"), "ab");
        assert_eq!(terminal_line("\u{1b}]0;title\u{7}text"), "text");
        assert_eq!(terminal_line("\u{1b}]8;;http://x\u{1b}\\link"), "link");
        assert_eq!(terminal_line("\u{1b}(Bplain\u{1b}7"), "plain");
        assert_eq!(terminal_line("trailing \u{1b}"), "trailing");
    }

    #[test]
    fn carriage_returns_overwrite_like_a_terminal() {
        assert_eq!(terminal_line("10%\r100%"), "100%");
        assert_eq!(terminal_line("abcdef\rXY"), "XYcdef");
        assert_eq!(terminal_line("done\r"), "done");
        assert_eq!(terminal_line("ab\u{8}c"), "ac");
    }

    #[test]
    fn tabs_expand_and_controls_drop() {
        assert_eq!(terminal_line("a\tb"), "a       b");
        assert_eq!(terminal_line("x\u{7}\u{0}y\u{9b}z"), "xyz");
        assert_eq!(terminal_line("ünïcødé ✓"), "ünïcødé ✓");
    }
}

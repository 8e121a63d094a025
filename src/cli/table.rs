//! The one table printer of the CLI (`images`, `builds`, `ps`, `df`,
//! `catalog`), over `comfy-table`: no borders, columns as wide as their widest
//! cell and two spaces apart, every row's column starting at the same offset
//! whatever the widths (display width, so wide characters line up too), the
//! last column unpadded, nothing ever cut short, and no colour.

use comfy_table::{Cell, CellAlignment, ContentArrangement, presets::NOTHING};

/// A table being filled: a header, rows, and which columns align right.
pub struct Table {
    grid: comfy_table::Table,
    columns: usize,
}

/// A cell's text on one line: control characters (a newline, a tab, an
/// escape sequence in a name) would break the columns or reach the terminal.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl Table {
    /// An empty table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        let mut grid = comfy_table::Table::new();
        grid.load_style(NOTHING)
            // Wide tables stay whole: a pipe or a narrow terminal gets every
            // character, never a wrapped or shortened cell.
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(header.iter().map(|h| Cell::new(clean(h))));
        let columns = header.len();
        for (i, column) in grid.column_iter_mut().enumerate() {
            let right = if i + 1 == columns { 0 } else { 2 };
            column.set_padding((0, right));
        }
        Table { grid, columns }
    }

    /// Aligns column `index` (0-based) to the right, as numbers are.
    pub fn align_right(mut self, index: usize) -> Table {
        if let Some(c) = self.grid.column_mut(index) {
            c.set_cell_alignment(CellAlignment::Right);
        }
        self
    }

    /// Adds a row; missing cells are empty, extra ones are dropped.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<Cell> = cells
            .into_iter()
            .take(self.columns)
            .map(|c| Cell::new(clean(c.as_ref())))
            .collect();
        row.resize_with(self.columns, || Cell::new(""));
        self.grid.add_row(row);
    }

    /// The table as text: one line per row after the header, each ending in
    /// a newline, without trailing spaces.
    pub fn render(&self) -> String {
        let mut out = self.grid.trim_fmt();
        out.push('\n');
        out
    }
}

/// A table of `rows` under `header`, all columns aligned left.
pub fn render<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let mut t = Table::new(header);
    for r in rows {
        t.row(r.iter().map(AsRef::as_ref));
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The display column where each cell of `line` starts, given the
    /// header's cell starts (cells are separated by at least two spaces).
    fn starts(line: &str) -> Vec<usize> {
        let mut out = Vec::new();
        let chars: Vec<char> = line.chars().collect();
        for i in 0..chars.len() {
            let starts_cell = chars[i] != ' '
                && (i == 0 || (i >= 2 && chars[i - 1] == ' ' && chars[i - 2] == ' '));
            if starts_cell {
                out.push(i);
            }
        }
        out
    }

    #[test]
    fn columns_start_at_the_same_offset_whatever_the_widths() {
        let text = render(
            &["NAME", "SIZE", "CREATED"],
            &[
                vec!["a", "1 B", "1 second ago"],
                vec![
                    "a-very-long-name-that-is-wider-than-anything:latest",
                    "10.5 MiB",
                    "3 minutes ago",
                ],
                vec!["b", "", "x"],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let header = starts(lines[0]);
        assert_eq!(header, vec![0, 53, 63], "{text}");
        assert_eq!(starts(lines[1]), header, "{text}");
        assert_eq!(starts(lines[2]), header, "{text}");
        // An empty cell keeps the next column in place.
        assert_eq!(lines[3].find('x'), Some(63), "{text}");
        assert!(text.lines().all(|l| l == l.trim_end()), "{text:?}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn right_aligned_columns_end_together_and_nothing_is_cut() {
        let mut t = Table::new(&["NAME", "SIZE", "NOTE"]).align_right(1);
        t.row(["x", "1 B", "short"]);
        t.row(["y", "123.4 MiB", &"long ".repeat(100)]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        let end = |l: &str, what: &str| l.find(what).map(|i| i + what.len());
        assert_eq!(end(lines[0], "SIZE"), end(lines[2], "123.4 MiB"), "{text}");
        assert_eq!(end(lines[1], "1 B"), end(lines[2], "123.4 MiB"), "{text}");
        assert!(lines[2].ends_with(&"long ".repeat(100).trim_end().to_string()));
        assert!(!text.contains('…'));
    }

    #[test]
    fn control_characters_do_not_break_rows() {
        let text = render(&["A", "B"], &[vec!["two\nlines", "tab\there"]]);
        assert_eq!(text.lines().count(), 2, "{text:?}");
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(render::<&str>(&["NAME", "SIZE"], &[]), "NAME  SIZE\n");
    }
}

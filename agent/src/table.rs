//! Plain-text tables for the CLI's human output (`queue`, `report`,
//! `reconcile`): every column as wide as its widest cell, two spaces
//! between columns, no trailing spaces. Pure.

/// How a column's cells are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table under construction: rows of cells, one [`Align`] per column.
#[derive(Debug, Clone, Default)]
pub struct Table {
    aligns: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(aligns: &[Align]) -> Self {
        Table {
            aligns: aligns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra ones are kept left-aligned.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The width of each column (in characters).
    pub fn widths(&self) -> Vec<usize> {
        let n = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        (0..n)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// The rows, each prefixed by `indent` and ending with a newline.
    pub fn render(&self, indent: &str) -> String {
        self.render_with(indent, &self.widths())
    }

    /// As [`Table::render`] with at least `widths` (to align several
    /// tables printed one under the other).
    pub fn render_with(&self, indent: &str, widths: &[usize]) -> String {
        let mut own = self.widths();
        for (w, min) in own.iter_mut().zip(widths) {
            *w = (*w).max(*min);
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::from(indent);
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = own[c].saturating_sub(cell.chars().count());
                let align = self.aligns.get(c).copied().unwrap_or(Align::Left);
                match align {
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(cell);
                    }
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The widest of each column over several tables.
pub fn max_widths(tables: &[&Table]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for t in tables {
        for (c, w) in t.widths().into_iter().enumerate() {
            match out.get_mut(c) {
                Some(o) => *o = (*o).max(w),
                None => out.push(w),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = Table::new(&[Align::Left, Align::Right, Align::Left]);
        t.row(["ID", "N", "NOTE"]);
        t.row(["a-long-reference", "12345", ""]);
        assert_eq!(
            t.render("  "),
            "  ID                    N  NOTE\n  a-long-reference  12345\n"
        );
    }

    #[test]
    fn several_tables_share_widths() {
        let mut a = Table::new(&[Align::Left, Align::Right]);
        a.row(["x", "1"]);
        let mut b = Table::new(&[Align::Left, Align::Right]);
        b.row(["longer", "100"]);
        let w = max_widths(&[&a, &b]);
        assert_eq!(a.render_with("", &w), "x         1\n");
        assert_eq!(b.render_with("", &w), "longer  100\n");
    }
}

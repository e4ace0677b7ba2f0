//! Aligned plain-text tables for stdout (no colours: stdout is often a pipe).

use comfy_table::presets::NOTHING;
use comfy_table::{Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table};

/// A table with a header; columns after the first `left` are right-aligned (numbers).
pub fn new(header: &[&str], left: usize) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    for (i, col) in t.column_iter_mut().enumerate() {
        if i >= left {
            col.set_cell_alignment(CellAlignment::Right);
        }
        col.set_constraint(ColumnConstraint::ContentWidth);
    }
    t
}

/// A row of cells made printable: text from data (names, notes) never carries escape
/// sequences to the terminal. Ordinary text is unchanged.
pub fn printable_row<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> Vec<String> {
    cells
        .into_iter()
        .map(|c| crate::text::printable_string(c.as_ref()))
        .collect()
}

/// Render without the leading space that the preset leaves on each line.
pub fn render(t: &Table) -> String {
    t.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

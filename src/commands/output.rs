//! The one output layer of the commands. A command says once what it shows, as an
//! [`Output`]; [`render`] makes the table, the JSON or the CSV of it. Tables are aligned by
//! display width (comfy-table measures cells as the terminal shows them), JSON is
//! pretty-printed, CSV is written by the `csv` crate, and every write error is returned.

use comfy_table::presets::NOTHING;
use comfy_table::{Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table};
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

use crate::cli::OutputFormat;

/// What a command shows, in each of the three formats.
pub trait Output {
    /// The plain-text form (no colours: stdout is often a pipe), ending in a newline.
    fn table(&self) -> anyhow::Result<String>;
    /// The JSON document.
    fn json(&self) -> anyhow::Result<Value>;
    /// The CSV header and rows (an error when the output has no CSV form).
    fn csv(&self) -> anyhow::Result<Csv>;
    /// A remark the table shows within itself but JSON and CSV have no place for: [`emit`]
    /// writes it to stderr (`tokmon: …`) after those.
    fn note(&self) -> Option<String> {
        None
    }
}

/// A CSV document: a header and rows of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Csv {
        Csv {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The CSV text.
    pub fn text(&self) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.header)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}

/// `o` in `format`.
pub fn render(format: OutputFormat, o: &dyn Output) -> anyhow::Result<String> {
    Ok(rendered(format, o)?.0)
}

/// `o` in `format`, and the note to write beside it (only with JSON and CSV: the table
/// carries its notes itself).
fn rendered(format: OutputFormat, o: &dyn Output) -> anyhow::Result<(String, Option<String>)> {
    Ok(match format {
        OutputFormat::Table => (o.table()?, None),
        OutputFormat::Json => (serde_json::to_string_pretty(&o.json()?)? + "\n", o.note()),
        OutputFormat::Csv => (o.csv()?.text()?, o.note()),
    })
}

/// Write `o` in `format` to stdout, then its note (JSON and CSV) to stderr.
pub fn emit(format: OutputFormat, o: &dyn Output) -> anyhow::Result<()> {
    let (text, note) = rendered(format, o)?;
    crate::error::emit(&text)?;
    if let Some(n) = note {
        crate::error::tell!("tokmon: {n}");
    }
    Ok(())
}

/// How a column lines up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with a header; columns after the first `left` are right-aligned (numbers).
pub fn new(header: &[&str], left: usize) -> Table {
    let aligns: Vec<Align> = (0..header.len())
        .map(|i| if i < left { Align::Left } else { Align::Right })
        .collect();
    aligned(header, &aligns)
}

/// A table with a header and an alignment per column (left when not given).
pub fn aligned(header: &[&str], aligns: &[Align]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    for (i, col) in t.column_iter_mut().enumerate() {
        if aligns.get(i) == Some(&Align::Right) {
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
pub fn render_table(t: &Table) -> String {
    t.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `label value` lines, the values lined up after labels padded to `width` display columns.
pub fn fields(rows: &[(&str, String)], width: usize) -> String {
    rows.iter()
        .map(|(label, value)| {
            let pad = width.saturating_sub(label.width());
            format!("{label}{:pad$} {value}\n", "")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_by_display_width() {
        let mut t = new(&["NAME", "N"], 1);
        t.add_row(vec!["日本語", "1"]);
        t.add_row(vec!["abc", "22"]);
        let text = render_table(&t);
        let widths: Vec<usize> = text.lines().map(UnicodeWidthStr::width).collect();
        assert_eq!(widths, [10, 10, 10], "{text}");
    }

    #[test]
    fn fields_pad_labels_by_display_width() {
        let text = fields(&[("Ä", "1".into()), ("日本", "2".into())], 5);
        assert_eq!(text, "Ä     1\n日本  2\n");
    }

    #[test]
    fn csv_quotes_as_the_csv_crate_does() {
        let mut c = Csv::new(["a", "b"]);
        c.row(["x,y", "z"]);
        assert_eq!(c.text().unwrap(), "a,b\n\"x,y\",z\n");
    }
}

//! The per-agent and per-model tables: events, input, output, cache, total, cost, share.
//! Sorted by a column that `o` cycles, the selected row in reverse video. When the table is
//! narrow the numbers turn compact (12.4K) and the least useful columns go first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use unicode_width::UnicodeWidthStr;

use super::layout::Mode;
use super::{fit, pad, section};
use crate::numfmt;
use crate::tui::app::{App, Focus, RowView, SortCol, SourceState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Events,
    Input,
    Output,
    Cache,
    Total,
    Cost,
    Share,
}

/// Shown left to right.
const ORDER: [Col; 7] = [
    Col::Events,
    Col::Input,
    Col::Output,
    Col::Cache,
    Col::Total,
    Col::Cost,
    Col::Share,
];
/// Dropped first to last when space runs out.
const DROP: [Col; 6] = [
    Col::Cache,
    Col::Input,
    Col::Output,
    Col::Events,
    Col::Share,
    Col::Cost,
];
const NAME_MIN: usize = 12;

impl Col {
    fn title(self) -> &'static str {
        match self {
            Col::Events => "Events",
            Col::Input => "Input",
            Col::Output => "Output",
            Col::Cache => "Cache",
            Col::Total => "Total",
            Col::Cost => "Cost",
            Col::Share => "Share",
        }
    }

    fn sort(self) -> Option<SortCol> {
        Some(match self {
            Col::Events => SortCol::Events,
            Col::Input => SortCol::Input,
            Col::Output => SortCol::Output,
            Col::Cache => SortCol::Cache,
            Col::Total => SortCol::Total,
            Col::Cost => SortCol::Cost,
            Col::Share => return None,
        })
    }

    fn text(self, r: &RowView, compact: bool) -> String {
        let n = |v: u64| {
            if compact {
                numfmt::compact(v)
            } else {
                numfmt::thousands(v)
            }
        };
        let s = &r.tally.sums.all;
        match self {
            Col::Events => n(s.events),
            Col::Input => n(s.input),
            Col::Output => n(s.output),
            Col::Cache => n(s.cache_read + s.cache_write),
            Col::Total => n(s.total()),
            Col::Cost => {
                if compact {
                    numfmt::usd_compact(r.tally.cost)
                } else {
                    numfmt::usd(r.tally.cost)
                }
            }
            Col::Share => format!("{:.1}%", r.share * 100.0),
        }
    }
}

fn header_text(col: Col, sort: SortCol) -> String {
    if col.sort() == Some(sort) {
        format!("{}▼", col.title())
    } else {
        col.title().to_string()
    }
}

/// Pick the columns and number style that fit `width`.
fn plan(rows: &[RowView], sort: SortCol, width: usize) -> (Vec<(Col, usize)>, bool) {
    let widths = |cols: &[Col], compact: bool| -> Vec<(Col, usize)> {
        cols.iter()
            .map(|c| {
                let w = rows
                    .iter()
                    .map(|r| c.text(r, compact).width())
                    .max()
                    .unwrap_or(0)
                    .max(header_text(*c, sort).width());
                (*c, w)
            })
            .collect()
    };
    let fits =
        |ws: &[(Col, usize)]| NAME_MIN + ws.iter().map(|(_, w)| w + 1).sum::<usize>() <= width;
    let all = widths(&ORDER, false);
    if fits(&all) {
        return (all, false);
    }
    let mut cols = ORDER.to_vec();
    for drop in DROP {
        let ws = widths(&cols, true);
        if fits(&ws) {
            return (ws, true);
        }
        cols.retain(|c| *c != drop);
    }
    (widths(&cols, true), true)
}

pub fn draw(f: &mut Frame, app: &App, area: Rect, mode: Mode) {
    match mode {
        Mode::Compact => draw_one(f, app, area, app.focus),
        Mode::Narrow => {
            let [a, b] = Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
            draw_one(f, app, a, Focus::Agents);
            draw_one(f, app, b, Focus::Models);
        }
        Mode::Wide => {
            let [a, _, b] = Layout::horizontal([
                Constraint::Fill(1),
                Constraint::Length(1),
                Constraint::Fill(1),
            ])
            .areas(area);
            draw_one(f, app, a, Focus::Agents);
            draw_one(f, app, b, Focus::Models);
        }
    }
}

fn draw_one(f: &mut Frame, app: &App, area: Rect, which: Focus) {
    let t = app.theme();
    let focused = app.focus == which;
    let view = app.tables[which.index()];
    let rows = app.rows(which);
    let name = match which {
        Focus::Agents => "Agents",
        Focus::Models => "Models",
    };
    let title = if focused {
        vec![pad(t.accent, " ▸ "), pad(t.title, format!("{name} "))]
    } else {
        vec![pad(t.dim, "   "), pad(t.dim, format!("{name} "))]
    };
    let right = if rows.is_empty() {
        vec![]
    } else {
        vec![vec![pad(
            t.dim,
            format!(" {}/{} ", view.selected.min(rows.len() - 1) + 1, rows.len()),
        )]]
    };
    let body = section(f, app, area, title, right);
    if rows.is_empty() {
        let (msg, style) = match (&app.agg, &app.source.state) {
            (Some(_), _) => ("no events in this range".to_string(), t.dim),
            (None, SourceState::Missing) => (
                format!(
                    "no database at {} yet: waiting for it (tokmon record, tokmon import, or --db)",
                    super::display_path(&app.source.path)
                ),
                t.warning,
            ),
            (None, SourceState::Error(e)) => (format!("cannot read the database: {e}"), t.error),
            (None, _) => ("loading…".to_string(), t.dim),
        };
        f.render_widget(
            Paragraph::new(Line::from(pad(style, msg))).wrap(ratatui::widgets::Wrap { trim: true }),
            body,
        );
        return;
    }
    let (cols, compact) = plan(&rows, view.sort, body.width as usize);
    let name_w =
        (body.width as usize).saturating_sub(cols.iter().map(|(_, w)| w + 1).sum::<usize>());
    let mut name_title = match which {
        Focus::Agents => "Agent".to_string(),
        Focus::Models => "Model".to_string(),
    };
    if view.sort == SortCol::Name {
        name_title.push('▲');
    }
    let header = Row::new(
        std::iter::once(Cell::new(name_title)).chain(
            cols.iter()
                .map(|(c, _)| Cell::new(Line::from(header_text(*c, view.sort)).right_aligned())),
        ),
    )
    .style(t.table_header);
    let body_rows = rows.iter().map(|r| {
        Row::new(
            std::iter::once(Cell::new(fit(&r.name, name_w))).chain(
                cols.iter()
                    .map(|(c, _)| Cell::new(Line::from(c.text(r, compact)).right_aligned())),
            ),
        )
        .style(t.text)
    });
    let widths = std::iter::once(Constraint::Fill(1))
        .chain(cols.iter().map(|(_, w)| Constraint::Length(*w as u16)));
    let table = Table::new(body_rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(t.selected);
    let mut state = TableState::default().with_selected(focused.then_some(view.selected));
    f.render_stateful_widget(table, body, &mut state);
}

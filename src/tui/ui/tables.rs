//! The per-agent and per-model (or per-provider) tables: events, input, output, cache,
//! cache share, total, cost, share. Sorted by a column that `o` cycles, the selected row in
//! reverse video and its full name in the title. Names get their width first: when the
//! table is narrow the numbers turn compact (12.4K) and the least useful columns go; names
//! are shortened only where that stays unambiguous (see `names.rs`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use unicode_width::UnicodeWidthStr;

use super::layout::Mode;
use super::names::{fit_unique, short_model, shorten};
use super::{fit, pad, section};
use crate::numfmt;
use crate::text::printable_string;
use crate::tui::app::{App, Focus, RowView, SortCol, SourceState};
use crate::tui::model::Dim;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Events,
    Input,
    Output,
    Cache,
    CacheShare,
    Total,
    Cost,
    Share,
}

/// Shown left to right.
const ORDER: [Col; 8] = [
    Col::Events,
    Col::Input,
    Col::Output,
    Col::Cache,
    Col::CacheShare,
    Col::Total,
    Col::Cost,
    Col::Share,
];
/// Dropped first to last when space runs out.
const DROP: [Col; 7] = [
    Col::Cache,
    Col::Input,
    Col::Output,
    Col::Events,
    Col::CacheShare,
    Col::Share,
    Col::Cost,
];
/// The name column never gets less than this (nor more than its longest name).
const NAME_MIN: usize = 8;

impl Col {
    fn title(self) -> &'static str {
        match self {
            Col::Events => "Events",
            Col::Input => "Input",
            Col::Output => "Output",
            Col::Cache => "Cache",
            Col::CacheShare => "Cache%",
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
            Col::CacheShare => return None,
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
            Col::CacheShare => match r.cache_share() {
                Some(c) => format!("{:.0}%", c * 100.0),
                None => "-".into(),
            },
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

/// Pick the columns and number style that fit `width` beside a name column of `name_w`
/// (the names get their room first).
fn plan(
    rows: &[RowView],
    sort: SortCol,
    width: usize,
    name_w: usize,
    cache: bool,
) -> (Vec<(Col, usize)>, bool) {
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
    let fits = |ws: &[(Col, usize)]| name_w + ws.iter().map(|(_, w)| w + 1).sum::<usize>() <= width;
    let order: Vec<Col> = ORDER
        .iter()
        .copied()
        .filter(|c| cache || *c != Col::CacheShare)
        .collect();
    let all = widths(&order, false);
    if fits(&all) {
        return (all, false);
    }
    let mut cols = order;
    for drop in DROP {
        let ws = widths(&cols, true);
        if fits(&ws) {
            return (ws, true);
        }
        cols.retain(|c| *c != drop);
    }
    (widths(&cols, true), true)
}

/// Names as the table shows them: models and providers without a date suffix or a route
/// prefix where that stays unique.
fn display_names(rows: &[RowView], dim: Dim) -> Vec<String> {
    // Text from data never reaches the terminal as it is (escapes are shown visibly).
    let safe: Vec<String> = rows.iter().map(|r| printable_string(&r.name)).collect();
    let names: Vec<&str> = safe.iter().map(|n| n.as_str()).collect();
    match dim {
        Dim::Model | Dim::Provider => shorten(&names, short_model),
        Dim::Agent => safe.clone(),
    }
}

/// Lines a table needs to show all its rows: title rule, column header, rows (a note
/// when it has none).
pub fn lines_needed(app: &App, which: Focus) -> u16 {
    let rows = app.rows(which).len().max(1) as u16;
    2 + rows
}

pub fn draw(f: &mut Frame, app: &App, area: Rect, mode: Mode) {
    match mode {
        Mode::Compact => draw_one(f, app, area, app.focus()),
        Mode::Narrow => {
            let need = [Focus::Agents, Focus::Models].map(|w| lines_needed(app, w));
            let [ha, hb] = super::layout::stack(area.height, need);
            let [a, b] =
                Layout::vertical([Constraint::Length(ha), Constraint::Length(hb)]).areas(area);
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
    let focused = app.focus() == which;
    let view = app.table(which);
    let rows = app.rows(which);
    let dim = app.dim_of(which);
    let name = match dim {
        Dim::Agent => "Agents",
        Dim::Model => "Models",
        Dim::Provider => "Providers",
    };
    let mut title = if focused {
        vec![pad(t.accent, " ▸ "), pad(t.title, format!("{name} "))]
    } else {
        vec![pad(t.dim, "   "), pad(t.dim, format!("{name} "))]
    };
    // The selected row's whole name, however the column shows it.
    if focused && let Some(r) = rows.get(view.selected.min(rows.len().saturating_sub(1))) {
        let room = (area.width as usize)
            .saturating_sub(title.iter().map(|s| s.width()).sum::<usize>() + 2);
        title.push(pad(
            t.text,
            format!(
                "{} ",
                fit(&printable_string(&r.name), room.saturating_sub(1))
            ),
        ));
    }
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
        let (msg, style) = match (app.agg(), &app.source().state) {
            (Some(_), _) => ("no events in this range".to_string(), t.dim),
            (None, SourceState::Missing) if app.agent_logs().import.is_some() => {
                ("importing the agent logs…".to_string(), t.dim)
            }
            (None, SourceState::Missing) => (
                format!(
                    "no database at {} yet: waiting for it (tokmon record, tokmon import, or --db)",
                    super::display_path(&app.source().path)
                ),
                t.warning,
            ),
            (None, SourceState::Error(e)) => (format!("cannot read the database: {e}"), t.error),
            (None, SourceState::Reconnecting(e)) => (
                format!("lost the database connection, reconnecting: {e}"),
                t.warning,
            ),
            (None, _) => ("loading…".to_string(), t.dim),
        };
        f.render_widget(
            Paragraph::new(Line::from(pad(style, msg))).wrap(ratatui::widgets::Wrap { trim: true }),
            body,
        );
        return;
    }
    let mut name_title = match dim {
        Dim::Agent => "Agent".to_string(),
        Dim::Model => "Model".to_string(),
        Dim::Provider => "Provider".to_string(),
    };
    if view.sort == SortCol::Name {
        name_title.push('▲');
    }
    let names = display_names(&rows, dim);
    let width = body.width as usize;
    // Names first: the longest name, leaving room for the total at least.
    let total_w = rows
        .iter()
        .map(|r| Col::Total.text(r, true).width())
        .max()
        .unwrap_or(0)
        .max(header_text(Col::Total, view.sort).width())
        + 1;
    let longest = names
        .iter()
        .map(|n| n.width())
        .max()
        .unwrap_or(0)
        .max(name_title.width());
    let name_need = longest.min(width.saturating_sub(total_w)).max(NAME_MIN);
    let cache = rows
        .iter()
        .any(|r| r.tally.sums.all.cache_read + r.tally.sums.all.cache_write > 0);
    let (cols, compact) = plan(&rows, view.sort, width, name_need, cache);
    let name_w = width.saturating_sub(cols.iter().map(|(_, w)| w + 1).sum::<usize>());
    let shown = fit_unique(&names, name_w);
    let header = Row::new(
        std::iter::once(Cell::new(name_title)).chain(
            cols.iter()
                .map(|(c, _)| Cell::new(Line::from(header_text(*c, view.sort)).right_aligned())),
        ),
    )
    .style(t.table_header);
    let body_rows = rows.iter().zip(shown).map(|(r, name)| {
        Row::new(
            std::iter::once(Cell::new(name)).chain(
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

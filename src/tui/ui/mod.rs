//! Drawing: plain functions of the model, one file per screen area.

mod alert;
mod block;
mod budgets;
mod footer;
mod gauge;
mod header;
mod help;
pub mod layout;
mod names;
mod sparkline;
mod sync_dialog;
mod tables;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::app::{App, Focus, Overlay};
use layout::{Mode, Screen};

/// Draw the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let panel = app.budgets().len().max(1) + block::rows(app);
    let need = [Focus::Agents, Focus::Models].map(|w| tables::lines_needed(app, w));
    let screen = layout::split(area, panel, !app.alerts().is_empty(), need);
    match screen {
        Screen::TooSmall => {
            let size = format!(
                "{}×{}, need {}×{}",
                area.width,
                area.height,
                layout::MIN_WIDTH,
                layout::MIN_HEIGHT
            );
            let w = area.width as usize;
            let lines = vec![
                Line::from(fit("terminal too small", w))
                    .style(app.theme().warning)
                    .centered(),
                Line::from(fit(&size, w)).style(app.theme().dim).centered(),
            ];
            let y = area.y + area.height.saturating_sub(2) / 2;
            f.render_widget(
                Paragraph::new(lines),
                Rect::new(area.x, y, area.width, area.height.min(2)),
            );
            return;
        }
        Screen::Parts {
            mode,
            header,
            spark,
            gauge,
            tables,
            alert,
            footer,
        } => {
            header::draw(f, app, header, mode);
            if let Some(r) = spark {
                sparkline::draw(f, app, r, mode);
            }
            let (gauge, block_row) = block::split(gauge, app);
            if let Some(r) = block_row {
                block::draw(f, app, r, mode);
            }
            if app.has_config_budgets() {
                budgets::draw(f, app, gauge, mode);
            } else {
                gauge::draw(f, app, gauge, mode);
            }
            tables::draw(f, app, tables, mode);
            if let Some(r) = alert {
                alert::draw(f, app, r);
            }
            footer::draw(f, app, footer);
        }
    }
    match app.overlay() {
        Overlay::None => {}
        Overlay::Help => help::draw(f, app, area),
        Overlay::Sync(d) => sync_dialog::draw(f, app, d, area),
    }
}

/// Cut `s` to at most `width` display columns, ending in `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw > width - 1 {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// Cut `s` from the left (for paths: the file name matters most).
pub fn fit_left(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut kept: Vec<char> = Vec::new();
    let mut w = 0;
    for c in s.chars().rev() {
        let cw = c.width().unwrap_or(0);
        if w + cw > width - 1 {
            break;
        }
        kept.push(c);
        w += cw;
    }
    kept.push('…');
    kept.iter().rev().collect()
}

/// A section: a rule with a title on the left and notes on the right (groups of spans, kept
/// whole from the left while they fit). Returns the area below.
pub fn section(
    f: &mut Frame,
    app: &App,
    area: Rect,
    title: Vec<Span<'static>>,
    right: Vec<Vec<Span<'static>>>,
) -> Rect {
    let t = app.theme();
    let left_w: usize = title.iter().map(|s| s.width()).sum();
    let room = (area.width as usize).saturating_sub(left_w + 6);
    let right = clip_spans(right, room);
    let mut block = Block::new()
        .borders(Borders::TOP)
        .border_style(t.border)
        .title(Line::from(title));
    if !right.is_empty() {
        block = block.title_top(Line::from(right).right_aligned());
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// Keep whole groups of spans from the left while they fit in `width` columns.
pub fn clip_spans(groups: Vec<Vec<Span<'static>>>, width: usize) -> Vec<Span<'static>> {
    let mut used = 0;
    let mut out = Vec::new();
    for g in groups {
        let w: usize = g.iter().map(|s| s.width()).sum();
        if used + w > width {
            break;
        }
        used += w;
        out.extend(g);
    }
    out
}

pub use crate::paths::display_path;

pub fn pad(style: Style, s: impl Into<String>) -> Span<'static> {
    Span::styled(s.into(), style)
}

/// Whether a mode has room for full numbers.
pub fn roomy(mode: Mode) -> bool {
    matches!(mode, Mode::Wide)
}

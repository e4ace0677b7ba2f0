//! The help overlay, generated from the key map so it always matches the keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::{fit, pad};
use crate::tui::app::App;
use crate::tui::keys::{MAIN_KEYS, SYNC_KEYS};

/// A box of `w`×`h` centred in `area` (clamped to it).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let key_w = MAIN_KEYS
        .iter()
        .chain(SYNC_KEYS)
        .map(|b| b.keys_label().width())
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    let section =
        |title: &'static str, map: &[crate::tui::keys::Binding], lines: &mut Vec<Line>| {
            lines.push(Line::from(pad(t.title, title)));
            for b in map {
                let k = b.keys_label();
                let padding = key_w - k.width();
                lines.push(Line::from(vec![
                    pad(t.key, format!(" {k}{} ", " ".repeat(padding))),
                    pad(t.text, b.help),
                ]));
            }
        };
    section("Monitor", MAIN_KEYS, &mut lines);
    lines.push(Line::from(""));
    section(
        "Sync dialog (other keys type the value)",
        SYNC_KEYS,
        &mut lines,
    );
    let inner_w = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16;
    let rect = centered(area, inner_w + 4, lines.len() as u16 + 2);
    let room = rect.width.saturating_sub(4) as usize;
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|l| {
            if l.width() <= room {
                l
            } else {
                let s: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
                Line::from(pad(t.text, fit(&s, room)))
            }
        })
        .collect();
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Line::from(pad(t.title, " Keys ")))
        .title_bottom(Line::from(pad(t.dim, " ? or Esc closes ")).right_aligned());
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).block(block.padding(ratatui::widgets::Padding::horizontal(1))),
        rect,
    );
}

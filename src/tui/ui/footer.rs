//! The bottom line: the main keys (from the key map) and the latest status message.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::{fit, pad};
use crate::tui::app::App;
use crate::tui::keys::{Binding, MAIN_KEYS};

/// The key text shown in the footer: `[/]` for short pairs, else the first key.
pub fn footer_key(b: &Binding) -> String {
    let labels: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
    let joined = labels.join("/");
    if joined.width() <= 3 { joined } else { labels[0].clone() }
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let width = area.width as usize;
    let status = app.status.as_ref().map(|(s, _)| s.clone());
    let status_w = status.as_ref().map_or(0, |s| s.width() + 2).min(width);
    let mut spans: Vec<Span> = Vec::new();
    let mut used = 0;
    for b in MAIN_KEYS {
        let Some(word) = b.footer else { continue };
        let key = footer_key(b);
        let w = key.width() + word.width() + 2;
        if used + w > width.saturating_sub(status_w) {
            break;
        }
        used += w;
        spans.push(pad(t.key, key));
        spans.push(pad(t.dim, format!(" {word} ")));
    }
    let mut lines = vec![Line::from(spans)];
    if let Some(s) = status {
        let room = width.saturating_sub(used);
        lines = vec![Line::from(
            lines
                .remove(0)
                .spans
                .into_iter()
                .chain([pad(t.accent, format!("{:>room$}", fit(&s, room)))])
                .collect::<Vec<_>>(),
        )];
    }
    f.render_widget(Paragraph::new(lines), area);
}

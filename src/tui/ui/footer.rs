//! The bottom line: the main keys (from the key map) and the latest status message.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::{fit, pad};
use crate::tui::app::App;
use crate::tui::keys::{Binding, MAIN_KEYS};

/// The key text shown in the footer: `[/]` for short pairs (`←/→`: the first pair of a
/// longer list), else the first key.
pub fn footer_key(b: &Binding) -> String {
    let labels: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
    let joined = labels.join("/");
    let pair = labels.iter().take(2).cloned().collect::<Vec<_>>().join("/");
    if joined.width() <= 3 {
        joined
    } else if pair.width() <= 3 {
        pair
    } else {
        labels[0].clone()
    }
}

/// Which footer words matter most.
const PRIORITY: [&str; 12] = [
    "quit", "help", "sync", "drill", "back", "range", "cursor", "export", "focus", "sort",
    "reload", "theme",
];

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let width = area.width as usize;
    let status = app.status().map(str::to_string);
    let status_w = status.as_ref().map_or(0, |s| s.width() + 2).min(width);
    // Keep the most needed keys when space is short; show them in key-map order.
    let entries: Vec<(&Binding, &str)> = MAIN_KEYS
        .iter()
        .filter_map(|b| b.footer.map(|w| (b, w)))
        .collect();
    let cost = |(b, w): &(&Binding, &str)| footer_key(b).width() + w.width() + 2;
    let mut keep = vec![false; entries.len()];
    let mut used = 0;
    for word in PRIORITY {
        if let Some(i) = entries.iter().position(|(_, w)| *w == word) {
            let c = cost(&entries[i]);
            if used + c <= width.saturating_sub(status_w) {
                used += c;
                keep[i] = true;
            }
        }
    }
    let mut spans: Vec<Span> = Vec::new();
    for (i, (b, word)) in entries.iter().enumerate() {
        if keep[i] {
            spans.push(pad(t.key, footer_key(b)));
            spans.push(pad(t.dim, format!(" {word} ")));
        }
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

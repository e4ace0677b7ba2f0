//! The alert line: the newest threshold crossing, labelled by level in words, until it is
//! acknowledged (`a`) or a few minutes pass.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::gauge::level_style;
use super::{fit, pad};
use crate::budget::usage_words;
use crate::tui::app::App;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let Some(a) = app.alerts().first() else {
        return;
    };
    let t = app.theme();
    let width = area.width as usize;
    let label = format!("▲ {}", a.level.word().to_uppercase());
    let more = match app.alerts().len() {
        1 => String::new(),
        n => format!(" (+{} more)", n - 1),
    };
    let hint = " a dismiss";
    let fixed = label.width() + 1 + more.width();
    let with_hint = fixed + hint.width() + 20 <= width;
    let room = width.saturating_sub(fixed + if with_hint { hint.width() } else { 0 });
    // With the budget's latest numbers at hand the line can be shorter than the message
    // (the level is already in the label); without them, the message as it came.
    let text = match app.budgets().iter().find(|s| s.name == a.budget) {
        Some(s) => format!(
            "{} at {:.1}%: {} (threshold {}%)",
            a.budget,
            a.percentage,
            usage_words(s),
            a.threshold
        ),
        None => a.message.clone(),
    };
    let msg = fit(&text, room);
    let gap = room.saturating_sub(msg.width());
    let mut spans = vec![
        pad(level_style(t, a.level), label),
        pad(t.text, format!(" {msg}")),
        pad(t.dim, more),
    ];
    if with_hint {
        spans.push(pad(t.text, " ".repeat(gap + 1)));
        spans.push(pad(t.key, "a"));
        spans.push(pad(t.dim, " dismiss"));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

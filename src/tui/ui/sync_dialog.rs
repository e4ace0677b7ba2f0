//! The sync dialog: type or paste the value another tool shows; the increment is previewed
//! as you type and a value that cannot be read is explained inline.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

use super::help::centered;
use super::{fit_left, pad};
use crate::numfmt;
use crate::tui::app::{App, SyncDialog};

pub fn draw(f: &mut Frame, app: &App, d: &SyncDialog, area: Rect) {
    let t = app.theme();
    let rect = centered(area, 64, 7);
    let inner_w = rect.width.saturating_sub(4) as usize;
    let counter = match &app.quota().quota {
        Some(q) => format!(
            "counter now {} of {} ({})",
            numfmt::thousands(q.used),
            numfmt::thousands(q.total),
            numfmt::percent(q.used as f64, q.total as f64)
        ),
        None => "no state file yet: the first sync creates it".to_string(),
    };
    let prompt = "> ";
    let shown = fit_left(&d.input, inner_w.saturating_sub(prompt.len() + 1));
    let result = if d.busy {
        Line::from(pad(t.dim, "writing…"))
    } else if let Some(e) = &d.error {
        Line::from(vec![pad(t.error, "✗ "), pad(t.error, e.clone())])
    } else {
        match &d.preview {
            None => Line::from(pad(
                t.dim,
                "e.g. 350000, 350,000, 350K, 1.5M, 35万, \"350,000 tokens used\"",
            )),
            Some(Ok(p)) => Line::from(vec![pad(t.ok, "✓ "), pad(t.text, p.describe())]),
            Some(Err(e)) => Line::from(vec![pad(t.error, "✗ "), pad(t.error, e.to_string())]),
        }
    };
    let lines = vec![
        Line::from(pad(t.dim, counter)),
        Line::from(pad(t.text, "Value the other tool shows:")),
        Line::from(vec![pad(t.accent, prompt), pad(t.text, shown.clone())]),
        result,
    ];
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(t.border)
        .title(Line::from(pad(t.title, " Sync quota ")))
        .title_bottom(
            Line::from(vec![
                pad(t.key, " Enter"),
                pad(t.dim, " sync  "),
                pad(t.key, "Esc"),
                pad(t.dim, " cancel "),
            ])
            .right_aligned(),
        )
        .padding(ratatui::widgets::Padding::horizontal(1));
    let inner = block.inner(rect);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(block),
        rect,
    );
    if inner.height > 2 && !d.busy {
        let x = inner.x + (prompt.len() + shown.width()) as u16;
        f.set_cursor_position((x.min(inner.right().saturating_sub(1)), inner.y + 2));
    }
}

//! The top line: source (path and format), range, drill-down filter, live indicator, last
//! event, events.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::layout::Mode;
use super::{display_path, fit, fit_left, pad};
use crate::numfmt;
use crate::text::printable;
use crate::timefmt::from_ms;
use crate::tui::app::{App, SourceState};

/// The live indicator: a symbol and a word, so it reads without colour.
fn live_span(app: &App) -> Span<'static> {
    let t = app.theme();
    match &app.source().state {
        SourceState::Opening => pad(t.dim, "◌ opening…"),
        // The first import fills the database aside: it appears when complete.
        SourceState::Missing if app.agent_logs().import.is_some() => pad(t.dim, "◌ importing…"),
        SourceState::Missing => pad(t.warning, "✕ no database"),
        SourceState::Error(_) => pad(t.error, "! error"),
        SourceState::Reconnecting(_) => pad(t.warning, "↻ reconnecting…"),
        SourceState::Live if app.is_loading() => pad(t.dim, "◌ loading…"),
        SourceState::Live => pad(t.live, "● live"),
    }
}

/// When the newest event happened: the time today, the date otherwise.
pub fn last_event_text(app: &App) -> Option<String> {
    let ms = app.agg()?.last_event_ms?;
    let now = app.zone().to_local(from_ms(app.now_ms()));
    let at = app.zone().to_local(from_ms(ms));
    Some(if at.date_naive() == now.date_naive() {
        at.format("%H:%M:%S").to_string()
    } else {
        at.format("%m-%d %H:%M").to_string()
    })
}

pub fn draw(f: &mut Frame, app: &App, area: Rect, mode: Mode) {
    let t = app.theme();
    let sep = || pad(t.dim, " │ ");
    let width = area.width as usize;
    let mut right: Vec<Span> = vec![sep(), pad(t.accent, app.range().label())];
    if !app.filters().is_empty() {
        // `agent claude-code › model gpt-5`, cut to leave room for the rest.
        let text = app
            .filters()
            .iter()
            .map(|f| format!("{} {}", f.dim.word(), printable(&f.value)))
            .collect::<Vec<_>>()
            .join(" › ");
        let room = width.saturating_sub(6 + 3 + app.range().label().width() + 3 + 12 + 3);
        right.push(sep());
        right.push(pad(t.accent, format!("▼ {}", fit(&text, room.max(8) - 2))));
    }
    let keep = right.len() + 2;
    right.push(sep());
    right.push(live_span(app));
    if let Some(last) = last_event_text(app) {
        right.push(sep());
        if mode != Mode::Compact {
            right.push(pad(t.dim, "last "));
        }
        right.push(pad(t.text, last));
    }
    if let Some(agg) = app.agg() {
        let n = agg.total.sums.all.events;
        right.push(sep());
        right.push(pad(
            t.text,
            if mode == Mode::Compact {
                format!("{} ev", numfmt::compact(n))
            } else {
                format!("{} events", numfmt::thousands(n))
            },
        ));
    }
    let brand = pad(t.title, "tokmon");
    // Drop notes from the right until the brand, the range, the filter and the indicator fit.
    while right.iter().map(|s| s.width()).sum::<usize>() + brand.width() > width
        && right.len() > keep
    {
        right.pop();
        right.pop();
    }
    let used = brand.width() + right.iter().map(|s| s.width()).sum::<usize>();
    let mut spans = vec![brand];
    let room = width.saturating_sub(used);
    if room >= 8 {
        let kind = match &app.source().kind {
            Some(k) => format!(" ({k})"),
            None => String::new(),
        };
        let path = display_path(&app.source().path);
        let room = room - 1;
        let text = if path.width() + kind.width() <= room {
            format!(" {path}{kind}")
        } else if kind.width() + 8 <= room {
            format!(" {}{kind}", fit_left(&path, room - kind.width()))
        } else {
            format!(" {}", fit_left(&path, room))
        };
        spans.push(pad(t.text, text));
    }
    spans.extend(right);
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

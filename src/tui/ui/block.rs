//! The agent-log line at the foot of the gauge panel: the first import's progress while it
//! runs (a bar, files, lines), then the active 5-hour block when there is Claude Code data
//! (used, time left, projection), against `block_limit` when one is set.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::gauge::bar;
use super::layout::Mode;
use super::{fit, pad, roomy};
use crate::numfmt;
use crate::tui::agent_logs::GaugeLimit;
use crate::tui::app::App;

/// Lines the panel needs for it: 1 while importing or when there is a block gauge.
pub fn rows(app: &App) -> usize {
    usize::from(app.agent_logs().import.is_some() || app.agent_logs().gauge.is_some())
}

/// Take the last line of the panel for it, when there is something to show and room: the
/// panel keeps its title and at least one line (during the first import, the title only).
pub fn split(area: Rect, app: &App) -> (Rect, Option<Rect>) {
    let importing = app.agent_logs().import.is_some();
    if rows(app) == 0 || area.height < 2 || (area.height < 3 && !importing) {
        return (area, None);
    }
    let rest = Rect {
        height: area.height - 1,
        ..area
    };
    let row = Rect {
        y: area.y + area.height - 1,
        height: 1,
        ..area
    };
    (rest, Some(row))
}

pub fn draw(f: &mut Frame, app: &App, area: Rect, mode: Mode) {
    let line = line(app, area.width as usize, mode);
    f.render_widget(Paragraph::new(line), area);
}

/// A label, a bar filling what the words leave (none when that is under 8 cells), the words.
fn with_bar(app: &App, label: &str, ratio: f64, words: String, width: usize) -> Line<'static> {
    let t = app.theme();
    let bar_w = width.saturating_sub(label.width() + words.width() + 2);
    if bar_w < 8 {
        return Line::from(vec![
            pad(t.title, label.to_string()),
            pad(
                t.text,
                fit(&format!(" {words}"), width.saturating_sub(label.width())),
            ),
        ]);
    }
    let mut spans: Vec<Span<'static>> = vec![pad(t.title, label.to_string()), pad(t.text, " ")];
    spans.extend(bar(ratio, bar_w, t.accent, t.dim).spans);
    spans.push(pad(t.text, format!(" {words}")));
    Line::from(spans)
}

fn line(app: &App, width: usize, mode: Mode) -> Line<'static> {
    let t = app.theme();
    let num = |n: u64| {
        if roomy(mode) {
            numfmt::thousands(n)
        } else {
            numfmt::compact(n)
        }
    };
    if let Some(p) = app.agent_logs().import {
        let words = format!(
            "{:.0}% · files {}/{} · {} lines",
            p.ratio() * 100.0,
            p.files_done,
            p.files_total,
            num(p.lines)
        );
        return with_bar(app, "Importing agent logs", p.ratio(), words, width);
    }
    let Some(g) = &app.agent_logs().gauge else {
        return Line::default();
    };
    let Some(b) = &g.block else {
        return Line::from(vec![
            pad(t.title, "5h block"),
            pad(t.dim, fit(" none active", width.saturating_sub(8))),
        ]);
    };
    let now = app.now_ms();
    let left = numfmt::duration((b.end_ms - now).max(0) / 1000);
    let used = format!("{} tok {}", num(b.tokens.total()), numfmt::usd(b.cost_usd));
    let proj = b.projection(now);
    match g.limit {
        Some(limit) => {
            let (ratio, projected) = limit.ratios(b, now);
            let of = match limit {
                GaugeLimit::Tokens { limit, max: true } => format!("of max {}", num(limit)),
                GaugeLimit::Tokens { limit, .. } => format!("of {}", num(limit)),
                GaugeLimit::Usd(u) => format!("of {}", numfmt::usd(u)),
            };
            let mut words = format!("{:.0}% {of} · {used} · {left} left", ratio * 100.0);
            if let Some(p) = projected {
                words.push_str(&format!(" · → {:.0}%", p * 100.0));
            }
            with_bar(app, "5h block", ratio, words, width)
        }
        None => {
            // Without a limit the bar is the block's time gone by.
            let elapsed = (now - b.start_ms) as f64 / (b.end_ms - b.start_ms) as f64;
            let mut words = format!("{used} · {left} left");
            if let Some(p) = proj {
                words.push_str(&format!(
                    " · → {} {}",
                    num(p.projected_tokens),
                    numfmt::usd(p.projected_cost)
                ));
            }
            with_bar(app, "5h block", elapsed, words, width)
        }
    }
}

//! The quota gauge: used / total, percentage, level in words, remaining, time since the
//! last sync, a bar coloured by level, and when the quota runs out at the current rate.
//! Also the pieces the budget panel shares with it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::layout::Mode;
use super::{display_path, fit, fit_left, pad, roomy, section};
use crate::budget::{self, BudgetStatus, Projection};
use crate::domain::Level;
use crate::numfmt;
use crate::tui::app::App;
use crate::tui::quota::{Quota, level_label};
use crate::tui::theme::Theme;

/// The style of a level, the quota's or a budget's.
pub fn level_style(t: &Theme, l: Level) -> Style {
    match l {
        Level::Ok => t.ok,
        Level::Warning => t.warning,
        Level::Critical => t.critical,
        Level::Exceeded => t.exceeded,
    }
}

/// The projection in at most `room` columns: with its rate when that fits, else without
/// (`limit in 3h 20m`), else cut; nothing when there is too little room to say anything.
pub fn projection_fitting(s: &BudgetStatus, room: usize) -> Option<String> {
    if s.projection == Projection::NoLimit || room < 12 {
        return None;
    }
    let full = budget::projection_words(s);
    if full.width() <= room {
        return Some(full);
    }
    // The rate leads as `at <rate>: `; the outcome after it matters more.
    let bare = match full.split_once(": ") {
        Some((lead, rest)) if lead.starts_with("at ") => rest.to_string(),
        _ => full,
    };
    if bare.width() > room && s.projection == Projection::TooLittleData {
        return Some("too little data".into());
    }
    Some(fit(&bare, room))
}

/// `just now`, `42m ago`: the time since the counter was last synced.
pub fn synced_ago(app: &App, q: &Quota) -> Option<String> {
    let ago = (app.now_ms() - q.last_sync_ms?).max(0) / 1000;
    Some(if ago < 60 {
        "just now".to_string()
    } else {
        format!("{} ago", numfmt::duration(ago))
    })
}

/// A bar of `width` cells, filled by `ratio`.
pub fn bar(ratio: f64, width: usize, fill: Style, empty: Style) -> Line<'static> {
    let filled = ((ratio.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    Line::from(vec![
        Span::styled("█".repeat(filled), fill),
        Span::styled("░".repeat(width - filled), empty),
    ])
}

fn quota_title(app: &App, q: &Quota, mode: Mode) -> (Vec<Span<'static>>, Vec<Vec<Span<'static>>>) {
    let t = app.theme();
    let lvl = q.level();
    let num = |n: u64| {
        if roomy(mode) || mode == Mode::Narrow {
            numfmt::thousands(n)
        } else {
            numfmt::compact(n)
        }
    };
    if q.total == 0 {
        let title = vec![
            pad(t.title, " Quota "),
            pad(t.text, format!("{} used ", num(q.used))),
            pad(t.dim, "(no total in the state file) "),
        ];
        return (title, vec![]);
    }
    let mut title = vec![
        pad(t.title, " Quota "),
        pad(t.text, format!("{} / {} ", num(q.used), num(q.total))),
        pad(
            level_style(t, lvl),
            format!("{:.1}% {}", q.ratio() * 100.0, level_label(lvl)),
        ),
        pad(t.text, " "),
    ];
    if let Some(p) = &app.quota().problem {
        title.push(pad(t.error, format!("! {} ", fit(p, 40))));
    }
    let mut right = vec![vec![pad(t.text, format!(" {} left", num(q.remaining())))]];
    if let Some(ago) = synced_ago(app, q) {
        right.push(vec![pad(t.dim, format!(" · synced {ago}"))]);
    }
    right.push(vec![pad(t.dim, " ")]);
    (title, right)
}

pub fn draw(f: &mut Frame, app: &App, area: Rect, mode: Mode) {
    let t = app.theme();
    let width = area.width as usize;
    match (&app.quota().quota, &app.quota()) {
        (Some(q), _) => {
            let (title, right) = quota_title(app, q, mode);
            let body = section(f, app, area, title, right);
            let style = level_style(t, q.level());
            // The projection goes right of the bar when the bar keeps a useful length.
            let words = app
                .quota_status()
                .and_then(|s| projection_fitting(s, (body.width as usize).saturating_sub(13)));
            let bar_w = match &words {
                Some(w) => (body.width as usize).saturating_sub(w.width() + 1),
                None => body.width as usize,
            };
            let mut line = bar(q.ratio(), bar_w, style, t.dim);
            if let Some(w) = words {
                line.spans.push(pad(t.dim, format!(" {w}")));
            }
            f.render_widget(Paragraph::new(line), body);
        }
        (None, v) => {
            let (title, body_text, style) = if v.loading {
                ("reading the state file…".to_string(), String::new(), t.dim)
            } else if let Some(p) = &v.problem {
                ("state file unreadable".to_string(), p.clone(), t.error)
            } else {
                (
                    format!("no state file at {}", display_path(app.state_path())),
                    "press s to sync the counter another tool shows".to_string(),
                    t.dim,
                )
            };
            let room = width.saturating_sub(10);
            let body = section(
                f,
                app,
                area,
                vec![
                    pad(t.title, " Quota "),
                    pad(style, format!("{} ", fit_left(&title, room))),
                ],
                vec![],
            );
            f.render_widget(
                Paragraph::new(Line::from(pad(t.dim, fit(&body_text, width)))),
                body,
            );
        }
    }
}

//! The budget panel: one gauge line per budget (the quota among them), most urgent first,
//! with used / limit, percentage, level in words and the projection. When there are more
//! budgets than lines, `b` scrolls and the title says which part is shown.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

use super::gauge::{bar, level_style, projection_fitting, synced_ago};
use super::layout::Mode;
use super::{fit, pad, section};
use crate::budget::{BudgetStatus, usage_words};
use crate::numfmt::{compact, usd};
use crate::tui::app::App;

/// Column widths of a mode: longest name, bar.
fn widths(mode: Mode) -> (usize, usize) {
    match mode {
        Mode::Compact => (10, 6),
        Mode::Narrow => (14, 6),
        Mode::Wide => (24, 20),
    }
}

/// Used / limit in few columns: `962K/1M`, `$45.10/$50.00` (the limit nearer its end).
fn usage_short(s: &BudgetStatus) -> String {
    let tokens_pct = s
        .limit_tokens
        .map(|l| s.used_tokens as f64 / l.max(1) as f64);
    let usd_pct = s.limit_usd.map(|l| s.used_usd.unwrap_or(0.0) / l);
    match (s.limit_tokens, s.limit_usd) {
        (_, Some(l)) if usd_pct >= tokens_pct => {
            format!("{}/{}", usd(s.used_usd.unwrap_or(0.0)), usd(l))
        }
        (Some(l), _) => format!("{}/{}", compact(s.used_tokens), compact(l)),
        _ => compact(s.used_tokens),
    }
}

/// The first budget shown, for `n` budgets in `rows` lines.
pub fn first_shown(scroll: usize, n: usize, rows: usize) -> usize {
    scroll.min(n.saturating_sub(rows))
}

/// Used / limit in the words of a mode.
fn usage(s: &BudgetStatus, mode: Mode) -> String {
    if mode == Mode::Wide {
        usage_words(s)
    } else {
        usage_short(s)
    }
}

/// One budget's line; `cols` are the name and usage widths, so the lines align.
fn line(
    app: &App,
    s: &BudgetStatus,
    mode: Mode,
    (name_w, usage_w): (usize, usize),
    width: usize,
) -> Line<'static> {
    let t = app.theme();
    let (_, bar_w) = widths(mode);
    let style = level_style(t, s.level);
    let mut spans: Vec<Span<'static>> = vec![
        pad(t.text, format!("{:<name_w$} ", fit(&s.name, name_w))),
        // The bar shows the share of the limit; the words after it say the same without colour.
    ];
    spans.extend(bar(s.percentage / 100.0, bar_w, style, t.dim).spans);
    spans.push(pad(t.text, format!(" {:>5.1}% ", s.percentage)));
    spans.push(pad(style, s.level.word().to_uppercase()));
    spans.push(pad(t.text, " ".repeat(9 - s.level.word().len())));
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let usage = usage(s, mode);
    let mut room = width.saturating_sub(used);
    if mode != Mode::Compact && usage_w + 1 < room {
        room -= usage_w + 1;
        let gap = usage_w.saturating_sub(usage.width());
        spans.push(pad(t.text, format!("{usage}{} ", " ".repeat(gap))));
    }
    if let Some(words) = projection_fitting(s, room) {
        spans.push(pad(t.dim, words));
    }
    Line::from(spans)
}

pub fn draw(f: &mut Frame, app: &App, area: Rect, mode: Mode) {
    let t = app.theme();
    let n = app.budgets().len();
    // The layout made room for this many lines, below the title rule.
    let rows = area.height.saturating_sub(1) as usize;
    let first = first_shown(app.budget_scroll(), n, rows);
    let mut right: Vec<Vec<Span<'static>>> = Vec::new();
    if n > rows {
        right.push(vec![
            pad(
                t.text,
                if rows == 1 {
                    format!(" {} of {n} ", first + 1)
                } else {
                    format!(" {}–{} of {n} ", first + 1, first + rows)
                },
            ),
            pad(t.key, "b"),
            pad(t.dim, " more "),
        ]);
    }
    if let Some(ago) = app.quota().quota.and_then(|q| synced_ago(app, &q)) {
        right.push(vec![pad(t.dim, format!(" quota synced {ago} "))]);
    }
    let body = section(f, app, area, vec![pad(t.title, " Budgets ")], right);
    let (name_cap, _) = widths(mode);
    let name_w = app
        .budgets()
        .iter()
        .map(|s| s.name.width())
        .max()
        .unwrap_or(0)
        .min(name_cap);
    let usage_w = app
        .budgets()
        .iter()
        .map(|s| usage(s, mode).width())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = app.budgets()[first..]
        .iter()
        .take(body.height as usize)
        .map(|s| line(app, s, mode, (name_w, usage_w), body.width as usize))
        .collect();
    f.render_widget(Paragraph::new(lines), body);
}

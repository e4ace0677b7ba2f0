//! Tokens and cost over the range, one bar per bucket (merged when the screen is narrower
//! than the number of buckets), with the current rate, the range total and its cost, and a
//! time axis below. The bucket cursor (`←`/`→`) lights its column and the title says that
//! bucket's time, tokens and cost. Under a drill-down everything shows the filtered numbers.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Sparkline};

use unicode_width::UnicodeWidthStr;

use super::layout::Mode;
use super::{pad, roomy, section};
use crate::numfmt;
use crate::timefmt::from_ms;
use crate::tui::app::App;
use crate::tui::model::resample;

const GUTTER: u16 = 7;

/// `15m`, `2h`, `1d`.
pub fn span_label(ms: i64) -> String {
    let m = ms / 60_000;
    if m % 1440 == 0 {
        format!("{}d", m / 1440)
    } else if m % 60 == 0 {
        format!("{}h", m / 60)
    } else {
        format!("{m}m")
    }
}

/// A time as the axis and the cursor show it: the time of day for short ranges, the date
/// with it for longer ones, the date alone for all time.
pub fn time_label(app: &App, ms: i64, bucket_ms: i64) -> String {
    let at = app.zone().to_local(from_ms(ms));
    let fmt = if bucket_ms >= 86_400_000 {
        "%Y-%m-%d"
    } else if app.range().span_ms().is_some_and(|s| s <= 86_400_000) {
        "%H:%M"
    } else {
        "%m-%d %H:%M"
    };
    at.format(fmt).to_string()
}

/// The columns `[lo, hi)` that show bucket `i` of `n` in `width` bars (as [`resample`]
/// lays them out).
pub fn bucket_columns(i: usize, n: usize, width: usize) -> Option<(usize, usize)> {
    let cols: Vec<usize> = (0..width)
        .filter(|j| {
            let lo = j * n / width;
            let hi = ((j + 1) * n / width).max(lo + 1).min(n);
            (lo..hi).contains(&i)
        })
        .collect();
    Some((*cols.first()?, cols.last()? + 1))
}

/// The axis line under the bars: the first bucket's start at the left, the middle, `now`
/// at the right; a `▲` under the cursor's column.
fn axis_line(
    app: &App,
    width: usize,
    first_ms: i64,
    now: i64,
    bucket_ms: i64,
    cursor_col: Option<usize>,
) -> String {
    let mut cells: Vec<char> = vec![' '; width];
    let mut put = |at: usize, text: &str| {
        for (i, c) in text.chars().enumerate() {
            if let Some(cell) = cells.get_mut(at + i) {
                *cell = c;
            }
        }
    };
    let start = time_label(app, first_ms, bucket_ms);
    let mid = time_label(app, first_ms + (now - first_ms) / 2, bucket_ms);
    let end = "now";
    let (sw, mw, ew) = (start.width(), mid.width(), end.width());
    if sw + ew < width {
        put(0, &start);
        put(width - ew, end);
    } else if ew <= width {
        put(width - ew, end);
    }
    let mid_at = (width / 2).saturating_sub(mw / 2);
    if mid_at > sw + 1 && mid_at + mw + 1 < width.saturating_sub(ew) {
        put(mid_at, &mid);
    }
    if let Some(c) = cursor_col.filter(|c| *c < width) {
        cells[c] = '▲';
    }
    cells.into_iter().collect()
}

pub fn draw(f: &mut Frame, app: &App, area: Rect, mode: Mode) {
    let t = app.theme();
    let now = app.now_ms();
    let title = match app.agg() {
        Some(a) => vec![
            pad(t.title, " Tokens "),
            pad(
                t.dim,
                format!(
                    "{} in {} buckets ",
                    app.range().label(),
                    span_label(a.bucket_ms)
                ),
            ),
        ],
        None => vec![
            pad(t.title, " Tokens "),
            pad(t.dim, format!("{} ", app.range().label())),
        ],
    };
    let num = |n: u64| {
        if roomy(mode) {
            numfmt::thousands(n)
        } else {
            numfmt::compact(n)
        }
    };
    let cursor = app.cursor();
    let right = match (app.agg(), app.total(), cursor) {
        (Some(a), _, Some((_, start, tokens, cost))) => vec![
            vec![
                pad(t.accent, " ▲ "),
                pad(
                    t.text,
                    format!(
                        "{}–{}",
                        time_label(app, start, a.bucket_ms.min(86_400_000 - 1)),
                        time_label(app, start + a.bucket_ms, a.bucket_ms.min(86_400_000 - 1))
                    ),
                ),
            ],
            vec![
                pad(t.dim, " · "),
                pad(t.text, format!("{} tok", num(tokens))),
            ],
            vec![pad(t.dim, " · "), pad(t.accent, numfmt::usd(cost))],
            vec![pad(t.dim, " ")],
        ],
        (Some(a), Some(total), None) => {
            let mut groups = Vec::new();
            // The rate counts everything; under a drill-down the total says enough.
            if app.filters().is_empty() {
                groups.push(vec![
                    pad(t.dim, " rate "),
                    pad(
                        t.text,
                        format!(
                            "{}/min",
                            numfmt::compact(a.rate_per_min(now).round() as u64)
                        ),
                    ),
                    pad(t.dim, " ·"),
                ]);
            }
            groups.push(vec![
                pad(t.dim, " total "),
                pad(t.text, num(total.tokens())),
            ]);
            groups.push(vec![
                pad(t.dim, " · "),
                pad(t.accent, numfmt::usd(total.cost)),
            ]);
            groups.push(vec![pad(t.dim, " ")]);
            groups
        }
        _ => vec![vec![pad(t.dim, format!(" {} ", waiting_word(app)))]],
    };
    let body = section(f, app, area, title, right);
    let (Some(agg), Some((tokens, cost))) = (app.agg(), app.series()) else {
        f.render_widget(
            Paragraph::new(Line::from(pad(t.dim, waiting_word(app)))),
            body,
        );
        return;
    };
    if body.height == 0 {
        return;
    }
    // The axis takes the last line when there are at least three.
    let axis_h = u16::from(body.height >= 3);
    let bars_h = body.height - axis_h;
    let tokens_h = if bars_h >= 3 {
        (bars_h * 2).div_ceil(3)
    } else {
        bars_h
    };
    let [tok_area, cost_area, axis_area] = Layout::vertical([
        Constraint::Length(tokens_h),
        Constraint::Length(bars_h - tokens_h),
        Constraint::Length(axis_h),
    ])
    .areas(body);
    let n = tokens.len();
    let bars_w = body.width.saturating_sub(GUTTER) as usize;
    // The columns of the bucket under the cursor (several when bars are stretched).
    let cursor_cols = cursor.and_then(|(i, ..)| bucket_columns(i, n, bars_w));
    for (label, area, values, style) in [
        ("tokens", tok_area, tokens, t.spark_tokens),
        (
            "cost",
            cost_area,
            cost.iter()
                .map(|c| (c.max(0.0) * 1e6).round() as u64)
                .collect(),
            t.spark_cost,
        ),
    ] {
        if area.height == 0 {
            continue;
        }
        let [g, bars] =
            Layout::horizontal([Constraint::Length(GUTTER), Constraint::Fill(1)]).areas(area);
        f.render_widget(Paragraph::new(Line::from(pad(t.dim, label))), g);
        let data = resample(&values, bars.width as usize);
        f.render_widget(Sparkline::default().data(data).style(style), bars);
        if let Some((lo, hi)) = cursor_cols {
            let col = Rect::new(bars.x + lo as u16, bars.y, (hi - lo) as u16, bars.height);
            f.buffer_mut().set_style(col.intersection(bars), t.selected);
        }
    }
    if axis_h > 0 {
        let [g, line] =
            Layout::horizontal([Constraint::Length(GUTTER), Constraint::Fill(1)]).areas(axis_area);
        f.render_widget(Paragraph::new(Line::from(pad(t.dim, "time"))), g);
        let text = axis_line(
            app,
            line.width as usize,
            agg.first_bucket_ms,
            now,
            agg.bucket_ms,
            cursor_cols.map(|(lo, _)| lo),
        );
        f.render_widget(Paragraph::new(Line::from(pad(t.dim, text))), line);
    }
}

/// What stands in for numbers not read yet: there may be nothing to read.
fn waiting_word(app: &App) -> &'static str {
    match app.source().state {
        crate::tui::app::SourceState::Missing => "no data yet",
        crate::tui::app::SourceState::Error(_) => "no data",
        _ => "loading…",
    }
}

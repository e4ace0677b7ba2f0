//! Tokens and cost over the range, one bar per bucket (merged when the screen is narrower
//! than the number of buckets), with the current rate, the range total and its cost.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Sparkline};

use super::layout::Mode;
use super::{pad, roomy, section};
use crate::numfmt;
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

pub fn draw(f: &mut Frame, app: &App, area: Rect, mode: Mode) {
    let t = app.theme();
    let now = app.now_ms();
    let title = match &app.agg {
        Some(a) => vec![
            pad(t.title, " Tokens "),
            pad(
                t.dim,
                format!(
                    "{} in {} buckets ",
                    app.range.label(),
                    span_label(a.bucket_ms)
                ),
            ),
        ],
        None => vec![
            pad(t.title, " Tokens "),
            pad(t.dim, format!("{} ", app.range.label())),
        ],
    };
    let right = match &app.agg {
        Some(a) => {
            let num = |n: u64| {
                if roomy(mode) {
                    numfmt::thousands(n)
                } else {
                    numfmt::compact(n)
                }
            };
            vec![
                vec![
                    pad(t.dim, " rate "),
                    pad(
                        t.text,
                        format!(
                            "{}/min",
                            numfmt::compact(a.rate_per_min(now).round() as u64)
                        ),
                    ),
                ],
                vec![pad(t.dim, " · total "), pad(t.text, num(a.total.tokens()))],
                vec![pad(t.dim, " · "), pad(t.accent, numfmt::usd(a.total.cost))],
                vec![pad(t.dim, " ")],
            ]
        }
        None => vec![vec![pad(t.dim, format!(" {} ", waiting_word(app)))]],
    };
    let body = section(f, app, area, title, right);
    let Some(agg) = &app.agg else {
        f.render_widget(
            Paragraph::new(Line::from(pad(t.dim, waiting_word(app)))),
            body,
        );
        return;
    };
    if body.height == 0 {
        return;
    }
    let tokens_h = if body.height >= 3 {
        (body.height * 2).div_ceil(3)
    } else {
        body.height
    };
    let [tok_area, cost_area] =
        Layout::vertical([Constraint::Length(tokens_h), Constraint::Fill(1)]).areas(body);
    let (tokens, cost) = agg.series(now);
    for (label, area, values, style) in [
        ("tokens", tok_area, tokens, t.spark_tokens),
        (
            "cost",
            cost_area,
            cost.iter().map(|c| (c * 1e6).round() as u64).collect(),
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
    }
}

/// What stands in for numbers not read yet: there may be nothing to read.
fn waiting_word(app: &App) -> &'static str {
    match app.source.state {
        crate::tui::app::SourceState::Missing => "no data yet",
        crate::tui::app::SourceState::Error(_) => "no data",
        _ => "loading…",
    }
}

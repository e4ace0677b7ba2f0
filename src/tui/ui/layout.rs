//! Breakpoints. Wide (≥ 100 columns): tables side by side. Narrow: tables stacked, fewer
//! columns. Compact (below 60×18): header, gauge and the focused table's top rows. Below
//! 30×8: "too small".
//!
//! The tables get the lines their rows need (all of them when they fit); the sparklines
//! take what is left, never less than a few lines.
//!
//! The budget panel (the quota gauge when no budgets are configured) has a title rule and
//! one line per budget, as many as the mode allows: 1 in compact, 3 in narrow, up to 8 in
//! wide. The alert line, while there is one, sits above the footer.

use ratatui::layout::{Constraint, Layout, Rect};

pub use crate::tui::breakpoints::{MIN_HEIGHT, MIN_WIDTH, Mode, WIDE, mode_of, panel_rows};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    TooSmall,
    Parts {
        mode: Mode,
        header: Rect,
        spark: Option<Rect>,
        gauge: Rect,
        tables: Rect,
        /// The alert line, while an alert is shown.
        alert: Option<Rect>,
        footer: Rect,
    },
}

/// Lines the tables need in `mode`, each needing `need` (title rule, column header, rows).
pub fn tables_height(mode: Mode, need: [u16; 2]) -> u16 {
    match mode {
        Mode::Compact => need[0],
        Mode::Narrow => need[0] + need[1],
        Mode::Wide => need[0].max(need[1]),
    }
}

/// Split `h` lines between two stacked tables needing `need`: each gets what it needs when
/// both fit, else the smaller keeps its need up to half and the other gets the rest.
pub fn stack(h: u16, need: [u16; 2]) -> [u16; 2] {
    if need[0] + need[1] <= h {
        return [need[0], h - need[0]];
    }
    let half = h / 2;
    let first = if need[0] <= half {
        need[0]
    } else if need[1] <= h - half {
        h - need[1]
    } else {
        half
    };
    [first, h - first]
}

/// Cut the screen for a panel of `budgets` budgets, with or without an alert line, for
/// tables that need `tables` lines each.
pub fn split(area: Rect, budgets: usize, alert: bool, tables: [u16; 2]) -> Screen {
    let Some(mode) = mode_of(area) else {
        return Screen::TooSmall;
    };
    let gauge_h = 1 + panel_rows(area, budgets) as u16;
    let alert_h = u16::from(alert);
    // Title rule, two lines of tokens, one of cost, the time axis.
    let spark_min = match mode {
        Mode::Compact => 0,
        Mode::Narrow => 5,
        Mode::Wide => 6,
    };
    let rest = area.height.saturating_sub(2 + gauge_h + alert_h);
    let spark_h = match mode {
        Mode::Compact => 0,
        _ => rest
            .saturating_sub(tables_height(mode, tables))
            .max(spark_min)
            .min(rest),
    };
    let [header, spark, gauge, tables, alert, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(spark_h),
        Constraint::Length(gauge_h),
        Constraint::Fill(1),
        Constraint::Length(alert_h),
        Constraint::Length(1),
    ])
    .areas(area);
    Screen::Parts {
        mode,
        header,
        spark: (spark_h > 0).then_some(spark),
        gauge,
        tables,
        alert: (alert_h > 0).then_some(alert),
        footer,
    }
}

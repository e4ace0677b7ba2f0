//! Breakpoints. Wide (≥ 100 columns): tables side by side. Narrow: tables stacked, fewer
//! columns. Compact (below 60×18): header, gauge and the focused table's top rows. Below
//! 30×8: "too small".

use ratatui::layout::{Constraint, Layout, Rect};

pub const MIN_WIDTH: u16 = 30;
pub const MIN_HEIGHT: u16 = 8;
pub const WIDE: u16 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Compact,
    Narrow,
    Wide,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    TooSmall,
    Parts {
        mode: Mode,
        header: Rect,
        spark: Option<Rect>,
        gauge: Rect,
        tables: Rect,
        footer: Rect,
    },
}

pub fn mode_of(area: Rect) -> Option<Mode> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        None
    } else if area.width < 60 || area.height < 18 {
        Some(Mode::Compact)
    } else if area.width < WIDE {
        Some(Mode::Narrow)
    } else {
        Some(Mode::Wide)
    }
}

pub fn split(area: Rect) -> Screen {
    let Some(mode) = mode_of(area) else {
        return Screen::TooSmall;
    };
    let spark_h = match mode {
        Mode::Compact => 0,
        Mode::Narrow => 4,
        Mode::Wide => (area.height / 4).clamp(5, 12),
    };
    let gauge_h = 2;
    let [header, spark, gauge, tables, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(spark_h),
        Constraint::Length(gauge_h),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Screen::Parts {
        mode,
        header,
        spark: (spark_h > 0).then_some(spark),
        gauge,
        tables,
        footer,
    }
}

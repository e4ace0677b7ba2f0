//! The screen sizes the monitor changes shape at, and what each size holds: the model asks
//! here (how many budget rows show) without calling into drawing. Wide (≥ 100 columns),
//! narrow, compact (below 60×18), too small (below 30×8).

use ratatui::layout::Rect;

pub const MIN_WIDTH: u16 = 30;
pub const MIN_HEIGHT: u16 = 8;
pub const WIDE: u16 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Compact,
    Narrow,
    Wide,
}

/// Budget lines the panel shows for `n` budgets (at least one line: the quota gauge or a
/// note), in a screen of `area`.
pub fn panel_rows(area: Rect, n: usize) -> usize {
    let cap = match mode_of(area) {
        None | Some(Mode::Compact) => 1,
        Some(Mode::Narrow) => 3,
        Some(Mode::Wide) => (area.height / 8).clamp(3, 8) as usize,
    };
    n.clamp(1, cap)
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

//! Threshold crossings, each reported once per threshold per window.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{BudgetStatus, Level, usage_words};

/// A threshold that was reported re-arms once the budget falls this many percentage points
/// below it (usage ageing out of a rolling window, a quota counter reset). The margin keeps
/// a budget that hovers around a threshold from alerting on every refresh.
pub const REARM_MARGIN: f64 = 2.0;

/// A budget that has just crossed a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub budget: String,
    /// The highest level crossed (when several are crossed at once, only this one is reported).
    pub level: Level,
    /// The threshold of that level, in percent.
    pub threshold: f64,
    pub percentage: f64,
    /// One line for the alert bar: `budget 'team' is critical: 96.2% used (threshold 95%)…`.
    pub message: String,
}

#[derive(Debug, Clone)]
struct Seen {
    /// Start of the calendar window the flags belong to (`None`: rolling window or quota).
    window: Option<DateTime<Utc>>,
    /// Reported: warning, critical, exceeded.
    reported: [bool; 3],
}

/// Remembers which crossings were reported, so each is reported once per window.
/// A new calendar window re-arms every threshold of the budget.
#[derive(Debug, Clone, Default)]
pub struct AlertTracker {
    seen: HashMap<String, Seen>,
}

const LEVELS: [Level; 3] = [Level::Warning, Level::Critical, Level::Exceeded];

fn window_key(s: &BudgetStatus) -> Option<DateTime<Utc>> {
    // A rolling window starts anew at every instant; it re-arms by falling below instead.
    if s.rolling_span.is_some() {
        None
    } else {
        s.window_start
    }
}

impl AlertTracker {
    pub fn new() -> AlertTracker {
        AlertTracker::default()
    }

    /// Take note of where the budgets stand without reporting anything, e.g. at start-up
    /// when only crossings that happen while watching should alert.
    pub fn prime(&mut self, statuses: &[BudgetStatus]) {
        let _ = self.crossings(statuses);
    }

    /// The crossings since the last call: at most one alert per budget (its highest new
    /// level). Call it with every fresh evaluation; redraws without new data need not call.
    pub fn crossings(&mut self, statuses: &[BudgetStatus]) -> Vec<Alert> {
        let mut out = Vec::new();
        for s in statuses {
            let key = window_key(s);
            let seen = self.seen.entry(s.name.clone()).or_insert(Seen {
                window: key,
                reported: [false; 3],
            });
            if seen.window != key {
                *seen = Seen {
                    window: key,
                    reported: [false; 3],
                };
            }
            for (i, level) in LEVELS.iter().enumerate() {
                let t = s.thresholds.of(*level).unwrap_or(f64::INFINITY);
                if seen.reported[i] && s.percentage < t - REARM_MARGIN {
                    seen.reported[i] = false;
                }
            }
            let mut fresh = false;
            for (i, level) in LEVELS.iter().enumerate() {
                if *level <= s.level && !seen.reported[i] {
                    seen.reported[i] = true;
                    fresh = true;
                }
            }
            if fresh {
                let threshold = s.thresholds.of(s.level).unwrap_or_default();
                out.push(Alert {
                    budget: s.name.clone(),
                    level: s.level,
                    threshold,
                    percentage: s.percentage,
                    message: format!(
                        "budget '{}' is {}: {:.1}% used, {} (threshold {}%)",
                        s.name,
                        s.level.word(),
                        s.percentage,
                        usage_words(s),
                        threshold
                    ),
                });
            }
        }
        out
    }
}

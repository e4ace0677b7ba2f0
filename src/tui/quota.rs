//! What the quota gauge shows, and the bridge to the state file (reading, the sync preview
//! and the sync itself).

use crate::domain::Level;

/// The quota counter as last read from the state file.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quota {
    pub used: u64,
    pub total: u64,
    /// When the counter was last synced (unix ms), if the file says.
    pub last_sync_ms: Option<i64>,
}

impl Quota {
    /// Share of the quota used, as a fraction (0 when there is no total).
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.used as f64 / self.total as f64
        }
    }

    pub fn remaining(&self) -> u64 {
        self.total.saturating_sub(self.used)
    }

    /// The alert level: 90 % warning, 95 % critical, 100 % exceeded (as `tokmon status`
    /// decides it; no total counts as OK).
    pub fn level(&self) -> Level {
        crate::state_file::level(self.used, self.total).unwrap_or(Level::Ok)
    }
}

/// The level written out, so it reads without colour.
pub fn level_label(l: Level) -> &'static str {
    match l {
        Level::Ok => "OK",
        Level::Warning => "WARNING",
        Level::Critical => "CRITICAL",
        Level::Exceeded => "EXCEEDED",
    }
}

/// What the gauge knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaView {
    /// The last good reading.
    pub quota: Option<Quota>,
    /// The file does not exist (yet).
    pub missing: bool,
    /// The file exists but could not be read; the last good reading stays shown.
    pub problem: Option<String>,
    /// Nothing heard yet.
    pub loading: bool,
}

/// A message from the state-file watcher.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaMsg {
    State(Quota),
    Missing,
    Problem(String),
}

impl QuotaView {
    pub fn apply(&mut self, m: QuotaMsg) {
        self.loading = false;
        match m {
            QuotaMsg::State(q) => {
                self.quota = Some(q);
                self.missing = false;
                self.problem = None;
            }
            QuotaMsg::Missing => {
                self.quota = None;
                self.missing = true;
                self.problem = None;
            }
            QuotaMsg::Problem(p) => {
                self.missing = false;
                self.problem = Some(p);
            }
        }
    }
}

/// What a sync of the typed value would do.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub value: u64,
    pub increment: u64,
    /// The value is below the counter: the other tool's counter was reset.
    pub reset: bool,
    pub total: Option<u64>,
}

impl Preview {
    pub fn describe(&self) -> String {
        let t = crate::numfmt::thousands;
        let mut s = if self.increment == 0 && !self.reset {
            format!("{} — same as the counter, nothing to record", t(self.value))
        } else if self.reset {
            format!("{} — counter reset, +{}", t(self.value), t(self.increment))
        } else {
            format!(
                "{} — +{} since the last sync",
                t(self.value),
                t(self.increment)
            )
        };
        if let Some(total) = self.total.filter(|t| *t > 0) {
            s.push_str(&format!(
                " ({} of {})",
                crate::numfmt::percent(self.value as f64, total as f64),
                t(total)
            ));
        }
        s
    }
}

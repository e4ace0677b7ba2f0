//! Budgets: limits over a window, with alert levels, a burn rate and a projection.
//!
//! * [`config`]: `[[budget]]` tables from the config file and their checks.
//! * [`window`]: where a window begins and when it resets.
//! * [`eval`]: usage from a source, then percentage, level, burn rate and projection.
//! * [`alert`]: threshold crossings, once per threshold per window.
//!
//! Front ends call [`evaluate_all`], sort nothing themselves (it returns the most urgent
//! first), keep one [`AlertTracker`], and show [`projection_words`] / [`window_words`].

pub mod alert;
pub mod config;
pub mod eval;
pub mod window;

pub use crate::domain::{DEFAULT_THRESHOLDS, Level};
pub use alert::{Alert, AlertTracker};
pub use config::{Budget, BudgetSpec, QUOTA_NAME, SpecError, Thresholds, Window, compile_all};
pub use eval::{
    Basis, BudgetStatus, BurnRate, LimitKind, Projection, QuotaInput, SyncPoint, evaluate_all,
};
pub use window::{Bounds, window_bounds};

use crate::numfmt::{compact, duration, usd};

/// Check the budgets of a config, as an error that exits 2.
pub fn from_config(cfg: &crate::config::Config) -> anyhow::Result<Vec<Budget>> {
    compile_all(&cfg.budgets).map_err(|e| crate::error::bad_input(e.to_string()))
}

/// How many of the newest syncs give the quota its burn rate.
pub const QUOTA_SYNC_POINTS: usize = 200;

/// `962K of 1M tokens`, `$45.10 of $50.00`, or both.
pub fn usage_words(s: &BudgetStatus) -> String {
    let mut parts = Vec::new();
    if let Some(l) = s.limit_tokens {
        parts.push(format!(
            "{} of {} tokens",
            compact(s.used_tokens),
            compact(l)
        ));
    }
    if let Some(l) = s.limit_usd {
        parts.push(format!("{} of {}", usd(s.used_usd.unwrap_or(0.0)), usd(l)));
    }
    if parts.is_empty() {
        parts.push(format!("{} tokens", compact(s.used_tokens)));
    }
    parts.join(", ")
}

/// The burn rate in words: `12.4K tok/h` or `$1.23/h`, in the unit of the limit that
/// the projection is about (tokens when there are both and neither is projected).
pub fn rate_words(s: &BudgetStatus) -> Option<String> {
    let r = s.burn.as_ref()?;
    let use_usd = match s.projection {
        Projection::At { limit, .. } => limit == LimitKind::Usd,
        _ => s.limit_tokens.is_none() && s.limit_usd.is_some(),
    };
    Some(match (use_usd, r.usd_per_hour) {
        (true, Some(u)) => format!("{}/h", usd(u)),
        _ => format!("{} tok/h", compact(r.tokens_per_hour.round() as u64)),
    })
}

/// The projection in words: `at 12.4K tok/h: limit in 3h 20m`, `at $1.20/h: not before the
/// window resets`, `limit reached`, `too little data for a projection`.
pub fn projection_words(s: &BudgetStatus) -> String {
    let rate = rate_words(s)
        .map(|r| format!("at {r}: "))
        .unwrap_or_default();
    match s.projection {
        Projection::Reached => "limit reached".into(),
        Projection::At { at, .. } => {
            format!("{rate}limit in {}", duration((at - s.now).num_seconds()))
        }
        Projection::NotBeforeReset => match s.rolling_span {
            Some(_) => format!("{rate}not within the rolling {}", s.window),
            None => format!("{rate}not before the window resets"),
        },
        Projection::NotAtThisRate => format!("{rate}limit not reached at this rate"),
        Projection::TooLittleData => "too little data for a projection".into(),
        Projection::NoLimit => "no limit set".into(),
    }
}

/// Time left in the window: `resets in 3d 4h`; for a rolling window, when its oldest usage
/// ages out (`rolling 5h, oldest usage leaves in 1h 10m`); `manual` for the quota.
pub fn window_words(s: &BudgetStatus) -> String {
    if let Some(r) = s.resets_at {
        return format!("resets in {}", duration((r - s.now).num_seconds()));
    }
    match (s.rolling_span, s.frees_at) {
        (Some(_), Some(f)) => format!(
            "rolling {}, oldest usage leaves in {}",
            s.window,
            duration((f - s.now).num_seconds())
        ),
        (Some(_), None) => format!("rolling {}, no usage in it", s.window),
        _ => "manual counter, no reset".into(),
    }
}

#[cfg(test)]
mod tests;

//! The budget part of `tokmon status`: every budget (and the quota) as a table or JSON, and
//! the `--check` verdict.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::budget::{
    BudgetStatus, Level, Projection, QUOTA_SYNC_POINTS, QuotaInput, evaluate_all, from_config,
    projection_words, rate_words, usage_words,
};
use crate::cli::StatusArgs;
use crate::commands::Ctx;
use crate::error::exit;
use crate::numfmt::{duration, thousands, usd};
use crate::text::printable;
use crate::timefmt::Zone;

/// Every budget of the config, and the quota when given, most urgent first: the database is
/// read when it exists (no database: nothing used yet). When the quota comes without syncs,
/// its burn rate is taken from the state file's sync history.
pub fn statuses(ctx: &Ctx, quota: Option<QuotaInput>) -> anyhow::Result<Vec<BudgetStatus>> {
    let budgets = from_config(&ctx.config)?;
    let source = if crate::store::db_present(&ctx.db) {
        match ctx.open_source() {
            Ok(s) => Some(s),
            // Without budgets the database only lends the quota a burn rate: not worth failing.
            Err(_) if budgets.is_empty() => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let quota = match quota {
        Some(mut q) if q.syncs.is_empty() => {
            q.syncs = crate::state_file::history::sync_points(&ctx.state, QUOTA_SYNC_POINTS);
            Some(q)
        }
        q => q,
    };
    evaluate_all(
        &budgets,
        source.as_ref(),
        quota.as_ref(),
        &ctx.zone,
        ctx.cost_mode,
        ctx.now,
    )
}

/// The table section: a heading line and the table, or a hint when there are no budgets.
pub fn table_section(ctx: &Ctx, all: &[BudgetStatus]) -> String {
    if all.is_empty() {
        return "Budgets: none (add [[budget]] tables to the config file)\n".into();
    }
    format!(
        "Budgets ({}):\n{}",
        ctx.zone.name(),
        budgets_table(all, &ctx.zone)
    )
}

/// The `"budgets"` value of the JSON output.
pub fn json_value(all: &[BudgetStatus]) -> Value {
    budgets_json(all)
}

/// `--check`: the budgets at or above `--level`, one line each (nothing when none), and the
/// exit code: 3 when there is any, else 0.
pub fn check(all: &[BudgetStatus], args: &StatusArgs) -> (String, u8) {
    let bad = offenders(all, args.level);
    if bad.is_empty() {
        (String::new(), exit::OK)
    } else {
        (check_lines(&bad), exit::THRESHOLD)
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// One budget as JSON, with exactly the documented keys:
/// `name, window, used_tokens, used_usd, limit_tokens, limit_usd, percentage, level,
/// resets_at, burn_rate_per_hour, projected_exhaustion`.
pub fn budget_json(s: &BudgetStatus) -> Value {
    json!({
        "name": s.name,
        "window": s.window,
        "used_tokens": s.used_tokens,
        "used_usd": s.used_usd.map(|u| round(u, 6)),
        "limit_tokens": s.limit_tokens,
        "limit_usd": s.limit_usd,
        "percentage": round(s.percentage, 2),
        "level": s.level.word(),
        "resets_at": s.resets_at.map(rfc3339),
        "burn_rate_per_hour": s.burn.map(|r| json!({
            "tokens": round(r.tokens_per_hour, 1),
            "usd": r.usd_per_hour.map(|u| round(u, 6)),
            "basis": r.basis.text(),
        })),
        "projected_exhaustion": s.projected_exhaustion().map(rfc3339),
    })
}

/// Every budget as a JSON array, in the order given (most urgent first).
pub fn budgets_json(all: &[BudgetStatus]) -> Value {
    Value::Array(all.iter().map(budget_json).collect())
}

fn amounts(tokens: Option<u64>, dollars: Option<f64>) -> String {
    match (tokens, dollars) {
        (Some(t), Some(d)) => format!("{} tok, {}", thousands(t), usd(d)),
        (Some(t), None) => format!("{} tok", thousands(t)),
        (None, Some(d)) => usd(d),
        (None, None) => "-".into(),
    }
}

/// The projection without the rate (the table has a column for it).
fn projection_short(s: &BudgetStatus, zone: &Zone) -> String {
    match s.projection {
        Projection::Reached => "limit reached".into(),
        Projection::At { at, .. } => format!(
            "limit in {} ({})",
            duration((at - s.now).num_seconds()),
            zone.to_local(at).format("%m-%d %H:%M")
        ),
        Projection::NotBeforeReset if s.rolling_span.is_some() => {
            format!("not within {}", s.window)
        }
        Projection::NotBeforeReset => "not before reset".into(),
        Projection::NotAtThisRate => "not at this rate".into(),
        Projection::TooLittleData => "too little data".into(),
        Projection::NoLimit => "-".into(),
    }
}

fn resets_cell(s: &BudgetStatus, zone: &Zone) -> String {
    match (s.resets_at, s.rolling_span, s.frees_at) {
        (Some(r), _, _) => format!(
            "{} (in {})",
            zone.to_local(r).format("%Y-%m-%d %H:%M"),
            duration((r - s.now).num_seconds())
        ),
        (None, Some(_), Some(f)) => {
            format!("rolling, frees in {}", duration((f - s.now).num_seconds()))
        }
        (None, Some(_), None) => "rolling".into(),
        _ => "manual".into(),
    }
}

/// The budget table of `tokmon status`, with notes on filters, rate bases and unpriced events.
pub fn budgets_table(all: &[BudgetStatus], zone: &Zone) -> String {
    let mut t = super::output::new(
        &[
            "BUDGET",
            "WINDOW",
            "USED",
            "LIMIT",
            "%",
            "LEVEL",
            "RESETS",
            "BURN RATE",
            "PROJECTION",
        ],
        2,
    );
    // Words read better left-aligned: level, resets, rate, projection.
    for i in 5..9 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(comfy_table::CellAlignment::Left);
        }
    }
    for s in all {
        // Dollars appear where a cost limit makes them matter.
        let used = match (s.limit_tokens, s.limit_usd) {
            (None, Some(_)) => usd(s.used_usd.unwrap_or(0.0)),
            (_, Some(_)) => amounts(Some(s.used_tokens), s.used_usd),
            _ => amounts(Some(s.used_tokens), None),
        };
        t.add_row(super::output::printable_row([
            s.name.clone(),
            s.window.clone(),
            used,
            amounts(s.limit_tokens, s.limit_usd),
            format!("{:.1}%", s.percentage),
            s.level.word().to_string(),
            resets_cell(s, zone),
            match (&s.burn, rate_words(s)) {
                (Some(r), Some(w)) => format!("{w} ({})", r.basis.text()),
                _ => "-".into(),
            },
            projection_short(s, zone),
        ]));
    }
    let mut out = super::output::render_table(&t);
    out.push('\n');
    for s in all.iter().filter(|s| !s.filter.is_empty()) {
        out.push_str(&format!(
            "{}: only {}\n",
            printable(&s.name),
            printable(&s.filter)
        ));
    }
    for s in all.iter().filter(|s| s.unpriced_events > 0) {
        out.push_str(&format!(
            "{}: {} events of models without a price counted at $0\n",
            printable(&s.name),
            thousands(s.unpriced_events)
        ));
    }
    out
}

/// The budgets at or above `level`, most urgent first.
pub fn offenders(all: &[BudgetStatus], level: Level) -> Vec<&BudgetStatus> {
    all.iter().filter(|s| s.level >= level).collect()
}

/// One line per offending budget, for `status --check`:
/// `team-monthly: critical, 96.2% used (962K of 1.00M tokens), at 12.4K tok/h: limit in 3h 20m`.
pub fn check_lines(offending: &[&BudgetStatus]) -> String {
    offending
        .iter()
        .map(|s| {
            format!(
                "{}: {}, {:.1}% used ({}), {}\n",
                printable(&s.name),
                s.level.word(),
                s.percentage,
                usage_words(s),
                projection_words(s)
            )
        })
        .collect()
}

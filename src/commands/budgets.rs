//! The budget part of `tokmon status`: every budget (and the quota) as a table or JSON, and
//! the `--check` verdict.

use serde_json::Value;

use crate::budget::{BudgetStatus, QuotaInput, evaluate_ctx, render};
use crate::cli::StatusArgs;
use crate::commands::Ctx;
use crate::error::exit;

/// Where every budget stands, most urgent first (the quota among them when given).
pub fn statuses(ctx: &Ctx, quota: Option<QuotaInput>) -> anyhow::Result<Vec<BudgetStatus>> {
    evaluate_ctx(ctx, quota)
}

/// The table section: a heading line and the table, or a hint when there are no budgets.
pub fn table_section(ctx: &Ctx, all: &[BudgetStatus]) -> String {
    if all.is_empty() {
        return "Budgets: none (add [[budget]] tables to the config file)\n".into();
    }
    format!(
        "Budgets ({}):\n{}",
        ctx.zone.name(),
        render::budgets_table(all, &ctx.zone)
    )
}

/// The `"budgets"` value of the JSON output.
pub fn json_value(all: &[BudgetStatus]) -> Value {
    render::budgets_json(all)
}

/// `--check`: the budgets at or above `--level`, one line each (nothing when none), and the
/// exit code: 3 when there is any, else 0.
pub fn check(all: &[BudgetStatus], args: &StatusArgs) -> (String, u8) {
    let bad = render::offenders(all, args.level);
    if bad.is_empty() {
        (String::new(), exit::OK)
    } else {
        (render::check_lines(&bad), exit::THRESHOLD)
    }
}

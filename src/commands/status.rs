//! `tokmon status`: the quota counter from the state file and every budget (see
//! [`super::budgets`]), or (`--history`) every sync kept in the state file's history.
//! `--check` exits 3 when a budget, the quota included, is at or above `--level`.

use std::path::Path;

use anyhow::anyhow;
use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::budget::BudgetStatus;
use crate::cli::StatusArgs;
use crate::commands::output::{self, Align, Csv, Output};
use crate::state_file::history::{HistoryRecord, history_of, history_path};
use crate::state_file::write::resolve_symlink;
use crate::state_file::{
    DEFAULT_TOTAL, StateError, StateFile, StateView, format_count, level_word,
};
use crate::text::{printable_path, printable_string};
use crate::timefmt::{Zone, from_ms};

use super::{Ctx, budgets};
use crate::budget::QuotaInput;

pub fn run(ctx: &Ctx, args: &StatusArgs) -> anyhow::Result<u8> {
    if !args.no_import {
        ctx.refresh_logs();
    }
    if args.history {
        // The history is found from the state file; a --db that could never be read is still
        // refused, as every command refuses it.
        crate::regular::check_regular_or_missing(&ctx.db, "database")?;
        let (rows, journal) = history_of(&ctx.state)?;
        if journal.unreadable > 0 {
            crate::error::tell!(
                "tokmon: note: {} unreadable line(s) in {} were skipped",
                journal.unreadable,
                printable_path(&history_path(&resolve_symlink(&ctx.state)))
            );
        }
        let history = History {
            rows: &rows,
            zone: &ctx.zone,
            state: &ctx.state,
        };
        output::emit(args.format, &history)?;
        return Ok(crate::error::exit::OK);
    }
    let file = StateFile::load(&ctx.state).map_err(StateError::into_anyhow)?;
    // Without a state file, budgets alone are still worth a status.
    if file.is_some() || !ctx.config.budgets.is_empty() {
        return run_with_budgets(ctx, args, file.as_ref());
    }
    let total = ctx.config.sync.default_total.unwrap_or(DEFAULT_TOTAL);
    Err(anyhow!(
        "no quota state file at {}. Create one with `tokmon sync VALUE --total N` \
         (VALUE: the cumulative count another tool shows, e.g. 350K; N: the quota, default {}), \
         or point --state / TOKMON_STATE at an existing file.",
        ctx.state.display(),
        format_count(total)
    ))
}

/// The quota (when there is a state file) and every budget; `--check` decides the exit code.
fn run_with_budgets(ctx: &Ctx, args: &StatusArgs, file: Option<&StateFile>) -> anyhow::Result<u8> {
    let quota = file.map(|f| {
        let v = f.view();
        QuotaInput {
            used: v.used,
            total: v.total.unwrap_or(0),
            ..Default::default()
        }
    });
    let all = budgets::statuses(ctx, quota)?;
    let (check_out, code) = if args.check {
        budgets::check(&all, args)
    } else {
        (String::new(), crate::error::exit::OK)
    };
    let status = Status {
        ctx,
        file,
        budgets: &all,
    };
    if args.check {
        output::emit(
            args.format,
            &Checked {
                offending: check_out,
                status,
            },
        )?;
    } else {
        output::emit(args.format, &status)?;
    }
    Ok(code)
}

/// `--check`: the table lists only the offending budgets, so cron mails nothing while all
/// is well; JSON and CSV are the whole status, as without it.
struct Checked<'a> {
    offending: String,
    status: Status<'a>,
}

impl Output for Checked<'_> {
    fn table(&self) -> anyhow::Result<String> {
        Ok(self.offending.clone())
    }

    fn json(&self) -> anyhow::Result<Value> {
        self.status.json()
    }

    fn csv(&self) -> anyhow::Result<Csv> {
        self.status.csv()
    }
}

/// The quota (when there is a state file) and every budget.
struct Status<'a> {
    ctx: &'a Ctx,
    file: Option<&'a StateFile>,
    budgets: &'a [BudgetStatus],
}

impl Output for Status<'_> {
    fn table(&self) -> anyhow::Result<String> {
        let quota = match self.file {
            Some(f) => quota_fields(f.view(), &self.ctx.state),
            None => format!("State file   {} (none yet)\n", self.ctx.state.display()),
        };
        Ok(format!(
            "{quota}\n{}",
            budgets::table_section(self.ctx, self.budgets)
        ))
    }

    fn json(&self) -> anyhow::Result<Value> {
        let mut v = match self.file {
            Some(f) => status_json(f.view()),
            None => no_state_json(),
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("budgets".into(), budgets::json_value(self.budgets));
        }
        Ok(v)
    }

    /// CSV has one row shape: the quota's.
    fn csv(&self) -> anyhow::Result<Csv> {
        match self.file {
            Some(f) => Ok(quota_csv(f.view())),
            None => Err(crate::error::bad_input(format!(
                "no quota state file at {} for --format csv (budgets are listed as a table or JSON)",
                self.ctx.state.display()
            ))),
        }
    }
}

/// The quota keys, all null, when there is no state file (the shape stays the same).
fn no_state_json() -> Value {
    json!({
        "used": null,
        "total": null,
        "percentage": null,
        "remaining": null,
        "sessions": null,
        "last_updated": null,
        "level": null,
    })
}

/// The quota numbers as JSON, with exactly the documented keys.
pub fn status_json(v: &StateView) -> Value {
    json!({
        "used": v.used,
        "total": v.total,
        "percentage": v.percentage,
        "remaining": v.remaining,
        "sessions": v.sessions,
        "last_updated": v.last_updated,
        "level": v.level.map(|l| level_word(Some(l))),
    })
}

fn or_dash(v: Option<u64>) -> String {
    v.map(format_count).unwrap_or_else(|| "-".into())
}

fn quota_csv(v: &StateView) -> Csv {
    let mut out = Csv::new([
        "used",
        "total",
        "percentage",
        "remaining",
        "sessions",
        "last_updated",
        "level",
    ]);
    let opt = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    out.row([
        v.used.to_string(),
        opt(v.total),
        v.percentage.map(|p| format!("{p:.2}")).unwrap_or_default(),
        opt(v.remaining),
        v.sessions.to_string(),
        v.last_updated.clone().unwrap_or_default(),
        v.level
            .map(|l| level_word(Some(l)).to_string())
            .unwrap_or_default(),
    ]);
    out
}

fn quota_fields(v: &StateView, path: &Path) -> String {
    let rows = [
        ("State file", path.display().to_string()),
        ("Used", format_count(v.used)),
        ("Total", or_dash(v.total)),
        (
            "Percentage",
            v.percentage
                .map(|p| format!("{p:.2} %"))
                .unwrap_or_else(|| "-".into()),
        ),
        ("Remaining", or_dash(v.remaining)),
        ("Sessions", v.sessions.to_string()),
        (
            "Last update",
            v.last_updated.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "Level",
            match v.level {
                Some(_) => level_word(v.level).to_string(),
                None => "unknown (no quota total)".into(),
            },
        ),
    ];
    output::fields(&rows, 12)
}

fn history_time(ms: i64, zone: &Zone) -> String {
    zone.to_local(from_ms(ms))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The syncs kept in the state file's history, newest first.
struct History<'a> {
    rows: &'a [HistoryRecord],
    zone: &'a Zone,
    state: &'a Path,
}

impl Output for History<'_> {
    fn json(&self) -> anyhow::Result<Value> {
        let list: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "at": history_time(r.at_ms, self.zone),
                    "value": r.value,
                    "increment": r.increment,
                    "note": r.note,
                    "method": r.method,
                })
            })
            .collect();
        Ok(json!({ "history": list }))
    }

    fn csv(&self) -> anyhow::Result<Csv> {
        let mut out = Csv::new(["at", "value", "increment", "note", "method"]);
        for r in self.rows {
            out.row([
                history_time(r.at_ms, self.zone),
                r.value.to_string(),
                r.increment.to_string(),
                printable_string(r.note.as_deref().unwrap_or_default()),
                printable_string(&r.method),
            ]);
        }
        Ok(out)
    }

    fn table(&self) -> anyhow::Result<String> {
        if self.rows.is_empty() {
            return Ok(format!(
                "No syncs recorded for {}.\n",
                printable_path(self.state)
            ));
        }
        use Align::{Left, Right};
        let mut t = output::aligned(
            &["When", "Value", "Increment", "Method", "Note"],
            &[Left, Right, Right, Left, Left],
        );
        for r in self.rows {
            t.add_row(vec![
                self.zone
                    .to_local(from_ms(r.at_ms))
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                format_count(r.value),
                format!("+{}", format_count(r.increment)),
                printable_string(&r.method),
                printable_string(r.note.as_deref().unwrap_or_default()),
            ]);
        }
        Ok(output::render_table(&t) + "\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn history_table_lines_up_wide_text_by_display_width() {
        let rec = |method: &str| HistoryRecord {
            id: "s".into(),
            at_ms: 1_763_473_191_578,
            value: 350_000,
            increment: 1_000,
            note: Some("note".into()),
            method: method.into(),
            last_updated: String::new(),
        };
        let rows = [rec("同期"), rec("sync")];
        let h = History {
            rows: &rows,
            zone: &Zone::UTC,
            state: Path::new("state.json"),
        };
        let text = h.table().unwrap();
        // The notes start at the same screen column on every line.
        let cols: Vec<usize> = text
            .lines()
            .skip(1)
            .map(|l| l[..l.find("note").unwrap()].width())
            .collect();
        assert_eq!(cols[0], cols[1], "{text}");
    }
}

//! `tokmon status`: the quota counter from the state file and every budget (see
//! [`super::budgets`]), or (`--history`) every sync kept in the state file's history.
//! `--check` exits 3 when a budget, the quota included, is at or above `--level`.

use std::path::Path;

use anyhow::anyhow;
use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::cli::{OutputFormat, StatusArgs};
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
            eprintln!(
                "tokmon: note: {} unreadable line(s) in {} were skipped",
                journal.unreadable,
                printable_path(&history_path(&resolve_symlink(&ctx.state)))
            );
        }
        crate::error::emit(&render_history(&rows, args.format, &ctx.zone, &ctx.state))?;
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
    if args.check && args.format == OutputFormat::Table {
        // Only the offending budgets, so cron mails nothing while all is well.
        crate::error::emit(&check_out)?;
        return Ok(code);
    }
    let out = match (args.format, file) {
        (OutputFormat::Json, _) => {
            let mut v = match file {
                Some(f) => status_json(f.view()),
                None => no_state_json(),
            };
            if let Some(o) = v.as_object_mut() {
                o.insert("budgets".into(), budgets::json_value(&all));
            }
            serde_json::to_string_pretty(&v)? + "\n"
        }
        // CSV has one row shape: the quota's.
        (OutputFormat::Csv, Some(f)) => render_status(f.view(), args.format, &ctx.state),
        (OutputFormat::Csv, None) => {
            return Err(crate::error::bad_input(format!(
                "no quota state file at {} for --format csv (budgets are listed as a table or JSON)",
                ctx.state.display()
            )));
        }
        (OutputFormat::Table, f) => {
            let quota = match f {
                Some(f) => render_status(f.view(), args.format, &ctx.state),
                None => format!("State file   {} (none yet)\n", ctx.state.display()),
            };
            format!("{quota}\n{}", budgets::table_section(ctx, &all))
        }
    };
    crate::error::emit(&out)?;
    Ok(code)
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

fn render_status(v: &StateView, format: OutputFormat, path: &Path) -> String {
    match format {
        OutputFormat::Json => {
            serde_json::to_string_pretty(&status_json(v)).expect("JSON value serialises") + "\n"
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record([
                "used",
                "total",
                "percentage",
                "remaining",
                "sessions",
                "last_updated",
                "level",
            ]);
            let opt = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
            let _ = w.write_record([
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
            String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        OutputFormat::Table => {
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
            rows.iter()
                .map(|(k, val)| format!("{k:<12} {val}\n"))
                .collect()
        }
    }
}

fn history_time(ms: i64, zone: &Zone) -> String {
    zone.to_local(from_ms(ms))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn render_history(
    rows: &[HistoryRecord],
    format: OutputFormat,
    zone: &Zone,
    state: &Path,
) -> String {
    match format {
        OutputFormat::Json => {
            let list: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "at": history_time(r.at_ms, zone),
                        "value": r.value,
                        "increment": r.increment,
                        "note": r.note,
                        "method": r.method,
                    })
                })
                .collect();
            serde_json::to_string_pretty(&json!({ "history": list })).expect("JSON serialises")
                + "\n"
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(["at", "value", "increment", "note", "method"]);
            for r in rows {
                let _ = w.write_record([
                    history_time(r.at_ms, zone),
                    r.value.to_string(),
                    r.increment.to_string(),
                    printable_string(r.note.as_deref().unwrap_or_default()),
                    printable_string(&r.method),
                ]);
            }
            String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        OutputFormat::Table => {
            if rows.is_empty() {
                return format!("No syncs recorded for {}.\n", printable_path(state));
            }
            let cells: Vec<[String; 5]> = rows
                .iter()
                .map(|r| {
                    [
                        zone.to_local(from_ms(r.at_ms))
                            .format("%Y-%m-%d %H:%M:%S")
                            .to_string(),
                        format_count(r.value),
                        format!("+{}", format_count(r.increment)),
                        printable_string(&r.method),
                        printable_string(r.note.as_deref().unwrap_or_default()),
                    ]
                })
                .collect();
            let head = ["When", "Value", "Increment", "Method", "Note"];
            let width = |i: usize| {
                cells
                    .iter()
                    .map(|c| c[i].chars().count())
                    .chain([head[i].len()])
                    .max()
                    .unwrap_or(0)
            };
            let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
            let line = |c: [&str; 5]| {
                format!(
                    "{:<w0$}  {:>w1$}  {:>w2$}  {:<w3$}  {}",
                    c[0], c[1], c[2], c[3], c[4]
                )
                .trim_end()
                .to_string()
                    + "\n"
            };
            let mut out = line(head);
            for c in &cells {
                out += &line([&c[0], &c[1], &c[2], &c[3], &c[4]]);
            }
            out
        }
    }
}

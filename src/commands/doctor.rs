//! `tokmon doctor`: what tokmon found and uses — the config file, the database, the state
//! file, the agent logs and how they are watched, the models without a price — and what to
//! do about anything broken (exit 1 then). It reads only; it imports nothing.

use std::path::{Path, PathBuf};

use crate::cli::GlobalArgs;
use crate::commands::Ctx;
use crate::numfmt::thousands;

/// One line of the report: a heading, what was found, and a problem with its remedy.
struct Item {
    what: &'static str,
    found: String,
    problem: Option<String>,
}

fn ok(what: &'static str, found: impl Into<String>) -> Item {
    Item {
        what,
        found: found.into(),
        problem: None,
    }
}

fn broken(what: &'static str, found: impl Into<String>, fix: impl Into<String>) -> Item {
    Item {
        what,
        found: found.into(),
        problem: Some(fix.into()),
    }
}

pub fn run(global: &GlobalArgs) -> anyhow::Result<u8> {
    let ctx = match Ctx::from_args(global) {
        Ok(c) => c,
        Err(e) => {
            let items = [broken(
                "config file",
                format!("{e:#}"),
                "fix the file (or move it away: every key is optional)",
            )];
            crate::error::emit(&render(&items))?;
            return Ok(1);
        }
    };
    let mut items = vec![config_item(&ctx)];
    items.extend(database_items(&ctx));
    items.push(state_item(&ctx));
    items.extend(log_items(&ctx));
    let out = render(&items);
    crate::error::emit(&out)?;
    Ok(if items.iter().any(|i| i.problem.is_some()) {
        1
    } else {
        0
    })
}

fn render(items: &[Item]) -> String {
    let mut out = String::new();
    for i in items {
        out.push_str(&format!("{:<13}{}\n", i.what, i.found));
        if let Some(p) = &i.problem {
            out.push_str(&format!("{:<13}! {p}\n", ""));
        }
    }
    let problems = items.iter().filter(|i| i.problem.is_some()).count();
    out.push_str(&match problems {
        0 => "\nNothing is broken.\n".to_string(),
        1 => "\n1 problem (marked !).\n".to_string(),
        n => format!("\n{n} problems (marked !).\n"),
    });
    out
}

fn show(p: &Path) -> String {
    crate::paths::display_path(p)
}

fn config_item(ctx: &Ctx) -> Item {
    match &ctx.config_path {
        Some(p) => ok("config file", show(p)),
        None => ok(
            "config file",
            format!(
                "none (all defaults; {} would be read)",
                show(&crate::paths::default_config_file())
            ),
        ),
    }
}

fn database_items(ctx: &Ctx) -> Vec<Item> {
    let named = if ctx.db_named { "named" } else { "the default" };
    if !crate::store::db_present(&ctx.db) {
        let fix = if ctx.db_named {
            Some("check --db / TOKMON_DB / config `db`".to_string())
        } else {
            None
        };
        return vec![Item {
            what: "database",
            found: format!(
                "{} ({named}): not there yet; `tokmon import`, `tokmon record` or any report creates it",
                show(&ctx.db)
            ),
            problem: fix,
        }];
    }
    let source = match ctx.open_source() {
        Ok(s) => s,
        Err(e) => {
            return vec![broken(
                "database",
                format!("{} ({named}): {e:#}", show(&ctx.db)),
                "point --db at a usage database, or --schema / [[table]] at its table",
            )];
        }
    };
    let version = source.schema_version();
    let kind = if source.kind.is_native() {
        format!("native (schema version {version})")
    } else {
        format!("{} (foreign, read-only)", source.kind.label())
    };
    let mut items = vec![ok(
        "database",
        format!("{} ({named}), {kind}", show(&ctx.db)),
    )];
    let rows = source.row_count();
    let last = source.time_bounds();
    match (rows, last) {
        (Ok(n), Ok(bounds)) => items.push(ok(
            "",
            format!(
                "{} rows; last event {}",
                thousands(n),
                bounds
                    .map(|(_, b)| local(ctx, b))
                    .unwrap_or_else(|| "none".into())
            ),
        )),
        (Err(e), _) | (_, Err(e)) => items.push(broken(
            "",
            format!("cannot be read: {e:#}"),
            "check the file's permissions, or run `tokmon doctor --db PATH` on a copy",
        )),
    }
    if let Ok(r) = crate::report::build(
        &source,
        crate::range::TimeRange {
            from: None,
            to: None,
        },
        crate::report::Grouping::Dim(crate::store::Dimension::Model),
        ctx.cost_mode,
        &ctx.zone,
    ) && !r.unpriced.is_empty()
    {
        let names: Vec<String> = r
            .unpriced
            .iter()
            .map(|(m, n)| format!("{} ({} events)", crate::text::printable(m), thousands(*n)))
            .collect();
        items.push(ok(
            "no price",
            format!(
                "{} — counted at $0; `tokmon prices MODEL` shows how names resolve",
                names.join(", ")
            ),
        ));
    }
    items
}

fn local(ctx: &Ctx, ms: i64) -> String {
    ctx.zone
        .to_local(crate::timefmt::from_ms(ms))
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

fn state_item(ctx: &Ctx) -> Item {
    match crate::state_file::StateFile::load(&ctx.state) {
        Ok(None) => ok(
            "state file",
            format!(
                "{}: none (optional; `tokmon sync VALUE --total N` makes one)",
                show(&ctx.state)
            ),
        ),
        Ok(Some(f)) => {
            let v = f.view();
            let of = match (v.total, v.percentage) {
                (Some(t), Some(p)) => format!(" of {} ({p:.1}%)", thousands(t)),
                _ => " (no total)".into(),
            };
            ok(
                "state file",
                format!("{}: {} used{of}", show(&ctx.state), thousands(v.used)),
            )
        }
        Err(e) => broken(
            "state file",
            format!("{}: {e}", show(&ctx.state)),
            "fix the JSON by hand or move the file away; a sync never overwrites a file it cannot read",
        ),
    }
}

fn log_items(ctx: &Ctx) -> Vec<Item> {
    let logs = ctx.log_paths();
    let mut items = Vec::new();
    let how = if !ctx.discover {
        "discovery off (--no-discover or config `discover = false`)"
    } else if ctx.db_named {
        "discovery off: a database is named, so only the config's `logs` are imported"
    } else {
        "discovery on"
    };
    items.push(ok("agent logs", how));
    let state = import_state(&ctx.db);
    let mut watched: Vec<PathBuf> = Vec::new();
    let places = logs
        .places
        .iter()
        .map(|p| (p.agent.to_string(), p.path.clone()))
        .chain(
            logs.configured
                .iter()
                .map(|p| ("logs".to_string(), p.clone())),
        );
    for (agent, path) in places {
        if !path.exists() {
            let item = if agent == "logs" {
                broken(
                    "",
                    format!("{agent}: {} not found", show(&path)),
                    "fix the path in the config's `logs`",
                )
            } else {
                ok("", format!("{agent}: {} not found", show(&path)))
            };
            items.push(item);
            continue;
        }
        watched.push(path.clone());
        match crate::import::collect_files(std::slice::from_ref(&path)) {
            Ok(files) => {
                let prefix = std::fs::canonicalize(&path).unwrap_or(path.clone());
                let prefix = prefix.to_string_lossy().into_owned();
                let known: Vec<&(String, i64)> = state
                    .iter()
                    .filter(|(p, _)| p.starts_with(&prefix))
                    .collect();
                let last = known.iter().map(|(_, at)| *at).max();
                items.push(ok(
                    "",
                    format!(
                        "{agent}: {}: {} file{}, {} imported, last import {}",
                        show(&path),
                        thousands(files.len() as u64),
                        if files.len() == 1 { "" } else { "s" },
                        thousands(known.len() as u64),
                        last.map(|ms| local(ctx, ms))
                            .unwrap_or_else(|| "never".into())
                    ),
                ));
            }
            Err(e) => items.push(broken(
                "",
                format!("{agent}: {}: {e:#}", show(&path)),
                "check the directory's permissions",
            )),
        }
    }
    if !watched.is_empty() {
        items.push(ok("watcher", watcher_mode(&watched)));
    }
    items
}

/// The files the database knows, with when each was last imported (unix ms).
fn import_state(db: &Path) -> Vec<(String, i64)> {
    // Only a regular file: SQLite would block opening a FIFO.
    if !std::fs::metadata(db).is_ok_and(|m| m.is_file()) {
        return Vec::new();
    }
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT path, updated_at FROM import_files") else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

/// How `--follow` and the monitor would notice new lines here.
fn watcher_mode(paths: &[PathBuf]) -> String {
    use notify::Watcher;
    let Ok(mut w) = notify::recommended_watcher(|_: notify::Result<notify::Event>| {}) else {
        return "polling every 500 ms (no file-system watcher available)".into();
    };
    let ok = paths
        .iter()
        .filter(|p| w.watch(p, notify::RecursiveMode::Recursive).is_ok())
        .count();
    if ok == paths.len() {
        "file-system events, with a rescan every 2 s".into()
    } else if ok > 0 {
        format!(
            "file-system events on {ok} of {} paths, a rescan every 2 s for the rest",
            paths.len()
        )
    } else {
        "polling every 500 ms (the paths cannot be watched)".into()
    }
}

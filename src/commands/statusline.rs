//! `tokmon statusline`: one short line for Claude Code's status-line hook.
//!
//! Claude Code runs the command after each reply with a JSON object on stdin (`session_id`,
//! `transcript_path`, `model`, `workspace`, `cwd`) and shows the first line of stdout. The line
//! holds the session's cost, today's cost, the active 5-hour block's cost and time left, and the
//! quota percentage. It must never break the hook: whatever goes wrong, a short marker is
//! printed and the exit code is 0 (the reason goes to stderr).

use std::io::{IsTerminal, Read, Write};

use rusqlite::params;
use serde::Deserialize;

use crate::blocks::{self, BLOCK_AGENT, Limit};
use crate::cli::GlobalArgs;
use crate::commands::Ctx;
use crate::cost::cost_of;
use crate::numfmt::{duration, usd};
use crate::store::query::flagged_row;
use crate::store::{AggQuery, Dimension, Source};

/// What is printed when the line cannot be made.
pub const MARKER: &str = "tokmon: ?";

/// The largest hook input read (Claude Code sends well under a kilobyte).
const MAX_INPUT: u64 = 1 << 20;

/// The parts of the hook's JSON that are used; everything is optional.
#[derive(Debug, Default, Deserialize)]
pub struct HookInput {
    pub session_id: Option<String>,
    pub transcript_path: Option<std::path::PathBuf>,
    pub model: Option<HookModel>,
    pub cwd: Option<String>,
    pub workspace: Option<HookWorkspace>,
}

#[derive(Debug, Default, Deserialize)]
pub struct HookModel {
    pub id: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct HookWorkspace {
    pub current_dir: Option<String>,
}

/// Run the hook: never an error, always exit 0.
pub fn run(global: &GlobalArgs) -> u8 {
    let line = std::panic::catch_unwind(|| line_for(global))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("internal error")));
    // Written without panicking: a hook whose reader went away still exits 0.
    match line {
        Ok(l) => {
            let _ = writeln!(std::io::stdout(), "{l}");
        }
        Err(e) => {
            let _ = writeln!(std::io::stdout(), "{MARKER}");
            let _ = writeln!(
                std::io::stderr(),
                "tokmon statusline: {}",
                crate::text::printable_lines(&format!("{e:#}"))
            );
        }
    }
    0
}

fn read_input() -> anyhow::Result<HookInput> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(HookInput::default());
    }
    let mut text = String::new();
    stdin.lock().take(MAX_INPUT).read_to_string(&mut text)?;
    if text.trim().is_empty() {
        return Ok(HookInput::default());
    }
    Ok(serde_json::from_str(&text)?)
}

fn line_for(global: &GlobalArgs) -> anyhow::Result<String> {
    let input = read_input()?;
    let ctx = Ctx::from_args(global)?;
    let mut source = open_source(&ctx)?;
    // What this reply added: the session's own log, read incrementally.
    if let Some(t) = &input.transcript_path
        && ctx.discover
        && !ctx.db_named
        && t.is_file()
    {
        match import_transcript(&ctx, source.as_ref(), t) {
            Ok(true) => source = open_source(&ctx)?,
            Ok(false) => {}
            Err(e) => tracing::warn!("statusline import: {e:#}"),
        }
    }
    let state = crate::state_file::StateFile::load(&ctx.state)
        .ok()
        .flatten();
    let limit = ctx
        .config
        .block_limit
        .as_deref()
        .map(Limit::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let parts = Parts {
        model: input
            .model
            .as_ref()
            .and_then(|m| m.display_name.clone().or_else(|| m.id.clone())),
        session: match (&source, &input.session_id) {
            (Some(s), Some(id)) => session_cost(s, id, &ctx)?,
            _ => None,
        },
        today: match &source {
            Some(s) => Some(today_cost(s, &ctx)?),
            None => None,
        },
        block: match &source {
            Some(s) => blocks::active(s, ctx.now, ctx.cost_mode)?,
            None => None,
        },
        limit,
        quota: state.and_then(|f| f.view().percentage),
        now_ms: ctx.now.timestamp_millis(),
    };
    Ok(parts.render())
}

/// The usage database, read-only, if there is one.
fn open_source(ctx: &Ctx) -> anyhow::Result<Option<Source>> {
    if !crate::store::db_present(&ctx.db) {
        return Ok(None);
    }
    let s = ctx.open_source()?;
    blocks::steady_plans(&s)?;
    Ok(Some(s))
}

/// Import what is new in the session's transcript. The database already open for reading
/// tells whether it is tokmon's own and whether the file changed, so nothing else opens it
/// unless there are lines to import (and the reader kept open spares the writer the
/// checkpoint of the last connection to close). Returns whether the database must be opened
/// again to be read: it was made or migrated meanwhile.
fn import_transcript(
    ctx: &Ctx,
    source: Option<&Source>,
    transcript: &std::path::PathBuf,
) -> anyhow::Result<bool> {
    let paths = std::slice::from_ref(transcript);
    let opts = crate::import::Options::default();
    let Some(s) = source.filter(|s| s.kind.is_native() && ctx.schema.is_none()) else {
        // No database yet, another tool's, or one read with a forced mapping: the checks of
        // every other command.
        return Ok(crate::discover::refresh_paths(&ctx.db, paths, &opts)?.is_some());
    };
    if !crate::discover::changed_in(s.conn(), paths)? {
        return Ok(false);
    }
    let version = |c: &rusqlite::Connection| -> rusqlite::Result<i64> {
        c.query_row("PRAGMA schema_version", [], |r| r.get(0))
    };
    let before = version(s.conn())?;
    let conn = crate::store::native::open_rw(&ctx.db)?;
    crate::import::import_paths(&conn, paths, &opts, None)?;
    drop(conn);
    Ok(version(s.conn())? != before)
}

/// The numbers of the line.
#[derive(Debug, Default)]
pub struct Parts {
    pub model: Option<String>,
    pub session: Option<f64>,
    pub today: Option<f64>,
    pub block: Option<blocks::Block>,
    pub limit: Option<Limit>,
    pub quota: Option<f64>,
    pub now_ms: i64,
}

impl Parts {
    /// `Opus 4.1 | session $0.42 | today $3.10 | block $2.05 41% (2h 13m left) | quota 45%`.
    pub fn render(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        if let Some(m) = &self.model {
            out.push(m.chars().filter(|c| !c.is_control()).take(40).collect());
        }
        if let Some(c) = self.session {
            out.push(format!("session {}", usd(c)));
        }
        if let Some(c) = self.today {
            out.push(format!("today {}", usd(c)));
        }
        match &self.block {
            Some(b) => {
                let pct = match self.limit {
                    Some(Limit::Tokens(n)) => Some(b.tokens.total() as f64 / n as f64 * 100.0),
                    Some(Limit::Usd(u)) => Some(b.cost_usd / u * 100.0),
                    // The largest past block needs all history: not within a hook's budget.
                    Some(Limit::Max) | None => None,
                };
                out.push(format!(
                    "block {}{} ({} left)",
                    usd(b.cost_usd),
                    pct.map(|p| format!(" {p:.0}%")).unwrap_or_default(),
                    duration((b.end_ms - self.now_ms) / 1000)
                ));
            }
            None => out.push("no active block".into()),
        }
        if let Some(q) = self.quota {
            out.push(format!("quota {q:.0}%"));
        }
        out.join(" | ")
    }
}

/// Cost of one session's Claude Code events (through the session index, never a scan).
fn session_cost(source: &Source, session: &str, ctx: &Ctx) -> anyhow::Result<Option<f64>> {
    if !source.kind.is_native() || source.empty {
        return Ok(None);
    }
    if let Some(rows) = source.pg_session_sums(session, BLOCK_AGENT)? {
        let cost = rows
            .iter()
            .map(|r| cost_of(&r.sums, r.model.as_deref(), ctx.cost_mode).usd);
        return Ok((!rows.is_empty()).then(|| cost.sum()));
    }
    // The column layout of a scan (see `flagged_row`), with the model as the only key.
    let m = &source.mapping;
    let mut stmt = source.conn().prepare_cached(&format!(
        "SELECT NULL, NULL, model, cost_usd > 0 AS pos, {long} AS lc, COUNT(*), TOTAL(input_tokens),
                TOTAL(output_tokens), TOTAL(cache_creation_tokens), TOTAL(cache_read_tokens),
                TOTAL({cw1h}), TOTAL(cost_usd)
         FROM events WHERE session = ?1 AND agent = ?2 GROUP BY 3, 4, 5",
        long = m.long_context_sql(),
        cw1h = m.tokens_sql(&m.counts.cache_creation_1h_tokens),
    ))?;
    let mut rows = stmt.query(params![session, BLOCK_AGENT])?;
    let mut total = 0.0;
    let mut any = false;
    while let Some(r) = rows.next()? {
        any = true;
        let row = flagged_row(r)?;
        total += cost_of(&row.sums, row.model.as_deref(), ctx.cost_mode).usd;
    }
    Ok(any.then_some(total))
}

/// Cost of today's (local day) Claude Code events, from the rollup: on the native store its
/// rows of that agent alone (through the rollup's key), else a grouped read by agent.
fn today_cost(source: &Source, ctx: &Ctx) -> anyhow::Result<f64> {
    let from_ms = ctx.zone.start_of_day(ctx.now).timestamp_millis();
    if let Some(cost) = blocks::agent_cost_since(source, from_ms, ctx.cost_mode)? {
        return Ok(cost);
    }
    let rows = source.aggregate(&AggQuery {
        from_ms: Some(from_ms),
        to_ms: None,
        by: Some(Dimension::Agent),
        bucket_ms: None,
    })?;
    Ok(rows
        .iter()
        .filter(|r| r.key.as_deref() == Some(BLOCK_AGENT))
        .map(|r| cost_of(&r.sums, r.model.as_deref(), ctx.cost_mode).usd)
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query::Tokens;

    #[test]
    fn line_shapes() {
        let hour = 3_600_000;
        let p = Parts {
            model: Some("Opus 4.1".into()),
            session: Some(0.42),
            today: Some(3.1),
            block: Some(blocks::Block {
                start_ms: 0,
                end_ms: 5 * hour,
                cost_usd: 2.05,
                tokens: Tokens {
                    input: 400_000,
                    ..Tokens::default()
                },
                active: true,
                ..blocks::Block::default()
            }),
            limit: Some(Limit::Tokens(1_000_000)),
            quota: Some(45.2),
            now_ms: 2 * hour + 47 * 60_000,
        };
        assert_eq!(
            p.render(),
            "Opus 4.1 | session $0.42 | today $3.10 | block $2.05 40% (2h 13m left) | quota 45%"
        );
        assert_eq!(Parts::default().render(), "no active block");
    }

    #[test]
    fn hook_input_with_unknown_fields() {
        let h: HookInput = serde_json::from_str(
            r#"{"hook_event_name":"Status","session_id":"abc","transcript_path":"/t.jsonl",
                "cwd":"/w","model":{"id":"claude-opus-4-1","display_name":"Opus"},
                "workspace":{"current_dir":"/w","project_dir":"/w"},"version":"1.0.80",
                "output_style":{"name":"default"},"cost":{"total_cost_usd":0.01}}"#,
        )
        .unwrap();
        assert_eq!(h.session_id.as_deref(), Some("abc"));
        assert_eq!(h.model.unwrap().display_name.as_deref(), Some("Opus"));
    }
}

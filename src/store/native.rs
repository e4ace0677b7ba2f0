//! tokmon's own database: schema from `migrations/`, WAL, and the writes (`record`, imports,
//! sync history).

use std::path::Path;
use std::sync::LazyLock;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

use crate::error::bad_input;

/// The SQL files of `migrations/`, embedded at build time, applied in order. The applied
/// version is recorded in SQLite's `user_version`.
static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_events.sql")),
        M::up(include_str!("../../migrations/0002_import_files.sql")),
        M::up_with_hook(include_str!("../../migrations/0003_rollups.sql"), |tx| {
            rebuild_rollup(tx)?;
            Ok(())
        }),
        M::up(include_str!("../../migrations/0004_rollup_triggers.sql")),
        M::up(include_str!("../../migrations/0007_session_index.sql")),
    ])
});

/// Recompute the rollup table from the events (after a bulk load without triggers, or when
/// the rollup table is first created).
pub fn rebuild_rollup(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM rollup_15m;
         INSERT INTO rollup_15m
         SELECT ts / 900000, model, COALESCE(agent, ''), COALESCE(provider, ''),
                COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens),
                SUM(cache_read_tokens), TOTAL(cost_usd), TOTAL(CASE WHEN cost_usd > 0 THEN cost_usd END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE 1 END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE input_tokens END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE output_tokens END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE cache_creation_tokens END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE cache_read_tokens END)
         FROM events
         GROUP BY 1, 2, 3, 4;",
    )
}

/// How long a writer waits for another writer's lock before giving up.
pub const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Open (creating and migrating if needed) the native database for writing.
/// Refuses, before anything is written to it, a database that tokmon did not make: another
/// tool's, one whose `events` table lacks columns, or one from a newer tokmon.
pub fn open_rw(path: &Path) -> anyhow::Result<Connection> {
    if path.exists() {
        check_writable_native(path)?;
    } else if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let mut conn = Connection::open(path)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    configure(&conn)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// The schema version this build migrates to (read beside a database's own version).
fn latest_version(conn: &Connection) -> usize {
    // `pending` is the number of migrations minus the database's version (negative when the
    // database is ahead).
    let pending = i64::from(MIGRATIONS.pending_migrations(conn).unwrap_or(0));
    let have = i64::try_from(user_version(conn).unwrap_or(0)).unwrap_or(i64::MAX);
    usize::try_from(pending.saturating_add(have)).unwrap_or(0)
}

fn user_version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

/// Look at an existing file read-only: it must be empty, or tokmon's own at a version this
/// build knows, with the columns tokmon writes.
fn check_writable_native(path: &Path) -> anyhow::Result<()> {
    let conn = super::open_read_only(path)?;
    let shown = crate::text::printable_path(path);
    match super::detect(&conn)? {
        Ok(None) => Ok(()),
        Ok(Some(kind)) if !kind.is_native() => Err(bad_input(format!(
            "{shown} is a {} database written by another tool; tokmon only reads it and never writes into it. \
             Record into a native database instead (--db with a new or tokmon-made file).",
            kind.label()
        ))),
        Ok(Some(_)) => {
            let version = user_version(&conn)?;
            let latest = latest_version(&conn);
            if version == 0 {
                return Err(bad_input(format!(
                    "{shown} has an `events` table that tokmon did not create (no schema version); \
                     tokmon never writes into it. Give --db a new file or one tokmon made."
                )));
            }
            if latest > 0 && version > latest {
                return Err(bad_input(format!(
                    "{shown} was written by a newer tokmon (schema version {version}; this one knows up to {latest}); \
                     update tokmon to write into it"
                )));
            }
            super::check_columns(&conn, path, &super::Mapping::native())
        }
        Err(tables) => Err(bad_input(format!(
            "{shown} is neither a tokmon database nor a tracker's that tokmon knows (tables: {}); \
             tokmon never writes into it. Give --db a new file or one tokmon made.",
            crate::text::printable(&tables.join(", "))
        ))),
    }
}

/// Bring the schema up to date. The migration runs in an IMMEDIATE transaction, so a second
/// process waits (busy timeout) for the first to finish rather than failing; when it gets the
/// lock and finds the work already done, it looks again and has nothing left to do.
fn migrate(conn: &mut Connection, path: &Path) -> anyhow::Result<()> {
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    let mut attempts = 0;
    let result = loop {
        let before = user_version(conn)?;
        match MIGRATIONS.to_latest(conn) {
            Ok(()) => break Ok(()),
            Err(e) => {
                let moved = user_version(conn).is_ok_and(|now| now != before);
                if attempts < 4 && (moved || migration_busy(&e)) {
                    attempts += 1;
                    continue;
                }
                break Err(e);
            }
        }
    };
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Deferred);
    result.map_err(|e| {
        let cause = match e {
            // The SQL of the failed migration is not for the user; the cause is.
            rusqlite_migration::Error::RusqliteError { err, .. } => {
                super::explain_sqlite_error(err, path)
            }
            other => anyhow::Error::new(other),
        };
        cause.context(format!("cannot migrate database {}", path.display()))
    })
}

fn migration_busy(e: &rusqlite_migration::Error) -> bool {
    matches!(
        e,
        rusqlite_migration::Error::RusqliteError {
            err: rusqlite::Error::SqliteFailure(f, _),
            ..
        } if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// WAL so readers never block the writer, a busy timeout so concurrent writers wait.
fn configure(conn: &Connection) -> anyhow::Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// One event to write. Dimension values that are empty become NULL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEvent {
    pub ts_ms: i64,
    pub provider: Option<String>,
    pub model: String,
    pub agent: Option<String>,
    pub session: Option<String>,
    pub project: Option<String>,
    pub user: Option<String>,
    pub channel: Option<String>,
    pub operation: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_tokens: u64,
    pub cache_read_tokens: u64,
    pub cost_usd: Option<f64>,
    pub duration_ms: Option<f64>,
    pub source: String,
    pub unique_key: Option<String>,
    /// JSON text (validated before it gets here).
    pub metadata: Option<String>,
}

fn none_if_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn as_i64(n: u64, what: &str) -> anyhow::Result<i64> {
    i64::try_from(n).map_err(|_| bad_input(format!("{what} {n} is too large to store")))
}

/// Insert events in one transaction. Events whose unique key is already stored are skipped.
/// Returns (inserted, skipped as duplicates).
pub fn insert_events<'a>(
    conn: &mut Connection,
    events: impl IntoIterator<Item = &'a NewEvent>,
) -> anyhow::Result<(u64, u64)> {
    let tx = conn.transaction()?;
    let counts = insert_events_in(&tx, events)?;
    tx.commit()?;
    Ok(counts)
}

/// Like [`insert_events`], inside a transaction the caller manages.
pub fn insert_events_in<'a>(
    conn: &Connection,
    events: impl IntoIterator<Item = &'a NewEvent>,
) -> anyhow::Result<(u64, u64)> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (ts, provider, model, agent, session, project, user, channel, operation,
             input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd,
             duration_ms, source, unique_key, metadata)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
         ON CONFLICT (unique_key) DO NOTHING",
    )?;
    let (mut inserted, mut skipped) = (0u64, 0u64);
    for e in events {
        let n = stmt.execute(params![
            e.ts_ms,
            none_if_empty(&e.provider),
            e.model,
            none_if_empty(&e.agent),
            none_if_empty(&e.session),
            none_if_empty(&e.project),
            none_if_empty(&e.user),
            none_if_empty(&e.channel),
            none_if_empty(&e.operation),
            as_i64(e.input_tokens, "input tokens")?,
            as_i64(e.output_tokens, "output tokens")?,
            as_i64(e.cache_creation_tokens, "cache-write tokens")?,
            as_i64(e.cache_read_tokens, "cache-read tokens")?,
            e.cost_usd,
            e.duration_ms,
            e.source,
            e.unique_key,
            e.metadata,
        ])?;
        if n == 1 {
            inserted += 1;
        } else {
            skipped += 1;
        }
    }
    Ok((inserted, skipped))
}

/// One row of the sync history (every manual sync of the quota counter).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRecord {
    pub at_ms: i64,
    pub value: u64,
    pub increment: u64,
    pub note: Option<String>,
    pub method: String,
    pub state_path: Option<String>,
}

/// Append one sync to the history table.
pub fn append_sync(conn: &Connection, rec: &SyncRecord) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO sync_history (at, value, increment, note, method, state_path)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            rec.at_ms,
            as_i64(rec.value, "value")?,
            as_i64(rec.increment, "increment")?,
            rec.note,
            rec.method,
            rec.state_path
        ],
    )?;
    Ok(())
}

/// The sync history, newest first.
pub fn sync_history(conn: &Connection, limit: Option<usize>) -> anyhow::Result<Vec<SyncRecord>> {
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut stmt = conn.prepare(
        "SELECT at, value, increment, note, method, state_path FROM sync_history
         ORDER BY at DESC, id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok(SyncRecord {
                at_ms: r.get(0)?,
                value: r.get::<_, i64>(1)? as u64,
                increment: r.get::<_, i64>(2)? as u64,
                note: r.get(3)?,
                method: r.get(4)?,
                state_path: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The most recent sync, if any.
pub fn last_sync(conn: &Connection) -> anyhow::Result<Option<i64>> {
    Ok(conn
        .query_row("SELECT MAX(at) FROM sync_history", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().unwrap();
    }

    #[test]
    fn concurrent_creators_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.db");
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let p = path.clone();
                std::thread::spawn(move || open_rw(&p).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    }

    #[test]
    fn insert_is_idempotent_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_rw(&dir.path().join("t.db")).unwrap();
        let e = NewEvent {
            ts_ms: 1,
            model: "m".into(),
            input_tokens: 5,
            source: "test".into(),
            unique_key: Some("k".into()),
            ..Default::default()
        };
        assert_eq!(insert_events(&mut conn, [&e, &e]).unwrap(), (1, 1));
        assert_eq!(insert_events(&mut conn, [&e]).unwrap(), (0, 1));
    }
}

//! Usage sources: tokmon's own database or a foreign tracker's, read through one model.
//!
//! Foreign databases are opened read-only: never migrated, never written, and every query
//! is a single statement, so no read transaction outlives it.

pub mod cache;
mod fold;
pub mod mapping;
pub mod native;
pub mod pg;
pub mod query;
pub mod url;
pub mod writer;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::config::Config;
use crate::error::bad_input;
use crate::timefmt::{Zone, epoch_number_to_ms, parse_stored_timestamp};
pub use mapping::{Dimension, Mapping};
pub use query::{AggQuery, AggRow, EventRow, Sums};
pub use writer::{FileState, ImportSink, Recorded, SqliteSink, Writer};

/// Whether `db` names a database to read: a file that is there, or a PostgreSQL URL (whose
/// server says when connecting).
pub fn db_present(db: &Path) -> bool {
    pg::is_url(db) || db.exists()
}

/// How a database is named in messages and logs: a PostgreSQL URL without its password.
pub fn shown(db: &Path) -> String {
    pg::shown(db)
}

/// Name of the SQL function that turns any stored timestamp form into unix milliseconds.
pub const TS_FUNCTION: &str = "tokmon_ts";

/// Which schema a database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaKind {
    Native,
    Bot,
    ChatAgent,
    Desktop,
    /// The team service's `ai_usage` table in PostgreSQL (formats.md §4).
    AiUsage,
    /// A `[[table]]` from the config file, by name.
    Custom(String),
}

impl SchemaKind {
    pub fn is_native(&self) -> bool {
        matches!(self, SchemaKind::Native)
    }

    /// Short name, as `--schema` takes it.
    pub fn label(&self) -> String {
        match self {
            SchemaKind::Native => "native".into(),
            SchemaKind::Bot => "bot".into(),
            SchemaKind::ChatAgent => "chat-agent".into(),
            SchemaKind::Desktop => "desktop".into(),
            SchemaKind::AiUsage => "ai-usage".into(),
            SchemaKind::Custom(n) => n.clone(),
        }
    }

    /// Parse `--schema`: a built-in name or a `[[table]]` name from the config.
    pub fn parse(s: &str, cfg: &Config) -> anyhow::Result<SchemaKind> {
        let k = match s.to_ascii_lowercase().as_str() {
            "native" | "tokmon" => SchemaKind::Native,
            "bot" => SchemaKind::Bot,
            "chat-agent" | "chat_agent" | "chat" => SchemaKind::ChatAgent,
            "desktop" => SchemaKind::Desktop,
            _ => {
                if cfg.tables.iter().any(|t| custom_name(t) == s) {
                    SchemaKind::Custom(s.to_string())
                } else {
                    let mut names = vec!["native", "bot", "chat-agent", "desktop"]
                        .into_iter()
                        .map(String::from)
                        .collect::<Vec<_>>();
                    names.extend(cfg.tables.iter().map(|t| custom_name(t).to_string()));
                    return Err(bad_input(format!(
                        "unknown schema '{s}': use one of {}",
                        names.join(", ")
                    )));
                }
            }
        };
        Ok(k)
    }

    pub fn mapping(&self, cfg: &Config) -> anyhow::Result<Mapping> {
        Ok(match self {
            SchemaKind::Native => Mapping::native(),
            SchemaKind::Bot => Mapping::bot(),
            SchemaKind::ChatAgent => Mapping::chat_agent(),
            SchemaKind::Desktop => Mapping::desktop(),
            SchemaKind::AiUsage => Mapping::ai_usage(),
            SchemaKind::Custom(name) => {
                let t = cfg
                    .tables
                    .iter()
                    .find(|t| custom_name(t) == name)
                    .ok_or_else(|| {
                        bad_input(format!("no [[table]] named '{name}' in the config"))
                    })?;
                Mapping::custom(t)?
            }
        })
    }
}

impl fmt::Display for SchemaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

fn custom_name(t: &crate::config::CustomTable) -> &str {
    t.name.as_deref().unwrap_or(&t.table)
}

/// The tables of a database and their columns.
pub fn tables(conn: &Connection) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for name in names {
        let mut cols = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
        let c = cols
            .query_map([&name], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        out.push((name, c));
    }
    Ok(out)
}

/// Detect the schema from tables and columns. `Ok(None)`: the database has no tables yet.
pub fn detect(conn: &Connection) -> anyhow::Result<Result<Option<SchemaKind>, Vec<String>>> {
    let t = tables(conn)?;
    if t.is_empty() {
        return Ok(Ok(None));
    }
    let has = |table: &str, cols: &[&str]| {
        t.iter()
            .any(|(n, c)| n == table && cols.iter().all(|want| c.iter().any(|have| have == want)))
    };
    let kind = if has(
        "events",
        &[
            "ts",
            "model",
            "input_tokens",
            "cache_creation_tokens",
            "unique_key",
        ],
    ) {
        Some(SchemaKind::Native)
    } else if has(
        "token_usage",
        &[
            "endpoint_name",
            "cache_creation_tokens",
            "cache_read_tokens",
        ],
    ) {
        Some(SchemaKind::Desktop)
    } else if has(
        "token_usage",
        &["chat_mode", "model_name", "input_tokens", "output_tokens"],
    ) {
        Some(SchemaKind::ChatAgent)
    } else if has(
        "token_usage",
        &["provider", "model", "input_tokens", "output_tokens"],
    ) {
        Some(SchemaKind::Bot)
    } else {
        None
    };
    Ok(kind
        .map(Some)
        .ok_or_else(|| t.into_iter().map(|(n, _)| n).collect()))
}

/// Detect the schema of a database file without changing it.
pub fn detect_path(path: &Path) -> anyhow::Result<Option<SchemaKind>> {
    let conn = open_read_only(path)?;
    match detect(&conn)? {
        Ok(k) => Ok(k),
        Err(tables) => Ok(Some(SchemaKind::Custom(format!(
            "unrecognised (tables: {})",
            tables.join(", ")
        )))),
    }
}

pub(crate) fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    // SQLite would block opening a FIFO, and read a device forever.
    crate::regular::check_regular_or_missing(path, "database")?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .with_context(|| format!("cannot open database {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_millis(native::BUSY_TIMEOUT_MS))?;
    // A file that is not a database (or one that cannot be read now) fails here rather than
    // in the first query.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| explain_sqlite_error(e, path))?;
    Ok(conn)
}

/// Say what is really wrong when SQLite fails on a database file, and what to do.
pub(crate) fn explain_sqlite_error(err: rusqlite::Error, path: &Path) -> anyhow::Error {
    explain_with(err, path, dir_writable)
}

fn explain_with(err: rusqlite::Error, path: &Path, writable: fn(&Path) -> bool) -> anyhow::Error {
    use rusqlite::ErrorCode;
    let shown = crate::text::printable_path(path);
    let code = match &err {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => anyhow::anyhow!(
            "{shown} is locked: another process has been writing to it for over {} s. \
             Try again when that writer is done (a tracker that keeps a write transaction open \
             should commit more often).",
            native::BUSY_TIMEOUT_MS / 1000
        ),
        Some(ErrorCode::NotADatabase) => {
            anyhow::anyhow!("{shown} is not a SQLite database (is --db the right file?)")
        }
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen)
            if wal_needs_writable_dir(path, writable) =>
        {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            anyhow::anyhow!(
                "{shown} is in WAL mode, and SQLite must create its -wal and -shm files to read it, \
                 but the directory {} is not writable. Make the directory writable, or copy the \
                 database (with any -wal file) to a writable place and point --db at the copy.",
                crate::text::printable_path(dir)
            )
        }
        _ => anyhow::Error::new(err).context(format!("cannot read database {shown}")),
    }
}

/// A WAL database whose -shm file is missing, in a directory that cannot be written.
fn wal_needs_writable_dir(path: &Path, writable: fn(&Path) -> bool) -> bool {
    let mut header = [0u8; 20];
    let wal = crate::regular::open_regular(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok()
        // File format version numbers 2 mean WAL (bytes 18 and 19 of the header).
        && header[18] == 2
        && header[19] == 2;
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    wal && !Path::new(&shm).exists() && !writable(dir)
}

fn dir_writable(dir: &Path) -> bool {
    tempfile::tempfile_in(dir).is_ok()
}

/// Register the timestamp function on a connection. Naive timestamps are read in `zone`.
pub fn register_ts_function(conn: &Connection, zone: Zone) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        TS_FUNCTION,
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Integer(i) => epoch_number_to_ms(i as f64),
                ValueRef::Real(f) => epoch_number_to_ms(f),
                ValueRef::Text(t) => std::str::from_utf8(t)
                    .ok()
                    .and_then(|s| parse_stored_timestamp(s, &zone)),
                ValueRef::Null | ValueRef::Blob(_) => None,
            })
        },
    )
}

/// An open usage source.
pub struct Source {
    pub path: PathBuf,
    pub kind: SchemaKind,
    pub mapping: Mapping,
    /// The database has no tables yet (a native file not yet written).
    pub empty: bool,
    /// The native rollup table is there to answer range queries.
    pub has_rollup: bool,
    /// The native events table has correction rows (`corrects`, migration 0005).
    pub has_corrections: bool,
    /// For a foreign database: the rollup cache beside it, if one could be opened.
    pub(crate) cache: Option<std::cell::RefCell<cache::RollupCache>>,
    /// A cache that is not built yet is built by someone else (the monitor builds it on
    /// another thread): until then, reads scan the events instead of building it.
    pub(crate) defer_cache_build: bool,
    /// A foreign table's own index on its timestamp column (see `rows_in_range_sql`).
    pub(crate) ts_index: Option<String>,
    /// SQLite: the database. PostgreSQL: an empty in-memory database that no read reaches
    /// (every read goes to `pg` first), so a read that missed it fails rather than answers.
    conn: Connection,
    /// A PostgreSQL database: every read goes there.
    pub(crate) pg: Option<pg::PgSource>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Source {
    /// Open a database for reading. `schema` forces a mapping; otherwise it is detected.
    pub fn open(
        path: &Path,
        schema: Option<&str>,
        cfg: &Config,
        naive_zone: Zone,
    ) -> anyhow::Result<Source> {
        if pg::is_url(path) {
            return Source::open_postgres(path, schema);
        }
        if !path.exists() {
            return Err(bad_input(format!(
                "no database at {}: record events with `tokmon record`, import logs with `tokmon import`, \
                 or point --db at a tracker's database",
                path.display()
            )));
        }
        let conn = open_read_only(path)?;
        register_ts_function(&conn, naive_zone)?;
        let detected = detect(&conn)?;
        let (kind, empty) = match (schema, detected) {
            (Some(s), Ok(None)) => (SchemaKind::parse(s, cfg)?, true),
            (Some(s), _) => (SchemaKind::parse(s, cfg)?, false),
            (None, Ok(Some(k))) => (k, false),
            (None, Ok(None)) => (SchemaKind::Native, true),
            (None, Err(tables)) => {
                return Err(bad_input(format!(
                    "{} holds no usage table that tokmon knows (tables: {}). Use --schema native|bot|chat-agent|desktop, \
                     or describe the table with [[table]] in the config file.",
                    path.display(),
                    tables.join(", ")
                )));
            }
        };
        let mut mapping = kind.mapping(cfg)?;
        let mut has_rollup = false;
        let mut has_corrections = false;
        if kind.is_native() && !empty {
            // A database that no write has migrated yet (read-only here) lacks the newer
            // columns: read it as it is, scanning the events.
            let all = tables(&conn)?;
            let has = |table: &str, col: &str| {
                all.iter()
                    .any(|(n, cols)| n == table && cols.iter().any(|c| c == col))
            };
            if !has(&mapping.table, "cache_creation_1h_tokens") {
                mapping.counts.cache_creation_1h_tokens = mapping::Col::Absent;
            }
            if !has(&mapping.table, "long_context") {
                mapping.long_context = mapping::Col::Absent;
            }
            has_rollup = has(query::ROLLUP_TABLE, query::PRICE_DETAIL_COLUMNS[11]);
            has_corrections = has(&mapping.table, "corrects");
        }
        if !empty {
            check_columns(&conn, path, &mapping)?;
        }
        let ts_index = if kind.is_native() || empty {
            None
        } else {
            timestamp_index(&conn, &mapping)?
        };
        Ok(Source {
            path: path.to_path_buf(),
            kind,
            mapping,
            empty,
            has_rollup,
            has_corrections,
            cache: None,
            defer_cache_build: false,
            ts_index,
            conn,
            pg: None,
        })
    }

    /// Open a PostgreSQL database for reading: tokmon's schema or the team service's
    /// `ai_usage` (an empty database reads as an empty native one).
    fn open_postgres(url: &Path, schema: Option<&str>) -> anyhow::Result<Source> {
        let target = pg::Target::parse(url)?;
        let db = pg::PgSource::open(&target, schema)?;
        let kind = match db.kind {
            pg::Kind::AiUsage => SchemaKind::AiUsage,
            _ => SchemaKind::Native,
        };
        Ok(Source {
            path: PathBuf::from(&target.shown),
            mapping: kind.mapping(&Config::default())?,
            empty: db.is_empty(),
            has_rollup: false,
            has_corrections: kind.is_native(),
            kind,
            cache: None,
            defer_cache_build: false,
            ts_index: None,
            conn: Connection::open_in_memory()?,
            pg: Some(db),
        })
    }

    /// Whether the database is a PostgreSQL one.
    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Run `f` with every read in one snapshot (a read transaction), so the grouped sums and
    /// the newest id they stop at agree.
    pub fn read_snapshot<T>(&self, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        if let Some(pg) = &self.pg {
            return pg.snapshot(f);
        }
        self.conn.execute_batch("BEGIN")?;
        let result = f();
        let _ = self.conn.execute_batch("COMMIT");
        result
    }

    /// The schema version of a native database (0 for a foreign one).
    pub fn schema_version(&self) -> i64 {
        match &self.pg {
            Some(pg) => i64::from(pg.schema_version()),
            None => self
                .conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap_or(0),
        }
    }

    /// Keep a rollup cache for a foreign database in `dir`, so long ranges do not scan it.
    /// Native databases carry their own rollup; a cache that cannot be made is only logged.
    pub fn use_cache_dir(&mut self, dir: &Path) {
        if self.kind.is_native() || self.empty || self.pg.is_some() {
            return;
        }
        match cache::RollupCache::open(dir, self) {
            Ok(c) => self.cache = Some(std::cell::RefCell::new(c)),
            Err(e) => tracing::warn!("no rollup cache for {}: {e:#}", self.path.display()),
        }
    }

    /// Let another thread build the rollup cache (see [`Source::build_cache`]): until it is
    /// built, reads scan the events instead of building it first.
    pub fn defer_cache_build(&mut self, defer: bool) {
        self.defer_cache_build = defer;
    }

    /// Whether a foreign database's cache is still to be built.
    pub fn cache_pending(&self) -> bool {
        self.cache.is_some() && !self.rollup_ready()
    }

    /// Build (or bring up to date) the rollup cache of a foreign database.
    pub fn build_cache(&self) -> anyhow::Result<()> {
        match &self.cache {
            Some(cache) => cache.borrow_mut().refresh(self),
            None => Ok(()),
        }
    }

    /// Whether long ranges are answered from a rollup (native table or foreign cache).
    pub fn has_rollup_or_cache(&self) -> bool {
        self.has_rollup || self.cache.is_some()
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// PostgreSQL (tokmon's own schema): the server's count of rows deleted from the events
    /// and the table's file (a TRUNCATE makes a new one): a change means rows were deleted.
    /// `None` elsewhere: deletes show only by counting the rows.
    pub fn deletions(&self) -> anyhow::Result<Option<(i64, i64)>> {
        match &self.pg {
            Some(pg) => pg.deletions(),
            None => Ok(None),
        }
    }

    /// PostgreSQL (tokmon's schema): the current snapshot's oldest running transaction and
    /// next transaction id. `None` elsewhere: there ids become visible in their order, and
    /// no id the tail reads past can show later.
    pub fn xid_horizon(&self) -> anyhow::Result<Option<(i64, i64)>> {
        match &self.pg {
            Some(pg) => pg.xid_horizon(),
            None => Ok(None),
        }
    }

    /// PostgreSQL: the ids of the events in `(after, upto]` (none elsewhere).
    pub fn event_ids(&self, after: i64, upto: i64) -> anyhow::Result<Vec<i64>> {
        match &self.pg {
            Some(pg) => pg.event_ids(after, upto),
            None => Ok(Vec::new()),
        }
    }

    /// PostgreSQL: the events with an id in any of `ranges` (both ends included), in id
    /// order (none elsewhere).
    pub fn events_in(&self, ranges: &[(i64, i64)]) -> anyhow::Result<Vec<EventRow>> {
        match &self.pg {
            Some(pg) => pg.events_in(ranges),
            None => Ok(Vec::new()),
        }
    }

    /// PostgreSQL: the sums of one session's events of `agent`, by model (through the
    /// session index). `None` elsewhere: the caller reads SQLite itself.
    pub fn pg_session_sums(
        &self,
        session: &str,
        agent: &str,
    ) -> anyhow::Result<Option<Vec<query::AggRow>>> {
        match &self.pg {
            Some(pg) => pg.session_sums(session, agent).map(Some),
            None => Ok(None),
        }
    }

    /// Changes whenever another connection commits to the database; cheap to poll.
    pub fn data_version(&self) -> anyhow::Result<i64> {
        if let Some(pg) = &self.pg {
            return pg.data_version();
        }
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }
}

/// An index of the table whose first column is the timestamp column, in plain byte order and
/// over every row, if the tracker made one.
fn timestamp_index(conn: &Connection, m: &Mapping) -> anyhow::Result<Option<String>> {
    let mut list = conn.prepare("SELECT name, partial FROM pragma_index_list(?1)")?;
    let indexes = list
        .query_map([&m.table], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut info =
        conn.prepare("SELECT name, coll, \"desc\" FROM pragma_index_xinfo(?1) WHERE seqno = 0")?;
    for (name, partial) in indexes {
        if partial != 0 {
            continue;
        }
        let first: Option<(Option<String>, Option<String>, i64)> = info
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .next()
            .transpose()?;
        if let Some((Some(col), Some(coll), 0)) = first
            && col == m.ts
            && coll.eq_ignore_ascii_case("BINARY")
        {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Every mapped column must exist in the table; the error names the missing ones.
pub(crate) fn check_columns(conn: &Connection, path: &Path, m: &Mapping) -> anyhow::Result<()> {
    let all = tables(conn)?;
    let Some((_, cols)) = all.iter().find(|(n, _)| n == &m.table) else {
        return Err(bad_input(format!(
            "{} has no table '{}' (tables: {})",
            path.display(),
            m.table,
            all.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let missing: Vec<String> = m
        .named_columns()
        .into_iter()
        .filter(|(_, c)| *c != "rowid" && !cols.iter().any(|have| have == c))
        .map(|(f, c)| format!("{c} (for {f})"))
        .collect();
    if !missing.is_empty() {
        return Err(bad_input(format!(
            "table '{}' in {} lacks the columns {}; it has: {}",
            m.table,
            path.display(),
            missing.join(", "),
            cols.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int, msg: &str) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(msg.into()))
    }

    #[test]
    fn wal_database_in_a_read_only_directory_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wal.db");
        let conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (a); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        assert!(!dir.path().join("wal.db-shm").exists());
        // (Tests may run as root, who can write anywhere: the directory check is replaced.)
        let e = explain_with(
            failure(
                rusqlite::ffi::SQLITE_READONLY,
                "attempt to write a readonly database",
            ),
            &db,
            |_| false,
        )
        .to_string();
        assert!(e.contains("WAL mode") && e.contains("not writable"), "{e}");
        assert!(!e.contains("attempt to write"), "{e}");
        // A writable directory: the error is something else, and is passed on.
        let e = explain_with(failure(rusqlite::ffi::SQLITE_READONLY, "ro"), &db, |_| true);
        assert!(!format!("{e:#}").contains("WAL mode"), "{e:#}");
    }

    #[test]
    fn busy_and_not_a_database_are_told_apart() {
        let p = Path::new("x.db");
        let busy = explain_with(
            failure(rusqlite::ffi::SQLITE_BUSY, "database is locked"),
            p,
            |_| true,
        );
        assert!(busy.to_string().contains("is locked"), "{busy}");
        assert!(!busy.to_string().contains("not a SQLite"), "{busy}");
        let notdb = explain_with(
            failure(rusqlite::ffi::SQLITE_NOTADB, "file is not a database"),
            p,
            |_| true,
        );
        assert!(
            notdb.to_string().contains("not a SQLite database"),
            "{notdb}"
        );
    }
}

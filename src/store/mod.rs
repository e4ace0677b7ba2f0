//! Usage sources: tokmon's own database or a foreign tracker's, read through one model.
//!
//! Foreign databases are opened read-only: never migrated, never written, and every query
//! is a single statement, so no read transaction outlives it.

pub mod mapping;
pub mod native;
pub mod query;

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

/// Name of the SQL function that turns any stored timestamp form into unix milliseconds.
pub const TS_FUNCTION: &str = "tokmon_ts";

/// Which schema a database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaKind {
    Native,
    Bot,
    ChatAgent,
    Desktop,
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

fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .with_context(|| format!("cannot open database {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_millis(native::BUSY_TIMEOUT_MS))?;
    // A file that is not a database fails here rather than in the first query.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    Ok(conn)
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
    conn: Connection,
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
        let mapping = kind.mapping(cfg)?;
        if !empty {
            check_columns(&conn, path, &mapping)?;
        }
        let has_rollup = kind.is_native()
            && !empty
            && tables(&conn)?.iter().any(|(n, _)| n == query::ROLLUP_TABLE);
        Ok(Source {
            path: path.to_path_buf(),
            kind,
            mapping,
            empty,
            has_rollup,
            conn,
        })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Changes whenever another connection commits to the database; cheap to poll.
    pub fn data_version(&self) -> anyhow::Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }
}

/// Every mapped column must exist in the table; the error names the missing ones.
fn check_columns(conn: &Connection, path: &Path, m: &Mapping) -> anyhow::Result<()> {
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

//! The PostgreSQL backend: `--db postgres://…` (or `postgresql://…`).
//!
//! A database holds either tokmon's native schema, created and versioned by the migrations of
//! `migrations/postgres/` (with the 15-minute rollup kept by statement triggers in the writer's
//! transaction, and a NOTIFY on [`NOTIFY_CHANNEL`] after every insert), or the team service's
//! `ai_usage` table (formats.md §4), which is only ever read.
//!
//! Credentials come from the URL, `PGPASSWORD` or the password file (`PGPASSFILE`, else
//! `~/.pgpass`); a password is never shown: every message names the database by
//! [`redact`]ed URL. `sslmode`: `disable`, `prefer` (the default: TLS when the server offers
//! it) and `require` (TLS or no connection), as libpq has them: the server's certificate is not
//! verified (`verify-ca` and `verify-full` are refused).

use std::cell::RefCell;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use postgres::types::ToSql;
use postgres::{Client, Row};

use super::mapping::Dimension;
use super::native::{CORRECTABLE_SOURCE, InsertCounts, NewEvent, key_hash, too_large};
use super::query::{AggQuery, AggRow, EventRow, SLICE_MS, Sums, TokenOverflow, Tokens};
use crate::domain::event::{COUNT_COLUMNS, Counts, SqlType, Value};
use crate::error::bad_input;

/// The channel on which a native database announces new events (a statement trigger on
/// `events`, once per statement; the payload is empty, so a transaction's notices fold into
/// one). A monitor that `LISTEN`s here needs no polling.
pub const NOTIFY_CHANNEL: &str = "tokmon_events";

/// The transaction-scoped advisory lock every writer takes: writes to one database happen one
/// transaction at a time, so event ids become visible in their order (a tail reading "ids
/// above the last one" misses none) and two machines never add the same correction.
pub const WRITE_LOCK: i64 = 0x746f_6b6d_6f6e; // "tokmon"

/// How long a connection attempt may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQL files of `migrations/postgres/`, embedded at build time, applied in order. The
/// applied version is kept in `tokmon_schema_version`.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/postgres/0001_native.sql")];

pub use super::url::{is_url, redact, shown};

/// A parsed `postgres://` URL, with the credentials and defaults filled in.
#[derive(Clone)]
pub struct Target {
    config: postgres::Config,
    /// The URL without its password.
    pub shown: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("url", &self.shown).finish()
    }
}

impl Target {
    /// Parse a URL. A bad one is refused (exit 2) by its redacted form.
    pub fn parse(db: &Path) -> anyhow::Result<Target> {
        let url = db.to_string_lossy().into_owned();
        let shown = redact(&url);
        if !url.contains("://") {
            return Err(bad_input(format!(
                "--db {shown}: not a PostgreSQL URL; write postgres://[user[:password]@]host[:port]/database"
            )));
        }
        if let Some(mode) = query_param(&url, "sslmode")
            && !matches!(mode.as_str(), "disable" | "prefer" | "require")
        {
            return Err(bad_input(format!(
                "--db {shown}: sslmode={mode} is not supported; use disable, prefer (the default) \
                 or require (encrypted; the server's certificate is not verified)"
            )));
        }
        // The parser's message names the option at fault, never its value.
        let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| {
            bad_input(format!("--db {shown}: not a valid PostgreSQL URL ({e})"))
        })?;
        fill_defaults(&mut config);
        if config.get_password().is_none()
            && let Some(pw) = password_from_env_or_file(&config)
        {
            config.password(pw);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("tokmon");
        Ok(Target { config, shown })
    }

    /// Connect (TLS as `sslmode` says).
    pub fn connect(&self) -> anyhow::Result<Client> {
        let result = match self.config.get_ssl_mode() {
            postgres::config::SslMode::Disable => self.config.connect(postgres::NoTls),
            _ => {
                // As libpq's `prefer` and `require`: encrypted, the certificate not verified.
                let tls = native_tls::TlsConnector::builder()
                    .danger_accept_invalid_certs(true)
                    .danger_accept_invalid_hostnames(true)
                    .build()
                    .context("cannot set up TLS")?;
                self.config
                    .connect(postgres_native_tls::MakeTlsConnector::new(tls))
            }
        };
        result.map_err(|e| anyhow::anyhow!("cannot connect to {}: {}", self.shown, error_text(&e)))
    }
}

/// A PostgreSQL error as one line: the server's message when there is one.
pub fn error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

/// The value of a `?key=value` parameter of the URL.
fn query_param(url: &str, key: &str) -> Option<String> {
    let q = &url[url.rfind('?')? + 1..];
    q.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.eq_ignore_ascii_case(key).then(|| v.to_string())
    })
}

/// What libpq takes from the environment when the URL leaves it out: host (`PGHOST`, else the
/// local socket directory if there is one, else localhost), port, user and database.
fn fill_defaults(c: &mut postgres::Config) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if c.get_hosts().is_empty() && c.get_hostaddrs().is_empty() {
        match env("PGHOST") {
            Some(h) if h.starts_with('/') => {
                c.host_path(h);
            }
            Some(h) => {
                c.host(&h);
            }
            None if Path::new("/var/run/postgresql").is_dir() => {
                c.host_path("/var/run/postgresql");
            }
            None => {
                c.host("localhost");
            }
        }
    }
    if c.get_ports().is_empty()
        && let Some(p) = env("PGPORT").and_then(|p| p.parse::<u16>().ok())
    {
        c.port(p);
    }
    if c.get_user().is_none()
        && let Some(u) = env("PGUSER").or_else(os_user)
    {
        c.user(&u);
    }
    if c.get_dbname().is_none()
        && let Some(d) = env("PGDATABASE")
    {
        c.dbname(&d);
    }
}

/// The name of the user running tokmon.
fn os_user() -> Option<String> {
    // SAFETY: getpwuid returns a pointer into static storage or NULL; the name is copied out
    // at once, on this thread, before any other call could reuse that storage.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// `PGPASSWORD`, else the matching line of the password file.
fn password_from_env_or_file(c: &postgres::Config) -> Option<Vec<u8>> {
    if let Some(pw) = std::env::var_os("PGPASSWORD").filter(|v| !v.is_empty()) {
        return Some(pw.into_encoded_bytes());
    }
    let file = match std::env::var_os("PGPASSFILE") {
        Some(f) => std::path::PathBuf::from(f),
        None => directories::BaseDirs::new()?.home_dir().join(".pgpass"),
    };
    let text = read_password_file(&file)?;
    let host = match c.get_hosts().first()? {
        postgres::config::Host::Tcp(h) => h.clone(),
        #[cfg(unix)]
        postgres::config::Host::Unix(p) => p.to_string_lossy().into_owned(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = c.get_user().unwrap_or_default();
    let db = c.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, &host, &port, db, user).map(String::into_bytes)
}

/// The password file, if it is a regular file that only its owner can read (libpq ignores
/// one that others can read, and so does tokmon, with a warning in the log).
fn read_password_file(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; it is ignored (chmod 0600 it)",
                path.display()
            );
            return None;
        }
    }
    std::fs::read_to_string(path).ok()
}

/// The password of the first line of a `.pgpass` text that matches
/// (`hostname:port:database:username:password`, `*` matching anything, `\` escaping).
fn pgpass_lookup(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(ch) = chars.next() {
            match ch {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(ch),
            }
        }
        fields.push(cur);
        if fields.len() != 5 {
            continue;
        }
        let host_matches = fields[0] == "*"
            || fields[0] == host
            || (fields[0] == "localhost" && host.starts_with('/'));
        let ok = |f: &str, v: &str| f == "*" || f == v;
        if host_matches && ok(&fields[1], port) && ok(&fields[2], db) && ok(&fields[3], user) {
            return Some(fields[4].clone());
        }
    }
    None
}

/// What a PostgreSQL database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// No tables yet.
    Empty,
    /// tokmon's schema, at this version.
    Native(i32),
    /// The team service's `ai_usage` table (formats.md §4).
    AiUsage,
    /// Tables tokmon does not know (their names).
    Unknown(Vec<String>),
}

/// The tables of the current schema and their columns.
fn tables(client: &mut Client) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let rows = client.query(
        "SELECT table_name::text, array_agg(column_name::text ORDER BY ordinal_position)
         FROM information_schema.columns WHERE table_schema = current_schema()
         GROUP BY table_name ORDER BY table_name",
        &[],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Look at a database without changing it.
pub fn detect(client: &mut Client) -> anyhow::Result<Kind> {
    let t = tables(client)?;
    let has = |table: &str, cols: &[&str]| {
        t.iter()
            .any(|(n, c)| n == table && cols.iter().all(|want| c.iter().any(|h| h == want)))
    };
    if t.is_empty() {
        return Ok(Kind::Empty);
    }
    if has("tokmon_schema_version", &["version"]) {
        let v: Option<i32> = client
            .query_one("SELECT max(version) FROM tokmon_schema_version", &[])?
            .get(0);
        return Ok(Kind::Native(v.unwrap_or(0)));
    }
    if has(
        "ai_usage",
        &[
            "id",
            "user_id",
            "project_id",
            "provider",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "cached",
            "timestamp",
        ],
    ) {
        return Ok(Kind::AiUsage);
    }
    Ok(Kind::Unknown(t.into_iter().map(|(n, _)| n).collect()))
}

/// Bring tokmon's schema up to date, one migrator at a time (an advisory lock); refuses a
/// database another tool made or a newer tokmon migrated, before changing anything.
fn migrate(client: &mut Client, shown: &str) -> anyhow::Result<()> {
    let latest = MIGRATIONS.len() as i32;
    match detect(client)? {
        Kind::Native(v) if v >= latest => {
            if v > latest {
                return Err(bad_input(format!(
                    "{shown} was written by a newer tokmon (schema version {v}; this one knows up to {latest}); \
                     update tokmon to write into it"
                )));
            }
            return Ok(());
        }
        Kind::Native(_) | Kind::Empty => {}
        Kind::AiUsage => {
            return Err(bad_input(format!(
                "{shown} holds the team service's ai_usage table; tokmon only reads it and never writes into it. \
                 Record into a database of tokmon's own (a new, empty one)."
            )));
        }
        Kind::Unknown(tables) => {
            return Err(bad_input(format!(
                "{shown} is neither a tokmon database nor one tokmon knows (tables: {}); tokmon never writes into it. \
                 Give --db an empty database or one tokmon made.",
                crate::text::printable(&tables.join(", "))
            )));
        }
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tokmon_schema_version (version integer NOT NULL)",
    )?;
    let have: i32 = tx
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM tokmon_schema_version",
            &[],
        )?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(have.max(0) as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).map_err(|e| {
            anyhow::anyhow!(
                "cannot migrate {shown} to schema version {version}: {}",
                error_text(&e)
            )
        })?;
        tx.execute(
            "INSERT INTO tokmon_schema_version (version) VALUES ($1)",
            &[&version],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The schema version this build migrates to.
pub fn latest_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// A database opened for reading.
pub struct PgSource {
    client: RefCell<Client>,
    pub kind: Kind,
    pub shown: String,
}

impl std::fmt::Debug for PgSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSource")
            .field("url", &self.shown)
            .field("kind", &self.kind)
            .finish()
    }
}

/// Token sums as the server hands them over (`::bigint`: a sum past it fails there).
fn tok(r: &Row, i: usize) -> anyhow::Result<u64> {
    let v: Option<i64> = r.try_get(i)?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

/// The columns of an event, in [`EventRow::read`]'s order.
static EVENT_ROW_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    let counts = crate::domain::event::Counts::from_fn(|c| c);
    let cols: Vec<String> = ["id", "ts"]
        .into_iter()
        .chain(Dimension::ALL.map(Dimension::name))
        .chain(counts.each().map(|(c, _)| c))
        .chain(["cost_usd", "duration_ms"])
        .map(|c| format!("events.\"{c}\""))
        .collect();
    format!("{}, corrects IS NOT NULL, long_context", cols.join(", "))
});

/// The events after `$1`, at most `$2`, in [`EventRow::read`]'s column order.
static EVENTS_AFTER_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM events WHERE id > $1 ORDER BY id LIMIT $2",
        *EVENT_ROW_COLUMNS
    )
});

/// A PostgreSQL row read as an event's columns (see [`EventRow::read`]).
struct PgRow<'a>(&'a Row);

impl crate::domain::event::ReadRow for PgRow<'_> {
    type Error = anyhow::Error;
    fn id(&self, i: usize) -> anyhow::Result<i64> {
        Ok(self.0.try_get(i)?)
    }
    fn time(&self, i: usize) -> anyhow::Result<Option<i64>> {
        Ok(self.0.try_get(i)?)
    }
    fn text(&self, i: usize) -> anyhow::Result<Option<String>> {
        Ok(self.0.try_get(i)?)
    }
    fn count(&self, i: usize) -> anyhow::Result<u64> {
        tok(self.0, i)
    }
    fn amount(&self, i: usize) -> anyhow::Result<Option<f64>> {
        Ok(self.0.try_get(i)?)
    }
    fn flag(&self, i: usize) -> anyhow::Result<bool> {
        Ok(self.0.try_get(i)?)
    }
}

/// A server error that is a sum past bigint, as [`TokenOverflow`].
fn overflow_or(e: postgres::Error) -> anyhow::Error {
    if e.code() == Some(&postgres::error::SqlState::NUMERIC_VALUE_OUT_OF_RANGE) {
        TokenOverflow.into()
    } else {
        anyhow::anyhow!("{}", error_text(&e))
    }
}

/// One row in the layout of [`super::query::agg_row`]: key, bucket, model, then the twelve
/// sums of a rollup row and its twelve price-detail sums.
fn agg_row(r: &Row) -> anyhow::Result<AggRow> {
    let detail = |from: usize| -> anyhow::Result<[u64; 6]> {
        let mut d = [0; 6];
        for (k, v) in d.iter_mut().enumerate() {
            *v = tok(r, from + k)?;
        }
        Ok(d)
    };
    let mut all = Tokens {
        events: tok(r, 3)?,
        input: tok(r, 4)?,
        output: tok(r, 5)?,
        cache_write: tok(r, 6)?,
        cache_read: tok(r, 7)?,
        ..Tokens::default()
    };
    all.set_detail(detail(15)?);
    let mut uncosted = Tokens {
        events: tok(r, 10)?,
        input: tok(r, 11)?,
        output: tok(r, 12)?,
        cache_write: tok(r, 13)?,
        cache_read: tok(r, 14)?,
        ..Tokens::default()
    };
    uncosted.set_detail(detail(21)?);
    all.check()?;
    uncosted.check()?;
    Ok(AggRow {
        key: r.try_get(0)?,
        bucket_ms: r.try_get(1)?,
        model: r.try_get(2)?,
        sums: Sums {
            all,
            stored_cost: r.try_get::<_, Option<f64>>(8)?.unwrap_or(0.0),
            positive_cost: r.try_get::<_, Option<f64>>(9)?.unwrap_or(0.0),
            uncosted,
        },
    })
}

/// The 24 sums of a rollup row computed from event rows (with `ev`: the row is an event, not
/// a correction; `pos`: its stored cost is positive), as the rollup trigger computes them.
fn event_sums_sql() -> String {
    let t = |expr: &str| format!("COALESCE({expr}, 0)::bigint");
    [
        t("count(*) FILTER (WHERE ev)"),
        t("sum(input_tokens)"),
        t("sum(output_tokens)"),
        t("sum(cache_creation_tokens)"),
        t("sum(cache_read_tokens)"),
        "COALESCE(sum(cost_usd), 0)::float8".into(),
        "COALESCE(sum(cost_usd) FILTER (WHERE pos), 0)::float8".into(),
        t("count(*) FILTER (WHERE ev AND NOT pos)"),
        t("sum(input_tokens) FILTER (WHERE NOT pos)"),
        t("sum(output_tokens) FILTER (WHERE NOT pos)"),
        t("sum(cache_creation_tokens) FILTER (WHERE NOT pos)"),
        t("sum(cache_read_tokens) FILTER (WHERE NOT pos)"),
        t("sum(cache_creation_1h_tokens)"),
        t("sum(input_tokens) FILTER (WHERE long_context)"),
        t("sum(output_tokens) FILTER (WHERE long_context)"),
        t("sum(cache_creation_tokens) FILTER (WHERE long_context)"),
        t("sum(cache_creation_1h_tokens) FILTER (WHERE long_context)"),
        t("sum(cache_read_tokens) FILTER (WHERE long_context)"),
        t("sum(cache_creation_1h_tokens) FILTER (WHERE NOT pos)"),
        t("sum(input_tokens) FILTER (WHERE long_context AND NOT pos)"),
        t("sum(output_tokens) FILTER (WHERE long_context AND NOT pos)"),
        t("sum(cache_creation_tokens) FILTER (WHERE long_context AND NOT pos)"),
        t("sum(cache_creation_1h_tokens) FILTER (WHERE long_context AND NOT pos)"),
        t("sum(cache_read_tokens) FILTER (WHERE long_context AND NOT pos)"),
    ]
    .join(", ")
}

/// The 24 sums read from the rollup table.
fn rollup_sums_sql() -> String {
    let mut cols = super::query::ROLLUP_SUM_COLUMNS.to_vec();
    cols.extend(super::query::PRICE_DETAIL_COLUMNS);
    cols.iter()
        .map(|c| {
            if c.ends_with("_cost") {
                format!("COALESCE(sum({c}), 0)::float8")
            } else {
                format!("COALESCE(sum({c}), 0)::bigint")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `expr` divided by the positive `by`, rounded down.
fn floor_div(expr: &str, by: i64) -> String {
    format!("(CASE WHEN {expr} >= 0 THEN {expr} / {by} ELSE ({expr} + 1) / {by} - 1 END)")
}

/// The column of a dimension in the event rows (native `events`, or `ai_usage` as events).
fn dim_col(d: Dimension) -> &'static str {
    match d {
        Dimension::Model => "model",
        Dimension::Agent => "agent",
        Dimension::Provider => "provider",
        Dimension::Session => "session",
        Dimension::Project => "project",
        Dimension::User => "\"user\"",
        Dimension::Channel => "channel",
        Dimension::Operation => "operation",
    }
}

/// One native event, from a row of [`EVENT_ROW_COLUMNS`].
fn event_row(r: &Row) -> anyhow::Result<EventRow> {
    let e = EventRow::read(&PgRow(r))?;
    Sums::of_event(&e).all.check()?;
    Ok(e)
}

impl PgSource {
    /// Connect and look at what the database holds. `schema` forces one (`native`,
    /// `ai-usage`); an empty database reads as an empty native one.
    pub fn open(target: &Target, schema: Option<&str>) -> anyhow::Result<PgSource> {
        let mut client = target.connect()?;
        let shown = target.shown.clone();
        let kind = detect(&mut client)?;
        let forced = match schema.map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("native" | "tokmon") => Some(false),
            Some("ai-usage" | "ai_usage" | "team") => Some(true),
            Some(other) => {
                return Err(bad_input(format!(
                    "unknown schema '{other}' for a PostgreSQL database: use native or ai-usage"
                )));
            }
        };
        let kind = match (forced, kind) {
            (None | Some(false), k @ (Kind::Empty | Kind::Native(_))) => k,
            (None | Some(true), Kind::AiUsage) => Kind::AiUsage,
            (Some(true), _) => {
                return Err(bad_input(format!(
                    "{shown} has no ai_usage table with the team service's columns"
                )));
            }
            (Some(false), Kind::AiUsage) => {
                return Err(bad_input(format!(
                    "{shown} holds no tokmon events (it holds the team service's ai_usage table: use --schema ai-usage)"
                )));
            }
            (_, Kind::Unknown(tables)) => {
                return Err(bad_input(format!(
                    "{shown} holds no usage table that tokmon knows (tables: {}). A PostgreSQL database is read \
                     as tokmon's own or as the team service's ai_usage table.",
                    crate::text::printable(&tables.join(", "))
                )));
            }
        };
        Ok(PgSource {
            client: RefCell::new(client),
            kind,
            shown,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.kind == Kind::Empty
    }

    fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Vec<Row>> {
        self.client
            .borrow_mut()
            .query(sql, params)
            .map_err(overflow_or)
    }

    /// The event rows, with the columns of the native `events` table and `ev` / `pos`.
    fn rows_sql(&self) -> String {
        match self.kind {
            Kind::AiUsage => format!(
                "(SELECT floor(extract(epoch FROM \"timestamp\") * 1000)::bigint AS ts, model, provider,
                        NULL::text AS agent, NULL::text AS session, project_id::text AS project,
                        user_id::text AS \"user\", NULL::text AS channel, NULL::text AS operation,
                        GREATEST(prompt_tokens, 0)::bigint AS input_tokens,
                        GREATEST(completion_tokens, 0)::bigint AS output_tokens,
                        0::bigint AS cache_creation_tokens, 0::bigint AS cache_read_tokens,
                        0::bigint AS cache_creation_1h_tokens,
                        cost::float8 / 100 AS cost_usd, NULL::float8 AS duration_ms,
                        true AS ev, cost > 0 AS pos,
                        GREATEST(prompt_tokens, 0) > {long} AS long_context
                 FROM ai_usage WHERE NOT cached)",
                long = crate::pricing::LONG_CONTEXT_TOKENS
            ),
            _ => "(SELECT *, corrects IS NULL AS ev, COALESCE(cost_usd, 0) > 0 AS pos FROM events)"
                .into(),
        }
    }

    /// Grouped sums from the event rows in `[from, to)`, the second key last.
    fn scan(
        &self,
        q: &AggQuery,
        second: Option<Dimension>,
    ) -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
        let key = q.by.map(dim_col).unwrap_or("NULL::text");
        let bucket = q
            .bucket_ms
            .filter(|b| *b > 0)
            .map(|b| format!("{} * {b}", floor_div("ts", b)))
            .unwrap_or_else(|| "NULL::bigint".into());
        let k2 = second.map(dim_col).unwrap_or("NULL::text");
        let sql = format!(
            "SELECT {key}, {bucket}, model, {sums}, {k2}
             FROM {rows} e WHERE ts >= $1 AND ts < $2
             GROUP BY 1, 2, 3, {k2_pos}",
            sums = event_sums_sql(),
            rows = self.rows_sql(),
            k2_pos = 28,
        );
        let from = q.from_ms.unwrap_or(i64::MIN);
        let to = q.to_ms.unwrap_or(i64::MAX);
        self.query(&sql, &[&from, &to])?
            .iter()
            .map(|r| Ok((agg_row(r)?, r.try_get(27)?)))
            .collect()
    }

    /// The sums of one session's events of `agent`, by model (through the session index);
    /// none for `ai_usage`, which has no sessions.
    pub fn session_sums(&self, session: &str, agent: &str) -> anyhow::Result<Vec<AggRow>> {
        if !matches!(self.kind, Kind::Native(_)) {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT NULL::text, NULL::bigint, model, {sums}
             FROM {rows} e WHERE session = $1 AND agent = $2 GROUP BY 3",
            sums = event_sums_sql(),
            rows = self.rows_sql(),
        );
        self.query(&sql, &[&session, &agent])?
            .iter()
            .map(agg_row)
            .collect()
    }

    /// Grouped sums of whole slices `[first, end)` from the rollup table.
    fn rollup(
        &self,
        q: &AggQuery,
        first: i64,
        end: i64,
        second: Option<Dimension>,
    ) -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
        let col = |d: Option<Dimension>| match d {
            Some(Dimension::Model) => "model",
            Some(Dimension::Agent) => "NULLIF(agent, '')",
            Some(Dimension::Provider) => "NULLIF(provider, '')",
            _ => "NULL::text",
        };
        let bucket = q
            .bucket_ms
            .map(|b| format!("{} * {b}", floor_div(&format!("(slice * {SLICE_MS})"), b)))
            .unwrap_or_else(|| "NULL::bigint".into());
        let sql = format!(
            "SELECT {key}, {bucket}, model, {sums}, {k2}
             FROM rollup_15m WHERE slice >= $1 AND slice < $2
             GROUP BY 1, 2, 3, 28",
            key = col(q.by),
            k2 = col(second),
            sums = rollup_sums_sql(),
        );
        self.query(&sql, &[&first, &end])?
            .iter()
            .map(|r| Ok((agg_row(r)?, r.try_get(27)?)))
            .collect()
    }

    /// Grouped sums over a range: whole slices from the rollup (native), the rest from the
    /// events, on the server.
    pub fn grouped(
        &self,
        q: &AggQuery,
        second: Option<Dimension>,
    ) -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let kept = |d: Option<Dimension>| {
            matches!(
                d,
                None | Some(Dimension::Model | Dimension::Agent | Dimension::Provider)
            )
        };
        let rollup = matches!(self.kind, Kind::Native(_))
            && kept(q.by)
            && kept(second)
            && q.bucket_ms.is_none_or(|b| b > 0 && b % SLICE_MS == 0);
        if !rollup {
            return self.scan(q, second);
        }
        let first = q
            .from_ms
            .map(|f| f.div_euclid(SLICE_MS) + i64::from(f.rem_euclid(SLICE_MS) != 0));
        let end = q.to_ms.map(|t| t.div_euclid(SLICE_MS));
        if let (Some(a), Some(b)) = (first, end)
            && a >= b
        {
            return self.scan(q, second);
        }
        let mut rows = self.rollup(
            q,
            first.unwrap_or(i64::MIN),
            end.unwrap_or(i64::MAX),
            second,
        )?;
        if let Some(a) = first
            && q.from_ms.is_some_and(|f| f < a * SLICE_MS)
        {
            rows.extend(self.scan(
                &AggQuery {
                    to_ms: Some(a * SLICE_MS),
                    ..q.clone()
                },
                second,
            )?);
        }
        if let (Some(t), Some(b)) = (q.to_ms, end)
            && b * SLICE_MS < t
        {
            rows.extend(self.scan(
                &AggQuery {
                    from_ms: Some(b * SLICE_MS),
                    ..q.clone()
                },
                second,
            )?);
        }
        Ok(super::query::merge_two(rows)?)
    }

    /// Up to `limit` events with an id above `after_id`, oldest first. The team service's
    /// `ai_usage` has uuid keys, which give no order: its rows are read by the monitor's
    /// reloads, never tailed (this returns none).
    pub fn events_after(&self, after_id: i64, limit: usize) -> anyhow::Result<Vec<EventRow>> {
        if !matches!(self.kind, Kind::Native(_)) {
            return Ok(Vec::new());
        }
        let rows = self.query(
            &EVENTS_AFTER_SQL,
            &[&after_id, &(limit.min(i64::MAX as usize) as i64)],
        )?;
        rows.iter().map(event_row).collect()
    }

    /// The events with an id in any of `ranges` (`(lo, hi)`, both included), in id order
    /// (ids the monitor's tail read past before they were committed, looked at again).
    pub fn events_in(&self, ranges: &[(i64, i64)]) -> anyhow::Result<Vec<EventRow>> {
        if !matches!(self.kind, Kind::Native(_)) || ranges.is_empty() {
            return Ok(Vec::new());
        }
        let (lo, hi): (Vec<i64>, Vec<i64>) = ranges.iter().copied().unzip();
        let rows = self.query(
            &format!(
                "SELECT {} FROM unnest($1::bigint[], $2::bigint[]) AS r(lo, hi)
                 JOIN events ON events.id BETWEEN r.lo AND r.hi ORDER BY events.id",
                *EVENT_ROW_COLUMNS
            ),
            &[&lo, &hi],
        )?;
        rows.iter().map(event_row).collect()
    }

    /// The ids of the events in `(after, upto]`, in order.
    pub fn event_ids(&self, after: i64, upto: i64) -> anyhow::Result<Vec<i64>> {
        if !matches!(self.kind, Kind::Native(_)) {
            return Ok(Vec::new());
        }
        self.query(
            "SELECT id FROM events WHERE id > $1 AND id <= $2 ORDER BY id",
            &[&after, &upto],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    /// The current snapshot's oldest running transaction and next transaction id
    /// (`pg_current_snapshot()`: every transaction below the first has ended); `None` for a
    /// database without integer ids to follow.
    pub fn xid_horizon(&self) -> anyhow::Result<Option<(i64, i64)>> {
        if !matches!(self.kind, Kind::Native(_)) {
            return Ok(None);
        }
        Ok(self
            .query(
                "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint
                 FROM pg_current_snapshot() AS s",
                &[],
            )?
            .first()
            .map(|r| (r.get(0), r.get(1))))
    }

    /// The largest event id (0 when there is none, and for `ai_usage`).
    pub fn max_id(&self) -> anyhow::Result<i64> {
        if !matches!(self.kind, Kind::Native(_)) {
            return Ok(0);
        }
        Ok(self
            .query("SELECT COALESCE(max(id), 0) FROM events", &[])?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0))
    }

    /// Number of event rows (corrections included, cache-hit markers of `ai_usage` not).
    pub fn row_count(&self) -> anyhow::Result<u64> {
        let sql = match self.kind {
            Kind::Native(_) => "SELECT count(*) FROM events",
            Kind::AiUsage => "SELECT count(*) FROM ai_usage WHERE NOT cached",
            _ => return Ok(0),
        };
        Ok(self
            .query(sql, &[])?
            .first()
            .map(|r| r.get::<_, i64>(0).max(0) as u64)
            .unwrap_or(0))
    }

    /// Earliest and latest event time (unix ms).
    pub fn time_bounds(&self) -> anyhow::Result<Option<(i64, i64)>> {
        if self.is_empty() {
            return Ok(None);
        }
        let sql = match self.kind {
            Kind::AiUsage => {
                "SELECT floor(extract(epoch FROM min(\"timestamp\")) * 1000)::bigint,
                        floor(extract(epoch FROM max(\"timestamp\")) * 1000)::bigint
                 FROM ai_usage WHERE NOT cached"
            }
            _ => "SELECT min(ts), max(ts) FROM events",
        };
        let rows = self.query(sql, &[])?;
        Ok(rows.first().and_then(|r| {
            let a: Option<i64> = r.get(0);
            let b: Option<i64> = r.get(1);
            a.zip(b)
        }))
    }

    /// Changes whenever rows are added or deleted: the newest id and the count of deleted
    /// rows (native); for `ai_usage`, see [`PgSource::ai_usage_version`].
    pub fn data_version(&self) -> anyhow::Result<i64> {
        if self.kind == Kind::AiUsage {
            return self.ai_usage_version();
        }
        let sql = match self.kind {
            Kind::Native(_) => {
                "SELECT (SELECT COALESCE(max(id), 0) FROM events)
                        + COALESCE((SELECT n_tup_del FROM pg_stat_user_tables
                                    WHERE relid = 'events'::regclass), 0) * 1000003"
            }
            // An empty database becomes a native one with its first write.
            _ => {
                "SELECT count(*) FROM information_schema.tables
                 WHERE table_schema = current_schema()"
            }
        };
        Ok(self
            .query(sql, &[])?
            .first()
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0))
    }

    /// `ai_usage`'s version: the server's statistics of the table (every insert, update and
    /// delete, but a session that keeps its connection sends them up to about 10 s late), and
    /// what its last two pages hold now (the row count and the newest inserting transaction,
    /// read by a TID range scan of those pages alone), where appended rows land: a row
    /// inserted at the end shows at the next poll.
    fn ai_usage_version(&self) -> anyhow::Result<i64> {
        let rows = self.query(
            "SELECT COALESCE((SELECT n_tup_ins + n_tup_del + n_tup_upd FROM pg_stat_user_tables
                              WHERE relid = 'ai_usage'::regclass), 0),
                    pg_relation_size('ai_usage') / current_setting('block_size')::bigint",
            &[],
        )?;
        let (stats, pages): (i64, i64) = rows.first().map_or((0, 0), |r| (r.get(0), r.get(1)));
        let from = format!("({},0)", (pages - 2).max(0));
        let rows = self.query(
            "SELECT count(*), COALESCE(max(xmin::text::bigint), 0) FROM ai_usage
             WHERE ctid >= $1::text::tid",
            &[&from],
        )?;
        let (count, xmin): (i64, i64) = rows.first().map_or((0, 0), |r| (r.get(0), r.get(1)));
        Ok([pages, count, xmin]
            .iter()
            .fold(stats, |v, n| v.wrapping_mul(1_000_003).wrapping_add(*n)))
    }

    /// The server's count of rows deleted from `events` and the table's file node (changed by
    /// a TRUNCATE, which the count misses); `None` for `ai_usage` (read afresh on any change)
    /// and an empty database. Deletes by a session reach the statistics when its transaction
    /// ends (within PostgreSQL's stats flush interval, at most about 10 s later).
    pub fn deletions(&self) -> anyhow::Result<Option<(i64, i64)>> {
        if !matches!(self.kind, Kind::Native(_)) {
            return Ok(None);
        }
        Ok(self
            .query(
                "SELECT COALESCE((SELECT n_tup_del FROM pg_stat_user_tables
                                  WHERE relid = 'events'::regclass), 0),
                        COALESCE(pg_relation_filenode('events')::bigint, 0)",
                &[],
            )?
            .first()
            .map(|r| (r.get(0), r.get(1))))
    }

    /// The schema version (0 for a foreign or empty database).
    pub fn schema_version(&self) -> i32 {
        match self.kind {
            Kind::Native(v) => v,
            _ => 0,
        }
    }

    /// Run `f` inside one read-only transaction, so every read sees the same snapshot.
    pub fn snapshot<T>(&self, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.client
            .borrow_mut()
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(overflow_or)?;
        let out = f();
        let end = self.client.borrow_mut().batch_execute("COMMIT");
        let out = out?;
        end.map_err(overflow_or)?;
        Ok(out)
    }

    /// The first and last event time of `agent` in `[from, to)`.
    pub fn agent_time_bounds(
        &self,
        agent: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> anyhow::Result<Option<(i64, i64)>> {
        if !matches!(self.kind, Kind::Native(_)) {
            return Ok(None);
        }
        let rows = self.query(
            "SELECT min(ts), max(ts) FROM events WHERE ts >= $1 AND ts < $2 AND agent = $3",
            &[&from_ms, &to_ms, &agent],
        )?;
        Ok(rows.first().and_then(|r| {
            let a: Option<i64> = r.get(0);
            let b: Option<i64> = r.get(1);
            a.zip(b)
        }))
    }
}

/// A native database opened for writing (created and migrated if needed).
pub struct PgWriter {
    client: Client,
    pub shown: String,
    host: String,
    in_tx: bool,
    pub counts: InsertCounts,
    /// Events waiting to be inserted in one statement (see [`PgWriter::flush`]).
    pending: Vec<NewEvent>,
}

/// Stored replies by key: time and dimensions, long-context flag, running totals.
type StoredReplies =
    std::collections::HashMap<(i64, String), (NewEvent, bool, super::native::Stored)>;

/// Events inserted in one statement at most.
const BATCH: usize = 2_000;

/// The stored replies of some keys (`$1` hashes, `$2` keys): the event's id, key hash, key,
/// time, source, long-context flag and dimensions, then of the event and of each of its
/// corrections a row's counts, cost and metadata.
static STORED_REPLIES_SQL: LazyLock<String> = LazyLock::new(|| {
    let counts: Vec<String> = COUNT_COLUMNS.iter().map(|c| format!("r.{c}")).collect();
    let row = format!("{}, r.cost_usd, r.metadata", counts.join(", "));
    format!(
        "WITH s AS (
            SELECT id, key_hash, unique_key, ts, source, long_context, {dims}
            FROM events
            WHERE corrects IS NULL AND (key_hash, unique_key) IN
                (SELECT h, k FROM unnest($1::bigint[], $2::text[]) AS t(h, k)))
         SELECT s.*, {row} FROM s JOIN events r ON r.id = s.id
         UNION ALL
         SELECT s.*, {row} FROM s JOIN events r ON r.corrects = s.id",
        dims = super::native::dim_columns(),
    )
});

/// The quoted columns of an insert: the event's ([`NewEvent::COLUMNS`]), then `store`'s.
fn insert_columns(store: &[&str]) -> Vec<String> {
    let cols = NewEvent::COLUMNS.iter().chain(store);
    cols.map(|c| format!("\"{c}\"")).collect()
}

/// Many events in one statement, in their order; a key already stored (or earlier in the
/// batch) is skipped, and the keys inserted come back. One array per column: the event's,
/// then the key's hash and the long-context flag (a batch holds no corrections), then each
/// event's place.
static BATCH_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}
         ON CONFLICT (key_hash, unique_key) WHERE corrects IS NULL AND key_hash IS NOT NULL DO NOTHING
         RETURNING key_hash, unique_key",
        insert_arrays(&[("key_hash", "bigint"), ("long_context", "bool")])
    )
});

/// Many corrections in one statement, in their order: one array per column, the event's,
/// then the id each corrects and its reply's long-context flag, then each one's place.
static CORRECTIONS_SQL: LazyLock<String> =
    LazyLock::new(|| insert_arrays(&[("corrects", "bigint"), ("long_context", "bool")]));

/// `INSERT INTO events … SELECT … FROM unnest(…) ORDER BY ord`: one array parameter per
/// column of the event, then per `store` column (name, type), then the rows' places.
fn insert_arrays(store: &[(&str, &str)]) -> String {
    let names: Vec<&str> = store.iter().map(|(n, _)| *n).collect();
    let cols = insert_columns(&names);
    let types = NewEvent::SQL_TYPES.iter().map(|t| match t {
        SqlType::Int => "bigint",
        SqlType::Real => "float8",
        SqlType::Text => "text",
    });
    let arrays: Vec<String> = types
        .chain(store.iter().map(|(_, t)| *t))
        .chain(["int"])
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    format!(
        "INSERT INTO events ({cols})
         SELECT {cols}
         FROM unnest({arrays}) AS t({cols}, ord)
         ORDER BY ord",
        cols = cols.join(", "),
        arrays = arrays.join(", "),
    )
}

/// One array per column of the event, of `events` in their order.
fn event_arrays<'a>(
    events: impl ExactSizeIterator<Item = &'a NewEvent>,
) -> anyhow::Result<Vec<Array<'a>>> {
    let n = events.len();
    let mut arrays: Vec<Array> = NewEvent::SQL_TYPES
        .iter()
        .map(|t| Array::new(*t, n))
        .collect();
    for e in events {
        for (a, v) in arrays.iter_mut().zip(e.values().map_err(too_large)?) {
            a.push(v)?;
        }
    }
    Ok(arrays)
}

/// The values of one column of a batch.
enum Array<'a> {
    Int(Vec<i64>),
    Real(Vec<Option<f64>>),
    Text(Vec<Option<&'a str>>),
}

impl<'a> Array<'a> {
    fn new(t: SqlType, n: usize) -> Array<'a> {
        match t {
            SqlType::Int => Array::Int(Vec::with_capacity(n)),
            SqlType::Real => Array::Real(Vec::with_capacity(n)),
            SqlType::Text => Array::Text(Vec::with_capacity(n)),
        }
    }

    fn push(&mut self, v: Value<'a>) -> anyhow::Result<()> {
        match (self, v) {
            (Array::Int(a), Value::Int(n)) => a.push(n),
            (Array::Real(a), Value::Real(x)) => a.push(x),
            (Array::Text(a), Value::Text(t)) => a.push(t),
            (_, v) => anyhow::bail!("an event value {v:?} does not match its column's type"),
        }
        Ok(())
    }

    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Array::Int(a) => a,
            Array::Real(a) => a,
            Array::Text(a) => a,
        }
    }
}

fn as_i64(n: u64, what: &str) -> anyhow::Result<i64> {
    i64::try_from(n).map_err(|_| bad_input(format!("{what} {n} is too large to store")))
}

/// This machine's name, which keys its log files' read state.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl PgWriter {
    /// Connect, refuse a database tokmon must not write, create or migrate the schema.
    pub fn open(target: &Target) -> anyhow::Result<PgWriter> {
        let mut client = target.connect()?;
        migrate(&mut client, &target.shown)?;
        Ok(PgWriter {
            client,
            shown: target.shown.clone(),
            host: host_name(),
            in_tx: false,
            counts: InsertCounts::default(),
            pending: Vec::new(),
        })
    }

    fn sql_err(e: postgres::Error) -> anyhow::Error {
        overflow_or(e)
    }

    /// Open a transaction (taking the write lock) unless one is open.
    pub fn begin(&mut self) -> anyhow::Result<()> {
        if !self.in_tx {
            self.client.batch_execute("BEGIN").map_err(Self::sql_err)?;
            self.in_tx = true;
            self.client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                .map_err(Self::sql_err)?;
        }
        Ok(())
    }

    pub fn commit(&mut self) -> anyhow::Result<()> {
        self.flush()?;
        if self.in_tx {
            self.in_tx = false;
            self.client.batch_execute("COMMIT").map_err(Self::sql_err)?;
        }
        Ok(())
    }

    pub fn rollback(&mut self) {
        self.pending.clear();
        if self.in_tx {
            self.in_tx = false;
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }

    /// Insert one event (or its correction, or nothing), inside the open transaction. Events
    /// are sent in batches: the last ones go with [`PgWriter::commit`].
    pub fn insert(&mut self, e: &NewEvent) -> anyhow::Result<()> {
        self.begin()?;
        self.pending.push(e.clone());
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Insert the pending events in one statement, then, in their order, count the ones whose
    /// key was stored already (a Claude Code reply that grew gets its correction, as one by
    /// one would give it).
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.pending);
        let hashes: Vec<Option<i64>> = events
            .iter()
            .map(|e| e.unique_key.as_deref().map(key_hash))
            .collect();
        let rows = {
            let arrays = event_arrays(events.iter())?;
            let long: Vec<bool> = events
                .iter()
                .map(|e| {
                    crate::pricing::is_long_context(
                        e.input_tokens,
                        e.cache_creation_tokens,
                        e.cache_read_tokens,
                    )
                })
                .collect();
            let ord: Vec<i32> = (0..events.len() as i32).collect();
            let mut params: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(Array::sql).collect();
            params.extend([&hashes as &(dyn ToSql + Sync), &long, &ord]);
            self.client
                .query(BATCH_SQL.as_str(), &params)
                .map_err(Self::sql_err)?
        };
        // The keyed events that went in (events without a key always do).
        let mut inserted = std::collections::HashSet::new();
        for r in &rows {
            if let (Some(h), Some(k)) = (
                r.try_get::<_, Option<i64>>(0)?,
                r.try_get::<_, Option<String>>(1)?,
            ) {
                inserted.insert((h, k));
            }
        }
        // What went in, and which events met a stored key.
        let mut dups = Vec::new();
        for (i, (e, hash)) in events.iter().zip(&hashes).enumerate() {
            let (Some(key), Some(hash)) = (e.unique_key.as_deref(), *hash) else {
                self.counts.inserted += 1;
                continue;
            };
            // The first event of a key in the batch is the one that went in.
            if inserted.remove(&(hash, key.to_string())) {
                self.counts.inserted += 1;
            } else if e.source == CORRECTABLE_SOURCE {
                dups.push((i, hash));
            } else {
                self.counts.duplicates += 1;
            }
        }
        if dups.is_empty() {
            return Ok(());
        }
        // The stored replies of those keys with their corrections, in one query; then each
        // event, in order, against the running totals (a correction adds to them).
        let mut stored = self.stored_replies(&events, &dups)?;
        let mut corrections = Vec::new();
        for (i, hash) in dups {
            let e = &events[i];
            let key = e.unique_key.clone().unwrap_or_default();
            let Some((dims, long, st)) = stored.get_mut(&(hash, key)) else {
                self.counts.duplicates += 1;
                continue;
            };
            let Some(c) = super::native::correction(st, e) else {
                self.counts.duplicates += 1;
                continue;
            };
            st.add(c.counts(), c.cost_usd, c.metadata.as_deref());
            corrections.push((c.with_dims(dims.clone()), st.id, *long));
            self.counts.corrected += 1;
        }
        self.write_corrections(&corrections)
    }

    /// Insert corrections (each with the id it corrects and its reply's long-context flag)
    /// in one statement, in their order.
    fn write_corrections(&mut self, rows: &[(NewEvent, i64, bool)]) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let arrays = event_arrays(rows.iter().map(|(e, _, _)| e))?;
        let corrects: Vec<i64> = rows.iter().map(|(_, id, _)| *id).collect();
        let long: Vec<bool> = rows.iter().map(|(_, _, l)| *l).collect();
        let ord: Vec<i32> = (0..rows.len() as i32).collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(Array::sql).collect();
        params.extend([&corrects as &(dyn ToSql + Sync), &long, &ord]);
        self.client
            .execute(CORRECTIONS_SQL.as_str(), &params)
            .map_err(Self::sql_err)?;
        Ok(())
    }

    /// For the keys of `events[i]` in `dups`: the stored reply's time and dimensions, its
    /// long-context flag and its running totals (the event plus its corrections).
    fn stored_replies(
        &mut self,
        events: &[NewEvent],
        dups: &[(usize, i64)],
    ) -> anyhow::Result<StoredReplies> {
        let hashes: Vec<i64> = dups.iter().map(|(_, h)| *h).collect();
        let keys: Vec<&str> = dups
            .iter()
            .map(|(i, _)| events[*i].unique_key.as_deref().unwrap_or_default())
            .collect();
        let rows = self
            .client
            .query(STORED_REPLIES_SQL.as_str(), &[&hashes, &keys])
            .map_err(Self::sql_err)?;
        let mut out = StoredReplies::new();
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let key = (r.try_get::<_, i64>(1)?, r.try_get::<_, String>(2)?);
            let entry = match out.entry(key) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let mut dims = NewEvent {
                        ts_ms: r.try_get(3)?,
                        source: r.try_get(4)?,
                        ..Default::default()
                    };
                    for (i, d) in Dimension::ALL.into_iter().enumerate() {
                        dims.set_dim(d, r.try_get(6 + i)?);
                    }
                    v.insert((dims, r.try_get(5)?, super::native::Stored::new(id)))
                }
            };
            let t = |i: usize| -> anyhow::Result<u64> { Ok(r.try_get::<_, i64>(i)?.max(0) as u64) };
            let first = 6 + Dimension::ALL.len();
            let mut i = first..;
            let counts = Counts::try_from_fn(|_| t(i.next().unwrap_or_default()))?;
            let n = first + COUNT_COLUMNS.len();
            entry.2.add(
                counts,
                r.try_get(n)?,
                r.try_get::<_, Option<String>>(n + 1)?.as_deref(),
            );
        }
        Ok(out)
    }

    /// Record one event in its own transaction. `Ok(false)`: its key was stored already.
    /// A token sum of its 15 minutes that would pass bigint is refused by the server
    /// ([`TokenOverflow`]), and nothing is written.
    pub fn record(&mut self, e: &NewEvent) -> anyhow::Result<bool> {
        let before = self.counts.inserted;
        let result = self.insert(e).and_then(|()| self.commit());
        if result.is_err() {
            self.rollback();
        }
        result?;
        Ok(self.counts.inserted > before)
    }

    /// The stored read state of one of this machine's log files.
    pub fn file_state(&mut self, key: &str) -> anyhow::Result<Option<super::FileState>> {
        let row = self
            .client
            .query_opt(
                "SELECT format, size, mtime_ns, \"offset\", line_no, head_len, head_hash, tail_len,
                        tail_hash, state
                 FROM import_files WHERE host = $1 AND path = $2",
                &[&self.host, &key],
            )
            .map_err(Self::sql_err)?;
        Ok(row.map(|r| super::FileState {
            format: r.get(0),
            size: r.get::<_, i64>(1).max(0) as u64,
            mtime_ns: r.get(2),
            offset: r.get::<_, i64>(3).max(0) as u64,
            line_no: r.get::<_, i64>(4).max(0) as u64,
            head_len: r.get::<_, i64>(5).max(0) as u64,
            head_hash: r.get(6),
            tail_len: r.get::<_, i64>(7).max(0) as u64,
            tail_hash: r.get(8),
            state: r.get(9),
        }))
    }

    /// Save a log file's read state, in the open transaction.
    pub fn save_file_state(&mut self, key: &str, s: &super::FileState) -> anyhow::Result<()> {
        self.begin()?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.client
            .execute(
                "INSERT INTO import_files (host, path, format, size, mtime_ns, \"offset\", line_no,
                     head_len, head_hash, tail_len, tail_hash, state, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (host, path) DO UPDATE SET format = excluded.format,
                     size = excluded.size, mtime_ns = excluded.mtime_ns,
                     \"offset\" = excluded.\"offset\", line_no = excluded.line_no,
                     head_len = excluded.head_len, head_hash = excluded.head_hash,
                     tail_len = excluded.tail_len, tail_hash = excluded.tail_hash,
                     state = excluded.state, updated_at = excluded.updated_at",
                &[
                    &self.host,
                    &key,
                    &s.format,
                    &as_i64(s.size, "size")?,
                    &s.mtime_ns,
                    &as_i64(s.offset, "offset")?,
                    &as_i64(s.line_no, "line")?,
                    &as_i64(s.head_len, "length")?,
                    &s.head_hash,
                    &as_i64(s.tail_len, "length")?,
                    &s.tail_hash,
                    &s.state,
                    &now_ms,
                ],
            )
            .map_err(Self::sql_err)?;
        Ok(())
    }

    /// Append one sync of the quota counter to the history table.
    pub fn append_sync(&mut self, rec: &super::native::SyncRecord) -> anyhow::Result<()> {
        self.client
            .execute(
                "INSERT INTO sync_history (at, value, increment, note, method, state_path)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &rec.at_ms,
                    &as_i64(rec.value, "value")?,
                    &as_i64(rec.increment, "increment")?,
                    &rec.note,
                    &rec.method,
                    &rec.state_path,
                ],
            )
            .map_err(Self::sql_err)?;
        Ok(())
    }

    /// The sync history, newest first.
    pub fn sync_history(
        &mut self,
        limit: Option<usize>,
    ) -> anyhow::Result<Vec<super::native::SyncRecord>> {
        let limit = limit.map(|l| l.min(i64::MAX as usize) as i64);
        let rows = self
            .client
            .query(
                "SELECT at, value, increment, note, method, state_path FROM sync_history
                 ORDER BY at DESC, id DESC LIMIT $1",
                &[&limit],
            )
            .map_err(Self::sql_err)?;
        Ok(rows
            .iter()
            .map(|r| super::native::SyncRecord {
                at_ms: r.get(0),
                value: r.get::<_, i64>(1).max(0) as u64,
                increment: r.get::<_, i64>(2).max(0) as u64,
                note: r.get(3),
                method: r.get(4),
                state_path: r.get(5),
            })
            .collect())
    }
}

impl Drop for PgWriter {
    fn drop(&mut self) {
        self.rollback();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        for u in [
            "postgres://h/db",
            "postgresql://u@h/db",
            "POSTGRES://h",
            "postgres:oops",
        ] {
            assert!(is_url(Path::new(u)), "{u}");
        }
        for p in ["usage.db", "./postgres", "/tmp/postgres/x.db", "pg.db"] {
            assert!(!is_url(Path::new(p)), "{p}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        let cases = [
            (
                "postgres://alice:s3cret@db.example/usage",
                "postgres://alice:***@db.example/usage",
            ),
            ("postgres://alice@db/usage", "postgres://alice@db/usage"),
            (
                "postgresql://a:p@ss@w/rd@h:5433/d",
                "postgresql://a:***@h:5433/d",
            ),
            (
                "postgres://h/d?user=a&password=s3cret&sslmode=require",
                "postgres://h/d?user=a&password=***&sslmode=require",
            ),
            ("postgres:s3cret", "postgres:***"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want);
            assert!(!redact(url).contains("s3cret") && !redact(url).contains("p@ss"));
        }
    }

    #[test]
    fn bad_urls_are_refused_without_the_password() {
        for url in [
            "postgres:s3cret",
            "postgres://u:s3cret@h:notaport/d",
            "postgres://u:s3cret@h/d?sslmode=verify-full",
            "postgres://u:s3cret@h/d?bogus_option=1",
        ] {
            let e = Target::parse(Path::new(url)).unwrap_err();
            let msg = format!("{e:#}");
            assert!(!msg.contains("s3cret"), "{msg}");
            assert!(msg.contains("postgres:"), "{msg}");
            assert!(
                crate::error::exit_code_for(&e) == crate::error::exit::BAD_INPUT,
                "{msg}"
            );
        }
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\nother:5432:*:*:nope\nh:5432:d:u:first\n*:*:*:u:any\nesc\\:aped:*:*:*:x\\:y\n";
        assert_eq!(
            pgpass_lookup(text, "h", "5432", "d", "u").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup(text, "h", "5433", "d", "u").as_deref(),
            Some("any")
        );
        assert_eq!(
            pgpass_lookup(text, "esc:aped", "1", "d", "v").as_deref(),
            Some("x:y")
        );
        assert_eq!(pgpass_lookup(text, "h", "5432", "d", "v"), None);
    }
}

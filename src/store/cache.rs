//! The rollup cache beside a foreign database.
//!
//! A foreign tracker's table is never written, so its 15-minute rollup lives in a cache file of
//! tokmon's own (`<data dir>/cache/`). New rows (by id) are folded in on each read; a source that
//! was rewritten (rows gone, ids reused, the first row changed) is noticed and the cache rebuilt.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Source;
use super::mapping::{Dimension, quote};
use super::query::{
    HashGroups, NO_TIME_SLICE, PRICE_DETAIL_COLUMNS, ROLLUP_SUM_COLUMNS, ROLLUP_TABLE, SLICE_MS,
    Sums,
};

/// Changes whenever the cache file's tables change, so an older cache is never read.
const CACHE_LAYOUT: u32 = 3;

/// What identifies the rows already folded in: the first row (id and raw time) and the count
/// of rows up to the last id folded.
#[derive(Debug, Clone, PartialEq)]
struct Fingerprint {
    first_id: i64,
    first_ts: String,
    last_id: i64,
    rows: i64,
    /// Earliest and latest readable event time of the rows folded in (unix ms).
    bounds: Option<(i64, i64)>,
}

pub struct RollupCache {
    pub path: PathBuf,
    pub(super) conn: Connection,
    folded: Option<Fingerprint>,
    /// The row count was checked against the source since the cache was opened.
    counted: bool,
}

impl std::fmt::Debug for RollupCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollupCache")
            .field("path", &self.path)
            .finish()
    }
}

/// The cache file for a source: one per database path, table and mapping.
pub fn cache_file(dir: &Path, source: &Source) -> PathBuf {
    let canonical = std::fs::canonicalize(&source.path).unwrap_or_else(|_| source.path.clone());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    canonical.hash(&mut h);
    format!("{:?}", source.mapping).hash(&mut h);
    // The layout of the cache file (v2: event time bounds in `cache_meta`).
    CACHE_LAYOUT.hash(&mut h);
    let stem = source
        .path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("db");
    let stem: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    dir.join(format!("{stem}-{:016x}.rollup.db", h.finish()))
}

/// How long opening a cache file that others are making waits for them.
const OPEN_BUSY_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// SQLite said the file is busy or locked.
fn busy(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _))
                if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    })
}

impl RollupCache {
    /// Open (or create) the cache for `source` in `dir`.
    pub fn open(dir: &Path, source: &Source) -> anyhow::Result<RollupCache> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = cache_file(dir, source);
        // Connections making a new cache file at once (the monitor's threads, a report) can
        // each hold the lock the other needs where SQLite does not wait but answers "busy"
        // (switching the new file to WAL): the open is tried again, for as long as a busy
        // cache is waited for.
        let deadline = std::time::Instant::now() + OPEN_BUSY_FOR;
        loop {
            match Self::open_file(&path, source) {
                Err(e) if busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                result => return result,
            }
        }
    }

    fn open_file(path: &Path, source: &Source) -> anyhow::Result<RollupCache> {
        let path = path.to_path_buf();
        let mut conn =
            Connection::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let has_table = |conn: &Connection| -> rusqlite::Result<bool> {
            conn.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'cache_meta'",
                [],
                |r| r.get::<_, i64>(0).map(|n| n > 0),
            )
        };
        if !has_table(&conn)? {
            // Several readers (the monitor's threads, a report) may open a new cache at once:
            // one makes the tables, under the write lock.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !has_table(&tx)? {
                tx.execute_batch(include_str!("../../migrations/0003_rollups.sql"))?;
                tx.execute_batch(include_str!(
                    "../../migrations/0006_price_detail_rollup.sql"
                ))?;
                tx.execute_batch(
                    "CREATE TABLE cache_meta (id INTEGER PRIMARY KEY CHECK (id = 1), source TEXT NOT NULL,
                        first_id INTEGER NOT NULL, first_ts TEXT NOT NULL, last_id INTEGER NOT NULL,
                        rows INTEGER NOT NULL, min_ts INTEGER, max_ts INTEGER)",
                )?;
            }
            tx.commit()?;
        }
        let folded = stored_fingerprint(&conn, source)?;
        Ok(RollupCache {
            path,
            conn,
            folded,
            counted: false,
        })
    }

    /// Whether rows have been folded in (it may still lag behind the source by new rows, or
    /// turn out stale on the next refresh if the source was rewritten).
    pub fn is_warm(&self) -> bool {
        self.folded.as_ref().is_some_and(|f| f.last_id != i64::MIN)
    }

    /// Earliest and latest readable event time folded in so far.
    pub fn time_bounds(&self) -> Option<(i64, i64)> {
        self.folded.as_ref().and_then(|f| f.bounds)
    }

    /// Bring the cache up to date with the source: fold rows added since the last refresh, or
    /// rebuild everything when the source was rewritten.
    pub fn refresh(&mut self, source: &Source) -> anyhow::Result<()> {
        for _ in 0..REFRESH_TRIES {
            if self.try_refresh(source)? {
                return Ok(());
            }
        }
        anyhow::bail!(
            "the rollup cache {} kept changing under other readers",
            self.path.display()
        )
    }

    /// What the cache file should hold as folded: nothing after a reset.
    fn expected_stored(&self) -> Option<&Fingerprint> {
        self.folded.as_ref().filter(|f| f.last_id != i64::MIN)
    }

    /// [`RollupCache::refresh`] once; `false` when another reader of the same cache file
    /// folded rows in (or rebuilt it) meanwhile, so nothing was written.
    fn try_refresh(&mut self, source: &Source) -> anyhow::Result<bool> {
        let stored = stored_fingerprint(&self.conn, source)?;
        if stored.as_ref() != self.expected_stored() {
            self.folded = stored;
            self.counted = false;
        }
        let m = &source.mapping;
        let table = quote(&m.table);
        let id = m.id_sql();
        let first: Option<(i64, String)> = source
            .conn()
            .query_row(
                &format!(
                    "SELECT {id}, CAST({ts} AS TEXT) FROM {table} ORDER BY {id} LIMIT 1",
                    ts = quote(&m.ts)
                ),
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    ))
                },
            )
            .optional()?;
        let max_id = source.max_id()?;
        let Some((first_id, first_ts)) = first else {
            self.reset(None)?;
            return Ok(true);
        };
        let count_upto = |last: i64| -> anyhow::Result<i64> {
            Ok(source.conn().query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE {id} <= ?1"),
                [last],
                |r| r.get(0),
            )?)
        };
        let still_valid = match &self.folded {
            Some(f) => {
                f.first_id == first_id
                    && f.first_ts == first_ts
                    && f.last_id <= max_id
                    && (self.counted || count_upto(f.last_id)? == f.rows)
            }
            None => false,
        };
        if !still_valid {
            self.reset(Some((first_id, first_ts.clone())))?;
        }
        self.counted = true;
        let from_id = self.folded.as_ref().map(|f| f.last_id).unwrap_or(i64::MIN);
        if from_id >= max_id {
            return Ok(true);
        }
        self.fold(source, from_id, max_id, first_id, first_ts)
    }

    /// Forget what was folded in, so the next refresh rebuilds the cache (the monitor saw
    /// rows deleted or rewritten in the source).
    pub fn forget(&mut self) -> anyhow::Result<()> {
        self.reset(None)
    }

    /// Forget everything (the source is empty or was rewritten).
    fn reset(&mut self, first: Option<(i64, String)>) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(&format!(
            "DELETE FROM {ROLLUP_TABLE}; DELETE FROM cache_meta;"
        ))?;
        tx.commit()?;
        self.folded = first.map(|(first_id, first_ts)| Fingerprint {
            first_id,
            first_ts,
            last_id: i64::MIN,
            rows: 0,
            bounds: None,
        });
        Ok(())
    }

    /// Fold the source rows with `from_id < id <= to_id` into the cache; `false` (nothing
    /// written) when the cache file no longer holds what this reader folded from.
    fn fold(
        &mut self,
        source: &Source,
        from_id: i64,
        to_id: i64,
        first_id: i64,
        first_ts: String,
    ) -> anyhow::Result<bool> {
        let m = &source.mapping;
        // Summed in memory (see `HashGroups`): SQLite would sort every row for a GROUP BY.
        let sql = format!(
            "SELECT {ts}, CAST({model} AS TEXT), CAST({agent} AS TEXT), CAST({provider} AS TEXT), {sums}
             FROM {table} WHERE {id} > ?1 AND {id} <= ?2",
            ts = m.ts_sql(),
            model = m.dim_sql(Dimension::Model),
            agent = m.dim_sql(Dimension::Agent),
            provider = m.dim_sql(Dimension::Provider),
            sums = source.summed_columns_sql(),
            table = quote(&m.table),
            id = m.id_sql(),
        );
        let mut groups = HashGroups::<3>::default();
        let mut bounds = self.folded.as_ref().and_then(|f| f.bounds);
        {
            let mut read = source.conn().prepare(&sql)?;
            let mut rows = read.query(params![from_id, to_id])?;
            while let Some(r) = rows.next()? {
                let t: Option<i64> = r.get(0)?;
                if let Some(t) = t {
                    bounds = Some(bounds.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
                }
                groups.add_row(Some(t.map_or(NO_TIME_SLICE, |t| t / SLICE_MS)), r, 1)?;
            }
        }
        type SliceKey = (i64, String, String, String);
        let mut slices: HashMap<SliceKey, Sums> = HashMap::new();
        for g in &groups.groups {
            let [model, agent, provider] = g.texts.clone().map(Option::unwrap_or_default);
            slices
                .entry((g.slice.unwrap_or(NO_TIME_SLICE), model, agent, provider))
                .or_default()
                .add(&g.sums()?)?;
        }
        let sums: Vec<&str> = ROLLUP_SUM_COLUMNS
            .iter()
            .chain(&PRICE_DETAIL_COLUMNS)
            .copied()
            .collect();
        let set: Vec<String> = sums
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect();
        let places: Vec<String> = (1..=4 + sums.len()).map(|i| format!("?{i}")).collect();
        let upsert = format!(
            "INSERT INTO {ROLLUP_TABLE} (slice, model, agent, provider, {}) VALUES ({})
             ON CONFLICT (slice, model, agent, provider) DO UPDATE SET {}",
            sums.join(", "),
            places.join(", "),
            set.join(", ")
        );
        let expected = self.expected_stored().cloned();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if stored_fingerprint(&tx, source)? != expected {
            return Ok(false);
        }
        let mut added = 0i64;
        {
            let mut write = tx.prepare(&upsert)?;
            let i = |n: u64| n as i64;
            for ((slice, model, agent, provider), s) in &slices {
                added += i(s.all.events);
                let mut values: Vec<rusqlite::types::Value> = vec![
                    (*slice).into(),
                    model.clone().into(),
                    agent.clone().into(),
                    provider.clone().into(),
                ];
                let counts = [
                    s.all.events,
                    s.all.input,
                    s.all.output,
                    s.all.cache_write,
                    s.all.cache_read,
                ];
                values.extend(counts.map(|n| i(n).into()));
                values.extend([s.stored_cost.into(), s.positive_cost.into()]);
                let uncosted = [
                    s.uncosted.events,
                    s.uncosted.input,
                    s.uncosted.output,
                    s.uncosted.cache_write,
                    s.uncosted.cache_read,
                ];
                values.extend(uncosted.map(|n| i(n).into()));
                values.extend(s.all.detail().map(|n| i(n).into()));
                values.extend(s.uncosted.detail().map(|n| i(n).into()));
                write.execute(rusqlite::params_from_iter(values))?;
            }
        }
        let rows = self.folded.as_ref().map(|f| f.rows).unwrap_or(0) + added;
        tx.execute(
            "INSERT OR REPLACE INTO cache_meta (id, source, first_id, first_ts, last_id, rows, min_ts, max_ts)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                source.path.to_string_lossy(),
                first_id,
                first_ts,
                to_id,
                rows,
                bounds.map(|b| b.0),
                bounds.map(|b| b.1),
            ],
        )?;
        tx.commit()?;
        self.folded = Some(Fingerprint {
            first_id,
            first_ts,
            last_id: to_id,
            rows,
            bounds,
        });
        Ok(true)
    }
}

/// How often a refresh starts again when another reader changed the cache meanwhile.
const REFRESH_TRIES: usize = 4;

/// What the cache file says was folded in from `source`.
fn stored_fingerprint(conn: &Connection, source: &Source) -> rusqlite::Result<Option<Fingerprint>> {
    conn.query_row(
        "SELECT first_id, first_ts, last_id, rows, min_ts, max_ts FROM cache_meta
         WHERE id = 1 AND source = ?1",
        [source.path.to_string_lossy()],
        |r| {
            let (lo, hi): (Option<i64>, Option<i64>) = (r.get(4)?, r.get(5)?);
            Ok(Fingerprint {
                first_id: r.get(0)?,
                first_ts: r.get(1)?,
                last_id: r.get(2)?,
                rows: r.get(3)?,
                bounds: lo.zip(hi),
            })
        },
    )
    .optional()
}

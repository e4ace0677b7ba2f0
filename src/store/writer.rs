//! The write side of the store: record, import and sync history into tokmon's own database,
//! a SQLite file or a PostgreSQL database, without the caller knowing which.

use std::path::Path;

use rusqlite::Connection;

use super::native::{self, BulkLoad, InsertCounts, Inserter, NewEvent, SyncRecord};
use super::pg;
use super::query::TokenOverflow;

/// tokmon's own database, open for writing (created and migrated if needed).
pub enum Writer {
    Sqlite(Connection),
    Postgres(Box<pg::PgWriter>),
}

/// What [`Writer::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Added,
    /// An event with the same key is stored: nothing added.
    AlreadyThere,
    /// Not recorded: a token sum of the event's 15 minutes would pass
    /// [`super::query::MAX_TOKENS`].
    TooLarge,
}

impl Writer {
    /// Open `db` for writing: a `postgres://` URL or a file path. A database tokmon must not
    /// write (another tool's, a newer tokmon's) is refused before anything is changed.
    pub fn open(db: &Path) -> anyhow::Result<Writer> {
        if pg::is_url(db) {
            let target = pg::Target::parse(db)?;
            return Ok(Writer::Postgres(Box::new(pg::PgWriter::open(&target)?)));
        }
        Ok(Writer::Sqlite(native::open_rw(db)?))
    }

    /// Record one event in a transaction of its own.
    pub fn record(&mut self, e: &NewEvent) -> anyhow::Result<Recorded> {
        match self {
            Writer::Sqlite(conn) => native::record(conn, e),
            Writer::Postgres(w) => match w.record(e) {
                Ok(true) => Ok(Recorded::Added),
                Ok(false) => Ok(Recorded::AlreadyThere),
                Err(err) if err.is::<TokenOverflow>() => Ok(Recorded::TooLarge),
                Err(err) => Err(err),
            },
        }
    }

    /// Insert events in one transaction (duplicates by key skipped). Returns (inserted,
    /// skipped).
    pub fn insert_events<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a NewEvent>,
    ) -> anyhow::Result<(u64, u64)> {
        match self {
            Writer::Sqlite(conn) => native::insert_events(conn, events),
            Writer::Postgres(w) => {
                w.counts = InsertCounts::default();
                let result = events
                    .into_iter()
                    .try_for_each(|e| w.insert(e))
                    .and_then(|()| w.commit());
                if result.is_err() {
                    w.rollback();
                }
                result?;
                Ok((w.counts.inserted, w.counts.duplicates + w.counts.corrected))
            }
        }
    }

    /// Append one sync of the quota counter to the history.
    pub fn append_sync(&mut self, rec: &SyncRecord) -> anyhow::Result<()> {
        match self {
            Writer::Sqlite(conn) => native::append_sync(conn, rec),
            Writer::Postgres(w) => w.append_sync(rec),
        }
    }

    /// The sync history, newest first.
    pub fn sync_history(&mut self, limit: Option<usize>) -> anyhow::Result<Vec<SyncRecord>> {
        match self {
            Writer::Sqlite(conn) => native::sync_history(conn, limit),
            Writer::Postgres(w) => w.sync_history(limit),
        }
    }

    /// How the database is named in messages (a URL without its password).
    pub fn shown(&self, db: &Path) -> String {
        pg::shown(db)
    }
}

/// How far an import has read one log file (the `import_files` table).
#[derive(Debug, Clone)]
pub struct FileState {
    pub format: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub offset: u64,
    pub line_no: u64,
    pub head_len: u64,
    pub head_hash: String,
    pub tail_len: u64,
    pub tail_hash: String,
    pub state: Option<String>,
}

/// Where an import writes: events, and each log file's read state in the same transaction.
/// The importer decides when to commit; a sink dropped with its transaction open rolls back.
pub trait ImportSink {
    /// The stored read state of a log file (by its canonical path).
    fn file_state(&mut self, key: &str) -> anyhow::Result<Option<FileState>>;
    /// Open a transaction unless one is open.
    fn begin(&mut self) -> anyhow::Result<()>;
    /// Insert one event (or its correction, or nothing), in the open transaction.
    fn insert(&mut self, e: &NewEvent) -> anyhow::Result<()>;
    /// Save a log file's read state, in the open transaction.
    fn save_file_state(&mut self, key: &str, s: &FileState) -> anyhow::Result<()>;
    /// Commit the open transaction, if any.
    fn commit(&mut self) -> anyhow::Result<()>;
    /// What the inserts did so far.
    fn counts(&self) -> InsertCounts;
    /// The open transaction is a bulk load whose cost is in its commit: commit by time only.
    fn bulk_loading(&self) -> bool {
        false
    }
    /// No other connection can open the database: nobody waits for its write lock, so the
    /// import commits only at its end.
    fn private(&self) -> bool {
        false
    }
}

/// An import into a SQLite database: one transaction at a time, the rollup folded in at
/// once before each commit.
pub struct SqliteSink<'c> {
    conn: &'c Connection,
    tx: Option<rusqlite::Transaction<'c>>,
    ins: Inserter<'c>,
    /// The transaction is a bulk load (the first of an import into an empty table).
    bulk: Option<BulkLoad>,
    /// No transaction was opened yet.
    first: bool,
    /// The first transaction was a bulk load: later ones drop the triggers too.
    cold: bool,
    /// Every file's read state, read at once when the first is asked for.
    states: Option<std::collections::HashMap<String, FileState>>,
    /// The database is a [`native::FreshDb`] (see [`ImportSink::private`]).
    pub fresh: Option<&'c native::FreshDb>,
    /// Where a bulk load's pages go (the fresh database's file, or the WAL), to start their
    /// writing to disk as the load goes ([`native::start_writeback`]).
    writeback: Option<std::fs::File>,
    /// Events inserted since the writing to disk was last started.
    unflushed: u64,
}

/// How many events a bulk load writes between two starts of its writing to disk (some 10 MB
/// of rows).
const WRITEBACK_EVENTS: u64 = 32_768;

impl<'c> SqliteSink<'c> {
    /// `cold`: many events are coming (see [`Inserter::new`]).
    pub fn new(conn: &'c Connection, cold: bool) -> anyhow::Result<SqliteSink<'c>> {
        Ok(SqliteSink {
            conn,
            tx: None,
            ins: Inserter::new(conn, cold)?,
            bulk: None,
            first: true,
            cold: false,
            states: None,
            fresh: None,
            writeback: None,
            unflushed: 0,
        })
    }
}

impl Drop for SqliteSink<'_> {
    fn drop(&mut self) {
        // The connection outlives the sink (a follower imports with it again).
        let _ = self
            .conn
            .pragma_update(None, "ignore_check_constraints", false);
    }
}

impl ImportSink for SqliteSink<'_> {
    fn file_state(&mut self, key: &str) -> anyhow::Result<Option<FileState>> {
        // One query for all files rather than one per file (a re-import looks at each).
        let states = match &mut self.states {
            Some(s) => s,
            None => self.states.insert(native::load_file_states(self.conn)?),
        };
        Ok(states.get(key).cloned())
    }

    fn begin(&mut self) -> anyhow::Result<()> {
        if self.tx.is_none() {
            // IMMEDIATE: the write lock is taken now, so what the transaction reads first
            // (is the table empty?) still holds when it writes.
            let t = rusqlite::Transaction::new_unchecked(
                self.conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            // The rollup is filled at once before each commit, not row by row.
            self.ins.defer_rollup()?;
            // The CHECK constraints of `events` (counts and amounts not negative, metadata
            // valid JSON) hold for every row an import writes: the parsers refuse negative
            // amounts, the counts are unsigned (`NewEvent::values` refuses one too large for
            // SQLite), corrections only add, and metadata is JSON that serde_json wrote or
            // parsed (`json_valid` alone was ~5 % of a first import's writing). Set back
            // before the commit, and when the sink is dropped.
            self.conn
                .pragma_update(None, "ignore_check_constraints", true)?;
            if std::mem::take(&mut self.first) {
                self.bulk = BulkLoad::start(&t)?;
                self.cold = self.bulk.is_some();
                self.writeback = match (self.fresh, self.conn.path()) {
                    (Some(fresh), _) => fresh.file().try_clone().ok(),
                    // The rows of a bulk load into a database others may read go to its WAL
                    // (which the checkpoint after the commit syncs, then copies).
                    (None, Some(path)) if self.cold && !path.is_empty() => {
                        std::fs::File::open(format!("{path}-wal")).ok()
                    }
                    (None, _) => None,
                };
            } else if self.cold {
                self.bulk = Some(BulkLoad::start_keeping_indexes(&t)?);
            }
            self.tx = Some(t);
        }
        Ok(())
    }

    fn insert(&mut self, e: &NewEvent) -> anyhow::Result<()> {
        if let Some(file) = &self.writeback {
            self.unflushed += 1;
            if self.unflushed >= WRITEBACK_EVENTS {
                self.unflushed = 0;
                native::start_writeback(file);
            }
        }
        self.ins.insert(e)
    }

    fn save_file_state(&mut self, key: &str, s: &FileState) -> anyhow::Result<()> {
        if let Some(states) = &mut self.states {
            states.insert(key.to_string(), s.clone());
        }
        native::save_file_state(self.conn, key, s)
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        if let Some(t) = self.tx.take() {
            if let Some(bulk) = self.bulk.take() {
                // The rows go to disk while the indexes are built, and each index while the
                // next one is.
                let writeback = || {
                    if let Some(file) = &self.writeback {
                        native::start_writeback(file);
                    }
                };
                writeback();
                bulk.finish(&t, writeback)?;
            }
            self.ins.fold_rollup()?;
            self.conn
                .pragma_update(None, "ignore_check_constraints", false)?;
            t.commit()?;
        }
        Ok(())
    }

    fn counts(&self) -> InsertCounts {
        self.ins.counts
    }

    fn bulk_loading(&self) -> bool {
        self.bulk.as_ref().is_some_and(|b| b.indexes)
    }

    fn private(&self) -> bool {
        self.fresh.is_some()
    }
}

impl ImportSink for pg::PgWriter {
    fn file_state(&mut self, key: &str) -> anyhow::Result<Option<FileState>> {
        pg::PgWriter::file_state(self, key)
    }

    fn begin(&mut self) -> anyhow::Result<()> {
        pg::PgWriter::begin(self)
    }

    fn insert(&mut self, e: &NewEvent) -> anyhow::Result<()> {
        pg::PgWriter::insert(self, e)
    }

    fn save_file_state(&mut self, key: &str, s: &FileState) -> anyhow::Result<()> {
        pg::PgWriter::save_file_state(self, key, s)
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        pg::PgWriter::commit(self)
    }

    fn counts(&self) -> InsertCounts {
        self.counts
    }
}

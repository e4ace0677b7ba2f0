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
        // The rollup is filled by 0006, which rebuilds it with its price-detail sums.
        M::up(include_str!("../../migrations/0003_rollups.sql")),
        M::up(include_str!("../../migrations/0004_rollup_triggers.sql")),
        M::up_with_hook(
            include_str!("../../migrations/0005_corrections.sql"),
            |tx| {
                fill_key_hashes(tx)?;
                Ok(())
            },
        ),
        M::up_with_hook(
            concat!(
                include_str!("../../migrations/0006_price_detail_rollup.sql"),
                include_str!("../../migrations/0006_price_detail.sql")
            ),
            |tx| {
                rebuild_rollup(tx)?;
                Ok(())
            },
        ),
        M::up(include_str!("../../migrations/0007_session_index.sql")),
    ])
});

/// Recompute the rollup table from the events (after a bulk load without triggers, or when
/// the rollup table is first created).
pub fn rebuild_rollup(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&rollup_sql("corrects IS NULL"))
}

/// The SQL that fills the rollup from the events; `events` says how many events a row is.
fn rollup_sql(events: &str) -> String {
    format!(
        "DELETE FROM rollup_15m;
         INSERT INTO rollup_15m ({}) {}",
        rollup_columns(),
        rollup_select(events, "")
    )
}

/// The columns [`rollup_select`] fills, in order.
fn rollup_columns() -> String {
    format!(
        "slice, model, agent, provider, events, input_tokens, output_tokens,
         cache_creation_tokens, cache_read_tokens, stored_cost, positive_cost, uncosted_events,
         uncosted_input, uncosted_output, uncosted_cache_creation, uncosted_cache_read, {}",
        super::query::PRICE_DETAIL_COLUMNS.join(", ")
    )
}

/// The rollup rows of the events that pass `filter` (a `WHERE` clause or nothing).
fn rollup_select(events: &str, filter: &str) -> String {
    format!(
        "SELECT ts / 900000, model, COALESCE(agent, ''), COALESCE(provider, ''),
                SUM({events}), SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens),
                SUM(cache_read_tokens), TOTAL(cost_usd), TOTAL(CASE WHEN cost_usd > 0 THEN cost_usd END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE {events} END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE input_tokens END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE output_tokens END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE cache_creation_tokens END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE cache_read_tokens END),
                SUM(cache_creation_1h_tokens),
                SUM(CASE WHEN long_context THEN input_tokens ELSE 0 END),
                SUM(CASE WHEN long_context THEN output_tokens ELSE 0 END),
                SUM(CASE WHEN long_context THEN cache_creation_tokens ELSE 0 END),
                SUM(CASE WHEN long_context THEN cache_creation_1h_tokens ELSE 0 END),
                SUM(CASE WHEN long_context THEN cache_read_tokens ELSE 0 END),
                SUM(CASE WHEN cost_usd > 0 THEN 0 ELSE cache_creation_1h_tokens END),
                SUM(CASE WHEN cost_usd > 0 OR NOT long_context THEN 0 ELSE input_tokens END),
                SUM(CASE WHEN cost_usd > 0 OR NOT long_context THEN 0 ELSE output_tokens END),
                SUM(CASE WHEN cost_usd > 0 OR NOT long_context THEN 0 ELSE cache_creation_tokens END),
                SUM(CASE WHEN cost_usd > 0 OR NOT long_context THEN 0 ELSE cache_creation_1h_tokens END),
                SUM(CASE WHEN cost_usd > 0 OR NOT long_context THEN 0 ELSE cache_read_tokens END)
         FROM events {filter}
         GROUP BY 1, 2, 3, 4"
    )
}

/// Stop the rollup triggers for the rest of the caller's transaction (see
/// [`Inserter::defer_rollup`], which folds in the rows it writes meanwhile).
fn defer_rollup(conn: &Connection) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT INTO rollup_deferred (since_id) SELECT COALESCE(MAX(id), 0) FROM events
         WHERE NOT EXISTS (SELECT 1 FROM rollup_deferred)",
        [],
    )?;
    Ok(n == 1)
}

/// A bulk load into an empty `events` table (a first import): inside the caller's
/// transaction the table's indexes and triggers are dropped, the rows written, then the
/// indexes built at once and the triggers made again before the commit ([`BulkLoad::finish`]).
/// Other connections never see the table without them: the drop and the rebuild are in the
/// same transaction, and a transaction that ends otherwise rolls both back.
///
/// Why: a trigger on the table makes SQLite copy every page a row touches to a statement
/// journal, and the indexes are written at random, row by row; building an index from the
/// finished table sorts once. The partial index of corrections stays (nearly empty, and
/// [`Inserter`] reads it); keys are checked against the [`Inserter`]'s own memory meanwhile.
#[derive(Debug)]
pub struct BulkLoad {
    /// The `CREATE` statements of what was dropped, in their original order.
    recreate: Vec<String>,
    /// The indexes were dropped too (not only the triggers).
    pub indexes: bool,
    /// The connection's page cache size before the load, set again by [`BulkLoad::finish`].
    cache_size: Option<i64>,
}

/// The index an inserter reads while the others are dropped.
const KEPT_INDEX: &str = "events_corrects";

/// The page cache (KiB) of a bulk load: rows are only appended, so a large cache would only
/// hold dirty pages; the sorts that build the indexes at the end take this much per thread.
const BULK_CACHE_KIB: i64 = 8 * 1024;

impl BulkLoad {
    /// Start a bulk load when the `events` table holds no row (`None` otherwise). Call it
    /// inside a write transaction (taken with `BEGIN IMMEDIATE`, so the table cannot fill
    /// between the check and the drop).
    pub fn start(conn: &Connection) -> rusqlite::Result<Option<BulkLoad>> {
        let empty: bool =
            conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM events)", [], |r| r.get(0))?;
        if !empty {
            return Ok(None);
        }
        let mut bulk = Self::drop_objects(conn, true)?;
        let size: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        // A size in pages (positive) or in KiB (negative): only ever made smaller.
        if !(-BULK_CACHE_KIB..=0).contains(&size) {
            conn.pragma_update(None, "cache_size", -BULK_CACHE_KIB)?;
            bulk.cache_size = Some(size);
        }
        Ok(Some(bulk))
    }

    /// Like [`BulkLoad::start`] on a table that holds rows: only the triggers are dropped
    /// (rebuilding the indexes would cost more than writing them row by row), which spares
    /// the statement journal. The caller folds the rows into the rollup before the commit.
    pub fn start_keeping_indexes(conn: &Connection) -> rusqlite::Result<BulkLoad> {
        Self::drop_objects(conn, false)
    }

    fn drop_objects(conn: &Connection, indexes: bool) -> rusqlite::Result<BulkLoad> {
        let kinds = if indexes {
            "('index', 'trigger')"
        } else {
            "('trigger')"
        };
        let objects: Vec<(String, String, String)> = conn
            .prepare(&format!(
                "SELECT type, name, sql FROM sqlite_schema
                 WHERE tbl_name = 'events' AND type IN {kinds} AND sql IS NOT NULL
                   AND name != ?1
                 ORDER BY rowid"
            ))?
            .query_map([KEPT_INDEX], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (kind, name, _) in &objects {
            let kind = if kind == "index" { "INDEX" } else { "TRIGGER" };
            conn.execute_batch(&format!("DROP {kind} \"{}\"", name.replace('"', "\"\"")))?;
        }
        Ok(BulkLoad {
            recreate: objects.into_iter().map(|(_, _, sql)| sql).collect(),
            cache_size: None,
            indexes,
        })
    }

    /// Build the indexes and make the triggers again (before the transaction commits);
    /// `after_each` runs after each statement.
    pub fn finish(self, conn: &Connection, after_each: impl Fn()) -> rusqlite::Result<()> {
        for sql in &self.recreate {
            conn.execute_batch(sql)?;
            after_each();
        }
        if let Some(size) = self.cache_size {
            conn.pragma_update(None, "cache_size", size)?;
        }
        Ok(())
    }
}

/// The 64-bit key hash stored beside a unique key (FNV-1a: fixed forever, as it is stored).
pub fn key_hash(key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Migration 0005: hash the keys of the events stored before it.
fn fill_key_hashes(tx: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT id, unique_key FROM events WHERE unique_key IS NOT NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut up = tx.prepare("UPDATE events SET key_hash = ?1 WHERE id = ?2")?;
    for (id, key) in rows {
        up.execute(params![key_hash(&key), id])?;
    }
    Ok(())
}

/// How long a writer waits for another writer's lock before giving up.
pub const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Open (creating and migrating if needed) the native database for writing.
/// Refuses, before anything is written to it, a database that tokmon did not make: another
/// tool's, one whose `events` table lacks columns, or one from a newer tokmon.
pub fn open_rw(path: &Path) -> anyhow::Result<Connection> {
    // Never a file named after a URL (`super::Writer` opens PostgreSQL).
    if super::url::is_url(path) {
        return Err(bad_input(format!(
            "{}: a PostgreSQL database cannot be written here; this needs a SQLite file",
            super::url::shown(path)
        )));
    }
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

/// A new database built where no other process can see it: a temporary file beside the
/// database's path, without a journal on disk or a WAL while it fills (nobody else can read
/// or write it), then switched to WAL, written to disk once and given its name only if no
/// database took that name meanwhile ([`FreshDb::publish`]). A first import into a path
/// where no database exists builds its database this way: one write of the file at the end
/// instead of every page going through the WAL, a checkpoint and two syncs.
///
/// Until it is published nothing is at the path; dropped unpublished (an error, a failed
/// import), the temporary file is removed. A crash (SIGKILL, power loss) may leave the
/// temporary file (`.NAME.XXXXXX.tmp` beside the database), never a partial database at
/// the path.
pub struct FreshDb {
    conn: Connection,
    temp: tempfile::TempPath,
    path: std::path::PathBuf,
    /// The temporary file, to start its writing to disk early ([`start_writeback`]); locked
    /// while the database is built (see [`remove_abandoned_builds`]).
    file: std::fs::File,
    /// Removes the temporary file when the import is interrupted (declared after `temp`, so
    /// it stays on until the file is gone); `None` where the process handles the signals.
    _interrupt: Option<RemoveOnSignal>,
}

/// The temporary file of the [`FreshDb`] being built, for [`remove_and_die`]; null when none.
#[cfg(unix)]
static INTERRUPTED_FILE: std::sync::atomic::AtomicPtr<libc::c_char> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// The signals that end an import from outside (Ctrl-C, a closed terminal, `kill`).
#[cfg(unix)]
const ENDING_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Signal handler while a [`FreshDb`] is built: remove its temporary file (hundreds of MB
/// for a large first import), then die of the signal as if there were no handler.
#[cfg(unix)]
extern "C" fn remove_and_die(sig: libc::c_int) {
    let path = INTERRUPTED_FILE.swap(std::ptr::null_mut(), std::sync::atomic::Ordering::SeqCst);
    // SAFETY: only async-signal-safe calls: `unlink` of a C string that stays allocated
    // (it is never freed while installed), then the default action of the same signal.
    unsafe {
        if !path.is_null() {
            libc::unlink(path);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// While alive, an ending signal removes the temporary file before the process dies; dropped,
/// the earlier handlers are back.
struct RemoveOnSignal {
    #[cfg(unix)]
    old: Vec<(libc::c_int, libc::sigaction)>,
    #[cfg(unix)]
    path: Option<std::ffi::CString>,
}

impl RemoveOnSignal {
    fn new(temp: &Path) -> RemoveOnSignal {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let Ok(path) = std::ffi::CString::new(temp.as_os_str().as_bytes()) else {
                return RemoveOnSignal {
                    old: Vec::new(),
                    path: None,
                };
            };
            INTERRUPTED_FILE.store(
                path.as_ptr().cast_mut(),
                std::sync::atomic::Ordering::SeqCst,
            );
            let mut old = Vec::new();
            for sig in ENDING_SIGNALS {
                // SAFETY: sigaction is plain data; the handler only makes async-signal-safe
                // calls. A signal ignored before (e.g. SIGINT of a background job) stays ignored.
                unsafe {
                    let mut was: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(sig, std::ptr::null(), &mut was) != 0
                        || was.sa_sigaction == libc::SIG_IGN
                    {
                        continue;
                    }
                    let mut act: libc::sigaction = std::mem::zeroed();
                    act.sa_sigaction = remove_and_die as *const () as libc::sighandler_t;
                    libc::sigemptyset(&mut act.sa_mask);
                    if libc::sigaction(sig, &act, &mut was) == 0 {
                        old.push((sig, was));
                    }
                }
            }
            RemoveOnSignal {
                old,
                path: Some(path),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = temp;
            RemoveOnSignal {}
        }
    }
}

impl Drop for RemoveOnSignal {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            for (sig, was) in &self.old {
                // SAFETY: puts back the handler read by `new`.
                unsafe {
                    libc::sigaction(*sig, was, std::ptr::null_mut());
                }
            }
            INTERRUPTED_FILE.store(std::ptr::null_mut(), std::sync::atomic::Ordering::SeqCst);
            // Never freed: a handler running on another thread may still hold the pointer
            // (a few bytes, once per first import).
            std::mem::forget(self.path.take());
        }
    }
}

/// Start writing to disk what was written to `file` so far, without waiting: the disk works
/// while a load goes on, and the sync at its end (of a [`FreshDb`], or of the WAL before a
/// checkpoint) has little left to wait for, rather than hundreds of MB.
pub fn start_writeback(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on a descriptor `file` owns; it only asks the kernel to
        // start writing the file's dirty pages (nothing waits for it, and a failure only
        // means the final sync does the writing).
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// The temporary file of a [`FreshDb`] for `NAME`: `.NAME.` then [`TEMP_RAND_LEN`] random
/// characters, then this.
const TEMP_SUFFIX: &str = ".tmp";
const TEMP_RAND_LEN: usize = 6;

/// How old (since its last write) an unlocked temporary file must be to be taken for
/// abandoned: its maker locks it right after making it, so only a file made this instant can
/// be unlocked while in use.
#[cfg(unix)]
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Remove the temporary files of first imports into the same database that were abandoned
/// (their process killed with SIGKILL, or the machine stopped, before they were published or
/// removed): files named as [`FreshDb::create`] names them, that no process holds locked and
/// that nothing wrote to for [`ABANDONED_AFTER`]. Anything that cannot be checked is left
/// alone.
#[cfg(unix)]
fn remove_abandoned_builds(dir: &Path, prefix: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let named_so = name.len() == prefix.len() + TEMP_RAND_LEN + TEMP_SUFFIX.len()
            && name.starts_with(prefix)
            && name.ends_with(TEMP_SUFFIX);
        if !named_so {
            continue;
        }
        let path = entry.path();
        let old = std::fs::symlink_metadata(&path).is_ok_and(|m| {
            m.is_file()
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= ABANDONED_AFTER)
        });
        if !old {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        // Removed while locked, so no other process can be taking it meanwhile.
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Where the temporary file of a [`FreshDb`] goes: the database's directory, so that it can
/// be linked to its final name.
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl FreshDb {
    /// A new, migrated database to fill before it is published at `path`. `None` when
    /// something is at `path` already (or `path` is a URL, or no temporary file can be made
    /// beside it): [`open_rw`] then opens it, or says what is wrong.
    pub fn create(path: &Path) -> anyhow::Result<Option<FreshDb>> {
        Self::create_with(path, true)
    }

    /// [`FreshDb::create`] for a process that handles the ending signals itself (the monitor
    /// gives its terminal back first): they are left to it. A temporary file left by such a
    /// signal is removed by a later first import (see [`remove_abandoned_builds`]).
    pub fn create_keeping_signals(path: &Path) -> anyhow::Result<Option<FreshDb>> {
        Self::create_with(path, false)
    }

    fn create_with(path: &Path, remove_on_signal: bool) -> anyhow::Result<Option<FreshDb>> {
        if super::url::is_url(path) || std::fs::symlink_metadata(path).is_ok() {
            return Ok(None);
        }
        let dir = parent_dir(path);
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(".{name}.");
        #[cfg(unix)]
        remove_abandoned_builds(dir, &prefix);
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(&prefix)
            .suffix(TEMP_SUFFIX)
            .rand_bytes(TEMP_RAND_LEN);
        // As SQLite creates a database file: 0644, less the umask.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let (file, temp) = match builder.tempfile_in(dir) {
            Ok(f) => f.into_parts(),
            Err(_) => return Ok(None),
        };
        // Held until the database is published (or the process ends, however it ends): a
        // first import that finds the file unlocked knows it was abandoned.
        // (Where files cannot be locked, none is ever taken for abandoned.)
        #[cfg(unix)]
        let _ = file.try_lock();
        let interrupt = remove_on_signal.then(|| RemoveOnSignal::new(&temp));
        let mut conn = Connection::open(&temp)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        // No other connection ever opens this file before it is published: no locks to
        // take, and no journal on disk. The journal kept in memory holds only the pages that
        // existed before a transaction, not the ones it appends (most of a load), so a
        // statement or transaction that fails still rolls back.
        conn.pragma_update(None, "page_size", NEW_PAGE_SIZE)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "journal_mode", "MEMORY")?;
        // Written to disk once, by `publish`.
        conn.pragma_update(None, "synchronous", "OFF")?;
        migrate(&mut conn, path)?;
        Ok(Some(FreshDb {
            conn,
            temp,
            path: path.to_path_buf(),
            file,
            _interrupt: interrupt,
        }))
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The database's file (see [`start_writeback`]).
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// Give the database its name: switched to WAL (as [`open_rw`] leaves every database),
    /// written to disk, then linked to its path unless something is there now. `Ok(false)`:
    /// not published, because a database appeared at the path meanwhile (another tokmon
    /// made it), which is left alone, or the file system cannot link. The temporary file is
    /// gone either way.
    pub fn publish(self) -> anyhow::Result<bool> {
        let FreshDb {
            conn,
            temp,
            path,
            file,
            _interrupt: interrupt,
        } = self;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.close()
            .map_err(|(_, e)| e)
            .with_context(|| format!("cannot write database {}", path.display()))?;
        let written = file.sync_all();
        written.with_context(|| format!("cannot write database {}", path.display()))?;
        // A hard link never replaces what is at the path (`rename` would). It fails when
        // something is there, and on a file system without hard links: then the caller
        // imports into the path the usual way (which says what is wrong, if anything is).
        let linked = std::fs::hard_link(&temp, &path).is_ok();
        // Removed as when dropped: a name left behind by an error here is only a stray file.
        drop(temp);
        drop(interrupt);
        #[cfg(unix)]
        if linked {
            // The new name on disk too.
            std::fs::File::open(parent_dir(&path))
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot write database {}", path.display()))?;
        }
        Ok(linked)
    }
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
            // The columns of the first schema: later ones come with the migrations to run.
            super::check_columns(&conn, path, &super::Mapping::native_first())
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

/// The page size of a database tokmon creates (SQLite's default is 4096). Measured on a
/// first import of 487k events (a 193 MB database): the writing thread and the index sorts
/// take ~1 s less CPU of ~4.4 s (fewer pages to allocate, write, read back and sort in
/// chunks); reports and a re-import after one line take the same time.
pub const NEW_PAGE_SIZE: i64 = 32 * 1024;

/// WAL so readers never block the writer, a busy timeout so concurrent writers wait, and
/// [`NEW_PAGE_SIZE`] for a database with nothing in it yet (an existing one keeps its own).
fn configure(conn: &Connection) -> anyhow::Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    // Before the journal mode: a database in WAL mode keeps the page size it has.
    conn.pragma_update(None, "page_size", NEW_PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

use crate::domain::Dimension;
pub use crate::domain::event::NewEvent;
use crate::domain::event::{COUNT_COLUMNS, Counts, TooLarge, Value, is_part};

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
    let mut ins = Inserter::new(conn, false)?;
    for e in events {
        ins.insert(e)?;
    }
    Ok((
        ins.counts.inserted,
        ins.counts.duplicates + ins.counts.corrected,
    ))
}

/// The source whose events are replies that later lines may correct (see [`Inserter`]).
pub const CORRECTABLE_SOURCE: &str = "import:claude-code";

/// What an [`Inserter`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertCounts {
    /// New events.
    pub inserted: u64,
    /// Events whose key was stored, with nothing new.
    pub duplicates: u64,
    /// Events whose key was stored with smaller counts: a correction row was added.
    pub corrected: u64,
}

/// Writes events, deduplicated by unique key.
///
/// An event whose key is already stored adds nothing, except for a Claude Code reply
/// ([`CORRECTABLE_SOURCE`]): a reply counts with the largest value seen for each field, so
/// when the new line has more, a correction row carrying the increase is added (`corrects` =
/// the stored event's id, same time and dimensions, no key). Corrections only ever add.
pub struct Inserter<'c> {
    conn: &'c Connection,
    /// The database held no keyed event when this inserter started (a cold import): a key
    /// is looked up only when its hash was inserted by this inserter, and then by the id kept
    /// here (so no index is needed: see [`BulkLoad`]).
    fresh: Option<Fresh>,
    pub counts: InsertCounts,
    /// The insert statement, prepared once, with what is bound to its parameters.
    stmt: Option<(rusqlite::Statement<'c>, Vec<Bound>)>,
    /// Where the rollup's columns are among the event's values.
    cols: RollupColumns,
    /// While the rollup is deferred: the sums of the rows written, folded in before the
    /// commit by [`Inserter::fold_rollup`].
    fold: Option<super::fold::Fold>,
}

/// The positions in [`NewEvent::COLUMNS`] of what the rollup reads.
#[derive(Debug, Clone, Copy)]
struct RollupColumns {
    ts: usize,
    model: usize,
    agent: usize,
    provider: usize,
    input: usize,
    output: usize,
    cache_write: usize,
    cache_read: usize,
    cache_write_1h: usize,
    cost: usize,
}

impl RollupColumns {
    fn find() -> anyhow::Result<RollupColumns> {
        let at = |c: &str| {
            NewEvent::COLUMNS
                .iter()
                .position(|x| *x == c)
                .ok_or_else(|| anyhow::anyhow!("the event has no column {c}"))
        };
        Ok(RollupColumns {
            ts: at("ts")?,
            model: at("model")?,
            agent: at("agent")?,
            provider: at("provider")?,
            input: at("input_tokens")?,
            output: at("output_tokens")?,
            cache_write: at("cache_creation_tokens")?,
            cache_read: at("cache_read_tokens")?,
            cache_write_1h: at("cache_creation_1h_tokens")?,
            cost: at("cost_usd")?,
        })
    }

    /// The row as the rollup sees it, from the values written.
    fn row<'a>(
        &self,
        v: &[Value<'a>],
        long_context: bool,
        correction: bool,
    ) -> super::fold::Row<'a> {
        let int = |i: usize| match v[i] {
            Value::Int(n) => n,
            _ => 0,
        };
        let text = |i: usize| match v[i] {
            Value::Text(t) => t,
            _ => None,
        };
        super::fold::Row {
            ts_ms: int(self.ts),
            model: text(self.model).unwrap_or(""),
            agent: text(self.agent),
            provider: text(self.provider),
            input: int(self.input),
            output: int(self.output),
            cache_write: int(self.cache_write),
            cache_read: int(self.cache_read),
            cache_write_1h: int(self.cache_write_1h),
            cost: match v[self.cost] {
                Value::Real(c) => c,
                _ => None,
            },
            long_context,
            correction,
        }
    }
}

/// Key hash → id of the event inserted with it. The keys are hashes already: they are used
/// as they are, not hashed again.
type HashToId = std::collections::HashMap<i64, i64, std::hash::BuildHasherDefault<KeyHashHasher>>;

/// The keys an [`Inserter`] of a cold import wrote (see [`Inserter::fresh`]).
#[derive(Debug, Default)]
struct Fresh {
    ids: HashToId,
    /// The id of the last row this inserter wrote (0 before the first).
    last_id: i64,
}

/// A hasher for keys that are 64-bit hashes already (FNV-1a): one multiply spreads its bits.
#[derive(Default)]
pub struct KeyHashHasher(u64);

impl std::hash::Hasher for KeyHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The running totals of a stored reply (its event plus its corrections).
#[derive(Debug, Default)]
pub(super) struct Stored {
    pub(super) id: i64,
    counts: Counts<u64>,
    cost: Option<f64>,
    /// Numeric metadata fields, summed.
    meta: serde_json::Map<String, serde_json::Value>,
}

impl Stored {
    pub(super) fn new(id: i64) -> Stored {
        Stored {
            id,
            ..Default::default()
        }
    }

    /// Add one stored row: its token counts, cost and metadata.
    pub(super) fn add(&mut self, t: Counts<u64>, cost: Option<f64>, metadata: Option<&str>) {
        self.counts = std::mem::take(&mut self.counts).zip(t, |a, b| a + b);
        if let Some(c) = cost {
            self.cost = Some(self.cost.unwrap_or(0.0) + c);
        }
        if let Some(m) = metadata
            && let Ok(serde_json::Value::Object(m)) = serde_json::from_str(m)
        {
            for (k, v) in m {
                if let Some(n) = v.as_u64() {
                    let sum = self.meta.get(&k).and_then(|s| s.as_u64()).unwrap_or(0);
                    self.meta.insert(k, (sum + n).into());
                }
            }
        }
    }
}

/// The dimension columns, quoted, in [`Dimension::ALL`]'s order.
pub(super) fn dim_columns() -> String {
    Dimension::ALL
        .map(|d| format!("\"{}\"", d.name()))
        .join(", ")
}

/// A stored event's time, source, long-context flag, then its dimensions.
static STORED_DIMS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT ts, source, long_context, {} FROM events WHERE id = ?1",
        dim_columns()
    )
});

/// A stored reply's rows (the event and its corrections): the counts, the cost, the metadata.
static STORED_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, cost_usd, metadata FROM events WHERE id = ?1 OR corrects = ?1",
        COUNT_COLUMNS.join(", ")
    )
});

/// The columns the store fills itself after the event's own ([`NewEvent::COLUMNS`]): the
/// key's hash, the corrected event's id and the long-context flag.
pub const STORE_COLUMNS: [&str; 3] = ["key_hash", "corrects", "long_context"];

/// `INSERT INTO events` of every column: the event's, then [`STORE_COLUMNS`].
static INSERT_SQL: LazyLock<String> = LazyLock::new(|| insert_sql(&STORE_COLUMNS));

/// `INSERT INTO events` of the event's columns ([`NewEvent::COLUMNS`]), then `store`'s, each
/// bound in that order (`?1`, `?2`, …); the other columns keep their defaults.
pub fn insert_sql(store: &[&str]) -> String {
    let cols: Vec<&str> = NewEvent::COLUMNS.iter().chain(store).copied().collect();
    let quoted: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO events ({}) VALUES ({})",
        quoted.join(", "),
        marks.join(", ")
    )
}

/// A value bound to a parameter of a statement (SQLite keeps it from one execution to the
/// next).
#[derive(Debug)]
enum Bound {
    Int(i64),
    /// The bits of the real.
    Real(Option<u64>),
    Text(Option<String>),
}

impl Bound {
    fn is(&self, v: &Value) -> bool {
        match (self, v) {
            (Bound::Int(a), Value::Int(b)) => a == b,
            (Bound::Real(a), Value::Real(b)) => *a == b.map(f64::to_bits),
            (Bound::Text(a), Value::Text(b)) => a.as_deref() == *b,
            _ => false,
        }
    }

    /// Now `v` (the text's room kept).
    fn set(&mut self, v: &Value) {
        match (&mut *self, v) {
            (Bound::Text(Some(a)), Value::Text(Some(b))) => {
                a.clear();
                a.push_str(b);
            }
            _ => {
                *self = match v {
                    Value::Int(n) => Bound::Int(*n),
                    Value::Real(x) => Bound::Real(x.map(f64::to_bits)),
                    Value::Text(t) => Bound::Text(t.map(str::to_string)),
                }
            }
        }
    }
}

/// Bind `values` to the parameters `?1`, `?2`, … of `stmt`, but those already bound to the
/// same value by the previous execution (`bound`): most of an import's rows share their
/// source, agent, provider, model, session and project, and have no user, channel or cost;
/// binding a text makes SQLite copy it.
fn bind_changed<'v>(
    stmt: &mut rusqlite::Statement,
    bound: &mut Vec<Bound>,
    values: impl Iterator<Item = &'v Value<'v>>,
) -> rusqlite::Result<()> {
    for (i, v) in values.enumerate() {
        if bound.get(i).is_some_and(|b| b.is(v)) {
            continue;
        }
        stmt.raw_bind_parameter(i + 1, sqlite_value(v))?;
        match bound.get_mut(i) {
            Some(b) => b.set(v),
            None => {
                let mut b = Bound::Int(0);
                b.set(v);
                bound.push(b);
            }
        }
    }
    Ok(())
}

/// A value of an event as SQLite binds it.
pub fn sqlite_value<'a>(v: &'a Value<'a>) -> &'a dyn rusqlite::ToSql {
    match v {
        Value::Int(n) => n,
        Value::Real(x) => x,
        Value::Text(t) => t,
    }
}

/// A token count too large to store, as bad input naming it.
pub(super) fn too_large(e: TooLarge) -> anyhow::Error {
    bad_input(e.to_string())
}

impl<'c> Inserter<'c> {
    /// `cold`: the caller is about to insert many events; when the database holds no keyed
    /// event yet, keys are then checked against this inserter's own instead of the index.
    pub fn new(conn: &'c Connection, cold: bool) -> anyhow::Result<Inserter<'c>> {
        let fresh = if cold {
            let any: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE key_hash IS NOT NULL)",
                [],
                |r| r.get(0),
            )?;
            if any {
                None
            } else {
                let last_id =
                    conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?;
                Some(Fresh {
                    ids: HashToId::default(),
                    last_id,
                })
            }
        } else {
            None
        };
        Ok(Inserter {
            conn,
            fresh,
            counts: InsertCounts::default(),
            stmt: None,
            cols: RollupColumns::find()?,
            fold: None,
        })
    }

    /// Stop the rollup triggers for the rest of the transaction: the rows this inserter
    /// writes from now on are summed in memory and folded in by [`Inserter::fold_rollup`],
    /// which must run before the commit.
    pub fn defer_rollup(&mut self) -> rusqlite::Result<()> {
        // A new deferral (this transaction's first) starts from nothing.
        if defer_rollup(self.conn)? || self.fold.is_none() {
            self.fold = Some(Default::default());
        }
        Ok(())
    }

    /// Fold the rows written since [`Inserter::defer_rollup`] into the rollup and start the
    /// triggers again. Does nothing when the rollup was not deferred.
    pub fn fold_rollup(&mut self) -> anyhow::Result<()> {
        if let Some(fold) = self.fold.take() {
            fold.write(self.conn)?;
            self.conn.execute("DELETE FROM rollup_deferred", [])?;
        }
        Ok(())
    }

    /// Insert one event (or its correction, or nothing).
    pub fn insert(&mut self, e: &NewEvent) -> anyhow::Result<()> {
        let key = e.unique_key.as_deref();
        let hash = key.map(key_hash);
        // The id the row written next will have, when it is the first of its hash in a fresh
        // inserter: entered now, so the map is looked into once per event (a large map's
        // lookups are cache misses); checked after the write.
        let mut entered = None;
        if let (Some(key), Some(hash)) = (key, hash) {
            let stored = match &mut self.fresh {
                Some(fresh) => match fresh.ids.entry(hash) {
                    std::collections::hash_map::Entry::Occupied(o) => {
                        let id = *o.get();
                        self.find_by_id(id, hash, key)?
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let next = fresh.last_id + 1;
                        v.insert(next);
                        entered = Some(next);
                        None
                    }
                },
                None => self.find(hash, key)?,
            };
            if let Some(id) = stored {
                if e.source == CORRECTABLE_SOURCE && self.correct(id, e)? {
                    self.counts.corrected += 1;
                } else {
                    self.counts.duplicates += 1;
                }
                return Ok(());
            }
        }
        let long = crate::pricing::is_long_context(
            e.input_tokens,
            e.cache_creation_tokens,
            e.cache_read_tokens,
        );
        let written = self.write(e, hash, None, long);
        if let (Some(fresh), Some(h), Some(next)) = (&mut self.fresh, hash, entered) {
            // The first event of a hash keeps it (another key of the same hash is found by
            // `find`, through the index or, during a bulk load, by reading the table).
            match written {
                Ok(()) if fresh.last_id == next => {}
                Ok(()) => {
                    fresh.ids.insert(h, fresh.last_id);
                }
                Err(_) => {
                    fresh.ids.remove(&h);
                }
            }
        }
        written?;
        self.counts.inserted += 1;
        Ok(())
    }

    fn find(&self, hash: i64, key: &str) -> rusqlite::Result<Option<i64>> {
        self.conn
            .prepare_cached(
                "SELECT id FROM events WHERE key_hash = ?1 AND unique_key = ?2 AND corrects IS NULL",
            )?
            .query_row(params![hash, key], |r| r.get(0))
            .optional()
    }

    /// The event `id` inserted by this inserter with key hash `hash`, when its key is `key`
    /// (another key of the same hash: looked up like any other).
    fn find_by_id(&self, id: i64, hash: i64, key: &str) -> rusqlite::Result<Option<i64>> {
        let same: bool = self
            .conn
            .prepare_cached("SELECT unique_key = ?2 FROM events WHERE id = ?1")?
            .query_row(params![id, key], |r| r.get::<_, Option<bool>>(0))
            .optional()?
            .flatten()
            .unwrap_or(false);
        if same {
            Ok(Some(id))
        } else {
            self.find(hash, key)
        }
    }

    /// Write one row; `long`: it belongs to a long-context request.
    fn write(
        &mut self,
        e: &NewEvent,
        hash: Option<i64>,
        corrects: Option<i64>,
        long: bool,
    ) -> anyhow::Result<()> {
        let values = e.values().map_err(too_large)?;
        let (stmt, bound) = match &mut self.stmt {
            Some((s, b)) => (s, b),
            None => {
                let s = self.conn.prepare(&INSERT_SQL)?;
                let (s, b) = self.stmt.insert((s, Vec::new()));
                (s, b)
            }
        };
        let store = [
            hash.map_or(Value::Text(None), Value::Int),
            corrects.map_or(Value::Text(None), Value::Int),
            Value::Int(i64::from(long)),
        ];
        let result = bind_changed(stmt, bound, values.iter().chain(&store))
            .and_then(|()| stmt.raw_execute());
        if let Err(e) = result {
            // What is bound is not known now: the next write prepares the statement again.
            self.stmt = None;
            return Err(e.into());
        }
        if let Some(fresh) = &mut self.fresh {
            fresh.last_id = self.conn.last_insert_rowid();
        }
        if let Some(fold) = &mut self.fold {
            fold.add(&self.cols.row(&values, long, corrects.is_some()))?;
        }
        Ok(())
    }

    /// The stored reply `id` with its corrections summed.
    fn stored(&self, id: i64) -> rusqlite::Result<Stored> {
        let mut st = Stored {
            id,
            ..Default::default()
        };
        let mut q = self.conn.prepare_cached(&STORED_SQL)?;
        let mut rows = q.query([id])?;
        let n = COUNT_COLUMNS.len();
        while let Some(r) = rows.next()? {
            let mut i = 0..;
            let counts = Counts::try_from_fn(|_| {
                let v: i64 = r.get(i.next().unwrap_or_default())?;
                Ok::<_, rusqlite::Error>(v.max(0) as u64)
            })?;
            st.add(
                counts,
                r.get::<_, Option<f64>>(n)?,
                r.get::<_, Option<String>>(n + 1)?.as_deref(),
            );
        }
        Ok(st)
    }

    /// Add a correction to the stored reply `id` if `e` has more of anything. `Ok(false)`:
    /// nothing to correct.
    fn correct(&mut self, id: i64, e: &NewEvent) -> anyhow::Result<bool> {
        let st = self.stored(id)?;
        let Some(c) = correction(&st, e) else {
            return Ok(false);
        };
        // Same time, dimensions and price tier as the stored event.
        let (row, long) = self
            .conn
            .prepare_cached(&STORED_DIMS_SQL)?
            .query_row([st.id], |r| {
                let mut e = NewEvent {
                    ts_ms: r.get(0)?,
                    source: r.get(1)?,
                    ..Default::default()
                };
                for (i, d) in Dimension::ALL.into_iter().enumerate() {
                    e.set_dim(d, r.get(3 + i)?);
                }
                Ok((e, r.get::<_, bool>(2)?))
            })?;
        self.write(&c.with_dims(row), None, Some(st.id), long)?;
        Ok(true)
    }
}

impl NewEvent {
    /// This event's counts, cost and metadata with another's time and dimensions.
    pub(super) fn with_dims(self, dims: NewEvent) -> NewEvent {
        let counts = self.counts();
        let mut e = NewEvent {
            cost_usd: self.cost_usd,
            metadata: self.metadata,
            ..dims
        };
        e.set_counts(counts);
        e
    }

    /// Fold a later line of the same reply into this one: the largest value of each count
    /// (and of each numeric metadata field); time and dimensions stay this line's.
    pub fn merge_max(&mut self, later: &NewEvent) {
        self.set_counts(self.counts().zip(later.counts(), u64::max));
        self.cost_usd = match (self.cost_usd, later.cost_usd) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        // Lines of one reply mostly carry the same metadata: nothing to fold then.
        if later.metadata.is_none() || later.metadata == self.metadata {
            return;
        }
        let meta = |m: &Option<String>| match m.as_deref().map(serde_json::from_str) {
            Some(Ok(serde_json::Value::Object(o))) => o,
            _ => serde_json::Map::new(),
        };
        let (mut mine, theirs) = (meta(&self.metadata), meta(&later.metadata));
        if theirs.is_empty() {
            return;
        }
        for (k, v) in theirs {
            let keep = match (mine.get(&k).and_then(|m| m.as_u64()), v.as_u64()) {
                (Some(a), Some(b)) => a >= b,
                (Some(_), None) | (None, _) => mine.contains_key(&k),
            };
            if !keep {
                mine.insert(k, v);
            }
        }
        self.metadata = Some(serde_json::Value::Object(mine).to_string());
    }
}

/// The increase of `e` over the stored reply, field by field (never negative), or `None`
/// when `e` has nothing more.
pub(super) fn correction(st: &Stored, e: &NewEvent) -> Option<NewEvent> {
    let more = |new: u64, old: u64| new.saturating_sub(old);
    let mut c = NewEvent::default();
    c.set_counts(e.counts().zip(st.counts.clone(), more));
    // A part (the 1-hour writes) grows only with its whole.
    let mut grew = c
        .counts()
        .each()
        .iter()
        .any(|(col, n)| !is_part(col) && **n > 0);
    if let Some(new) = e.cost_usd
        && new > st.cost.unwrap_or(0.0)
    {
        c.cost_usd = Some(new - st.cost.unwrap_or(0.0));
        grew = true;
    }
    if !grew {
        return None;
    }
    // Numeric metadata (the cache-write split) as increases too; the rest as in `e`.
    if let Some(Ok(serde_json::Value::Object(m))) = e
        .metadata
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        let mut out = serde_json::Map::new();
        for (k, v) in m {
            match v.as_u64() {
                Some(n) => {
                    let old = st.meta.get(&k).and_then(|o| o.as_u64()).unwrap_or(0);
                    out.insert(k, more(n, old).into());
                }
                None => {
                    out.insert(k, v);
                }
            }
        }
        c.metadata = Some(serde_json::Value::Object(out).to_string());
    }
    Some(c)
}

/// Record one event in a transaction of its own (see [`super::Writer::record`]).
pub fn record(conn: &mut Connection, e: &NewEvent) -> anyhow::Result<super::Recorded> {
    let tx = conn.transaction()?;
    let (inserted, _) = insert_events_in(&tx, [e])?;
    if !rollup_sums_exact(&tx, e.ts_ms)? {
        drop(tx);
        return Ok(super::Recorded::TooLarge);
    }
    tx.commit()?;
    Ok(if inserted == 1 {
        super::Recorded::Added
    } else {
        super::Recorded::AlreadyThere
    })
}

/// Whether the rollup rows near `ts_ms` still hold whole-number token sums. SQLite turns an
/// integer sum that overflows into a real: then the event just inserted pushed a sum past
/// [`super::query::MAX_TOKENS`].
fn rollup_sums_exact(conn: &Connection, ts_ms: i64) -> anyhow::Result<bool> {
    use super::query::{PRICE_DETAIL_COLUMNS, SLICE_MS};
    let slice = ts_ms.div_euclid(SLICE_MS);
    // The four token sums and the price-detail sums (1-hour writes, long-context split).
    let columns = [
        "input_tokens",
        "output_tokens",
        "cache_creation_tokens",
        "cache_read_tokens",
    ];
    let not_integer = columns
        .iter()
        .chain(PRICE_DETAIL_COLUMNS.iter())
        .map(|c| format!("typeof({c}) != 'integer'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let inexact: bool = conn.query_row(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM rollup_15m WHERE slice BETWEEN ?1 AND ?2 AND ({not_integer}))"
        ),
        [slice.saturating_sub(1), slice.saturating_add(1)],
        |r| r.get(0),
    )?;
    Ok(!inexact)
}

/// The stored read state of every log file, by path (see `migrations/0002_import_files.sql`).
pub fn load_file_states(
    conn: &Connection,
) -> anyhow::Result<std::collections::HashMap<String, super::FileState>> {
    let mut stmt = conn.prepare(
        "SELECT path, format, size, mtime_ns, \"offset\", line_no, head_len, head_hash,
                tail_len, tail_hash, state
         FROM import_files",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            super::FileState {
                format: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                mtime_ns: r.get(3)?,
                offset: r.get::<_, i64>(4)? as u64,
                line_no: r.get::<_, i64>(5)? as u64,
                head_len: r.get::<_, i64>(6)? as u64,
                head_hash: r.get(7)?,
                tail_len: r.get::<_, i64>(8)? as u64,
                tail_hash: r.get(9)?,
                state: r.get(10)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Write a log file's read state (inside the caller's transaction).
pub fn save_file_state(conn: &Connection, key: &str, s: &super::FileState) -> anyhow::Result<()> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    conn.prepare_cached(
        "INSERT INTO import_files (path, format, size, mtime_ns, \"offset\", line_no, head_len,
             head_hash, tail_len, tail_hash, state, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (path) DO UPDATE SET format = excluded.format, size = excluded.size,
             mtime_ns = excluded.mtime_ns, \"offset\" = excluded.\"offset\",
             line_no = excluded.line_no, head_len = excluded.head_len,
             head_hash = excluded.head_hash, tail_len = excluded.tail_len,
             tail_hash = excluded.tail_hash, state = excluded.state,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        key,
        s.format,
        s.size as i64,
        s.mtime_ns,
        s.offset as i64,
        s.line_no as i64,
        s.head_len as i64,
        s.head_hash,
        s.tail_len as i64,
        s.tail_hash,
        s.state,
        now_ms
    ])?;
    Ok(())
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
pub(crate) mod tests {
    use super::*;
    use crate::domain::event::SqlType;

    #[test]
    fn new_databases_get_the_larger_page_size_existing_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |c: &Connection| {
            c.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        let new = dir.path().join("new.db");
        assert_eq!(page_size(&open_rw(&new).unwrap()), NEW_PAGE_SIZE);
        let fresh = FreshDb::create(&dir.path().join("fresh.db"))
            .unwrap()
            .unwrap();
        assert_eq!(page_size(fresh.conn()), NEW_PAGE_SIZE);
        drop(fresh);
        let old = dir.path().join("old.db");
        // A database made by an earlier tokmon (SQLite's default page size).
        let mut c = Connection::open(&old).unwrap();
        c.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL")
            .unwrap();
        migrate(&mut c, &old).unwrap();
        drop(c);
        assert_eq!(page_size(&open_rw(&old).unwrap()), 4096);
    }

    #[test]
    fn a_fresh_database_is_published_once_and_never_over_another() {
        let dir = tempfile::tempdir().unwrap();
        let names = || {
            let mut v: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let path = dir.path().join("t.db");
        let event = |model: &str| NewEvent {
            ts_ms: 1_700_000_000_000,
            model: model.into(),
            input_tokens: 1,
            source: "record".into(),
            ..Default::default()
        };
        // Dropped unpublished: nothing left.
        let fresh = FreshDb::create(&path).unwrap().unwrap();
        assert_eq!(names().len(), 1, "the temporary file");
        drop(fresh);
        assert!(names().is_empty(), "{:?}", names());
        // Another database appears before the publishing: it stays as it was.
        let fresh = FreshDb::create(&path).unwrap().unwrap();
        insert_events_in(fresh.conn(), [&event("mine")]).unwrap();
        let mut theirs = open_rw(&path).unwrap();
        insert_events(&mut theirs, [&event("theirs")]).unwrap();
        drop(theirs);
        assert!(
            FreshDb::create(&path).unwrap().is_none(),
            "a database is there"
        );
        assert!(!fresh.publish().unwrap());
        assert_eq!(names(), ["t.db"]);
        let models = all_rows(&open_rw(&path).unwrap(), "SELECT model FROM events");
        assert_eq!(models, [["Text(\"theirs\")"]]);
        // Published: only the database, in WAL mode, with what was written.
        std::fs::remove_file(&path).unwrap();
        let fresh = FreshDb::create(&path).unwrap().unwrap();
        insert_events_in(fresh.conn(), [&event("mine")]).unwrap();
        assert!(fresh.publish().unwrap());
        assert_eq!(names(), ["t.db"]);
        let c = Connection::open(&path).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(
            all_rows(&c, "SELECT model FROM events"),
            [["Text(\"mine\")"]]
        );
    }

    /// Each row holds its own event's values, whatever the row before it bound.
    #[test]
    fn rows_are_stored_as_given_whatever_the_row_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_rw(&dir.path().join("t.db")).unwrap();
        let pick = |i: usize, period: usize, choices: &[Option<&str>]| {
            choices[i / period % choices.len()].map(str::to_string)
        };
        let events: Vec<NewEvent> = (0..40)
            .map(|i| NewEvent {
                ts_ms: 1_700_000_000_000 + (i as i64 % 3) * 1000,
                model: pick(i, 2, &[Some("m"), Some("m"), Some("n")]).unwrap(),
                provider: pick(i, 1, &[None, Some("p"), Some("p"), Some("q")]),
                agent: pick(i, 3, &[Some("a"), None]),
                session: pick(i, 2, &[Some("s1"), Some("s2"), None]),
                project: pick(i, 5, &[Some("/x"), Some("/x/y")]),
                input_tokens: (i % 4) as u64,
                output_tokens: 1,
                cost_usd: [None, Some(0.5), Some(0.5), Some(0.25)][i % 4],
                duration_ms: [None, None, Some(3.0)][i % 3],
                source: pick(i, 7, &[Some("import:a"), Some("import:b")]).unwrap(),
                unique_key: (i % 5 != 0).then(|| format!("k{i}")),
                metadata: pick(i, 2, &[None, Some("{\"a\":1}"), Some("{\"a\":2}")]),
                ..Default::default()
            })
            .collect();
        insert_events(&mut conn, &events).unwrap();
        let cols: Vec<String> = NewEvent::COLUMNS
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect();
        let got = all_rows(
            &conn,
            &format!("SELECT {} FROM events ORDER BY id", cols.join(", ")),
        );
        let want: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                e.values()
                    .unwrap()
                    .iter()
                    .map(|v| {
                        format!(
                            "{:?}",
                            match v {
                                Value::Int(n) => rusqlite::types::Value::Integer(*n),
                                Value::Real(Some(x)) => rusqlite::types::Value::Real(*x),
                                Value::Text(Some(t)) => rusqlite::types::Value::Text(t.to_string()),
                                Value::Real(None) | Value::Text(None) => {
                                    rusqlite::types::Value::Null
                                }
                            }
                        )
                    })
                    .collect()
            })
            .collect();
        assert_eq!(got, want);
        let stored = all_rows(
            &conn,
            "SELECT key_hash IS NULL, corrects, long_context FROM events ORDER BY id",
        );
        assert!(stored.iter().enumerate().all(|(i, r)| {
            r == &[
                format!("Integer({})", i64::from(i % 5 == 0)),
                "Null".to_string(),
                "Integer(0)".to_string(),
            ]
        }));
    }

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().unwrap();
    }

    /// A correction carries the increase of every count; the 1-hour writes, a part of the
    /// cache writes, grow only with them; merging lines keeps each count's largest value.
    #[test]
    fn corrections_and_merges_go_count_by_count() {
        let mut st = Stored::new(1);
        let first = NewEvent {
            input_tokens: 10,
            output_tokens: 5,
            cache_creation_tokens: 8,
            cache_creation_1h_tokens: 2,
            ..Default::default()
        };
        st.add(first.counts(), None, None);
        let more_output = NewEvent {
            output_tokens: 9,
            ..first.clone()
        };
        let c = correction(&st, &more_output).unwrap();
        assert_eq!(c.counts().each().map(|(_, n)| *n), [0, 4, 0, 0, 0]);
        let only_1h = NewEvent {
            cache_creation_1h_tokens: 6,
            ..first.clone()
        };
        assert_eq!(correction(&st, &only_1h), None);
        let mut merged = first.clone();
        merged.merge_max(&NewEvent {
            input_tokens: 3,
            cache_read_tokens: 7,
            ..more_output
        });
        assert_eq!(merged.counts().each().map(|(_, n)| *n), [10, 9, 8, 7, 2]);
    }

    /// The migrated `events` table has exactly the declared columns (the event's and the
    /// store's own, besides the id), each of its declared type: a field added to the
    /// declaration without a migration, or the other way round, fails here.
    #[test]
    fn the_events_table_has_the_declared_columns() {
        let mut conn = Connection::open_in_memory().unwrap();
        MIGRATIONS.to_latest(&mut conn).unwrap();
        let table: Vec<(String, String)> = conn
            .prepare("SELECT name, type FROM pragma_table_info('events') ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let sqlite = |t: &SqlType| match t {
            SqlType::Int => "INTEGER",
            SqlType::Real => "REAL",
            SqlType::Text => "TEXT",
        };
        let mut declared: Vec<(String, String)> = NewEvent::COLUMNS
            .iter()
            .zip(NewEvent::SQL_TYPES)
            .map(|(c, t)| (c.to_string(), sqlite(t).to_string()))
            .chain(
                [("id", "INTEGER")]
                    .into_iter()
                    .chain(
                        STORE_COLUMNS
                            .into_iter()
                            .zip(["INTEGER", "INTEGER", "INTEGER"]),
                    )
                    .map(|(c, t)| (c.to_string(), t.to_string())),
            )
            .collect();
        declared.sort();
        assert_eq!(table, declared);
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
    fn migration_5_keeps_keys_and_rollup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        MIGRATIONS.to_version(&mut conn, 4).unwrap();
        conn.execute_batch(
            "INSERT INTO events (ts, model, input_tokens, output_tokens, source, unique_key)
             VALUES (1000, 'm', 5, 7, 'import:claude-code', 'cc:a:b'),
                    (2000, 'm', 1, 1, 'record', NULL);",
        )
        .unwrap();
        MIGRATIONS.to_latest(&mut conn).unwrap();
        let hash: i64 = conn
            .query_row(
                "SELECT key_hash FROM events WHERE unique_key = 'cc:a:b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(hash, key_hash("cc:a:b"));
        // The stored reply is found by its key: a line with more output corrects it.
        let later = NewEvent {
            ts_ms: 5000,
            model: "m".into(),
            input_tokens: 5,
            output_tokens: 9,
            source: CORRECTABLE_SOURCE.into(),
            unique_key: Some("cc:a:b".into()),
            ..Default::default()
        };
        assert_eq!(insert_events(&mut conn, [&later]).unwrap(), (0, 1));
        let (events, out): (i64, i64) = conn
            .query_row(
                "SELECT SUM(events), SUM(output_tokens) FROM rollup_15m",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((events, out), (2, 10));
        let ts: i64 = conn
            .query_row(
                "SELECT ts FROM events WHERE corrects IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ts, 1000);
    }

    /// Every row of a query, each value as text (for comparisons of whole tables).
    pub(crate) fn all_rows(c: &Connection, sql: &str) -> Vec<Vec<String>> {
        let mut st = c.prepare(sql).unwrap();
        let n = st.column_count();
        st.query_map([], |r| {
            (0..n)
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                })
                .collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    const WHOLE_ROLLUP: &str = "SELECT * FROM rollup_15m ORDER BY slice, model, agent, provider";

    /// Events touching every rollup column: costed, uncosted and zero-cost rows, long-context
    /// requests, 1-hour cache writes, blank and missing agents and providers, times before
    /// 1970, and replies seen again with more (corrections).
    fn rollup_events(n: i64) -> Vec<NewEvent> {
        (0..n)
            .map(|i| NewEvent {
                ts_ms: (i - 10) * 600_000 + 7,
                model: format!("m{}", i % 3),
                agent: match i % 3 {
                    0 => Some("x".to_string()),
                    1 => Some("  ".to_string()),
                    _ => None,
                },
                provider: (i % 5 == 0).then(|| "p".to_string()),
                input_tokens: if i % 6 == 0 {
                    150_000 + i as u64
                } else {
                    i as u64
                },
                output_tokens: 2 + (i / 40) as u64,
                cache_creation_tokens: 10 * (i % 4) as u64,
                cache_creation_1h_tokens: 7 * (i % 3) as u64,
                cache_read_tokens: if i % 6 == 0 { 60_000 } else { 3 },
                cost_usd: match i % 5 {
                    0 => Some(0.5),
                    1 => Some(0.0),
                    2 => Some(0.25),
                    _ => None,
                },
                source: CORRECTABLE_SOURCE.into(),
                unique_key: Some(format!("k{}", i % 40)),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn deferred_rollup_equals_triggers() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = open_rw(&dir.path().join("a.db")).unwrap();
        let mut b = open_rw(&dir.path().join("b.db")).unwrap();
        let events = rollup_events(60);
        insert_events(&mut a, &events).unwrap();
        // Into a table that holds rows already (the triggers stay, told to wait), then more.
        insert_events(&mut b, &events[..20]).unwrap();
        for part in [&events[20..45], &events[45..]] {
            let tx = b.transaction().unwrap();
            let mut ins = Inserter::new(&tx, false).unwrap();
            ins.defer_rollup().unwrap();
            for e in part {
                ins.insert(e).unwrap();
            }
            ins.fold_rollup().unwrap();
            drop(ins);
            tx.commit().unwrap();
        }
        assert_eq!(all_rows(&a, WHOLE_ROLLUP), all_rows(&b, WHOLE_ROLLUP));
        assert!(
            all_rows(
                &a,
                "SELECT 1 FROM rollup_15m WHERE long_input > 0 AND uncosted_long_input > 0"
            )
            .len()
                > 1
        );
        assert!(all_rows(&a, "SELECT 1 FROM events WHERE corrects IS NOT NULL").len() > 3);
        // The triggers run again after the fold.
        let n: i64 = b
            .query_row("SELECT COUNT(*) FROM rollup_deferred", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        // A transaction rolled back leaves nothing of its sums behind.
        {
            let tx = b.transaction().unwrap();
            let mut ins = Inserter::new(&tx, false).unwrap();
            ins.defer_rollup().unwrap();
            ins.insert(&NewEvent {
                unique_key: Some("new".into()),
                ..events[0].clone()
            })
            .unwrap();
        }
        assert_eq!(all_rows(&a, WHOLE_ROLLUP), all_rows(&b, WHOLE_ROLLUP));
    }

    /// The schema objects of the events table (indexes and triggers with their SQL).
    fn events_schema(c: &Connection) -> Vec<(String, String)> {
        c.prepare(
            "SELECT name, sql FROM sqlite_schema WHERE tbl_name = 'events' AND sql IS NOT NULL
             ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn bulk_load_equals_row_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = open_rw(&dir.path().join("a.db")).unwrap();
        let mut b = open_rw(&dir.path().join("b.db")).unwrap();
        let schema = events_schema(&b);
        // Replies repeated with larger counts (corrections), plain duplicates, unkeyed rows.
        let events: Vec<NewEvent> = rollup_events(60)
            .into_iter()
            .enumerate()
            .map(|(i, e)| NewEvent {
                unique_key: e.unique_key.filter(|_| i % 7 != 0),
                ..e
            })
            .collect();
        insert_events(&mut a, &events).unwrap();
        // A bulk load rolled back leaves the schema as it was.
        {
            let tx = b.transaction().unwrap();
            let bulk = BulkLoad::start(&tx).unwrap().expect("empty table");
            assert!(bulk.indexes);
            assert!(events_schema(&tx).len() < schema.len());
        }
        assert_eq!(events_schema(&b), schema);
        let tx = b.transaction().unwrap();
        let mut ins = Inserter::new(&tx, true).unwrap();
        ins.defer_rollup().unwrap();
        let bulk = BulkLoad::start(&tx).unwrap().expect("empty table");
        for e in &events {
            ins.insert(e).unwrap();
        }
        bulk.finish(&tx, || {}).unwrap();
        ins.fold_rollup().unwrap();
        drop(ins);
        tx.commit().unwrap();
        assert_eq!(events_schema(&b), schema);
        // A table that holds rows is no bulk load; keeping the indexes drops the triggers only.
        let tx = b.transaction().unwrap();
        assert!(BulkLoad::start(&tx).unwrap().is_none());
        let keep = BulkLoad::start_keeping_indexes(&tx).unwrap();
        assert!(!keep.indexes);
        keep.finish(&tx, || {}).unwrap();
        tx.commit().unwrap();
        assert_eq!(events_schema(&b), schema);
        let q = all_rows;
        let rows = "SELECT * FROM events ORDER BY id";
        let rollup = WHOLE_ROLLUP;
        assert_eq!(q(&a, rows), q(&b, rows));
        assert_eq!(q(&a, rollup), q(&b, rollup));
        assert!(q(&a, "SELECT 1 FROM events WHERE corrects IS NOT NULL").len() > 3);
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

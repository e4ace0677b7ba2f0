//! The tail: a blocking thread that owns the database connection. It notices commits by
//! other processes with `PRAGMA data_version` (one cheap pragma every poll), reads only the
//! rows after the last one it has seen, and answers range requests with a consistent
//! snapshot. A database that is missing, replaced or shrunk is reported and read again.
//! It also evaluates the budgets (see [`Tail::evaluate_if_due`]), since that reads the
//! database too. SQLite is never called from the async side.
//!
//! Over PostgreSQL (a `postgres://` URL) the tail does not poll: a dedicated connection
//! LISTENs on the store's channel ([`super::pg_listen`]) and the tail sleeps on it until a
//! writer commits. Where it cannot listen (the team service's `ai_usage` has no trigger; a
//! server refusing LISTEN) it polls the store's data version every [`PG_POLL`], and reads a
//! table without integer ids afresh when it changes. A lost connection (server restarted,
//! network dropped) shows as "reconnecting" with the last numbers kept, is tried again, and
//! everything is read afresh once it is back: nothing lost, nothing counted twice.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::app::{Msg, SourceState};
use super::gaps::Gaps;
use super::model::{LoadRequest, RATE_WINDOW_MS, RangeKind, Snapshot, adaptive_bucket_ms};
use super::pg_listen::Listener;
use crate::budget::{self, Budget, QuotaInput};
use crate::config::Config;
use crate::domain::CostMode;
use crate::store::{AggQuery, Dimension, EventRow, Source};
use crate::timefmt::Zone;

/// How often the tail looks for commits.
pub const POLL: Duration = Duration::from_millis(100);
/// How often a missing or broken database is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// A PostgreSQL server that cannot be listened to is asked for its data version this often.
pub const PG_POLL: Duration = Duration::from_millis(500);
/// How long the tail sleeps on the listening connection before it looks at its commands.
const PG_WAIT: Duration = Duration::from_millis(50);
/// A lost PostgreSQL connection is tried again after this, doubling up to [`PG_RETRY_MAX`].
const PG_RETRY: Duration = Duration::from_millis(250);
const PG_RETRY_MAX: Duration = Duration::from_secs(2);
/// Rows read per batch.
const BATCH: usize = 10_000;
/// A snapshot looks this far below its last id for ids that are not committed yet.
const SNAPSHOT_GAP_WINDOW: i64 = 10_000;
/// While a snapshot is read, the commands are looked at every this many SQLite steps (a few
/// milliseconds at most), so a newer request stops a read that is no longer wanted.
const SUPERSEDED_CHECK_OPS: std::ffi::c_int = 20_000;
/// New rows lead to a budget evaluation at most this often.
pub const BUDGET_DEBOUNCE: Duration = Duration::from_secs(2);
/// Budgets are evaluated at least this often, so windows slide and reset on screen.
pub const BUDGET_REFRESH: Duration = Duration::from_secs(60);

/// Commands from the loop.
#[derive(Debug, Clone)]
pub enum Cmd {
    Load(LoadRequest),
    /// Reopen the database (format detection included) and load.
    Reload(LoadRequest),
    /// The quota counter changed (`None`: no state file). Its sync history is read here.
    Quota(Option<QuotaInput>),
}

/// What the tail needs to open the database.
#[derive(Debug, Clone)]
pub struct TailConfig {
    pub db: PathBuf,
    pub schema: Option<String>,
    pub config: Config,
    pub foreign_zone: Zone,
    /// Zone that cuts calendar budget windows.
    pub zone: Zone,
    pub cost_mode: CostMode,
    /// The state file whose sync history (beside it) gives the quota a burn rate; `None`:
    /// the quota then has no burn rate.
    pub quota_state: Option<PathBuf>,
    /// Where a foreign database's rollup cache lives (`None`: no cache, every range scans).
    pub cache_dir: Option<PathBuf>,
}

/// The identity of the file, to notice a replacement.
fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|m| (0, m.len()))
    }
}

/// Tests of the monitor's panic handling (debug builds only, never in a release): with
/// `TOKMON_TEST_PANIC=tail` in the environment the tail thread panics where it evaluates the
/// budgets, as a budget window that overflows once did. A release build has no such switch.
fn inject_test_panic() {
    #[cfg(debug_assertions)]
    if std::env::var_os("TOKMON_TEST_PANIC").is_some_and(|v| v == "tail") {
        panic!("TOKMON_TEST_PANIC=tail: a panic injected into the tail thread");
    }
}

/// After a commit: check that the last row read is still as it was (ids reused after a
/// delete of the last rows show here), send the rows added since, and check for deletes
/// when it is due. Returns whether rows came, and why to read everything again, if so.
/// Run inside one read transaction ([`Source::read_snapshot`]).
fn read_new_rows(
    src: &Source,
    cur: &mut Cursor,
    out: &UnboundedSender<Msg>,
) -> anyhow::Result<(bool, Option<&'static str>)> {
    if let Some(seen) = &cur.seen
        && seen.last.is_some()
        && row_at(src, cur.last_id)? != seen.last
    {
        return Ok((
            false,
            Some("rows were deleted or rewritten in the database: reading it again"),
        ));
    }
    let mut got_rows = false;
    if !cur.gaps.is_empty()
        && let Some((xmin, _)) = src.xid_horizon()?
    {
        // Ids read past before they were committed: those that show now come late, once.
        let late = src.events_in(&cur.gaps.ranges())?;
        cur.gaps.settle(xmin, Instant::now());
        if !late.is_empty() {
            let ids: Vec<i64> = late.iter().map(|e| e.id).collect();
            cur.gaps.found(&ids);
            tracing::debug!(?ids, "tail: rows committed out of id order");
            got_rows = true;
            if let Some(seen) = &mut cur.seen {
                seen.rows += late.len() as u64;
            }
            if out.send(Msg::LateRows(late)).is_err() {
                return Ok((got_rows, None));
            }
        }
    }
    loop {
        let rows = src.events_after(cur.last_id, BATCH)?;
        let n = rows.len();
        if let Some(last) = rows.last() {
            note_gaps(src, cur, &rows)?;
            cur.last_id = last.id;
            got_rows = true;
            if let Some(seen) = &mut cur.seen {
                seen.rows += n as u64;
                seen.last = Some(last.clone());
            }
            if out.send(Msg::Rows(rows)).is_err() {
                return Ok((got_rows, None));
            }
        }
        if n < BATCH {
            break;
        }
    }
    cur.count_pending = true;
    if Instant::now() >= cur.count_at {
        return Ok((got_rows, count_changed(src, cur)?));
    }
    Ok((got_rows, None))
}

/// Remember the ids that `rows` (read after `cur.last_id`, in id order) skip, where ids can
/// be committed out of order (PostgreSQL).
fn note_gaps(src: &Source, cur: &mut Cursor, rows: &[EventRow]) -> anyhow::Result<()> {
    let mut prev = cur.last_id;
    let skips = rows.iter().any(|r| {
        let skip = r.id > prev.saturating_add(1);
        prev = r.id;
        skip
    });
    if skips && let Some((_, xmax)) = src.xid_horizon()? {
        let upto = rows.last().map_or(cur.last_id, |r| r.id);
        let ids = rows.iter().map(|r| r.id);
        let dropped = cur.gaps.note(cur.last_id, upto, ids, xmax, Instant::now());
        if dropped > 0 {
            tracing::info!(
                dropped,
                "too many ids skipped: the lowest are no longer looked at"
            );
        }
    }
    Ok(())
}

/// The ids below `last_id` (within [`SNAPSHOT_GAP_WINDOW`]) that a snapshot did not see, so
/// that rows still being committed with them are read once they are.
fn snapshot_gaps(src: &Source, last_id: i64) -> anyhow::Result<Gaps> {
    let mut gaps = Gaps::default();
    if let Some((_, xmax)) = src.xid_horizon()? {
        let after = last_id.saturating_sub(SNAPSHOT_GAP_WINDOW).max(0);
        let ids = src.event_ids(after, last_id)?;
        gaps.note(after, last_id, ids, xmax, Instant::now());
    }
    Ok(gaps)
}

/// Read a range in one read transaction, so the grouped sums and the id they stop at agree.
pub fn load_snapshot(src: &Source, req: &LoadRequest) -> anyhow::Result<Snapshot> {
    src.read_snapshot(|| read_snapshot(src, req))
}

fn read_snapshot(src: &Source, req: &LoadRequest) -> anyhow::Result<Snapshot> {
    let last_id = src.max_id()?;
    if src.cache_pending() && req.range == RangeKind::All {
        return all_time_numbers(src, req, last_id);
    }
    // While a foreign database's cache is being built, its time bounds would take two
    // scans that read every timestamp: the newest event time waits for the cache.
    let bounds = if src.cache_pending() {
        None
    } else {
        src.time_bounds()?
    };
    let from_ms = req.range.window_start(req.now_ms);
    let bucket_ms = match req.range.bucket_ms() {
        Some(b) => b,
        None => adaptive_bucket_ms(bounds.map(|b| b.0), req.now_ms),
    };
    let first_bucket_ms = match from_ms {
        Some(f) => f,
        None => bounds.map_or(req.now_ms, |b| b.0).div_euclid(bucket_ms) * bucket_ms,
    };
    // Each row with its provider too, so the monitor can drill into any of the three.
    let rows = src.aggregate_two(
        &AggQuery {
            from_ms,
            to_ms: None,
            by: Some(Dimension::Agent),
            bucket_ms: Some(bucket_ms),
        },
        Dimension::Provider,
    )?;
    let recent_from = req.now_ms - 2 * RATE_WINDOW_MS;
    // The bucketed read already covers the last minutes when its buckets are minutes. While
    // a foreign database's cache is being built, a second read of every row would delay the
    // first numbers: the rate follows with the cache.
    let recent = if req.range == RangeKind::Hour {
        rows.iter()
            .filter(|(r, _)| r.bucket_ms.is_some_and(|b| b >= recent_from))
            .map(|(r, _)| r.clone())
            .collect()
    } else if src.cache_pending() {
        Vec::new()
    } else {
        src.aggregate(&AggQuery {
            from_ms: Some(recent_from),
            to_ms: None,
            by: None,
            bucket_ms: Some(60_000),
        })?
    };
    Ok(Snapshot {
        generation: req.generation,
        from_ms,
        bucket_ms,
        first_bucket_ms,
        rows,
        recent,
        last_id,
        last_event_ms: bounds.map(|b| b.1),
    })
}

/// All-time numbers of a foreign database whose rollup cache is still being built: every
/// row counted by agent and model without reading a timestamp (as fast as a plain GROUP BY).
/// The timeline, the rate and the newest event time follow in the next snapshot, once the
/// cache is built.
fn all_time_numbers(src: &Source, req: &LoadRequest, last_id: i64) -> anyhow::Result<Snapshot> {
    let rows = src.aggregate_two(
        &AggQuery {
            from_ms: None,
            to_ms: None,
            by: Some(Dimension::Agent),
            bucket_ms: None,
        },
        Dimension::Provider,
    )?;
    let bucket_ms = adaptive_bucket_ms(None, req.now_ms);
    Ok(Snapshot {
        generation: req.generation,
        from_ms: None,
        bucket_ms,
        first_bucket_ms: req.now_ms.div_euclid(bucket_ms) * bucket_ms,
        rows,
        recent: Vec::new(),
        last_id,
        last_event_ms: None,
    })
}

/// Build a foreign database's rollup cache on a thread of its own, with its own connection,
/// so that the monitor shows numbers (and follows new rows) meanwhile.
fn spawn_cache_builder(
    cfg: &TailConfig,
    dir: PathBuf,
) -> std::io::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let (db, schema, config, zone) = (
        cfg.db.clone(),
        cfg.schema.clone(),
        cfg.config.clone(),
        cfg.foreign_zone,
    );
    std::thread::Builder::new()
        .name("tokmon-cache".into())
        .spawn(move || {
            let mut src = Source::open(&db, schema.as_deref(), &config, zone)?;
            src.use_cache_dir(&dir);
            let started = Instant::now();
            src.build_cache()?;
            tracing::info!(elapsed = ?started.elapsed(), "rollup cache built");
            Ok(())
        })
}

/// How the tail notices commits.
enum Follow {
    /// `PRAGMA data_version` (SQLite), or the store's data version (PostgreSQL), every poll.
    Version,
    /// PostgreSQL: notifications on a connection of their own; `heard` since the last read.
    Listen {
        listener: Box<Listener>,
        heard: bool,
    },
    /// PostgreSQL without notifications: the data version, every [`PG_POLL`].
    PgPoll { next: Instant },
}

impl Follow {
    fn label(&self) -> &'static str {
        match self {
            Follow::Version => "version",
            Follow::Listen { .. } => "listen",
            Follow::PgPoll { .. } => "poll",
        }
    }
}

struct Open {
    src: Source,
    follow: Follow,
    /// The thread building the rollup cache, while it runs.
    builder: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    /// The rollup cache is to be built (on a thread of its own) once the first numbers are
    /// sent, so that its build does not compete with them.
    build_after_load: bool,
    id: Option<(u64, u64)>,
    version: i64,
    cur: Cursor,
}

/// Where the tail is in the events: kept apart from the source, so that a read transaction
/// on the source can move it.
struct Cursor {
    last_id: i64,
    /// What was read, to notice deletes and rewrites (`None` until the first snapshot).
    seen: Option<Seen>,
    /// Deletes are checked no sooner than this (a count costs a scan of an index).
    count_at: Instant,
    /// A commit came since the last check for deletes.
    count_pending: bool,
    /// Ids read past before they were committed (PostgreSQL).
    gaps: Gaps,
}

impl Cursor {
    fn new() -> Cursor {
        Cursor {
            last_id: 0,
            seen: None,
            count_at: Instant::now(),
            count_pending: false,
            gaps: Gaps::default(),
        }
    }
}

/// The rows the tail has read: how many have an id up to `last_id`, and the row at `last_id`
/// as it was read. A delete shows in the count; ids reused after the last rows were deleted
/// show in the last row (a rewrite that keeps both is invisible, and changes nothing shown).
/// On PostgreSQL the server counts the deletes ([`Source::deletions`]): no rows are counted.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    rows: u64,
    deletions: Option<(i64, i64)>,
    last: Option<EventRow>,
}

impl Seen {
    /// What the source holds now, up to the row at `last_id` (in the caller's read transaction).
    fn read(src: &Source, last_id: i64) -> anyhow::Result<Seen> {
        let deletions = src.deletions()?;
        Ok(Seen {
            rows: if deletions.is_some() {
                0
            } else {
                src.row_count()?
            },
            deletions,
            last: row_at(src, last_id)?,
        })
    }
}

/// The row count is checked at most this often while commits come…
const COUNT_EVERY: Duration = Duration::from_secs(1);
/// …and never takes more than 1/COUNT_COST_SHARE of the tail's time.
const COUNT_COST_SHARE: u32 = 20;

/// The first row with an id of at least `id` (the row at `id`, when it is still there).
fn row_at(src: &Source, id: i64) -> anyhow::Result<Option<EventRow>> {
    if id <= 0 {
        return Ok(None);
    }
    Ok(src
        .events_after(id.saturating_sub(1), 1)?
        .into_iter()
        .next())
}

/// `Some(why)` when rows the tail has read were deleted since: the server's count of deletes
/// changed (PostgreSQL), or there are fewer rows than were read (SQLite: the rows are counted).
fn count_changed(src: &Source, cur: &mut Cursor) -> anyhow::Result<Option<&'static str>> {
    let Some(seen) = &cur.seen else {
        return Ok(None);
    };
    const WHY: &str = "rows were deleted from the database: reading it again";
    let started = Instant::now();
    if let Some(before) = seen.deletions {
        let now = src.deletions()?;
        tracing::debug!(cost = ?started.elapsed(), ?now, "tail: deletions");
        cur.count_pending = false;
        cur.count_at = Instant::now();
        return Ok((now != Some(before)).then(|| {
            tracing::info!(?now, ?before, "deletions changed");
            WHY
        }));
    }
    let rows = src.row_count()?;
    let cost = started.elapsed();
    tracing::debug!(?cost, rows, "tail: row count");
    cur.count_pending = false;
    cur.count_at = Instant::now() + COUNT_EVERY.max(cost * COUNT_COST_SHARE);
    // More rows than read: a commit landed after the version was looked at; they are read next.
    Ok((rows < seen.rows).then(|| {
        tracing::info!(rows, seen = seen.rows, "row count changed");
        WHY
    }))
}

/// The loop's commands, with those taken from the channel early: while a snapshot is read,
/// SQLite's progress handler looks at the channel (on the tail's own thread), and a newer
/// request, or the loop's end, stops a read whose answer nobody would look at.
struct Inbox {
    rx: Receiver<Cmd>,
    early: VecDeque<Cmd>,
    closed: bool,
}

impl Inbox {
    /// Take what has arrived; whether it holds a newer request (or the loop has ended).
    fn superseded(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(cmd) => self.early.push_back(cmd),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.closed = true;
                    break;
                }
            }
        }
        self.closed
            || self
                .early
                .iter()
                .any(|c| matches!(c, Cmd::Load(_) | Cmd::Reload(_)))
    }
}

/// The next command: one taken early first, else from the channel, waiting up to `wait`
/// (`None`: not at all).
fn next_cmd(inbox: &Mutex<Inbox>, wait: Option<Duration>) -> Result<Cmd, RecvTimeoutError> {
    let mut inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(cmd) = inbox.early.pop_front() {
        return Ok(cmd);
    }
    if inbox.closed {
        return Err(RecvTimeoutError::Disconnected);
    }
    match wait {
        Some(wait) => inbox.rx.recv_timeout(wait),
        None => inbox.rx.try_recv().map_err(|e| match e {
            TryRecvError::Empty => RecvTimeoutError::Timeout,
            TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
        }),
    }
}

/// Whether a read failed because the progress handler stopped it (a newer request came).
fn interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
            == Some(rusqlite::ErrorCode::OperationInterrupted)
    })
}

/// The tail thread's state.
pub struct Tail {
    cfg: TailConfig,
    inbox: Arc<Mutex<Inbox>>,
    out: UnboundedSender<Msg>,
    open: Option<Open>,
    request: Option<LoadRequest>,
    /// The newest request has not been answered.
    need_load: bool,
    last_state: Option<SourceState>,
    next_retry: Instant,
    /// The config's budgets (checked when the config was loaded).
    budgets: Vec<Budget>,
    /// The latest quota counter, without its syncs.
    quota: Option<QuotaInput>,
    /// When the next budget evaluation is due, if one is.
    eval_due: Option<Instant>,
    last_eval: Option<Instant>,
    /// PostgreSQL: a snapshot was read since the tail started (a lost connection is then
    /// "reconnecting"), and how long to wait before the next attempt.
    pg_live: bool,
    pg_retry: Duration,
}

impl Tail {
    pub fn new(cfg: TailConfig, cmds: Receiver<Cmd>, out: UnboundedSender<Msg>) -> Tail {
        let budgets = budget::from_config(&cfg.config).unwrap_or_else(|e| {
            tracing::warn!("budgets: {e:#}");
            Vec::new()
        });
        Tail {
            budgets,
            quota: None,
            eval_due: Some(Instant::now()),
            last_eval: None,
            cfg,
            inbox: Arc::new(Mutex::new(Inbox {
                rx: cmds,
                early: VecDeque::new(),
                closed: false,
            })),
            out,
            open: None,
            request: None,
            need_load: false,
            last_state: None,
            next_retry: Instant::now(),
            pg_live: false,
            pg_retry: PG_RETRY,
        }
    }

    /// Start the thread. It ends when the command channel closes.
    pub fn spawn(self) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("tokmon-tail".into())
            .spawn(move || self.run())
            .expect("spawn the tail thread")
    }

    fn send(&self, m: Msg) -> bool {
        self.out.send(m).is_ok()
    }

    fn report(&mut self, s: SourceState) {
        if self.last_state.as_ref() != Some(&s) {
            tracing::info!(?s, "source state");
            if s == SourceState::Missing {
                // Budgets show nothing used until the database appears.
                self.eval_due = Some(Instant::now());
            }
            self.last_state = Some(s.clone());
            self.send(Msg::Source(s));
        }
    }

    pub fn run(mut self) {
        loop {
            // (While nothing is open, a step only looks whether a retry is due.)
            let wait = POLL;
            let got = match self.open.as_mut().map(|o| &mut o.follow) {
                Some(Follow::Listen { listener, heard }) => match listener.wait(PG_WAIT) {
                    Ok(h) => {
                        *heard |= h;
                        next_cmd(&self.inbox, None)
                    }
                    Err(e) => {
                        self.failed(e);
                        continue;
                    }
                },
                _ => next_cmd(&self.inbox, Some(wait)),
            };
            match got {
                Ok(cmd) => self.command(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Only the newest of several queued requests matters.
            while let Ok(cmd) = next_cmd(&self.inbox, None) {
                self.command(cmd);
            }
            if self.out.is_closed() {
                return;
            }
            if let Err(e) = self.step() {
                self.failed(e);
            }
            self.evaluate_if_due();
        }
    }

    /// A read failed: drop the connection and try again. A PostgreSQL server that was live
    /// is being reconnected to (the numbers stay on screen), soon at first, then less often.
    fn failed(&mut self, e: anyhow::Error) {
        tracing::warn!("tail: {e:#}");
        self.open = None;
        if self.pg_live {
            self.next_retry = Instant::now() + self.pg_retry;
            self.pg_retry = (self.pg_retry * 2).min(PG_RETRY_MAX);
            self.report(SourceState::Reconnecting(format!("{e:#}")));
        } else {
            self.next_retry = Instant::now() + RETRY;
            self.report(SourceState::Error(format!("{e:#}")));
        }
    }

    /// Ask for a budget evaluation no later than `at`.
    fn schedule(&mut self, at: Instant) {
        self.eval_due = Some(self.eval_due.map_or(at, |d| d.min(at)));
    }

    /// Evaluate the budgets when it is due and there is something to evaluate them on: an
    /// open database, or none at all (nothing used yet). A database that failed to open
    /// waits, rather than showing zeros that would alert once it is back.
    pub fn evaluate_if_due(&mut self) {
        let now = Instant::now();
        if self
            .last_eval
            .is_some_and(|t| now.duration_since(t) >= BUDGET_REFRESH)
        {
            self.schedule(now);
        }
        if self.eval_due.is_none_or(|d| d > now) {
            return;
        }
        if self.budgets.is_empty() && self.quota.is_none() {
            self.eval_due = None;
            return;
        }
        let source = match &self.open {
            // Wait for the snapshot, so the numbers agree with the tables.
            Some(_) if self.need_load => return,
            Some(o) => Some(&o.src),
            None if self.last_state == Some(SourceState::Missing) => None,
            None => return,
        };
        let quota = self.quota.clone().map(|mut q| {
            q.syncs = self.quota_syncs();
            q
        });
        inject_test_panic();
        let result = budget::evaluate_all(
            &self.budgets,
            source,
            quota.as_ref(),
            &self.cfg.zone,
            self.cfg.cost_mode,
            chrono::Utc::now(),
        );
        self.eval_due = None;
        self.last_eval = Some(now);
        match result {
            Ok(statuses) => {
                self.send(Msg::Budgets(statuses));
            }
            Err(e) => tracing::warn!("budgets: {e:#}"),
        }
    }

    /// The quota's sync history, kept beside the state file. Problems only cost the burn rate.
    fn quota_syncs(&self) -> Vec<budget::SyncPoint> {
        match &self.cfg.quota_state {
            Some(state) => {
                crate::state_file::history::sync_points(state, budget::QUOTA_SYNC_POINTS)
            }
            None => Vec::new(),
        }
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Quota(q) => {
                if self.quota != q {
                    self.quota = q;
                    self.schedule(Instant::now());
                }
                return;
            }
            Cmd::Load(r) => self.request = Some(r),
            Cmd::Reload(r) => {
                self.request = Some(r);
                self.open = None;
                self.last_state = None;
                self.next_retry = Instant::now();
            }
        }
        self.need_load = true;
    }

    /// Rows the tail had read were deleted or rewritten: forget the source (and a foreign
    /// database's rollup cache, which folded them in) and read everything again.
    fn reread(&mut self, why: &str) {
        tracing::info!(why, "reset");
        if let Some(cache) = self.open.as_ref().and_then(|o| o.src.cache.as_ref())
            && let Err(e) = cache.borrow_mut().forget()
        {
            tracing::warn!("rollup cache: {e:#}");
        }
        self.open = None;
        self.need_load = true;
        self.last_state = None;
        self.send(Msg::Reset(why.into()));
    }

    /// One poll: open if needed, notice replacement, answer a request, read new rows.
    fn step(&mut self) -> anyhow::Result<()> {
        if self.open.is_none() {
            if Instant::now() < self.next_retry {
                return Ok(());
            }
            if !crate::store::db_present(&self.cfg.db) {
                self.report(SourceState::Missing);
                // Only a look at the path: often, so a database published by the first
                // import is shown at once.
                self.next_retry = Instant::now() + POLL;
                return Ok(());
            }
            let id = file_id(&self.cfg.db);
            let mut src = Source::open(
                &self.cfg.db,
                self.cfg.schema.as_deref(),
                &self.cfg.config,
                self.cfg.foreign_zone,
            )?;
            let mut build_after_load = false;
            if let Some(dir) = &self.cfg.cache_dir {
                src.use_cache_dir(dir);
                if src.cache_pending() {
                    src.defer_cache_build(true);
                    build_after_load = true;
                }
            }
            let version = src.data_version()?;
            // Listen before the first read: a commit after it is then always heard.
            let follow = if src.is_postgres() {
                pg_follow(&self.cfg.db, &src)
            } else {
                Follow::Version
            };
            tracing::info!(
                path = %crate::store::shown(&self.cfg.db),
                kind = %src.kind,
                follow = %follow.label(),
                "opened"
            );
            self.send(Msg::Opened {
                kind: src.kind.label(),
            });
            self.last_state = Some(SourceState::Live);
            self.open = Some(Open {
                src,
                follow,
                builder: None,
                build_after_load,
                id,
                version,
                cur: Cursor::new(),
            });
            self.need_load = true;
        }
        // Replaced (new inode) or deleted under us.
        let id = file_id(&self.cfg.db);
        let open = self.open.as_ref().expect("opened above");
        if id != open.id {
            let why = if id.is_none() {
                "the database file was removed"
            } else {
                "the database file was replaced: reading it again"
            };
            tracing::info!(why, "reset");
            self.open = None;
            self.need_load = true;
            self.last_state = None;
            self.send(Msg::Reset(why.into()));
            return Ok(());
        }
        let open = self.open.as_mut().expect("opened above");
        if open.builder.as_ref().is_some_and(|h| h.is_finished()) {
            let done = open.builder.take().map(|h| h.join());
            // Rows deleted or rewritten while the cache was being built must be noticed
            // before the numbers are read again through it: check them now, not when due.
            if open.cur.seen.is_some() && open.src.data_version()? != open.version {
                open.cur.count_at = Instant::now();
                let (src, cur, out) = (&open.src, &mut open.cur, &self.out);
                if let (_, Some(why)) = src.read_snapshot(|| read_new_rows(src, cur, out))? {
                    self.reread(why);
                    return Ok(());
                }
            }
            match done {
                Some(Ok(Ok(()))) => {
                    // Read through the built cache from now on: numbers again, now with
                    // the timeline.
                    if let Some(dir) = &self.cfg.cache_dir {
                        open.src.use_cache_dir(dir);
                    }
                    open.src.defer_cache_build(false);
                    self.need_load = true;
                }
                Some(Ok(Err(e))) => {
                    tracing::warn!("rollup cache not built, reading the events instead: {e:#}")
                }
                Some(Err(_)) => tracing::warn!("the rollup cache builder panicked"),
                None => {}
            }
        }
        if self.need_load {
            if let Some(req) = self.request {
                let open = self.open.as_mut().expect("opened above");
                // One read transaction: the snapshot, then (after it is sent, so the numbers
                // are not delayed) the count and the last row that later commits are checked
                // against. The version is read first: a commit that lands while (or just
                // after) the snapshot is read then shows as a change, never goes unseen.
                let version = open.src.data_version()?;
                let inbox = Arc::clone(&self.inbox);
                open.src.conn().progress_handler(
                    SUPERSEDED_CHECK_OPS,
                    Some(move || inbox.try_lock().is_ok_and(|mut i| i.superseded())),
                )?;
                let started = Instant::now();
                let mut builder = None;
                let (src, out, cfg) = (&open.src, &self.out, &self.cfg);
                let build_now = open.build_after_load;
                let read = src.read_snapshot(|| {
                    let snap = read_snapshot(src, &req)?;
                    let last_id = snap.last_id;
                    tracing::debug!(range = ?req.range, elapsed = ?started.elapsed(), "snapshot read");
                    let _ = out.send(Msg::Snapshot(Box::new(snap)));
                    // The first numbers are out: a foreign database's rollup cache is built
                    // behind them now, on a thread and a connection of its own.
                    if build_now && let Some(dir) = &cfg.cache_dir {
                        builder = Some(spawn_cache_builder(cfg, dir.clone()));
                    }
                    let seen = Seen::read(src, last_id)?;
                    Ok((last_id, seen, snapshot_gaps(src, last_id)?))
                });
                open.src.conn().progress_handler(0, None::<fn() -> bool>)?;
                if let Some(spawned) = builder {
                    open.build_after_load = false;
                    match spawned {
                        Ok(h) => open.builder = Some(h),
                        Err(e) => {
                            tracing::warn!("cannot start the rollup cache builder: {e}");
                            open.src.defer_cache_build(false);
                        }
                    }
                }
                if read.as_ref().is_err_and(interrupted) {
                    // A newer request came: it is answered next.
                    tracing::debug!(range = ?req.range, "snapshot read stopped for a newer request");
                    return Ok(());
                }
                let (last_id, seen, gaps) = read?;
                open.cur = Cursor {
                    last_id,
                    seen: Some(seen),
                    count_at: Instant::now() + COUNT_EVERY,
                    count_pending: false,
                    gaps,
                };
                open.version = version;
                if open.src.is_postgres() {
                    self.pg_live = true;
                    self.pg_retry = PG_RETRY;
                }
                self.need_load = false;
                self.schedule(Instant::now());
            }
            return Ok(());
        }
        let open = self.open.as_mut().expect("opened above");
        // `woke`: a commit may have come (heard, or the version was due to be asked for).
        let (v, woke) = match &mut open.follow {
            Follow::Version => (open.src.data_version()?, true),
            // Nothing heard: nothing committed (the version is not asked for).
            Follow::Listen { heard: false, .. } => (open.version, false),
            Follow::Listen { heard, .. } => {
                *heard = false;
                (open.src.data_version()?, true)
            }
            Follow::PgPoll { next } if Instant::now() < *next => (open.version, false),
            Follow::PgPoll { next } => {
                *next = Instant::now() + PG_POLL;
                (open.src.data_version()?, true)
            }
        };
        // A commit of an id read past leaves the version as it was: look at the gaps too.
        let late_due = woke && !open.cur.gaps.is_empty();
        if v == open.version && !late_due {
            // A count check that was put off (commits came quickly) is made once it is due.
            if open.cur.count_pending
                && Instant::now() >= open.cur.count_at
                && let Some(why) = count_changed(&open.src, &mut open.cur)?
            {
                self.reread(why);
            }
            return Ok(());
        }
        open.version = v;
        if open.src.empty {
            // A native file that just got its tables: open again to see them.
            self.open = None;
            return Ok(());
        }
        if open.src.is_postgres() && !open.src.kind.is_native() {
            // The team service's table has uuid keys, which give no order to follow: a
            // change is read afresh (one grouped read, exact).
            self.need_load = true;
            return Ok(());
        }
        let max = open.src.max_id()?;
        if max < open.cur.last_id {
            tracing::info!(max, last = open.cur.last_id, "database shrank");
            self.need_load = true;
            self.send(Msg::Reset(
                "the database shrank or was rewritten: reading it again".into(),
            ));
            return Ok(());
        }
        // The new rows, the last row read and (when due) the count, in one read transaction.
        let started = Instant::now();
        let (src, cur, out) = (&open.src, &mut open.cur, &self.out);
        let (got_rows, rewritten) = src.read_snapshot(|| read_new_rows(src, cur, out))?;
        tracing::debug!(elapsed = ?started.elapsed(), got_rows, "tail: new rows read");
        if let Some(why) = rewritten {
            self.reread(why);
            return Ok(());
        }
        if got_rows {
            // New usage: evaluate again, but not more often than the debounce allows.
            let now = Instant::now();
            let at = self
                .last_eval
                .map_or(now, |t| (t + BUDGET_DEBOUNCE).max(now));
            self.schedule(at);
        }
        Ok(())
    }
}

/// How to follow a PostgreSQL database: LISTEN where its events table announces inserts on
/// the store's channel, else poll. A listener that cannot be set up is logged and polled
/// around (the monitor still works, less promptly).
fn pg_follow(db: &std::path::Path, src: &Source) -> Follow {
    if src.empty || !src.kind.is_native() {
        return Follow::PgPoll {
            next: Instant::now() + PG_POLL,
        };
    }
    let listener = crate::store::pg::Target::parse(db)
        .and_then(|t| t.connect())
        .and_then(|c| Listener::start(c, crate::store::pg::NOTIFY_CHANNEL));
    match listener {
        Ok(Some(listener)) => Follow::Listen {
            listener: Box::new(listener),
            heard: false,
        },
        Ok(None) => {
            tracing::info!("no insert trigger to listen to: polling");
            Follow::PgPoll {
                next: Instant::now() + PG_POLL,
            }
        }
        Err(e) => {
            tracing::warn!("cannot listen, polling instead: {e:#}");
            Follow::PgPoll {
                next: Instant::now() + PG_POLL,
            }
        }
    }
}

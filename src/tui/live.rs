//! The tail: a blocking thread that owns the database connection. It notices commits by
//! other processes with `PRAGMA data_version` (one cheap pragma every poll), reads only the
//! rows after the last one it has seen, and answers range requests with a consistent
//! snapshot. A database that is missing, replaced or shrunk is reported and read again.
//! SQLite is never called from the async side.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::app::{Msg, SourceState};
use super::model::{LoadRequest, RATE_WINDOW_MS, RangeKind, Snapshot, adaptive_bucket_ms};
use crate::config::Config;
use crate::store::{AggQuery, Dimension, Source};
use crate::timefmt::Zone;

/// How often the tail looks for commits.
pub const POLL: Duration = Duration::from_millis(100);
/// How often a missing or broken database is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// Rows read per batch.
const BATCH: usize = 10_000;

/// Commands from the loop.
#[derive(Debug, Clone)]
pub enum Cmd {
    Load(LoadRequest),
    /// Reopen the database (format detection included) and load.
    Reload(LoadRequest),
}

/// What the tail needs to open the database.
#[derive(Debug, Clone)]
pub struct TailConfig {
    pub db: PathBuf,
    pub schema: Option<String>,
    pub config: Config,
    pub foreign_zone: Zone,
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

/// Read a range in one read transaction, so the grouped sums and the id they stop at agree.
pub fn load_snapshot(src: &Source, req: &LoadRequest) -> anyhow::Result<Snapshot> {
    src.conn().execute_batch("BEGIN")?;
    let result = read_snapshot(src, req);
    let _ = src.conn().execute_batch("COMMIT");
    result
}

fn read_snapshot(src: &Source, req: &LoadRequest) -> anyhow::Result<Snapshot> {
    let last_id = src.max_id()?;
    let bounds = src.time_bounds()?;
    let from_ms = req.range.window_start(req.now_ms);
    let bucket_ms = match req.range.bucket_ms() {
        Some(b) => b,
        None => adaptive_bucket_ms(bounds.map(|b| b.0), req.now_ms),
    };
    let first_bucket_ms = match from_ms {
        Some(f) => f,
        None => bounds.map_or(req.now_ms, |b| b.0).div_euclid(bucket_ms) * bucket_ms,
    };
    let rows = src.aggregate(&AggQuery {
        from_ms,
        to_ms: None,
        by: Some(Dimension::Agent),
        bucket_ms: Some(bucket_ms),
    })?;
    let recent_from = req.now_ms - 2 * RATE_WINDOW_MS;
    // The bucketed read already covers the last minutes when its buckets are minutes.
    let recent = if req.range == RangeKind::Hour {
        rows.iter()
            .filter(|r| r.bucket_ms.is_some_and(|b| b >= recent_from))
            .cloned()
            .collect()
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

struct Open {
    src: Source,
    id: Option<(u64, u64)>,
    version: i64,
    last_id: i64,
}

/// The tail thread's state.
pub struct Tail {
    cfg: TailConfig,
    cmds: Receiver<Cmd>,
    out: UnboundedSender<Msg>,
    open: Option<Open>,
    request: Option<LoadRequest>,
    /// The newest request has not been answered.
    need_load: bool,
    last_state: Option<SourceState>,
    next_retry: Instant,
}

impl Tail {
    pub fn new(cfg: TailConfig, cmds: Receiver<Cmd>, out: UnboundedSender<Msg>) -> Tail {
        Tail {
            cfg,
            cmds,
            out,
            open: None,
            request: None,
            need_load: false,
            last_state: None,
            next_retry: Instant::now(),
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
            self.last_state = Some(s.clone());
            self.send(Msg::Source(s));
        }
    }

    pub fn run(mut self) {
        loop {
            let wait = if self.open.is_some() {
                POLL
            } else {
                RETRY.min(POLL * 2)
            };
            match self.cmds.recv_timeout(wait) {
                Ok(cmd) => self.command(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Only the newest of several queued requests matters.
            while let Ok(cmd) = self.cmds.try_recv() {
                self.command(cmd);
            }
            if self.out.is_closed() {
                return;
            }
            if let Err(e) = self.step() {
                tracing::warn!("tail: {e:#}");
                self.open = None;
                self.next_retry = Instant::now() + RETRY;
                self.report(SourceState::Error(format!("{e:#}")));
            }
        }
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
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

    /// One poll: open if needed, notice replacement, answer a request, read new rows.
    fn step(&mut self) -> anyhow::Result<()> {
        if self.open.is_none() {
            if Instant::now() < self.next_retry {
                return Ok(());
            }
            if !self.cfg.db.exists() {
                self.report(SourceState::Missing);
                self.next_retry = Instant::now() + RETRY;
                return Ok(());
            }
            let id = file_id(&self.cfg.db);
            let src = Source::open(
                &self.cfg.db,
                self.cfg.schema.as_deref(),
                &self.cfg.config,
                self.cfg.foreign_zone,
            )?;
            let version = src.data_version()?;
            tracing::info!(path = %self.cfg.db.display(), kind = %src.kind, "opened");
            self.send(Msg::Opened {
                kind: src.kind.label(),
            });
            self.last_state = Some(SourceState::Live);
            self.open = Some(Open {
                src,
                id,
                version,
                last_id: 0,
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
        if self.need_load {
            if let Some(req) = self.request {
                let open = self.open.as_mut().expect("opened above");
                let snap = load_snapshot(&open.src, &req)?;
                open.last_id = snap.last_id;
                open.version = open.src.data_version()?;
                self.need_load = false;
                self.send(Msg::Snapshot(Box::new(snap)));
            }
            return Ok(());
        }
        let open = self.open.as_mut().expect("opened above");
        let v = open.src.data_version()?;
        if v == open.version {
            return Ok(());
        }
        open.version = v;
        if open.src.empty {
            // A native file that just got its tables: open again to see them.
            self.open = None;
            return Ok(());
        }
        let max = open.src.max_id()?;
        if max < open.last_id {
            tracing::info!(max, last = open.last_id, "database shrank");
            self.need_load = true;
            self.send(Msg::Reset(
                "the database shrank or was rewritten: reading it again".into(),
            ));
            return Ok(());
        }
        loop {
            let rows = open.src.events_after(open.last_id, BATCH)?;
            let n = rows.len();
            if let Some(last) = rows.last() {
                open.last_id = last.id;
                if self.out.send(Msg::Rows(rows)).is_err() {
                    return Ok(());
                }
            }
            if n < BATCH {
                return Ok(());
            }
        }
    }
}

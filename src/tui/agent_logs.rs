//! Agent logs in the monitor: the discovered logs are imported at start and followed while it
//! runs (the same code as `tokmon import --follow`), the first import's progress is shown, and
//! the active 5-hour block is watched for its gauge.
//!
//! Two threads of their own, both stopped and joined on drop: the follower (import), and the
//! block watcher, which re-reads the active block (rollup reads only) when the database changed
//! and at least every [`BLOCK_EVERY`].

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::blocks::{self, Block, Limit};
use crate::config::Config;
use crate::domain::CostMode;
use crate::import::{ImportSummary, Options, Progress};
use crate::timefmt::Zone;

/// How often the block watcher looks at the database.
const POLL: Duration = Duration::from_millis(500);
/// The block is re-read at least this often (its time left runs on; a block ends).
const BLOCK_EVERY: Duration = Duration::from_secs(30);
/// Progress messages are at most this frequent.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// How the first import goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportProgress {
    pub files_total: u64,
    pub files_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub lines: u64,
}

impl ImportProgress {
    /// How much is read: none before the files are counted (the import is starting), all
    /// of files that hold no byte.
    pub fn ratio(&self) -> f64 {
        if self.bytes_total == 0 {
            if self.files_total == 0 { 0.0 } else { 1.0 }
        } else {
            self.bytes_done as f64 / self.bytes_total as f64
        }
    }
}

/// The active block with what it is measured against.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockGauge {
    pub block: Option<Block>,
    /// What the block is measured against (config `block_limit`).
    pub limit: Option<GaugeLimit>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GaugeLimit {
    /// `max`: the largest past block.
    Tokens {
        limit: u64,
        max: bool,
    },
    Usd(f64),
}

impl GaugeLimit {
    /// How much of the limit the block used (0..), and its projection at the block's end.
    pub fn ratios(&self, b: &Block, now_ms: i64) -> (f64, Option<f64>) {
        let p = b.projection(now_ms);
        match *self {
            GaugeLimit::Tokens { limit, .. } if limit > 0 => (
                b.tokens.total() as f64 / limit as f64,
                p.map(|p| p.projected_tokens as f64 / limit as f64),
            ),
            GaugeLimit::Usd(limit) if limit > 0.0 => {
                (b.cost_usd / limit, p.map(|p| p.projected_cost / limit))
            }
            _ => (0.0, None),
        }
    }
}

/// What the monitor knows about agent logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentLogs {
    /// While the first import runs.
    pub import: Option<ImportProgress>,
    /// `None` until read, and while there is no Claude Code data at all.
    pub gauge: Option<BlockGauge>,
    /// The last import's words, e.g. `imported 120 events from 3 files …`.
    pub last_import: Option<String>,
}

/// Messages from the follower and the block watcher.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentLogsMsg {
    Progress(ImportProgress),
    /// The first import finished: its summary line.
    FirstDone(String),
    Gauge(Option<BlockGauge>),
}

impl AgentLogs {
    /// Take a message; whether the screen changes.
    pub fn apply(&mut self, m: AgentLogsMsg) -> bool {
        match m {
            AgentLogsMsg::Progress(p) => self.import = Some(p),
            AgentLogsMsg::FirstDone(s) => {
                self.import = None;
                self.last_import = Some(s);
            }
            AgentLogsMsg::Gauge(g) => {
                if self.gauge == g {
                    return false;
                }
                self.gauge = g;
            }
        }
        true
    }
}

/// Where the watchers' messages go; `false` once nobody listens.
pub type Sink = Arc<dyn Fn(AgentLogsMsg) -> bool + Send + Sync>;

fn send(tx: &Sink, m: AgentLogsMsg) -> bool {
    tx(m)
}

/// Progress of the first import, forwarded to the monitor (at most every 100 ms).
struct Forward {
    tx: Sink,
    p: Cell<ImportProgress>,
    last: Cell<Option<Instant>>,
}

impl Progress for Forward {
    fn start(&self, files: u64, bytes: u64) {
        let p = ImportProgress {
            files_total: files,
            bytes_total: bytes,
            ..ImportProgress::default()
        };
        self.p.set(p);
        if files > 0 {
            send(&self.tx, AgentLogsMsg::Progress(p));
            self.last.set(Some(Instant::now()));
        }
    }

    fn advance(&self, bytes: u64, files_done: u64, lines: u64) {
        let mut p = self.p.get();
        p.bytes_done += bytes;
        p.files_done = files_done;
        p.lines = lines;
        self.p.set(p);
        if self
            .last
            .get()
            .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY)
        {
            send(&self.tx, AgentLogsMsg::Progress(p));
            self.last.set(Some(Instant::now()));
        }
    }
}

/// What the watchers need.
pub struct Setup {
    /// Logs to import and follow (discovered, configured and `--follow`).
    pub paths: Vec<PathBuf>,
    pub db: PathBuf,
    pub config: Config,
    pub schema: Option<String>,
    pub foreign_zone: Zone,
    pub cost_mode: CostMode,
    /// Where a foreign database's rollup cache lives (as for the tail). The block watcher
    /// reads a foreign database only through it, once the tail has built it: reading every
    /// row's time here would compete with the monitor's first numbers.
    pub cache_dir: Option<PathBuf>,
}

/// The follower and the block watcher; dropping it stops both and waits for them.
pub struct Watchers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Watchers {
    pub fn start(setup: Setup, tx: Sink) -> anyhow::Result<Watchers> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        if !setup.paths.is_empty() {
            // Made or checked now, so a bad database is reported before the screen is taken.
            // One that is not there yet is filled aside by the first import and appears when
            // it is complete (several times faster than filling a new one in place); the
            // screen says it is being imported meanwhile.
            let fresh = crate::store::native::FreshDb::create_keeping_signals(&setup.db)?;
            if fresh.is_none() {
                drop(crate::store::Writer::open(&setup.db)?);
            } else {
                send(&tx, AgentLogsMsg::Progress(ImportProgress::default()));
            }
            let (paths, db, flag, tx) = (
                setup.paths.clone(),
                setup.db.clone(),
                stop.clone(),
                tx.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name("follow".into())
                    .spawn(move || follow(paths, db, fresh, &flag, tx))?,
            );
        }
        let flag = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("block".into())
                .spawn(move || watch_block(&setup, &flag, tx))?,
        );
        Ok(Watchers { stop, threads })
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn follow(
    paths: Vec<PathBuf>,
    db: PathBuf,
    fresh: Option<crate::store::native::FreshDb>,
    stop: &AtomicBool,
    tx: Sink,
) {
    let progress = Forward {
        tx: tx.clone(),
        p: Cell::new(ImportProgress::default()),
        last: Cell::new(None),
    };
    let mut first = true;
    let result = crate::import::follow::follow_with_progress(
        &paths,
        &db,
        fresh,
        &Options::default(),
        stop,
        Some(&progress),
        |s: ImportSummary| {
            tracing::info!("follow: {}", s.one_line());
            if first {
                first = false;
                send(&tx, AgentLogsMsg::FirstDone(s.one_line()));
            }
        },
    );
    if let Err(e) = result {
        tracing::error!("follow stopped: {e:#}");
        send(
            &tx,
            AgentLogsMsg::FirstDone(format!("import stopped: {e:#}")),
        );
    }
}

/// Re-read the active block when the database changed, and every [`BLOCK_EVERY`].
fn watch_block(setup: &Setup, stop: &AtomicBool, tx: Sink) {
    let limit = setup
        .config
        .block_limit
        .as_deref()
        .and_then(|l| Limit::parse(l).ok());
    let mut source: Option<crate::store::Source> = None;
    let mut seen_version: Option<i64> = None;
    let mut last_read: Option<Instant> = None;
    // The largest past block, re-read when the active block changes (only then can it grow).
    let mut largest: Option<(i64, (u64, f64))> = None;
    let mut last_sent: Option<Option<BlockGauge>> = None;
    // An outage (a PostgreSQL server restarting) is logged once, not at every poll: the
    // screen already says "reconnecting".
    let mut failing = false;
    while !stop.load(Ordering::Relaxed) {
        if source.is_none() && crate::store::db_present(&setup.db) {
            source = crate::store::Source::open(
                &setup.db,
                setup.schema.as_deref(),
                &setup.config,
                setup.foreign_zone,
            )
            .and_then(|mut s| {
                if let Some(dir) = &setup.cache_dir {
                    s.use_cache_dir(dir);
                    s.defer_cache_build(true);
                }
                blocks::steady_plans(&s)?;
                Ok(s)
            })
            .map_err(|e| failed(&mut failing, e))
            .ok();
        }
        if let Some(src) = &mut source
            && src.cache_pending()
        {
            // Built by the tail meanwhile? (The cache file says so.)
            if let Some(dir) = &setup.cache_dir {
                src.use_cache_dir(dir);
            }
            if src.cache_pending() {
                std::thread::sleep(POLL);
                continue;
            }
            seen_version = None;
        }
        if let Some(src) = &source {
            let version = src.data_version().ok();
            let due = last_read.is_none_or(|t| t.elapsed() >= BLOCK_EVERY);
            if version != seen_version || due {
                seen_version = version;
                last_read = Some(Instant::now());
                match gauge(src, setup.cost_mode, limit, &mut largest) {
                    Ok(g) => {
                        if std::mem::take(&mut failing) {
                            tracing::info!("block watcher: reading the database again");
                        }
                        if last_sent.as_ref() != Some(&g) {
                            if !send(&tx, AgentLogsMsg::Gauge(g.clone())) {
                                return;
                            }
                            last_sent = Some(g);
                        }
                    }
                    Err(e) => {
                        failed(&mut failing, e);
                        // A replaced or rewritten database: open it again.
                        source = None;
                    }
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Log a failure of the block watcher: a warning the first time, quietly while it goes on.
fn failed(failing: &mut bool, e: anyhow::Error) {
    if std::mem::replace(failing, true) {
        tracing::debug!("block watcher, still: {e:#}");
    } else {
        tracing::warn!("block watcher: {e:#}");
    }
}

fn gauge(
    src: &crate::store::Source,
    mode: CostMode,
    limit: Option<Limit>,
    largest: &mut Option<(i64, (u64, f64))>,
) -> anyhow::Result<Option<BlockGauge>> {
    let now = chrono::Utc::now();
    let block = blocks::active(src, now, mode)?;
    let key = block.as_ref().map_or(0, |b| b.start_ms);
    if largest.is_none_or(|(k, _)| k != key) {
        *largest = Some((key, blocks::largest(src, now, mode)?));
    }
    let max_tokens = largest.map_or(0, |(_, (tokens, _))| tokens);
    // No Claude Code data at all: no gauge.
    if block.is_none() && max_tokens == 0 {
        return Ok(None);
    }
    let limit = match limit {
        None => None,
        Some(Limit::Tokens(n)) => Some(GaugeLimit::Tokens {
            limit: n,
            max: false,
        }),
        Some(Limit::Usd(u)) => Some(GaugeLimit::Usd(u)),
        Some(Limit::Max) => (max_tokens > 0).then_some(GaugeLimit::Tokens {
            limit: max_tokens,
            max: true,
        }),
    };
    Ok(Some(BlockGauge { block, limit }))
}

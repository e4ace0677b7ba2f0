//! Follow mode: keep importing what is appended to the logs under some paths.
//!
//! A file-system watcher (notify) wakes the loop as soon as something changes under the paths;
//! a periodic rescan covers what a watcher can miss (network file systems, paths created after
//! the start) and is the only mechanism when no watcher can be set up. Each wake-up runs the
//! ordinary incremental import, which stats every file and reads only appended bytes, so a
//! line written to a log is in the database well within a second.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::{ImportSummary, Options, import_into, import_to_fresh};
use crate::store::Writer;
use crate::store::native::FreshDb;

/// How long to let a burst of file events settle before importing.
const SETTLE: Duration = Duration::from_millis(50);
/// Rescan interval when a watcher is running (a safety net) and when none could be set up.
const RESCAN_WITH_WATCHER: Duration = Duration::from_secs(2);
const RESCAN_POLLING: Duration = Duration::from_millis(500);
/// How often the stop flag is looked at.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Follow `paths`, importing into the native database `db`, until `stop` is set.
///
/// Blocking: run it on its own thread (the TUI does). The first pass imports everything that
/// is new; `on_batch` is called with its summary, and then with the summary of every later
/// pass that added events or found bad lines or errors. Bad lines are skipped (never strict).
/// Returns an error only when the database cannot be opened or written.
pub fn follow(
    paths: Vec<PathBuf>,
    db: PathBuf,
    format: Option<super::Format>,
    stop: Arc<AtomicBool>,
    on_batch: impl FnMut(ImportSummary),
) -> anyhow::Result<()> {
    let opts = Options {
        format,
        ..Options::default()
    };
    follow_with(&paths, &db, &opts, &stop, on_batch)
}

/// [`follow`] with every import option.
pub fn follow_with(
    paths: &[PathBuf],
    db: &Path,
    opts: &Options,
    stop: &AtomicBool,
    on_batch: impl FnMut(ImportSummary),
) -> anyhow::Result<()> {
    follow_with_progress(paths, db, None, opts, stop, None, on_batch)
}

/// [`follow_with`], telling `progress` how the first pass (everything new) goes. With `fresh`
/// (the database is not there yet), the first pass fills it aside and gives it its name when
/// done (see [`super::import_to`]).
pub fn follow_with_progress(
    paths: &[PathBuf],
    db_path: &Path,
    fresh: Option<FreshDb>,
    opts: &Options,
    stop: &AtomicBool,
    progress: Option<&dyn super::Progress>,
    mut on_batch: impl FnMut(ImportSummary),
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let watcher = start_watcher(paths, tx);
    let rescan = if watcher.is_some() {
        RESCAN_WITH_WATCHER
    } else {
        RESCAN_POLLING
    };

    let (first, mut db) = match fresh {
        Some(fresh) => {
            let first = import_to_fresh(Some(fresh), db_path, paths, opts, progress)?;
            (first, Writer::open(db_path)?)
        }
        None => {
            let mut db = Writer::open(db_path)?;
            (import_into(&mut db, paths, opts, progress)?, db)
        }
    };
    on_batch(first);
    let mut last_pass = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let woken = match rx.recv_timeout(STOP_CHECK) {
            Ok(()) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            // The watcher is gone: keep going by rescanning.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(STOP_CHECK);
                false
            }
        };
        if !woken && last_pass.elapsed() < rescan {
            continue;
        }
        if woken {
            // Let the writer finish its burst, then take every queued wake-up at once.
            std::thread::sleep(SETTLE);
            while rx.try_recv().is_ok() {}
        }
        last_pass = Instant::now();
        // A path that vanished or a file that cannot be read is reported, not fatal.
        let summary = import_into(&mut db, paths, opts, None).unwrap_or_else(|e| ImportSummary {
            errors: vec![format!("{e:#}")],
            ..ImportSummary::default()
        });
        if summary.is_noteworthy() {
            on_batch(summary);
        }
    }
    drop(watcher);
    Ok(())
}

/// Watch the paths (directories recursively, files through their directory so a replaced
/// file is noticed too). `None` when no watcher can be set up at all.
fn start_watcher(paths: &[PathBuf], tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && !matches!(ev.kind, notify::EventKind::Access(_))
        {
            let _ = tx.send(());
        }
    })
    .ok()?;
    let mut watching = false;
    for p in paths {
        let ok = if p.is_dir() {
            w.watch(p, RecursiveMode::Recursive).is_ok()
        } else {
            let parent = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            w.watch(parent, RecursiveMode::NonRecursive).is_ok()
        };
        watching |= ok;
    }
    watching.then_some(w)
}

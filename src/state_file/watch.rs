//! Following the state file for the TUI.
//!
//! ```no_run
//! use tokmon::state_file::{StateMsg, WatchOptions, watch};
//! let (watcher, rx) = watch("state.json".into(), WatchOptions::default()).unwrap();
//! for msg in rx {
//!     match msg {
//!         StateMsg::Loaded(view) => println!("{} of {:?}", view.used, view.total),
//!         StateMsg::Missing => println!("no state file yet"),
//!         StateMsg::Problem(why) => println!("keeping the last good state: {why}"),
//!     }
//! }
//! drop(watcher); // stops the threads
//! ```
//!
//! How it works:
//! * One worker thread owns every read. It sends a message only when what it would report
//!   changed, and the first message comes right away (the current state).
//! * Native events (`notify` through `notify-debouncer-full`) watch the **parent directory**,
//!   non-recursively, and are filtered by file name, because editors and atomic writers
//!   (tokmon's own `sync` included) replace the file by rename, which a watch on the file
//!   itself would lose. They only wake the worker; the worker decides what changed.
//! * A safety net re-checks the file's size, mtime and inode every few seconds anyway.
//! * Polling (a stat of the one file every `poll_interval`) is used when asked (`--poll`),
//!   when native watching cannot be set up (inotify limits, a parent directory that does not
//!   exist yet), and from the moment the safety net finds a change that no native event
//!   reported (network file systems deliver none). Polling one file's metadata is cheaper than
//!   `notify::PollWatcher`, which would scan the whole directory.
//! * A read that finds a missing, empty or half-written file after a good one looks again
//!   after a short pause before reporting it (a writer may be between truncate and write, or
//!   between delete and create). A [`StateMsg::Problem`] never replaces the last good state:
//!   keep showing the last [`StateMsg::Loaded`] (also available from
//!   [`StateWatcher::last_good`]).
//!
//! To feed an async event loop, use [`watch_with`] and forward from the callback (for example
//! into a `tokio::sync::mpsc::UnboundedSender`); the callback runs on the worker thread.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::{StateError, StateFile, StateView};

/// A message from the watcher.
#[derive(Debug, Clone, PartialEq)]
pub enum StateMsg {
    /// The file was read; these are its numbers.
    Loaded(StateView),
    /// The file does not exist (any more).
    Missing,
    /// The file cannot be read or parsed. The last `Loaded` state is still the one to show.
    Problem(String),
}

/// How the watcher notices changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// File-system events, with a periodic check as a safety net.
    Native,
    /// A stat of the file every `poll_interval`.
    Polling,
}

/// Watcher settings. The defaults suit a TUI.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Always poll (`--poll`), for file systems without change events.
    pub poll: bool,
    /// How long native events are gathered before the file is read.
    pub debounce: Duration,
    /// How often the file is checked when polling.
    pub poll_interval: Duration,
    /// How often the file is checked anyway when native events are used.
    pub safety_interval: Duration,
    /// The pause before a missing or unreadable file (after a good one) is looked at again.
    pub settle: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            poll: false,
            debounce: Duration::from_millis(150),
            poll_interval: Duration::from_millis(500),
            safety_interval: Duration::from_secs(3),
            settle: Duration::from_millis(150),
        }
    }
}

/// A running watcher. Dropping it stops its threads.
pub struct StateWatcher {
    path: PathBuf,
    wake: Sender<Wake>,
    worker: Option<JoinHandle<()>>,
    debouncer: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
    polling: Arc<AtomicBool>,
    last_good: Arc<Mutex<Option<StateView>>>,
}

impl std::fmt::Debug for StateWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateWatcher")
            .field("path", &self.path)
            .field("mode", &self.mode())
            .finish()
    }
}

impl StateWatcher {
    /// The file being watched.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Native events or polling (it can switch to polling while running).
    pub fn mode(&self) -> WatchMode {
        if self.polling.load(Ordering::Relaxed) {
            WatchMode::Polling
        } else {
            WatchMode::Native
        }
    }

    /// The last state that was read successfully.
    pub fn last_good(&self) -> Option<StateView> {
        self.last_good.lock().map(|g| g.clone()).unwrap_or(None)
    }

    /// Ask for a re-read now (for example after the TUI's own sync).
    pub fn refresh(&self) {
        let _ = self.wake.send(Wake::Changed);
    }
}

impl Drop for StateWatcher {
    fn drop(&mut self) {
        // Stop the event source first so nothing wakes the worker while it stops.
        drop(self.debouncer.take());
        let _ = self.wake.send(Wake::Stop);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

enum Wake {
    Changed,
    Stop,
}

/// Watch `path`; messages arrive on the returned channel.
pub fn watch(path: PathBuf, opts: WatchOptions) -> io::Result<(StateWatcher, Receiver<StateMsg>)> {
    let (tx, rx) = mpsc::channel();
    let w = watch_with(path, opts, move |m| {
        let _ = tx.send(m);
    })?;
    Ok((w, rx))
}

/// Watch `path`, calling `on_msg` (on the watcher's own thread) for each message.
pub fn watch_with<F>(path: PathBuf, opts: WatchOptions, on_msg: F) -> io::Result<StateWatcher>
where
    F: FnMut(StateMsg) + Send + 'static,
{
    let (wake_tx, wake_rx) = mpsc::channel();
    let polling = Arc::new(AtomicBool::new(opts.poll));
    let last_good = Arc::new(Mutex::new(None));
    let debouncer = if opts.poll {
        None
    } else {
        match start_native(&path, &opts, wake_tx.clone()) {
            Ok(d) => Some(d),
            Err(why) => {
                tracing::info!(
                    "state file {}: polling, native watch failed: {why}",
                    path.display()
                );
                polling.store(true, Ordering::Relaxed);
                None
            }
        }
    };
    let worker = Worker {
        path: path.clone(),
        opts,
        on_msg,
        polling: polling.clone(),
        last_good: last_good.clone(),
        last_fp: None,
        last_hash: None,
        sent: Sent::Nothing,
    };
    let handle = std::thread::Builder::new()
        .name("tokmon state watch".into())
        .spawn(move || worker.run(wake_rx))?;
    Ok(StateWatcher {
        path,
        wake: wake_tx,
        worker: Some(handle),
        debouncer,
        polling,
        last_good,
    })
}

/// Why native file events cannot be had (the watcher then polls).
#[derive(Debug, thiserror::Error)]
enum NativeWatchError {
    #[error("the path has no file name")]
    NoFileName,
    #[error(transparent)]
    Start(notify::Error),
    #[error("{}: {problem}", dir.display())]
    Dir {
        dir: PathBuf,
        problem: notify::Error,
    },
}

/// Watch the parent directory; wake the worker for events that name the file.
fn start_native(
    path: &Path,
    opts: &WatchOptions,
    wake: Sender<Wake>,
) -> Result<Debouncer<RecommendedWatcher, RecommendedCache>, NativeWatchError> {
    let target = super::write::resolve_symlink(path);
    let name = target
        .file_name()
        .ok_or(NativeWatchError::NoFileName)?
        .to_os_string();
    let dir = super::write::parent_dir(&target);
    let handler = move |res: DebounceEventResult| {
        let relevant = match res {
            Ok(events) => events.iter().any(|e| {
                e.event.need_rescan()
                    || (!is_read_only_access(&e.event.kind)
                        && e.event
                            .paths
                            .iter()
                            .any(|p| p.file_name() == Some(name.as_os_str())))
            }),
            // Lost or overflowing events: look at the file to be sure.
            Err(_) => true,
        };
        if relevant {
            let _ = wake.send(Wake::Changed);
        }
    };
    let tick = (opts.debounce / 2).max(Duration::from_millis(10));
    let mut d =
        new_debouncer(opts.debounce, Some(tick), handler).map_err(NativeWatchError::Start)?;
    d.watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|problem| NativeWatchError::Dir {
            dir: dir.clone(),
            problem,
        })?;
    Ok(d)
}

/// Opening or reading a file (our own reads included) changes nothing.
fn is_read_only_access(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Access(a) if *a != AccessKind::Close(AccessMode::Write))
}

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Fingerprint {
    fn of(m: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let inode = 0;
        Fingerprint {
            len: m.len(),
            modified: m.modified().ok(),
            inode,
        }
    }
}

/// What one look at the file found.
enum Seen {
    /// Same fingerprint as last time (not read).
    Same,
    /// Read, and the bytes are the ones read last time.
    SameBytes(Fingerprint),
    Read {
        fp: Fingerprint,
        hash: u64,
        result: Result<StateView, StateError>,
    },
    Missing,
    Unreadable(String),
}

impl Seen {
    fn is_bad(&self) -> bool {
        matches!(
            self,
            Seen::Missing | Seen::Unreadable(_) | Seen::Read { result: Err(_), .. }
        )
    }
}

/// What was last reported.
#[derive(Debug, PartialEq)]
enum Sent {
    Nothing,
    Loaded(StateView),
    Missing,
    Problem(String),
}

struct Worker<F> {
    path: PathBuf,
    opts: WatchOptions,
    on_msg: F,
    polling: Arc<AtomicBool>,
    last_good: Arc<Mutex<Option<StateView>>>,
    last_fp: Option<Fingerprint>,
    last_hash: Option<u64>,
    sent: Sent,
}

impl<F: FnMut(StateMsg)> Worker<F> {
    fn run(mut self, wake: Receiver<Wake>) {
        self.check(true);
        let mut last_event: Option<Instant> = None;
        loop {
            let polling = self.polling.load(Ordering::Relaxed);
            let wait = if polling {
                self.opts.poll_interval
            } else {
                self.opts.safety_interval
            };
            match wake.recv_timeout(wait) {
                Ok(Wake::Changed) => {
                    // Several wakes may be queued; one read covers them all.
                    loop {
                        match wake.try_recv() {
                            Ok(Wake::Changed) => {}
                            Ok(Wake::Stop) | Err(TryRecvError::Disconnected) => return,
                            Err(TryRecvError::Empty) => break,
                        }
                    }
                    last_event = Some(Instant::now());
                    self.check(true);
                }
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    let changed = self.check(false);
                    if !polling && changed && self.missed_event(last_event) {
                        tracing::info!(
                            "state file {}: a change arrived without a file-system event; polling from now on",
                            self.path.display()
                        );
                        self.polling.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// The safety net found a change that is older than any debounce, and no event came for
    /// it: this file system does not deliver events.
    fn missed_event(&self, last_event: Option<Instant>) -> bool {
        let settled = Duration::from_secs(1) + self.opts.debounce * 2;
        let old_change = self
            .last_fp
            .and_then(|f| f.modified)
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > settled);
        let quiet = last_event.is_none_or(|t| t.elapsed() > settled);
        old_change && quiet
    }

    /// Look at the file and report what changed. `force` reads it even when the fingerprint
    /// is the same (an event said something happened). Returns whether the file changed.
    fn check(&mut self, force: bool) -> bool {
        let mut seen = self.look(force);
        if seen.is_bad() && matches!(self.sent, Sent::Loaded(_)) {
            // A writer may be half-way; look again before reporting it.
            std::thread::sleep(self.opts.settle);
            seen = self.look(true);
        }
        self.report(seen)
    }

    fn look(&self, force: bool) -> Seen {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Seen::Missing,
            Err(e) => return Seen::Unreadable(format!("cannot read {}: {e}", self.path.display())),
        };
        let fp = Fingerprint::of(&meta);
        if !force && self.last_fp == Some(fp) {
            return Seen::Same;
        }
        // Only a regular file is read, and never by blocking on a FIFO.
        let bytes = match StateFile::read_bytes(&self.path) {
            Ok(Some(b)) => b,
            Ok(None) => return Seen::Missing,
            Err(e) => return Seen::Unreadable(e.to_string()),
        };
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        let hash = h.finish();
        if self.last_hash == Some(hash) {
            return Seen::SameBytes(fp);
        }
        let result = StateFile::from_bytes(&self.path, &bytes).map(|f| f.view().clone());
        Seen::Read { fp, hash, result }
    }

    fn report(&mut self, seen: Seen) -> bool {
        match seen {
            Seen::Same => false,
            Seen::SameBytes(fp) => {
                let changed = self.last_fp != Some(fp);
                self.last_fp = Some(fp);
                changed
            }
            Seen::Missing => {
                let changed = self.last_fp.is_some();
                self.last_fp = None;
                self.last_hash = None;
                self.send(Sent::Missing);
                changed
            }
            Seen::Unreadable(why) => {
                self.last_fp = None;
                self.last_hash = None;
                self.send(Sent::Problem(why));
                false
            }
            Seen::Read { fp, hash, result } => {
                self.last_fp = Some(fp);
                self.last_hash = Some(hash);
                match result {
                    Ok(view) => {
                        if let Ok(mut g) = self.last_good.lock() {
                            *g = Some(view.clone());
                        }
                        self.send(Sent::Loaded(view));
                    }
                    Err(why) => self.send(Sent::Problem(why.to_string())),
                }
                true
            }
        }
    }

    /// Deliver a message unless it repeats the last one.
    fn send(&mut self, next: Sent) {
        if next == self.sent {
            return;
        }
        let msg = match &next {
            Sent::Loaded(v) => StateMsg::Loaded(v.clone()),
            Sent::Missing => StateMsg::Missing,
            Sent::Problem(p) => StateMsg::Problem(p.clone()),
            Sent::Nothing => return,
        };
        self.sent = next;
        (self.on_msg)(msg);
    }
}

//! Changing the state file: the advisory lock, the atomic replace, and [`sync`], the one code
//! path that both `tokmon sync` and the TUI's sync dialog use.
//!
//! Order of a sync, chosen so that no failure or kill leaves the state file and its history
//! apart (see [`super::history`]):
//!
//! 1. refuse a state path that is not a regular file (a FIFO, a directory, a device) before
//!    anything is created or locked; nothing is ever opened in a way that could block;
//! 2. take the lock `<state>.lock` beside the path as given (never beside a symlink's target),
//!    so concurrent syncs run one after another;
//! 3. remove temporaries left by killed syncs; read and parse the state file (a file that does
//!    not parse is never overwritten); settle the outcome of a sync that was killed, from what
//!    the state file shows;
//! 4. with SIGTERM, SIGINT, SIGHUP and SIGQUIT held back: append the sync to the history and
//!    sync it to disk; write the state file atomically (temporary file in the same directory,
//!    flushed, synced, renamed over the original with the original's permissions); append
//!    "done" (or "undone" when the write failed). A held-back signal takes effect after that,
//!    so a sync that has begun to write finishes;
//! 5. release the lock.
//!
//! A kill -9 at any point leaves either nothing, or a history record without an outcome that
//! every reader decides from the state file and the next sync writes down.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::bad_input;
use crate::timefmt::Zone;

use super::history::{Appender, HistoryRecord, Journal, Outcome, holds};
use super::value::{SyncPlan, plan};
use super::{
    DEFAULT_EVENT, DEFAULT_RESET_EVENT, DEFAULT_SESSION_CAP, DEFAULT_TOTAL, SYNC_KIND, StateFile,
    StateView,
};

/// How long a sync waits for another sync's lock before giving up.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a sync needs. Build it with [`SyncRequest::new`] and set what differs.
#[derive(Debug, Clone)]
pub struct SyncRequest<'a> {
    pub state_path: &'a Path,
    /// The new cumulative value (already parsed, see [`super::parse_sync_value`]).
    pub value: u64,
    /// The session's `event` text; without it, [`DEFAULT_EVENT`].
    pub note: Option<&'a str>,
    /// A new quota total.
    pub total: Option<u64>,
    /// The total written when the file (or its `total`) does not exist yet.
    pub default_total: u64,
    /// How many `sessions` entries the file keeps.
    pub session_cap: usize,
    /// Zone of the session `timestamp` and of `last_updated`.
    pub zone: Zone,
    /// The time of the sync; `None` reads the clock once the lock is held, so that the order
    /// of times matches the order in which concurrent syncs were applied.
    pub now: Option<DateTime<Utc>>,
}

impl<'a> SyncRequest<'a> {
    pub fn new(state_path: &'a Path, value: u64) -> Self {
        SyncRequest {
            state_path,
            value,
            note: None,
            total: None,
            default_total: DEFAULT_TOTAL,
            session_cap: DEFAULT_SESSION_CAP,
            zone: Zone::Local,
            now: None,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOutcome {
    pub plan: SyncPlan,
    /// The state file did not exist and was created.
    pub created: bool,
    /// The state file was written (false when the value equalled `used` and nothing else
    /// changed).
    pub written: bool,
    /// A session entry and a history record were added (false when the value equalled `used`).
    pub recorded: bool,
    /// The state after the sync.
    pub view: StateView,
    /// The file that was written (the target when the state path is a symlink).
    pub state_path: PathBuf,
    pub at: DateTime<Utc>,
}

/// Apply a manual sync: see the module documentation for the order of operations.
///
/// Errors: [`crate::error::BadInput`] (exit 2) for a zero total or a state path that is not a
/// regular file, before anything is written; any other error (exit 1) leaves the state file
/// and its history as they were.
pub fn sync(req: &SyncRequest<'_>) -> anyhow::Result<SyncOutcome> {
    if req.total == Some(0) {
        return Err(bad_input(
            "a quota total of 0 is not allowed: give the number of tokens the quota holds",
        ));
    }
    if let Err(e) = super::read::ensure_regular_or_missing(req.state_path) {
        return Err(super::StateError::of_read(req.state_path, e).into_anyhow());
    }
    let target = resolve_symlink(req.state_path);
    for dir in [parent_dir(req.state_path), parent_dir(&target)] {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let _lock = StateLock::acquire(req.state_path, LOCK_TIMEOUT)?;
    remove_stale_temporaries(&target);

    let existing = StateFile::load(&target).map_err(|e| {
        let not_overwritten = e.kind == super::StateErrorKind::Invalid;
        let err = e.into_anyhow();
        if not_overwritten {
            err.context(
                "tokmon does not overwrite a state file it cannot read: fix it or move it away, then sync again",
            )
        } else {
            err
        }
    })?;
    let journal = Journal::read(&target)?;
    settle_open_syncs(&target, &journal, existing.as_ref())?;

    let mut at = req.now.unwrap_or_else(Utc::now);
    // Every sync of a file has its own millisecond, so its id is unique.
    // (A time past year 9999 in a damaged history is not followed.)
    if let Some(last) = journal
        .last_at_ms()
        .filter(|l| *l >= at.timestamp_millis() && *l < crate::timefmt::MAX_MS)
    {
        at = crate::timefmt::from_ms(last.saturating_add(1));
    }
    let created = existing.is_none();
    let mut file = existing.unwrap_or_else(|| StateFile::new(req.default_total));
    let old_total = file.view().total;
    let new_total = req.total.or(if old_total.is_none() {
        Some(req.default_total)
    } else {
        None
    });
    let plan = plan(file.view(), req.value, new_total);
    let total_changed = plan.total != old_total;
    let recorded = !plan.unchanged;
    let written = recorded || created || total_changed;
    if !written {
        return Ok(SyncOutcome {
            view: file.view().clone(),
            plan,
            created,
            written,
            recorded,
            state_path: target,
            at,
        });
    }

    let local = req.zone.to_local(at);
    let note = req
        .note
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let id = format!("manual-sync-{}", at.timestamp_millis());
    let entry = recorded.then(|| {
        let event = note.as_deref().unwrap_or(if plan.reset {
            DEFAULT_RESET_EVENT
        } else {
            DEFAULT_EVENT
        });
        let mut e = Map::new();
        e.insert(
            "timestamp".into(),
            Value::from(local.format("%Y-%m-%d %H:%M:%S").to_string()),
        );
        e.insert("tokens".into(), Value::from(plan.increment));
        e.insert("event".into(), Value::from(event));
        e.insert("conversation_id".into(), Value::from(id.clone()));
        e.insert("method".into(), Value::from(SYNC_KIND));
        e.insert("sync_type".into(), Value::from(SYNC_KIND));
        e
    });
    let last_updated = local.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    file.apply(&plan, entry, last_updated.clone(), req.session_cap);

    // From here on a SIGTERM waits until both records are written.
    let _hold = HoldSignals::new();
    if !recorded {
        write_atomic(&target, &file.to_bytes())?;
    } else {
        let mut history = Appender::open(&target)?;
        history.record(&HistoryRecord {
            id: id.clone(),
            at_ms: at.timestamp_millis(),
            value: plan.value,
            increment: plan.increment,
            note,
            method: SYNC_KIND.into(),
            last_updated,
        })?;
        if let Err(e) = write_atomic(&target, &file.to_bytes()) {
            // The state file is as it was: say so in the history too. Should this fail as
            // well, readers still find the state file without the sync and agree.
            let _ = history.outcome(&id, false);
            return Err(e);
        }
        history.outcome(&id, true)?;
    }
    Ok(SyncOutcome {
        view: file.view().clone(),
        plan,
        created,
        written,
        recorded,
        state_path: target,
        at,
    })
}

/// Write down what became of syncs that were killed before their outcome was written, as
/// the state file shows it.
fn settle_open_syncs(
    target: &Path,
    journal: &Journal,
    state: Option<&StateFile>,
) -> anyhow::Result<()> {
    let open: Vec<&HistoryRecord> = journal
        .records
        .iter()
        .filter(|(_, o)| *o == Outcome::Open)
        .map(|(r, _)| r)
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    let mut history = Appender::open(target)?;
    for r in open {
        history.outcome(&r.id, holds(state, r))?;
    }
    Ok(())
}

/// Remove the temporaries (`.<name>.XXXXXX.tmp`) that killed syncs left beside `target`.
/// Called under the lock, so no running sync of this file owns one.
fn remove_stale_temporaries(target: &Path) {
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(parent_dir(target)) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let n = file_name.to_string_lossy();
        let is_ours = n.strip_prefix(&prefix).is_some_and(|rest| {
            rest.strip_suffix(".tmp").is_some_and(|mid| {
                !mid.is_empty() && mid.chars().all(|c| c.is_ascii_alphanumeric())
            })
        });
        if is_ours && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Holds back SIGTERM, SIGINT, SIGHUP and SIGQUIT on this thread while alive; a signal that
/// came meanwhile takes effect when it is dropped.
struct HoldSignals {
    #[cfg(unix)]
    old: Option<libc::sigset_t>,
}

impl HoldSignals {
    #[cfg(unix)]
    fn new() -> HoldSignals {
        // SAFETY: sigset_t is plain data; the calls only fill it and change this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
                libc::sigaddset(&mut set, s);
            }
            let ok = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) == 0;
            HoldSignals {
                old: ok.then_some(old),
            }
        }
    }

    #[cfg(not(unix))]
    fn new() -> HoldSignals {
        HoldSignals {}
    }
}

impl Drop for HoldSignals {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(old) = self.old {
            // SAFETY: restores the mask saved in `new`.
            unsafe {
                libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            }
        }
    }
}

pub(crate) use super::{parent_dir, resolve_symlink, sidecar};

/// The sidecar lock file of a state file: `<state>.lock` beside the path as given. For a
/// symlink that is beside the link, never beside the file it points at.
pub fn lock_path(state: &Path) -> PathBuf {
    sidecar(state, ".lock")
}

/// An exclusive advisory lock on `<state>.lock`, released on drop. The lock file itself is left
/// in place: removing it would let a waiting process lock a file that is already unlinked.
#[derive(Debug)]
pub struct StateLock {
    file: File,
}

impl StateLock {
    /// Wait for the lock, up to `timeout`.
    pub fn acquire(state: &Path, timeout: Duration) -> anyhow::Result<StateLock> {
        let path = lock_path(state);
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(false).read(true).write(true);
        #[cfg(unix)]
        {
            // Never through a symlink, never blocking on a FIFO planted under that name.
            use std::os::unix::fs::OpenOptionsExt;
            opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
        }
        let file = opts
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        if let Ok(m) = file.metadata().map(|m| (m.is_file(), m))
            && !m.0
        {
            return Err(bad_input(format!(
                "lock file {} is {}, not a regular file: move it away",
                path.display(),
                crate::regular::kind_of(&m.1)
            )));
        }
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StateLock { file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(25));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(anyhow!(
                        "another sync has held {} for more than {} s; try again",
                        path.display(),
                        timeout.as_secs()
                    ));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(anyhow!(e).context(format!("cannot lock {}", path.display())));
                }
            }
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Replace `target` with `bytes` atomically: a temporary file in the same directory, written,
/// flushed and synced, given the original's permissions, then renamed over the original.
/// Readers see the old file or the new one, never a part.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = parent_dir(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let old_perms = std::fs::metadata(target).ok().map(|m| m.permissions());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    if old_perms.is_none() {
        // A new file gets the usual permissions (the umask still applies), not 0600.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let context = || format!("cannot write {}", tmp_name(&dir));
    tmp.write_all(bytes).with_context(context)?;
    tmp.flush().with_context(context)?;
    if let Some(p) = old_perms {
        tmp.as_file().set_permissions(p).with_context(context)?;
    }
    tmp.as_file().sync_all().with_context(context)?;
    tmp.persist(target)
        .map_err(|e| anyhow!(e.error))
        .with_context(|| format!("cannot replace {}", target.display()))?;
    // Make the rename itself durable; not every file system supports syncing a directory.
    #[cfg(unix)]
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn tmp_name(dir: &Path) -> String {
    format!("a temporary file in {}", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_path_is_a_sibling() {
        assert_eq!(
            lock_path(Path::new("/a/b/state.json")),
            Path::new("/a/b/state.json.lock")
        );
        assert_eq!(lock_path(Path::new("s.json")), Path::new("s.json.lock"));
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let held = StateLock::acquire(&state, LOCK_TIMEOUT).unwrap();
        let err = StateLock::acquire(&state, Duration::from_millis(30)).unwrap_err();
        assert!(err.to_string().contains("s.json.lock"), "{err}");
        drop(held);
        StateLock::acquire(&state, Duration::from_millis(30)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_permissions_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(&p, "{}").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"{\"a\": 1}\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"a\": 1}\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("s.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn sync_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut req = SyncRequest::new(&link, 10);
        req.now = Some(crate::timefmt::from_ms(1_763_473_191_578));
        req.zone = Zone::UTC;
        let out = sync(&req).unwrap();
        assert!(out.created && out.recorded);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let f = StateFile::load(&real).unwrap().unwrap();
        assert_eq!(f.view().used, 10);
        let s = &f.document()["token_usage"]["sessions"][0];
        assert_eq!(s["timestamp"], "2025-11-18 13:39:51");
        assert_eq!(s["conversation_id"], "manual-sync-1763473191578");
        assert_eq!(f.document()["last_updated"], "2025-11-18T13:39:51.578000");
    }

    /// #16 item 12: the lock lives beside the path given, never beside a link's target, even
    /// when the target is refused.
    #[cfg(unix)]
    #[test]
    fn the_lock_is_never_created_beside_a_symlink_target() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("etc");
        std::fs::create_dir(&elsewhere).unwrap();
        let passwd = elsewhere.join("passwd");
        std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\n").unwrap();
        let link = dir.path().join("state.json");
        std::os::unix::fs::symlink(&passwd, &link).unwrap();
        let err = sync(&SyncRequest::new(&link, 10)).unwrap_err();
        assert!(format!("{err:#}").contains("not overwrite"), "{err:#}");
        let beside_target: Vec<_> = std::fs::read_dir(&elsewhere)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside_target, [std::ffi::OsString::from("passwd")]);
        assert!(dir.path().join("state.json.lock").exists());
        // A valid target through a link: its lock is still beside the link.
        let real = elsewhere.join("real.json");
        let link2 = dir.path().join("two.json");
        std::os::unix::fs::symlink(&real, &link2).unwrap();
        sync(&SyncRequest::new(&link2, 10)).unwrap();
        assert!(dir.path().join("two.json.lock").exists());
        assert!(!elsewhere.join("real.json.lock").exists());
    }

    /// #16 item 9: temporaries of killed syncs go; a sync killed after its history record
    /// (the state file never replaced) is written down as undone, and the next sync counts
    /// from the state file.
    #[test]
    fn a_killed_sync_is_settled_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let mut req = SyncRequest::new(&state, 100);
        req.zone = Zone::UTC;
        sync(&req).unwrap();
        // What a kill -9 between the history record and the rename leaves behind.
        let stale = dir.path().join(".s.json.AbC123.tmp");
        std::fs::write(&stale, "{").unwrap();
        let mut h = Appender::open(&state).unwrap();
        h.record(&HistoryRecord {
            id: "manual-sync-9999999999999".into(),
            at_ms: 9_999_999_999_999,
            value: 500,
            increment: 400,
            note: None,
            method: "manual".into(),
            last_updated: "never".into(),
        })
        .unwrap();
        drop(h);
        let (rows, _) = super::super::history::history_of(&state).unwrap();
        assert_eq!(rows.len(), 1, "readers do not count the killed sync");
        req.value = 300;
        let out = sync(&req).unwrap();
        assert_eq!(out.plan.increment, 200);
        assert!(!stale.exists());
        let j = Journal::read(&state).unwrap();
        let outcomes: Vec<_> = j.records.iter().map(|(r, o)| (r.value, *o)).collect();
        assert_eq!(
            outcomes,
            [
                (100, Outcome::Done),
                (500, Outcome::Undone),
                (300, Outcome::Done)
            ]
        );
        // Its time came after the killed one's, so ids stay unique and ordered.
        assert!(out.at.timestamp_millis() > 9_999_999_999_999);
        // A damaged history with an absurd time is not followed into a panic.
        let mut h = Appender::open(&state).unwrap();
        h.record(&HistoryRecord {
            id: "x".into(),
            at_ms: i64::MAX,
            value: 1,
            increment: 1,
            note: None,
            method: "manual".into(),
            last_updated: "never".into(),
        })
        .unwrap();
        drop(h);
        req.value = 400;
        req.zone = Zone::Local;
        assert_eq!(sync(&req).unwrap().plan.increment, 100);
    }
}

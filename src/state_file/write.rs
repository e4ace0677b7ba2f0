//! Changing the state file: the advisory lock, the atomic replace, and [`sync`], the one code
//! path that both `tokmon sync` and the TUI's sync dialog use.
//!
//! Order of a sync, chosen so that no failure loses a sync or leaves the two records apart:
//!
//! 1. refuse a foreign `--db` (exit 2) before anything is created;
//! 2. take the lock `<state>.lock` (same directory) so concurrent syncs run one after another;
//! 3. read and parse the state file under the lock; a file that does not parse is never
//!    overwritten;
//! 4. open the native database, start an IMMEDIATE transaction (the database write lock is
//!    taken now, so the commit in step 6 cannot be refused for a busy database) and insert the
//!    history row;
//! 5. write the state file atomically (temporary file in the same directory, flushed, synced,
//!    renamed over the original with the original's permissions);
//! 6. commit the history row, release the lock.
//!
//! Any failure before step 5's rename rolls the history row back: nothing changed anywhere.
//! The only window left is a failed commit after the rename (an I/O error on the database),
//! which is reported as such. The other order (commit first, then rename) would instead leave
//! a history row for a sync that the state file never saw, and repeating the sync would
//! record it twice; a missing row after an explicit error is the smaller harm.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;
use serde_json::{Map, Value};

use crate::error::bad_input;
use crate::store::native::{self, SyncRecord};
use crate::timefmt::Zone;

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
    /// The native database that keeps the sync history.
    pub db_path: &'a Path,
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
    pub fn new(state_path: &'a Path, db_path: &'a Path, value: u64) -> Self {
        SyncRequest {
            state_path,
            db_path,
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
    /// A session entry and a history row were added (false when the value equalled `used`).
    pub recorded: bool,
    /// The state after the sync.
    pub view: StateView,
    /// The file that was written (the target when the state path is a symlink).
    pub state_path: PathBuf,
    pub at: DateTime<Utc>,
}

/// Apply a manual sync: see the module documentation for the order of operations.
///
/// Errors: [`crate::error::BadInput`] (exit 2) for a zero total or a foreign database, before
/// anything is written; any other error (exit 1) leaves the state file as it was, except for a
/// failed history commit after the file was replaced, which the message says.
pub fn sync(req: &SyncRequest<'_>) -> anyhow::Result<SyncOutcome> {
    if req.total == Some(0) {
        return Err(bad_input(
            "a quota total of 0 is not allowed: give the number of tokens the quota holds",
        ));
    }
    ensure_native_db(req.db_path)?;
    let target = resolve_symlink(req.state_path);
    let dir = parent_dir(&target);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let _lock = StateLock::acquire(&target, LOCK_TIMEOUT)?;
    let at = req.now.unwrap_or_else(Utc::now);

    let existing = StateFile::load(&target).map_err(|e| {
        anyhow!(
            "{e}. tokmon does not overwrite a state file it cannot read: fix it or move it away, then sync again"
        )
    })?;
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
    let entry = recorded.then(|| {
        let event = req
            .note
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(if plan.reset {
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
        e.insert(
            "conversation_id".into(),
            Value::from(format!("manual-sync-{}", at.timestamp_millis())),
        );
        e.insert("method".into(), Value::from(SYNC_KIND));
        e.insert("sync_type".into(), Value::from(SYNC_KIND));
        e
    });
    let last_updated = local.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    file.apply(&plan, entry, last_updated, req.session_cap);

    if !recorded {
        write_atomic(&target, &file.to_bytes())?;
    } else {
        let mut conn = native::open_rw(req.db_path)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .with_context(|| {
                format!("cannot start a write on database {}", req.db_path.display())
            })?;
        native::append_sync(
            &tx,
            &SyncRecord {
                at_ms: at.timestamp_millis(),
                value: plan.value,
                increment: plan.increment,
                note: req
                    .note
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string),
                method: SYNC_KIND.into(),
                state_path: Some(target.display().to_string()),
            },
        )
        .with_context(|| {
            format!(
                "cannot add the sync to the history in {}",
                req.db_path.display()
            )
        })?;
        write_atomic(&target, &file.to_bytes())?;
        tx.commit().with_context(|| {
            format!(
                "the state file {} was updated, but the sync could not be added to the history in {}",
                target.display(),
                req.db_path.display()
            )
        })?;
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

/// Refuse a database written by another tool before anything is created or locked.
fn ensure_native_db(db: &Path) -> anyhow::Result<()> {
    if !db.exists() {
        return Ok(());
    }
    if let Some(kind) = crate::store::detect_path(db)?.filter(|k| !k.is_native()) {
        return Err(bad_input(format!(
            "{} is a {} database written by another tool; tokmon keeps its sync history only in \
             its own database. Pass --db with a new or tokmon-made file.",
            db.display(),
            kind.label()
        )));
    }
    Ok(())
}

/// Writes go to the file a symlink points at, so the link survives.
pub(crate) fn resolve_symlink(path: &Path) -> PathBuf {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return path.to_path_buf();
    }
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    // A dangling link: follow one level.
    match std::fs::read_link(path) {
        Ok(t) if t.is_absolute() => t,
        Ok(t) => parent_dir(path).join(t),
        Err(_) => path.to_path_buf(),
    }
}

pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The sidecar lock file of a state file: `<state>.lock` in the same directory.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    state.with_file_name(name)
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
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
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
        let db = dir.path().join("t.db");
        let mut req = SyncRequest::new(&link, &db, 10);
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
}

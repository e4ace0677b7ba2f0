//! The sync history of a state file: `<state file>.history.jsonl`, beside the state file
//! (beside the file a symlink points at, since it is that file's history). It is found from
//! the state file alone, so it never depends on `--db`, and two state files never share one.
//!
//! One JSON object per line, only ever appended:
//! * a sync: `{"id", "at_ms", "value", "increment", "note", "method", "last_updated"}`, written
//!   and synced to disk **before** the state file is replaced;
//! * its outcome, written after: `{"done": id}` once the state file holds it, or
//!   `{"undone": id}` when the state file never got it.
//!
//! A sync killed between the two writes leaves a record without an outcome. Readers decide it
//! from the state file itself: the sync happened when the state file carries its session
//! (`conversation_id` = id) or its `last_updated`; otherwise it did not. The next sync writes
//! that decision down, so the state file and the history always agree. A torn last line (a
//! crash in the middle of an append) is ignored.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value, json};

use super::StateFile;
use super::read::{MAX_STATE_BYTES, ReadError, read_regular};
use crate::error::bad_input;

/// One sync, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    /// The session's `conversation_id` in the state file.
    pub id: String,
    pub at_ms: i64,
    pub value: u64,
    pub increment: u64,
    pub note: Option<String>,
    pub method: String,
    /// The `last_updated` the sync wrote into the state file.
    pub last_updated: String,
}

/// What became of a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Undone,
    /// No outcome written (the sync was killed, or is running now).
    Open,
}

/// The whole history file, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub records: Vec<(HistoryRecord, Outcome)>,
    /// Lines that could not be read (a torn last line is not counted).
    pub unreadable: usize,
    /// The file does not end with a newline (a torn last line).
    pub torn: bool,
}

/// The history file of a state file (give the real file, not a symlink to it).
pub fn history_path(target: &Path) -> PathBuf {
    super::sidecar(target, ".history.jsonl")
}

fn record_of(o: &Map<String, Value>) -> Option<HistoryRecord> {
    Some(HistoryRecord {
        id: o.get("id")?.as_str()?.to_string(),
        at_ms: o.get("at_ms")?.as_i64()?,
        value: o.get("value")?.as_u64()?,
        increment: o.get("increment")?.as_u64()?,
        note: o.get("note").and_then(Value::as_str).map(str::to_string),
        method: o
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or(super::SYNC_KIND)
            .to_string(),
        last_updated: o
            .get("last_updated")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

impl Journal {
    /// Parse the bytes of a history file.
    pub fn parse(bytes: &[u8]) -> Journal {
        let mut j = Journal {
            torn: !bytes.is_empty() && !bytes.ends_with(b"\n"),
            ..Journal::default()
        };
        let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        let last = lines.len().saturating_sub(1);
        for (i, line) in lines.iter().enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let obj = match serde_json::from_slice::<Value>(line) {
                Ok(Value::Object(o)) => o,
                _ => {
                    if !(i == last && j.torn) {
                        j.unreadable += 1;
                    }
                    continue;
                }
            };
            let outcome = |key: &str, to: Outcome, j: &mut Journal| {
                let Some(id) = obj.get(key).and_then(Value::as_str) else {
                    return false;
                };
                if let Some(r) = j.records.iter_mut().rev().find(|(r, _)| r.id == id) {
                    r.1 = to;
                }
                true
            };
            if outcome("done", Outcome::Done, &mut j) || outcome("undone", Outcome::Undone, &mut j)
            {
                continue;
            }
            match record_of(&obj) {
                Some(r) => j.records.push((r, Outcome::Open)),
                None => j.unreadable += 1,
            }
        }
        j
    }

    /// Read the history of the state file `target`; empty when there is none yet. Only a
    /// regular file is read.
    pub fn read(target: &Path) -> anyhow::Result<Journal> {
        let path = history_path(target);
        match read_regular(&path, MAX_STATE_BYTES) {
            Ok(Some(bytes)) => Ok(Journal::parse(&bytes)),
            Ok(None) => Ok(Journal::default()),
            Err(e) => Err(read_error(&path, e)),
        }
    }

    /// The syncs that happened, newest first: those marked done, and those without an
    /// outcome that `state` shows it holds.
    pub fn entries(&self, state: Option<&StateFile>) -> Vec<HistoryRecord> {
        self.records
            .iter()
            .rev()
            .filter(|(r, o)| match o {
                Outcome::Done => true,
                Outcome::Undone => false,
                Outcome::Open => holds(state, r),
            })
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// The time of the latest sync written here, done or not.
    pub fn last_at_ms(&self) -> Option<i64> {
        self.records.iter().map(|(r, _)| r.at_ms).max()
    }
}

fn read_error(path: &Path, e: ReadError) -> anyhow::Error {
    match e {
        ReadError::NotRegular(what) => bad_input(format!(
            "sync history {} is {what}, not a regular file: move it away",
            path.display()
        )),
        ReadError::TooLarge(n) => bad_input(format!(
            "sync history {} is {n} bytes, larger than the {} MB tokmon reads: move it away",
            path.display(),
            MAX_STATE_BYTES / (1024 * 1024)
        )),
        ReadError::Io(e) => {
            anyhow::Error::new(e).context(format!("cannot read sync history {}", path.display()))
        }
    }
}

/// Whether the state file shows that the sync `r` reached it.
pub fn holds(state: Option<&StateFile>, r: &HistoryRecord) -> bool {
    let Some(state) = state else {
        return false;
    };
    if !r.last_updated.is_empty() && state.view().last_updated.as_deref() == Some(&r.last_updated) {
        return true;
    }
    state
        .sessions()
        .iter()
        .any(|s| s.id.as_deref() == Some(r.id.as_str()))
}

/// The syncs of the state file at `state_path` (a symlink is followed), newest first.
/// A state file that cannot be parsed counts as holding none of the syncs without an outcome.
pub fn history_of(state_path: &Path) -> anyhow::Result<(Vec<HistoryRecord>, Journal)> {
    let target = super::resolve_symlink(state_path);
    let journal = Journal::read(&target)?;
    let state = match StateFile::load(&target) {
        Ok(s) => s,
        Err(e) if e.kind == super::StateErrorKind::Invalid => None,
        Err(e) => return Err(e.into_anyhow()),
    };
    Ok((journal.entries(state.as_ref()), journal))
}

/// One manual sync: when, and how many tokens it added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPoint {
    pub at: chrono::DateTime<chrono::Utc>,
    pub increment: u64,
}

/// The last `limit` syncs of a state file as burn-rate points, newest first; empty when the
/// history cannot be read (it only lends the quota a burn rate).
pub fn sync_points(state_path: &Path, limit: usize) -> Vec<SyncPoint> {
    match history_of(state_path) {
        Ok((rows, _)) => rows
            .into_iter()
            .take(limit)
            .map(|r| SyncPoint {
                at: crate::timefmt::from_ms(r.at_ms),
                increment: r.increment,
            })
            .collect(),
        Err(e) => {
            tracing::warn!("quota sync history: {e:#}");
            Vec::new()
        }
    }
}

/// An open history file, for appending (under the state file's lock).
pub(crate) struct Appender {
    file: File,
    path: PathBuf,
    /// A newline is owed before the next line (the file ends in a torn line).
    owe_newline: bool,
}

impl Appender {
    /// Open (creating) the history of `target`. Refuses a symlink, a FIFO or a device.
    pub(crate) fn open(target: &Path) -> anyhow::Result<Appender> {
        let path = history_path(target);
        let mut opts = OpenOptions::new();
        opts.append(true).create(true).read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY);
            opts.mode(0o666);
        }
        if let Err(e) = super::read::ensure_regular_or_missing(&path) {
            return Err(read_error(&path, e));
        }
        let file = opts
            .open(&path)
            .with_context(|| format!("cannot open sync history {}", path.display()))?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(read_error(
                &path,
                ReadError::NotRegular(crate::regular::kind_of(&meta)),
            ));
        }
        let owe_newline = meta.len() > 0 && last_byte(&file, meta.len()) != Some(b'\n');
        Ok(Appender {
            file,
            path,
            owe_newline,
        })
    }

    fn append(&mut self, line: &Value, durable: bool) -> anyhow::Result<()> {
        let mut buf = Vec::new();
        if self.owe_newline {
            buf.push(b'\n');
        }
        serde_json::to_writer(&mut buf, line)?;
        buf.push(b'\n');
        let context = || format!("cannot write sync history {}", self.path.display());
        self.file.write_all(&buf).with_context(context)?;
        self.owe_newline = false;
        if durable {
            self.file.sync_data().with_context(context)?;
        }
        Ok(())
    }

    /// Write a sync before the state file is replaced, synced to disk.
    pub(crate) fn record(&mut self, r: &HistoryRecord) -> anyhow::Result<()> {
        self.append(
            &json!({
                "id": r.id,
                "at_ms": r.at_ms,
                "value": r.value,
                "increment": r.increment,
                "note": r.note,
                "method": r.method,
                "last_updated": r.last_updated,
            }),
            true,
        )
    }

    /// Write what became of a sync. Not synced: if it is lost, readers decide it again
    /// from the state file, with the same answer.
    pub(crate) fn outcome(&mut self, id: &str, done: bool) -> anyhow::Result<()> {
        let key = if done { "done" } else { "undone" };
        self.append(&json!({ key: id }), false)
    }
}

#[cfg(unix)]
fn last_byte(file: &File, len: u64) -> Option<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, len - 1).ok().map(|()| b[0])
}

#[cfg(not(unix))]
fn last_byte(_file: &File, _len: u64) -> Option<u8> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, value: u64) -> String {
        format!(
            r#"{{"id":"{id}","at_ms":1,"value":{value},"increment":{value},"note":null,"method":"manual","last_updated":"lu-{id}"}}"#
        )
    }

    #[test]
    fn outcomes_and_torn_lines() {
        let text = format!(
            "{}\n{{\"done\":\"a\"}}\n{}\n{{\"undone\":\"b\"}}\n{}\n{{\"do",
            rec("a", 1),
            rec("b", 2),
            rec("c", 3)
        );
        let j = Journal::parse(text.as_bytes());
        assert!(j.torn);
        assert_eq!(j.unreadable, 0);
        let outcomes: Vec<_> = j.records.iter().map(|(r, o)| (r.id.as_str(), *o)).collect();
        assert_eq!(
            outcomes,
            [
                ("a", Outcome::Done),
                ("b", Outcome::Undone),
                ("c", Outcome::Open)
            ]
        );
        // Without a state file that holds it, the open sync did not happen.
        let ids: Vec<_> = j.entries(None).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["a"]);
        let state = StateFile::from_bytes(
            Path::new("s.json"),
            br#"{"token_usage": {"used": 3}, "last_updated": "lu-c"}"#,
        )
        .unwrap();
        let ids: Vec<_> = j.entries(Some(&state)).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["c", "a"]);
        let j = Journal::parse(b"garbage\n");
        assert_eq!((j.unreadable, j.torn), (1, false));
    }

    #[test]
    fn appends_after_a_torn_line_start_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("s.json");
        std::fs::write(history_path(&target), rec("a", 1) + "\n{\"do").unwrap();
        let mut a = Appender::open(&target).unwrap();
        a.outcome("a", true).unwrap();
        let j = Journal::read(&target).unwrap();
        assert_eq!(j.records[0].1, Outcome::Done);
        assert_eq!((j.unreadable, j.torn), (1, false));
    }
}

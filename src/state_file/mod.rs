//! The JSON quota state file: a counter of used tokens against a total, with a capped list of
//! recent sessions, shared with other tools that keep their own keys in the same file.
//!
//! * Reading is tolerant ([`StateFile::load`]): missing `percentage`, `last_updated` or
//!   `sessions`; numbers written as integers or floats; session entries of any shape. The stored
//!   percentage is never used; it is recomputed from `used` and `total`. A file that is not
//!   valid JSON is an error naming the file, line and column ([`StateError`]).
//! * tokmon owns `token_usage.used`, `token_usage.total`, `token_usage.percentage`,
//!   `token_usage.sessions` and the top-level `last_updated`. Every other key, and the order of
//!   all keys, is kept as it was.
//! * Writing goes through [`sync`]: an advisory lock, an atomic replace, and a row in the
//!   native database's sync history. The TUI calls the same function.
//! * [`watch`] follows the file for the TUI.

pub mod history;
pub mod read;
pub mod value;
pub mod watch;
pub mod write;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::domain::Level;

pub use value::{SyncPlan, format_count, parse_sync_value, plan, preview};
pub use watch::{StateMsg, StateWatcher, WatchMode, WatchOptions, watch, watch_with};
pub use write::{SyncOutcome, SyncRequest, sync};

/// The quota total written when `sync` creates a state file and no total is configured.
pub const DEFAULT_TOTAL: u64 = 1_000_000;
/// How many entries `sessions` keeps unless configured otherwise.
pub const DEFAULT_SESSION_CAP: usize = 100;
/// The `event` text of a sync without `--note`.
pub const DEFAULT_EVENT: &str = "manual sync";
/// The `event` text of a sync without `--note` whose value was below `used`.
pub const DEFAULT_RESET_EVENT: &str = "manual sync (counter reset)";
/// The sync kind written under `method` and `sync_type`, and kept in the history.
pub const SYNC_KIND: &str = "manual";

/// The `status.text` of a state file that tokmon creates: the dashboard's own default, so a
/// file made by either tool has the same shape (formats.md §5).
pub const DEFAULT_STATUS_TEXT: &str = "工作中";

/// How deeply arrays and objects may nest in a state file. Real files nest three or four
/// levels; the bound keeps parsing (which recurses) far from any thread's stack limit.
pub const MAX_DEPTH: usize = 512;

/// Why a state file could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateErrorKind {
    /// An I/O error while reading it.
    Unreadable,
    /// Not a regular file (a FIFO, a directory, a device…): bad input, exit 2.
    NotRegular,
    /// Larger than [`read::MAX_STATE_BYTES`]: bad input, exit 2.
    TooLarge,
    /// Not UTF-8, not JSON, or JSON of the wrong shape.
    Invalid,
}

/// A state file that cannot be read or understood. The message names the file and, for JSON
/// syntax errors, the line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state file {}: {message}{}", path.display(), at_line(*line, *column))]
pub struct StateError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub kind: StateErrorKind,
}

impl StateError {
    /// As an error for a command: a path that is not a regular file, or a file that is far
    /// too large, is bad input (exit 2); the rest are failures (exit 1).
    pub fn into_anyhow(self) -> anyhow::Error {
        match self.kind {
            StateErrorKind::NotRegular | StateErrorKind::TooLarge => {
                crate::error::bad_input(self.to_string())
            }
            _ => anyhow::Error::new(self),
        }
    }

    fn of_read(path: &Path, e: read::ReadError) -> StateError {
        let (kind, message) = match e {
            read::ReadError::NotRegular(what) => (
                StateErrorKind::NotRegular,
                format!("is {what}, not a regular file: give the path of a JSON file"),
            ),
            read::ReadError::TooLarge(n) => (
                StateErrorKind::TooLarge,
                format!(
                    "is {n} bytes, larger than the {} MB a state file may have",
                    read::MAX_STATE_BYTES / (1024 * 1024)
                ),
            ),
            read::ReadError::Io(e) => (StateErrorKind::Unreadable, format!("cannot read it: {e}")),
        };
        StateError {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message,
            kind,
        }
    }
}

/// ` at line 3, column 7` when both are known.
fn at_line(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    }
}

/// The numbers of a state file, as tokmon shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateView {
    pub used: u64,
    /// The quota; `None` when the file has none.
    pub total: Option<u64>,
    /// `used / total` in percent, two decimals; `None` without a positive total.
    pub percentage: Option<f64>,
    /// `total - used`, never below zero; `None` without a total.
    pub remaining: Option<u64>,
    /// How many entries `sessions` holds.
    pub sessions: usize,
    /// The top-level `last_updated` when it is a string.
    pub last_updated: Option<String>,
    /// 90 % warning, 95 % critical, 100 % exceeded; `None` without a positive total.
    pub level: Option<Level>,
}

impl StateView {
    /// The view of a file that does not exist yet, as `sync` would create it.
    pub fn empty(total: u64) -> StateView {
        StateView::compute(0, Some(total), 0, None)
    }

    fn compute(
        used: u64,
        total: Option<u64>,
        sessions: usize,
        last_updated: Option<String>,
    ) -> Self {
        StateView {
            used,
            total,
            percentage: total.and_then(|t| percentage(used, t)),
            remaining: total.map(|t| t.saturating_sub(used)),
            sessions,
            last_updated,
            level: total.and_then(|t| level(used, t)),
        }
    }
}

/// `used / total` in percent, rounded to two decimals, computed exactly.
pub fn percentage(used: u64, total: u64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let (u, t) = (u128::from(used), u128::from(total));
    let hundredths = (u * 10_000 + t / 2) / t;
    Some(hundredths as f64 / 100.0)
}

/// The alert level of `used` against `total` on the one threshold ladder, decided on exact
/// integers so 89.999 % is not rounded up into a warning.
pub fn level(used: u64, total: u64) -> Option<Level> {
    Level::of_counts(used, total)
}

/// The lower-case word for a level, as status prints it.
pub fn level_word(level: Option<Level>) -> &'static str {
    level.map_or("unknown", Level::word)
}

/// One entry of `sessions`, read from whichever shape it has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionEntry {
    /// `timestamp`, else `start_time` (local time as written).
    pub timestamp: Option<String>,
    pub tokens: Option<u64>,
    /// `event`, else `task`.
    pub label: Option<String>,
    /// `method`, else `sync_type`.
    pub kind: Option<String>,
    /// `conversation_id`, else `session_id`.
    pub id: Option<String>,
}

/// The whole state file: the JSON document (unknown keys and their order kept) and its view.
#[derive(Debug, Clone, PartialEq)]
pub struct StateFile {
    doc: Map<String, Value>,
    view: StateView,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A key of the state file whose value has the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ShapeError {
    /// `token_usage.used is "lots", not a token count`.
    #[error("{key} is {found}, not a token count")]
    NotACount { key: &'static str, found: String },
    /// `token_usage is an array, not an object`.
    #[error("{key} is {found}, not {wanted}")]
    WrongType {
        key: &'static str,
        found: &'static str,
        wanted: &'static str,
    },
}

/// A token count written as an integer, a float with no fraction worth keeping, or a string
/// of digits. `Ok(None)` when absent or null.
fn read_count(v: Option<&Value>, key: &'static str) -> Result<Option<u64>, ShapeError> {
    let bad = |v: &Value| ShapeError::NotACount {
        key,
        found: v.to_string(),
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else if let Some(f) = n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1.8e19)
            {
                Ok(Some(f.round() as u64))
            } else {
                Err(bad(v.unwrap()))
            }
        }
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| bad(v.unwrap())),
        Some(other) => Err(ShapeError::NotACount {
            key,
            found: type_name(other).to_string(),
        }),
    }
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The offset of the first `[` or `{` that opens level `max + 1`, outside strings; `None`
/// when the text never nests deeper than `max`. Malformed text is left to the parser.
fn too_deep(bytes: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// 1-based line and column of a byte offset.
fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    (line, offset - start + 1)
}

impl StateFile {
    /// A new document in the shape the dashboard creates for itself (formats.md §5):
    /// `token_usage {used, total, percentage, sessions}`, `status {text, reviewed_count}`;
    /// `last_updated` is added by the first write.
    pub fn new(total: u64) -> StateFile {
        let mut tu = Map::new();
        tu.insert("used".into(), Value::from(0u64));
        tu.insert("total".into(), Value::from(total));
        tu.insert("percentage".into(), number(0.0));
        tu.insert("sessions".into(), Value::Array(Vec::new()));
        let mut status = Map::new();
        status.insert("text".into(), Value::from(DEFAULT_STATUS_TEXT));
        status.insert("reviewed_count".into(), Value::from(0u64));
        let mut doc = Map::new();
        doc.insert("token_usage".into(), Value::Object(tu));
        doc.insert("status".into(), Value::Object(status));
        StateFile {
            doc,
            view: StateView::empty(total),
        }
    }

    /// Read a state file. `Ok(None)` when it does not exist. Only a regular file of at most
    /// [`read::MAX_STATE_BYTES`] is read; a FIFO is refused without blocking.
    pub fn load(path: &Path) -> Result<Option<StateFile>, StateError> {
        match read::read_regular(path, read::MAX_STATE_BYTES) {
            Ok(Some(bytes)) => StateFile::from_bytes(path, &bytes).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(StateError::of_read(path, e)),
        }
    }

    /// The raw bytes of a state file, checked as [`StateFile::load`] checks them.
    pub fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
        read::read_regular(path, read::MAX_STATE_BYTES).map_err(|e| StateError::of_read(path, e))
    }

    /// Parse the contents of a state file; `path` is only used in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<StateFile, StateError> {
        let err = |line, column, message: String| StateError {
            path: path.to_path_buf(),
            line,
            column,
            message,
            kind: StateErrorKind::Invalid,
        };
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(body).map_err(|e| {
            let (l, c) = line_col(body, e.valid_up_to());
            err(Some(l), Some(c), "is not UTF-8 text".into())
        })?;
        if text.trim().is_empty() {
            return Err(err(None, None, "is empty".into()));
        }
        if let Some(offset) = too_deep(text.as_bytes(), MAX_DEPTH) {
            let (l, c) = line_col(text.as_bytes(), offset);
            return Err(err(
                Some(l),
                Some(c),
                format!(
                    "nests arrays and objects more than {MAX_DEPTH} levels deep (tokmon reads \
                     state files nested up to {MAX_DEPTH} levels)"
                ),
            ));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        // The depth was bounded just above, so recursion stays far from the stack's end.
        de.disable_recursion_limit();
        let value: Value = serde::Deserialize::deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| {
                // serde_json appends " at line L column C" itself; keep only the reason.
                let full = e.to_string();
                let reason = full.split(" at line ").next().unwrap_or(&full).to_string();
                err(
                    Some(e.line()),
                    Some(e.column()),
                    format!("invalid JSON: {reason}"),
                )
            })?;
        let Value::Object(doc) = value else {
            return Err(err(
                None,
                None,
                format!("the top level is {}, not an object", type_name(&value)),
            ));
        };
        let view = view_of(&doc).map_err(|e| err(None, None, e.to_string()))?;
        Ok(StateFile { doc, view })
    }

    pub fn view(&self) -> &StateView {
        &self.view
    }

    /// The whole document, unknown keys included.
    pub fn document(&self) -> &Map<String, Value> {
        &self.doc
    }

    /// The `sessions` entries, newest first, read from any of their shapes. Entries that are
    /// not objects are skipped.
    pub fn sessions(&self) -> Vec<SessionEntry> {
        let Some(Value::Array(items)) = self.token_usage().and_then(|t| t.get("sessions")) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(Value::as_object)
            .map(|o| SessionEntry {
                timestamp: text_of(o.get("timestamp")).or_else(|| text_of(o.get("start_time"))),
                tokens: read_count(o.get("tokens"), "tokens").ok().flatten(),
                label: text_of(o.get("event")).or_else(|| text_of(o.get("task"))),
                kind: text_of(o.get("method")).or_else(|| text_of(o.get("sync_type"))),
                id: text_of(o.get("conversation_id")).or_else(|| text_of(o.get("session_id"))),
            })
            .collect()
    }

    fn token_usage(&self) -> Option<&Map<String, Value>> {
        self.doc.get("token_usage").and_then(Value::as_object)
    }

    /// Set tokmon's keys after a sync: `used`, `total`, `percentage`, `last_updated`, and, when
    /// `entry` is given, a new first session (the list cut to `cap`). Other keys are untouched;
    /// keys that exist keep their place, new ones go last.
    pub(crate) fn apply(
        &mut self,
        plan: &SyncPlan,
        entry: Option<Map<String, Value>>,
        last_updated: String,
        cap: usize,
    ) {
        let slot = self
            .doc
            .entry("token_usage")
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            // Only null gets here: view_of refuses every other non-object.
            *slot = Value::Object(Map::new());
        }
        let tu = slot.as_object_mut().expect("token_usage is an object");
        tu.insert("used".into(), Value::from(plan.value));
        if let Some(t) = plan.total {
            tu.insert("total".into(), Value::from(t));
        }
        tu.insert("percentage".into(), number(plan.percentage.unwrap_or(0.0)));
        if let Some(entry) = entry {
            let sessions = tu
                .entry("sessions")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !sessions.is_array() {
                *sessions = Value::Array(Vec::new());
            }
            let list = sessions.as_array_mut().expect("sessions is an array");
            list.insert(0, Value::Object(entry));
            list.truncate(cap);
        }
        self.doc
            .insert("last_updated".into(), Value::String(last_updated));
        self.view = view_of(&self.doc).expect("a document tokmon wrote is readable");
    }

    /// The document as pretty JSON (two-space indent, UTF-8 kept as is) with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(&self.doc).expect("a JSON map serialises");
        out.push(b'\n');
        out
    }
}

fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::from(0), Value::Number)
}

fn view_of(doc: &Map<String, Value>) -> Result<StateView, ShapeError> {
    let (used, total, sessions) = match doc.get("token_usage") {
        None | Some(Value::Null) => (0, None, 0),
        Some(Value::Object(tu)) => {
            let used = read_count(tu.get("used"), "token_usage.used")?.unwrap_or(0);
            let total = read_count(tu.get("total"), "token_usage.total")?;
            let sessions = match tu.get("sessions") {
                None | Some(Value::Null) => 0,
                Some(Value::Array(a)) => a.len(),
                Some(other) => {
                    return Err(ShapeError::WrongType {
                        key: "token_usage.sessions",
                        found: type_name(other),
                        wanted: "an array",
                    });
                }
            };
            (used, total, sessions)
        }
        Some(other) => {
            return Err(ShapeError::WrongType {
                key: "token_usage",
                found: type_name(other),
                wanted: "an object",
            });
        }
    };
    let last_updated = doc
        .get("last_updated")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(StateView::compute(used, total, sessions, last_updated))
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

/// `<path><suffix>` in the same directory.
pub(crate) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
  "token_usage": {
    "used": 299000,
    "total": 1000000,
    "percentage": 12.5,
    "sessions": [
      {"timestamp": "2025-11-18 21:39:51", "tokens": 115000, "event": "手动同步",
       "conversation_id": "manual-sync-1763473191578", "sync_type": "manual"},
      {"timestamp": "2025-11-18 20:10:02", "tokens": 15000.0, "event": "完成架构设计",
       "conversation_id": "manual-1", "method": "manual"},
      {"session_id": "s-7", "start_time": "2025-11-17 09:00:00", "end_time": "2025-11-17 10:00:00",
       "task": "review", "achievements": ["a"]}
    ]
  },
  "status": {"text": "工作中", "reviewed_count": 10},
  "last_updated": "2025-11-18T21:39:51.578123"
}"#;

    fn parse(s: &str) -> Result<StateFile, StateError> {
        StateFile::from_bytes(Path::new("s.json"), s.as_bytes())
    }

    #[test]
    fn reads_the_example_and_recomputes_percentage() {
        let f = parse(EXAMPLE).unwrap();
        let v = f.view();
        assert_eq!(v.used, 299_000);
        assert_eq!(v.total, Some(1_000_000));
        assert_eq!(v.percentage, Some(29.9));
        assert_eq!(v.remaining, Some(701_000));
        assert_eq!(v.sessions, 3);
        assert_eq!(v.level, Some(Level::Ok));
        assert_eq!(
            v.last_updated.as_deref(),
            Some("2025-11-18T21:39:51.578123")
        );
        let s = f.sessions();
        assert_eq!(s[0].kind.as_deref(), Some("manual"));
        assert_eq!(s[1].kind.as_deref(), Some("manual"));
        assert_eq!(s[1].tokens, Some(15_000));
        assert_eq!(s[2].label.as_deref(), Some("review"));
        assert_eq!(s[2].timestamp.as_deref(), Some("2025-11-17 09:00:00"));
        assert_eq!(s[2].id.as_deref(), Some("s-7"));
    }

    #[test]
    fn tolerates_missing_and_float_fields() {
        let v = parse(r#"{"token_usage": {"used": 950000.0, "total": 1e6}}"#)
            .unwrap()
            .view;
        assert_eq!((v.used, v.total, v.sessions), (950_000, Some(1_000_000), 0));
        assert_eq!(v.level, Some(Level::Critical));
        assert_eq!(v.last_updated, None);
        let v = parse("{}").unwrap().view;
        assert_eq!((v.used, v.total, v.percentage), (0, None, None));
        let v = parse(r#"{"token_usage": {"used": 5, "total": 0}}"#)
            .unwrap()
            .view;
        assert_eq!((v.percentage, v.level), (None, None));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse("{\n  \"token_usage\": {\"used\": 1,,}\n}").unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(29)));
        let msg = e.to_string();
        assert!(
            msg.contains("s.json") && msg.contains("line 2, column 29"),
            "{msg}"
        );
        assert!(parse("").unwrap_err().to_string().contains("empty"));
        assert!(
            parse("[1]")
                .unwrap_err()
                .to_string()
                .contains("not an object")
        );
        let e = parse(r#"{"token_usage": {"used": "lots"}}"#).unwrap_err();
        assert!(e.to_string().contains("token_usage.used"), "{e}");
        let e = parse(r#"{"token_usage": {"used": -3}}"#).unwrap_err();
        assert!(e.to_string().contains("-3"), "{e}");
    }

    #[test]
    fn shape_errors_say_which_key_and_what_it_is() {
        for (doc, why) in [
            (
                r#"{"token_usage": {"used": "lots"}}"#,
                r#"token_usage.used is "lots", not a token count"#,
            ),
            (
                r#"{"token_usage": {"used": 1, "total": -3}}"#,
                "token_usage.total is -3, not a token count",
            ),
            (
                r#"{"token_usage": {"used": true}}"#,
                "token_usage.used is a boolean, not a token count",
            ),
            (
                r#"{"token_usage": {"sessions": {}}}"#,
                "token_usage.sessions is an object, not an array",
            ),
            (
                r#"{"token_usage": [1]}"#,
                "token_usage is an array, not an object",
            ),
        ] {
            let e = parse(doc).unwrap_err();
            assert_eq!(e.message, why, "{doc}");
            assert_eq!(e.to_string(), format!("state file s.json: {why}"));
        }
    }

    /// #16 item 17: valid JSON nested 200 deep is read; deeper than the bound is named as
    /// such, never called invalid JSON. The bound itself parses on a 2 MB thread stack.
    #[test]
    fn deep_nesting_is_read_or_named() {
        let nest = |n: usize| {
            format!(
                r#"{{"token_usage": {{"used": 5}}, "other": {}{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        let f = parse(&nest(200)).unwrap();
        assert_eq!(f.view().used, 5);
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let f = parse(&nest(MAX_DEPTH - 1)).unwrap();
                assert_eq!(f.view().used, 5);
                let _ = f.to_bytes();
            })
            .unwrap()
            .join()
            .unwrap();
        let e = parse(&nest(MAX_DEPTH + 100)).unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("invalid JSON"), "{msg}");
        assert!(msg.contains("more than 512 levels deep"), "{msg}");
        // The object is level 1, so the 511th `[` (column 40 + 510) opens level 513.
        assert_eq!((e.line, e.column), (Some(1), Some(40 + MAX_DEPTH - 2)));
        // Brackets inside strings do not count.
        let text = format!(
            r#"{{"a": "{}", "token_usage": {{"used": 1}}}}"#,
            "[".repeat(2000)
        );
        assert_eq!(parse(&text).unwrap().view().used, 1);
    }

    /// #16 item 18: a new file has the dashboard's own shape, so its code
    /// (`monitor_data["status"]["text"] = …`) works on it.
    #[test]
    fn a_new_file_has_the_dashboards_shape() {
        let f = StateFile::new(1_000_000);
        let doc = f.document();
        assert_eq!(doc.keys().collect::<Vec<_>>(), ["token_usage", "status"]);
        let tu = doc["token_usage"].as_object().unwrap();
        assert_eq!(
            tu.keys().collect::<Vec<_>>(),
            ["used", "total", "percentage", "sessions"]
        );
        assert_eq!(doc["status"]["text"], DEFAULT_STATUS_TEXT);
        assert_eq!(doc["status"]["reviewed_count"], 0);
    }

    #[test]
    fn levels_at_thresholds() {
        assert_eq!(level(899_999, 1_000_000), Some(Level::Ok));
        assert_eq!(level(900_000, 1_000_000), Some(Level::Warning));
        assert_eq!(level(950_000, 1_000_000), Some(Level::Critical));
        assert_eq!(level(1_000_000, 1_000_000), Some(Level::Exceeded));
        assert_eq!(percentage(1, 3), Some(33.33));
        assert!(percentage(u64::MAX, 1).is_some());
    }
}

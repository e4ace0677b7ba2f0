//! `tokmon import`: agent logs (Claude Code, Codex) and generic JSONL / CSV files into the
//! native store, idempotently and incrementally.
//!
//! The driver walks the given paths, picks a format per file, and reads each file from where
//! the previous import stopped. How far a file was read (byte offset, line number, size,
//! modification time, fingerprints of its start and of the bytes just before the offset, and
//! any parser state needed to resume) lives in the `import_files` table and is written in the
//! same transaction as the events read up to that offset, so a crash never skips or
//! double-counts a line. Every event carries a unique key, so reading the same data twice
//! (a copied file, a rewritten file read again from its start) adds nothing.

pub mod claude_code;
pub mod codex;
pub mod follow;
pub mod generic;
mod line_error;

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::Context;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::store::native::{FreshDb, InsertCounts, NewEvent};
use crate::store::{FileState, ImportSink, SqliteSink, Writer};
use crate::timefmt::Zone;

pub use follow::{follow, follow_with};
pub use line_error::LineError;
use line_error::utc_timestamp;

/// At most this many threads read and parse files (besides the one that writes).
const MAX_READERS: usize = 4;
/// How many parsed events are inserted at once.
const BATCH_EVENTS: usize = 2_000;
/// How many written events a reader keeps to parse into again (see [`Channel::empty_batch`]).
const MAX_SPARE: usize = 2 * BATCH_EVENTS;
/// How many events one transaction holds (with the offsets of the files read so far). Many
/// small commits are what makes a large import slow: each one rewrites every index page it
/// touched, and the unique-key index is touched at random.
const COMMIT_EVENTS: u64 = 250_000;
/// The longest a transaction stays open (it holds the database's write lock).
const COMMIT_AFTER: Duration = Duration::from_millis(1500);
/// The longest the bulk load of a first import writes before it commits: long enough for a
/// first import of a few GB of logs to be one bulk load (its indexes built once, at its
/// commit, rather than written row by row by the transactions after it), even on a busy
/// machine. Meanwhile another writer waits up to [`crate::store::native::BUSY_TIMEOUT_MS`]
/// for the lock (a hook's `tokmon statusline` then prints `tokmon: ?`), and readers see the
/// database as it was before the import.
const BULK_COMMIT_AFTER: Duration = Duration::from_secs(30);
/// Page cache of an importing connection (KiB): the unique-key index is written at random.
const IMPORT_CACHE_KIB: i64 = 32 * 1024;
/// How many bytes of a file's start (and of the bytes before the offset) are fingerprinted.
const FINGERPRINT_LEN: u64 = 4096;
/// How many bad lines are kept with their details (all are counted).
pub const MAX_BAD_KEPT: usize = 200;
/// How many bytes of a file are sniffed to choose its format.
const SNIFF_LEN: usize = 64 * 1024;

/// The format of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    ClaudeCode,
    Codex,
    Jsonl,
    Csv,
}

impl Format {
    pub fn label(self) -> &'static str {
        match self {
            Format::ClaudeCode => "claude-code",
            Format::Codex => "codex",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }

    pub fn from_label(s: &str) -> Option<Format> {
        Some(match s {
            "claude-code" => Format::ClaudeCode,
            "codex" => Format::Codex,
            "jsonl" => Format::Jsonl,
            "csv" => Format::Csv,
            _ => return None,
        })
    }

    /// The `source` column of the events this format produces.
    pub fn source(self) -> &'static str {
        match self {
            Format::ClaudeCode => "import:claude-code",
            Format::Codex => "import:codex",
            Format::Jsonl => "import:jsonl",
            Format::Csv => "import:csv",
        }
    }
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// A forced format, or `None` to choose per file.
    pub format: Option<Format>,
    /// Any bad line makes its file import nothing.
    pub strict: bool,
    /// Zone of timestamps without an offset in generic files.
    pub naive_zone: Zone,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: None,
            strict: false,
            naive_zone: Zone::UTC,
        }
    }
}

/// A line that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub path: PathBuf,
    /// 1-based line number in the file.
    pub line: u64,
    pub reason: String,
}

/// What one import pass did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// Log files found under the paths.
    pub files_found: u64,
    /// Files that had new bytes and were read.
    pub files_read: u64,
    /// Files found in directories that do not look like usage logs (left alone).
    pub files_skipped: u64,
    /// Files that were rewritten since the last import and read again from their start.
    pub files_rewritten: u64,
    /// Lines read (complete lines only).
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Events added to the database.
    pub inserted: u64,
    /// Events whose unique key was already stored.
    pub duplicates: u64,
    /// Claude Code replies stored before whose later lines had larger counts: corrected.
    pub corrected: u64,
    /// Bad lines counted (all of them).
    pub bad_lines: u64,
    /// The first [`MAX_BAD_KEPT`] bad lines.
    pub bad: Vec<BadLine>,
    /// With `strict`: files that had bad lines, from which nothing was imported.
    pub rejected_files: Vec<PathBuf>,
    /// Files that could not be read (message with the path).
    pub errors: Vec<String>,
    /// Log-named entries of a walked directory that are not regular files (FIFOs, devices):
    /// skipped, never read (message with the path).
    pub not_regular: Vec<String>,
    pub elapsed: Duration,
}

impl ImportSummary {
    fn add_bad(&mut self, path: &Path, line: u64, reason: String) {
        self.bad_lines += 1;
        if self.bad.len() < MAX_BAD_KEPT {
            self.bad.push(BadLine {
                path: path.to_path_buf(),
                line,
                reason,
            });
        }
    }

    /// Whether this pass changed or found anything worth telling.
    pub fn is_noteworthy(&self) -> bool {
        self.inserted > 0
            || self.corrected > 0
            || self.bad_lines > 0
            || !self.errors.is_empty()
            || self.files_rewritten > 0
    }

    /// `imported N events from F files (D duplicates skipped, B bad lines) in Xs`, with
    /// `C corrected, ` before the duplicates when replies were corrected.
    pub fn one_line(&self) -> String {
        let corrected = if self.corrected > 0 {
            format!("{} corrected, ", crate::numfmt::thousands(self.corrected))
        } else {
            String::new()
        };
        format!(
            "imported {} event{} from {} file{} ({corrected}{} duplicate{} skipped, {} bad line{}) in {:.2}s",
            crate::numfmt::thousands(self.inserted),
            plural(self.inserted),
            self.files_read,
            plural(self.files_read),
            crate::numfmt::thousands(self.duplicates),
            plural(self.duplicates),
            crate::numfmt::thousands(self.bad_lines),
            plural(self.bad_lines),
            self.elapsed.as_secs_f64()
        )
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Progress callbacks (a bar on a TTY; nothing otherwise).
pub trait Progress {
    /// Called once, after the files were planned: how many files and bytes will be read.
    fn start(&self, files: u64, bytes: u64);
    /// Called now and then while reading.
    fn advance(&self, bytes: u64, files_done: u64, lines: u64);
}

/// One line turned into at most one event.
pub(crate) trait LineParser {
    /// `Ok(None)`: a line that carries no usage (a user message, a summary). `Err`: a bad line.
    fn parse(
        &mut self,
        line: &[u8],
        line_no: u64,
        offset: u64,
    ) -> Result<Option<NewEvent>, LineError>;
    /// [`LineParser::parse`] into `out`, whose text buffers a parser may fill again rather
    /// than allocate new ones (what `out` held before does not matter). `Ok(false)`: no event
    /// (`out` is then left as it is or cleared).
    fn parse_into(
        &mut self,
        line: &[u8],
        line_no: u64,
        offset: u64,
        out: &mut NewEvent,
    ) -> Result<bool, LineError> {
        Ok(match self.parse(line, line_no, offset)? {
            Some(ev) => {
                *out = ev;
                true
            }
            None => false,
        })
    }
    /// State to resume with, stored with the offset (JSON).
    fn state(&self) -> Option<String> {
        None
    }
    /// Called before reading `path`: an offset not to read past this time (Codex: a
    /// subagent file that cannot yet be told from a replay of its parent).
    fn read_limit(&mut self, _path: &Path) -> std::io::Result<Option<u64>> {
        Ok(None)
    }
}

/// What the parsers know about the file they read.
#[derive(Debug, Clone)]
pub(crate) struct FileInfo {
    /// The canonical path (also the key of the file's state row).
    pub key: String,
    /// The file name without its extension.
    pub stem: String,
    /// For Claude Code: the directory right below `projects/`.
    pub project_dir: Option<String>,
}

impl FileInfo {
    fn new(key: String, path: &Path) -> FileInfo {
        FileInfo {
            stem: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            project_dir: claude_project_dir(path),
            key,
        }
    }
}

fn make_parser(
    format: Format,
    info: FileInfo,
    state: Option<&str>,
    zone: Zone,
) -> Box<dyn LineParser> {
    match format {
        Format::ClaudeCode => Box::new(claude_code::Parser::new(info)),
        Format::Codex => Box::new(codex::Parser::new(info, state)),
        Format::Jsonl => Box::new(generic::JsonlParser::new(zone)),
        Format::Csv => Box::new(generic::CsvParser::new(zone, state)),
    }
}

/// SHA-256 of some byte strings (each prefixed with its length), as 32 hex digits.
pub(crate) fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex(&h.finalize()[..16])
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The directory right below the last `projects` component, when the file lies at least one
/// directory below it (`projects/<project>/<session>.jsonl` and deeper).
fn claude_project_dir(path: &Path) -> Option<String> {
    let comps: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    let i = comps.iter().rposition(|c| *c == "projects")?;
    // projects / <project> / ... / file: the file must not be the component right after.
    if i + 2 < comps.len() {
        Some(comps[i + 1].to_string_lossy().into_owned())
    } else {
        None
    }
}

fn has_ext(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// A file to consider, and whether the user named it (rather than it being found in a directory).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    pub explicit: bool,
    /// The canonical path (the key of the file's read state); the path itself when it
    /// cannot be made canonical.
    pub key: PathBuf,
    /// The file's metadata (links followed), when it could be read.
    pub meta: Option<std::fs::Metadata>,
}

/// The files under the paths: named files as they are; in directories, `*.jsonl`, `*.ndjson`
/// and `*.csv`. A directory that holds a `projects/` directory (a Claude Code config directory
/// such as `~/.claude`) is searched only there, so its other files are never read.
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if !meta.is_dir() && !meta.is_file() {
            return Err(crate::regular::not_regular(p, "import path", &meta));
        }
        if meta.is_dir() {
            let projects = p.join("projects");
            let root = if projects.is_dir() {
                projects
            } else {
                p.clone()
            };
            let canonical = std::fs::canonicalize(&root).ok();
            let mut found = Vec::new();
            walk(&root, canonical.as_deref(), 0, &mut found);
            found.sort_by(|a, b| a.path.cmp(&b.path));
            out.extend(found);
        } else {
            out.push(Candidate {
                key: std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()),
                path: p.clone(),
                explicit: true,
                meta: Some(meta),
            });
        }
    }
    // The same file named twice (or found under two paths) is read once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.key.clone()));
    Ok(out)
}

/// The log files under `dir`, whose canonical path is `canonical` (when known). The canonical
/// path of an entry that is no symbolic link is its name joined to its directory's, so only
/// links are resolved; directories are told from the entry's type (no `stat` of their own).
fn walk(dir: &Path, canonical: Option<&Path>, depth: usize, out: &mut Vec<Candidate>) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(kind) = e.file_type() else {
            continue;
        };
        let key = match canonical {
            Some(c) if !kind.is_symlink() => Some(c.join(e.file_name())),
            _ => std::fs::canonicalize(&path).ok(),
        };
        let is_dir = if kind.is_symlink() {
            std::fs::metadata(&path).is_ok_and(|m| m.is_dir())
        } else {
            kind.is_dir()
        };
        if is_dir {
            walk(&path, key.as_deref(), depth + 1, out);
        } else if has_ext(&path, &["jsonl", "ndjson", "csv"]) {
            // Not only regular files: a FIFO or device with a log's name is reported, not read.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            out.push(Candidate {
                key: key.unwrap_or_else(|| path.clone()),
                path,
                explicit: false,
                meta: Some(meta),
            });
        }
    }
}

/// Choose the format of a file: `.csv` is CSV; otherwise its first lines decide, and when
/// they do not (an empty file, only summaries), the Claude Code path shape
/// `projects/<project>/….jsonl` does. `None`: a file found in a directory that does not look
/// like a usage log (left alone). A named file that matches nothing is read as generic JSONL.
/// (The content goes first because `projects/` is also a common name for other folders.)
pub fn detect_format(path: &Path, explicit: bool) -> std::io::Result<Option<Format>> {
    if let Some(f) = format_by_name(path) {
        return Ok(Some(f));
    }
    let mut head = Vec::with_capacity(SNIFF_LEN);
    crate::regular::open_regular(path)?
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)?;
    Ok(format_by_head(path, explicit, &head))
}

/// The format a file's name alone decides (`.csv`), before any of it is read.
fn format_by_name(path: &Path) -> Option<Format> {
    has_ext(path, &["csv"]).then_some(Format::Csv)
}

/// [`detect_format`] of a file (not decided by its name) whose first [`SNIFF_LEN`] bytes
/// (all of it when shorter) are `head`.
fn format_by_head(path: &Path, explicit: bool, head: &[u8]) -> Option<Format> {
    match sniff(head) {
        Some(f) => Some(f),
        None if claude_project_dir(path).is_some() && has_ext(path, &["jsonl"]) => {
            Some(Format::ClaudeCode)
        }
        None if explicit => Some(Format::Jsonl),
        None => None,
    }
}

/// A JSON object's members, their values left as text (long prompts and tool results are
/// skipped over, not copied).
type RawObject<'a> = std::collections::HashMap<Cow<'a, str>, &'a serde_json::value::RawValue>;

/// Look at the first lines: Codex rollout lines have `type` + `payload`; Claude Code lines
/// have `message.usage` or a `sessionId`; generic events have `model` and a token field.
fn sniff(head: &[u8]) -> Option<Format> {
    let mut generic = false;
    for line in head.split(|b| *b == b'\n').take(200) {
        let Ok(o) = serde_json::from_slice::<RawObject>(line) else {
            continue;
        };
        let kind = o
            .get("type")
            .and_then(|t| serde_json::from_str::<Cow<str>>(t.get()).ok())
            .unwrap_or_default();
        if o.contains_key("payload")
            && matches!(
                &*kind,
                "session_meta" | "turn_context" | "event_msg" | "response_item"
            )
        {
            return Some(Format::Codex);
        }
        let has_usage = o
            .get("message")
            .and_then(|m| serde_json::from_str::<RawObject>(m.get()).ok())
            .and_then(|m| m.get("usage").map(|u| u.get().starts_with('{')))
            .unwrap_or(false);
        if has_usage || (o.contains_key("sessionId") && o.contains_key("uuid")) {
            return Some(Format::ClaudeCode);
        }
        if o.get("model").is_some_and(|m| m.get().starts_with('"'))
            && generic::TOKEN_FIELDS
                .iter()
                .any(|f| o.contains_key(&Cow::Borrowed(*f)))
        {
            generic = true;
        }
    }
    generic.then_some(Format::Jsonl)
}

/// Import everything under `paths` that is new since the last import.
pub fn import_paths(
    conn: &Connection,
    paths: &[PathBuf],
    opts: &Options,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<ImportSummary> {
    import_sqlite(conn, None, paths, opts, progress)
}

/// [`import_paths`] into `conn`, which is `fresh`'s when it is given: no other connection can
/// open that database, so the import is one transaction however long it takes.
fn import_sqlite<'c>(
    conn: &'c Connection,
    fresh: Option<&'c FreshDb>,
    paths: &[PathBuf],
    opts: &Options,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<ImportSummary> {
    conn.pragma_update(None, "cache_size", -IMPORT_CACHE_KIB)?;
    // The indexes a first import builds at once are sorted on every core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    conn.pragma_update(None, "threads", cores.min(MAX_READERS) as i64)?;
    let mut sink = SqliteSink::new(conn, true)?;
    sink.fresh = fresh;
    import_with(&mut sink, paths, opts, progress)
}

/// Import into the database at `db` (a path or a PostgreSQL URL), creating it if needed. A
/// SQLite database that does not exist yet is built aside and given its name when the import
/// is done ([`FreshDb`]); if another process created one at that path
/// meanwhile, the import goes into that one instead.
pub fn import_to(
    db: &Path,
    paths: &[PathBuf],
    opts: &Options,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<ImportSummary> {
    import_to_fresh(FreshDb::create(db)?, db, paths, opts, progress)
}

/// [`import_to`] with its new database made already (`fresh`; `None` when something was at
/// `db`).
pub fn import_to_fresh(
    fresh: Option<FreshDb>,
    db: &Path,
    paths: &[PathBuf],
    opts: &Options,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<ImportSummary> {
    if let Some(fresh) = fresh {
        let summary = import_sqlite(fresh.conn(), Some(&fresh), paths, opts, progress)?;
        if fresh.publish()? {
            return Ok(summary);
        }
    }
    import_into(&mut Writer::open(db)?, paths, opts, progress)
}

/// Import everything under `paths` that is new since the last import into tokmon's own
/// database, SQLite or PostgreSQL.
pub fn import_into(
    db: &mut Writer,
    paths: &[PathBuf],
    opts: &Options,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<ImportSummary> {
    match db {
        Writer::Sqlite(conn) => import_paths(conn, paths, opts, progress),
        Writer::Postgres(w) => {
            w.counts = InsertCounts::default();
            let result = import_with(w.as_mut(), paths, opts, progress);
            // What was not committed is not kept: the next pass starts from the saved state.
            w.rollback();
            result
        }
    }
}

/// [`import_paths`] into any [`ImportSink`].
fn import_with(
    sink: &mut dyn ImportSink,
    paths: &[PathBuf],
    opts: &Options,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let mut summary = ImportSummary::default();
    let files = collect_files(paths)?;
    summary.files_found = files.len() as u64;

    // Plan first, so the progress bar knows how much there is to read.
    let mut plans = Vec::new();
    for c in &files {
        if let Some(m) = &c.meta
            && !m.is_file()
        {
            summary.not_regular.push(format!(
                "{} is {}",
                crate::text::printable_path(&c.path),
                crate::regular::kind_of(m)
            ));
            continue;
        }
        match plan_file(sink, c, opts) {
            Ok(p) => plans.push(p),
            Err(e) => summary.errors.push(format!("{}: {e:#}", c.path.display())),
        }
    }
    // Not regular files, so far (the readers skip the files whose head shows no log).
    summary.files_skipped = files.len() as u64 - plans.len() as u64 - summary.errors.len() as u64;
    plans.retain(|p| !p.unchanged);
    summary.files_found -= summary.files_skipped;
    let total: u64 = plans
        .iter()
        .map(|p| p.size.saturating_sub(p.start.offset))
        .sum();
    if let Some(pr) = progress {
        pr.start(plans.len() as u64, total);
    }
    // Readers parse the files ahead of this thread, which writes. Each reader takes every
    // `readers`-th file and has its own channel; the writer takes the files in their order
    // (so which line of a reply comes first never depends on the threads).
    let readers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_READERS)
        .min(plans.len().max(1));
    let (sends, recvs): (Vec<_>, Vec<_>) =
        (0..readers).map(|_| mpsc::sync_channel::<Msg>(4)).unzip();
    // The writer hands each batch back to its reader, which frees its events (memory is
    // freed fastest by the thread that took it) and fills the batch again.
    let (returns, taken_back): (Vec<_>, Vec<_>) = (0..readers)
        .map(|_| mpsc::channel::<Vec<NewEvent>>())
        .unzip();
    let (parts, written) = std::thread::scope(|scope| {
        let handles: Vec<_> = sends
            .into_iter()
            .zip(taken_back)
            .enumerate()
            .map(|(r, (send, back))| {
                let plans = &plans;
                scope.spawn(move || {
                    let mut parts = Vec::new();
                    let channel = Channel { send, back };
                    let mut scratch = Scratch::default();
                    for (i, plan) in plans.iter().enumerate().skip(r).step_by(readers) {
                        let mut part = ImportSummary::default();
                        let result = read_file(i, plan, opts, &channel, &mut scratch, &mut part);
                        let gone = match result {
                            Ok(()) => false,
                            Err(e) => {
                                part.errors.push(format!("{}: {e:#}", plan.path.display()));
                                channel.send.send(Msg::Failed).is_err()
                            }
                        };
                        parts.push((i, part));
                        if gone {
                            break;
                        }
                    }
                    parts
                })
            })
            .collect();
        let mut ordered = Ordered {
            recvs,
            returns,
            file: 0,
            files: plans.len(),
        };
        let written = write_events(sink, &plans, &mut ordered, progress);
        // If writing failed, stop the readers by dropping their channels before waiting.
        drop(ordered);
        let mut parts: Vec<(usize, ImportSummary)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("reader thread"))
            .collect();
        parts.sort_by_key(|(i, _)| *i);
        (parts, written)
    });
    let mut read = ImportSummary::default();
    for (_, part) in parts {
        read.files_read += part.files_read;
        read.files_skipped += part.files_skipped;
        read.files_rewritten += part.files_rewritten;
        read.lines += part.lines;
        read.bytes += part.bytes;
        read.bad_lines += part.bad_lines;
        read.duplicates += part.duplicates;
        read.bad.extend(part.bad);
        read.rejected_files.extend(part.rejected_files);
        read.errors.extend(part.errors);
    }
    read.bad.truncate(MAX_BAD_KEPT);
    let w = written?;
    summary.files_read += read.files_read;
    summary.files_skipped += read.files_skipped;
    summary.files_found -= read.files_skipped;
    summary.files_rewritten += read.files_rewritten;
    summary.lines += read.lines;
    summary.bytes += read.bytes;
    summary.bad_lines += read.bad_lines;
    summary.duplicates += read.duplicates;
    summary.bad.extend(read.bad);
    summary.rejected_files.extend(read.rejected_files);
    summary.errors.extend(read.errors);
    summary.inserted += w.inserted;
    summary.duplicates += w.duplicates;
    summary.corrected += w.corrected;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The readers' messages, file by file in the planned order (file `i` comes from reader
/// `i % readers`, which sends its files in order, each ending with `end` or `Failed`).
struct Ordered {
    recvs: Vec<mpsc::Receiver<Msg>>,
    /// Batches written, back to the reader of file `i` (`i % readers`).
    returns: Vec<mpsc::Sender<Vec<NewEvent>>>,
    file: usize,
    files: usize,
}

impl Ordered {
    /// Hand a written batch of file `file` back to its reader (or free it here when the
    /// reader is done).
    fn give_back(&self, file: usize, events: Vec<NewEvent>) {
        let _ = self.returns[file % self.returns.len()].send(events);
    }

    fn recv(&mut self) -> Option<Msg> {
        if self.file >= self.files {
            return None;
        }
        let msg = self.recvs[self.file % self.recvs.len()].recv().ok()?;
        if matches!(
            msg,
            Msg::Failed | Msg::Skipped { .. } | Msg::Events { end: true, .. }
        ) {
            self.file += 1;
        }
        Some(msg)
    }
}

/// A reader's ends of its channels to the writer.
struct Channel {
    send: mpsc::SyncSender<Msg>,
    /// Batches the writer is done with.
    back: mpsc::Receiver<Vec<NewEvent>>,
}

impl Channel {
    /// An empty batch: one the writer gave back, or a new one. The events of a batch given
    /// back are kept in `spare` (up to [`MAX_SPARE`]), their text buffers to be filled again.
    fn empty_batch(&self, spare: &mut Vec<NewEvent>) -> Vec<NewEvent> {
        match self.back.try_recv() {
            Ok(mut batch) => {
                let keep = MAX_SPARE.saturating_sub(spare.len()).min(batch.len());
                spare.extend(batch.drain(..keep));
                batch.clear();
                batch
            }
            Err(_) => Vec::with_capacity(BATCH_EVENTS),
        }
    }
}

/// From a reader thread to the writer.
enum Msg {
    /// Events of file `file`, read up to `offset` / `line_no`, where the parser state is
    /// `state`; `bytes` were read since the previous message. `end`: the file is finished.
    Events {
        file: usize,
        format: Format,
        events: Vec<NewEvent>,
        offset: u64,
        line_no: u64,
        state: Option<String>,
        bytes: u64,
        lines: u64,
        end: bool,
    },
    /// The file could not be read further; its offset stays where it was last saved (what it
    /// already sent is read again next time, and skipped as duplicates).
    Failed,
    /// File `file`'s first bytes show no usage log: it is left alone (nothing saved).
    Skipped { file: usize },
}

/// Insert what the reader sends. A file's offset is saved when it ends, and when the
/// transaction is committed halfway through it, always in the transaction of its events.
fn write_events(
    sink: &mut dyn ImportSink,
    plans: &[Plan],
    recv: &mut Ordered,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<InsertCounts> {
    let mut tx = Tx {
        sink,
        open: false,
        uncommitted: 0,
        opened: Instant::now(),
    };
    let mut files_done = 0u64;
    let mut lines_done = 0u64;
    while let Some(msg) = recv.recv() {
        if let Msg::Skipped { file } = msg {
            files_done += 1;
            if let Some(pr) = progress {
                // Its bytes were in the total: it was planned before it was sniffed.
                pr.advance(plans[file].size, files_done, lines_done);
            }
            continue;
        }
        let Msg::Events {
            file,
            format,
            events,
            offset,
            line_no,
            state,
            bytes,
            lines,
            end,
        } = msg
        else {
            files_done += 1;
            continue;
        };
        let plan = &plans[file];
        tx.open()?;
        for e in &events {
            tx.sink.insert(e)?;
        }
        tx.uncommitted += events.len() as u64;
        recv.give_back(file, events);
        let commit = tx.due();
        if end || commit {
            tx.open()?;
            save_state(tx.sink, plan, format, offset, line_no, state, end)?;
        }
        if commit {
            tx.commit()?;
        }
        if end {
            files_done += 1;
        }
        lines_done += lines;
        if let Some(pr) = progress {
            pr.advance(bytes, files_done, lines_done);
        }
    }
    tx.commit()?;
    Ok(tx.sink.counts())
}

/// The transaction of an import pass: opened on demand, spanning files, committed every
/// [`COMMIT_EVENTS`] events or [`COMMIT_AFTER`] (and at the end). Left uncommitted, the sink
/// rolls it back.
struct Tx<'s> {
    sink: &'s mut dyn ImportSink,
    open: bool,
    uncommitted: u64,
    opened: Instant,
}

impl Tx<'_> {
    fn open(&mut self) -> anyhow::Result<()> {
        if !self.open {
            self.sink.begin()?;
            self.open = true;
            self.opened = Instant::now();
        }
        Ok(())
    }

    /// Time to commit: enough events, or the write lock held long enough that another
    /// writer (`tokmon record` in a hook) should get its turn well within its busy timeout.
    /// A bulk load goes by time only (its cost is in the commit, which builds the indexes).
    fn due(&self) -> bool {
        self.open
            && !self.sink.private()
            && if self.sink.bulk_loading() {
                self.opened.elapsed() >= BULK_COMMIT_AFTER
            } else {
                self.uncommitted >= COMMIT_EVENTS || self.opened.elapsed() >= COMMIT_AFTER
            }
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        self.uncommitted = 0;
        if self.open {
            self.open = false;
            self.sink.commit()?;
        }
        Ok(())
    }
}

/// Where a file's reading starts.
#[derive(Debug, Clone)]
struct Start {
    offset: u64,
    line_no: u64,
    state: Option<String>,
}

#[derive(Debug)]
struct Plan {
    path: PathBuf,
    info: FileInfo,
    /// `None`: chosen by the reader from the file's first bytes (see [`format_by_head`]);
    /// the file is then read from its start.
    format: Option<Format>,
    /// The user named the file (see [`detect_format`]).
    explicit: bool,
    size: u64,
    mtime_ns: i64,
    start: Start,
    rewritten: bool,
    /// Size and modification time are those of the last read: nothing to do.
    unchanged: bool,
}

/// The stored read state of one file.
type Stored = FileState;

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// SHA-256 of `len` bytes of `file` from `from` (fewer if the file is shorter).
fn hash_range(file: &mut File, from: u64, len: u64) -> std::io::Result<String> {
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::with_capacity(len as usize);
    file.by_ref().take(len).read_to_end(&mut buf)?;
    Ok(short_hash(&[&buf]))
}

fn fingerprints_match(path: &Path, s: &Stored) -> std::io::Result<bool> {
    let mut f = crate::regular::open_regular(path)?;
    Ok(hash_range(&mut f, 0, s.head_len)? == s.head_hash
        && hash_range(&mut f, s.offset - s.tail_len, s.tail_len)? == s.tail_hash)
}

fn plan_file(sink: &mut dyn ImportSink, c: &Candidate, opts: &Options) -> anyhow::Result<Plan> {
    let meta = match &c.meta {
        Some(m) => m.clone(),
        None => std::fs::metadata(&c.path)?,
    };
    let key = c.key.to_string_lossy().into_owned();
    let size = meta.len();
    let mtime = mtime_ns(&meta);
    let stored = sink.file_state(&key)?;
    let info = FileInfo::new(key, &c.path);
    let fresh = Start {
        offset: 0,
        line_no: 0,
        state: None,
    };
    let mut rewritten = false;
    if let Some(s) = stored {
        let format = opts.format.or_else(|| Format::from_label(&s.format));
        if let Some(format) = format.filter(|f| f.label() == s.format) {
            let plan = |start: Start, unchanged: bool| Plan {
                path: c.path.clone(),
                info: info.clone(),
                format: Some(format),
                explicit: c.explicit,
                size,
                mtime_ns: mtime,
                start,
                rewritten: false,
                unchanged,
            };
            if size == s.size && mtime == s.mtime_ns {
                return Ok(plan(
                    Start {
                        offset: s.offset,
                        line_no: s.line_no,
                        state: None,
                    },
                    true,
                ));
            }
            if size >= s.offset && fingerprints_match(&c.path, &s)? {
                let start = Start {
                    offset: s.offset,
                    line_no: s.line_no,
                    state: s.state.clone(),
                };
                return Ok(plan(start, false));
            }
        }
        // Rewritten (or now forced to another format): read again from the start. Events
        // already stored keep their unique keys, so lines that did not change add nothing.
        rewritten = true;
    }
    // Unless the name decides, the reader sniffs the format from the first bytes it reads
    // anyway: no file is opened twice, and no reading waits for every file to be sniffed.
    let format = opts.format.or_else(|| format_by_name(&c.path));
    Ok(Plan {
        path: c.path.clone(),
        info,
        format,
        explicit: c.explicit,
        size,
        mtime_ns: mtime,
        start: fresh,
        rewritten,
        unchanged: false,
    })
}

/// Write a file's read state (inside the caller's transaction).
fn save_state(
    sink: &mut dyn ImportSink,
    plan: &Plan,
    format: Format,
    offset: u64,
    line_no: u64,
    state: Option<String>,
    finished: bool,
) -> anyhow::Result<()> {
    let mut f = crate::regular::open_regular(&plan.path)?;
    let head_len = offset.min(FINGERPRINT_LEN);
    let tail_len = offset.min(FINGERPRINT_LEN);
    let head_hash = hash_range(&mut f, 0, head_len)?;
    let tail_hash = hash_range(&mut f, offset - tail_len, tail_len)?;
    let stored = FileState {
        format: format.label().to_string(),
        // Halfway through a file, the size recorded is that of what was read, so the next
        // import does not take the file for unchanged and reads the rest.
        size: if finished { plan.size } else { offset },
        mtime_ns: plan.mtime_ns,
        offset,
        line_no,
        head_len,
        head_hash,
        tail_len,
        tail_hash,
        state,
    };
    sink.save_file_state(&plan.info.key, &stored)
}

fn trim_eol(mut line: &[u8]) -> &[u8] {
    if let Some(l) = line.strip_suffix(b"\n") {
        line = l;
    }
    if let Some(l) = line.strip_suffix(b"\r") {
        line = l;
    }
    line
}

fn odd_quotes(bytes: &[u8]) -> bool {
    bytes.iter().filter(|b| **b == b'"').count() % 2 == 1
}

/// How many bytes a reader asks the file for at once: few enough that its buffer stays in
/// the core's cache, where the kernel copies to and the parser reads from (reading the
/// compact benchmark corpus in 1 MiB chunks took 2.5× the kernel time of 128 KiB chunks).
const READ_CHUNK: usize = 1 << 17;

/// The complete lines of a file, read in large chunks and handed out as slices of the
/// chunk (no copy per line). A last line without its newline is never handed out: it may be
/// half-written. The buffer is the reader thread's, used again for each file.
struct Records<'b, R> {
    src: R,
    buf: &'b mut Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
}

impl<'b, R: Read> Records<'b, R> {
    fn new(src: R, buf: &'b mut Vec<u8>) -> Records<'b, R> {
        Records {
            src,
            buf,
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// Read more bytes after `buf[..end]`, keeping `buf[start..end]` (moved to the front).
    /// `false` at the end of the file.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK / 2 {
            // A record longer than what is held: grow (as a line reader would).
            let want = (self.end + READ_CHUNK).max(self.buf.len() * 2);
            self.buf.resize(want, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The first `n` unread bytes (fewer at the end of the file), read now if need be.
    fn head(&mut self, n: usize) -> std::io::Result<&[u8]> {
        while self.end - self.start < n && self.fill()? {}
        Ok(&self.buf[self.start..self.end.min(self.start + n)])
    }

    /// The next complete record (with its newline) and how many lines it spans: one line,
    /// or with `csv`, as many as it takes to close its quotes. `None` when no complete
    /// record is left.
    fn next(&mut self, csv: bool) -> std::io::Result<Option<(&[u8], u64)>> {
        // Where the search for the record's end goes on (relative to `start`).
        let mut scanned = 0;
        let mut lines = 0u64;
        loop {
            let unread = &self.buf[self.start + scanned..self.end];
            match memchr::memchr(b'\n', unread) {
                Some(i) => {
                    scanned += i + 1;
                    lines += 1;
                    let record = &self.buf[self.start..self.start + scanned];
                    if csv && odd_quotes(record) {
                        continue;
                    }
                    let at = self.start;
                    self.start += scanned;
                    return Ok(Some((&self.buf[at..at + scanned], lines)));
                }
                None => {
                    scanned = self.end - self.start;
                    if !self.fill()? {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// Read one file from its planned start (on the reader thread) and send its events in
/// batches. Strict: the file's events are held until its end and sent only when it had no bad
/// line (the rest of a file with a bad line is still read, to report every bad line); nothing
/// is sent for a rejected file, so its offset does not move. (No savepoints to undo a file:
/// SQLite copies every page they touch to a sub-journal, which doubles the cost of an import.)
fn read_file(
    index: usize,
    plan: &Plan,
    opts: &Options,
    channel: &Channel,
    scratch: &mut Scratch,
    part: &mut ImportSummary,
) -> anyhow::Result<()> {
    let Scratch {
        buf,
        replies,
        spare,
    } = scratch;
    replies.clear();
    let send = &channel.send;
    let gone = || anyhow::anyhow!("the writer stopped");
    let mut file = crate::regular::open_regular(&plan.path)?;
    file.seek(SeekFrom::Start(plan.start.offset))?;
    let mut reader = Records::new(file, buf);
    let format = match plan.format {
        Some(f) => f,
        // Not chosen yet: the file is read from its start, and its head decides.
        None => match format_by_head(&plan.path, plan.explicit, reader.head(SNIFF_LEN)?) {
            Some(f) => f,
            None => {
                part.files_skipped += 1;
                send.send(Msg::Skipped { file: index })
                    .map_err(|_| gone())?;
                return Ok(());
            }
        },
    };
    let mut parser = make_parser(
        format,
        plan.info.clone(),
        plan.start.state.as_deref(),
        opts.naive_zone,
    );
    let limit = parser.read_limit(&plan.path)?.unwrap_or(u64::MAX);
    let mut offset = plan.start.offset;
    let mut line_no = plan.start.line_no;
    // Strict mode holds the whole file's events here.
    let mut batch: Vec<NewEvent> = channel.empty_batch(spare);
    // The event the next line is parsed into.
    let mut slot = spare.pop().unwrap_or_default();
    let mut bad_in_file = false;
    let (mut sent_offset, mut sent_line) = (offset, line_no);
    part.files_read += 1;
    if plan.rewritten {
        part.files_rewritten += 1;
    }
    loop {
        if offset >= limit {
            break;
        }
        // A CSV record may span lines inside quotes.
        let Some((record, lines)) = reader.next(format == Format::Csv)? else {
            // End of file, or a half-written last line: left for the next read.
            break;
        };
        let rec_offset = offset;
        let rec_line = line_no + 1;
        let len = record.len() as u64;
        offset += len;
        line_no += lines;
        part.lines += lines;
        part.bytes += len;
        let mut line = trim_eol(record);
        if rec_offset == 0 {
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parser.parse_into(line, rec_line, rec_offset, &mut slot) {
            Ok(true) => {
                if !bad_in_file {
                    let ev = std::mem::take(&mut slot);
                    slot = match push_event(&mut batch, replies, ev) {
                        None => spare.pop().unwrap_or_default(),
                        Some(folded) => {
                            part.duplicates += 1;
                            folded
                        }
                    };
                }
            }
            Ok(false) => {}
            Err(reason) => {
                part.add_bad(&plan.path, rec_line, reason.to_string());
                if opts.strict {
                    bad_in_file = true;
                    batch.clear();
                    replies.clear();
                }
            }
        }
        if !opts.strict && batch.len() >= BATCH_EVENTS {
            let events = std::mem::replace(&mut batch, channel.empty_batch(spare));
            replies.clear();
            let msg = Msg::Events {
                file: index,
                format,
                events,
                offset,
                line_no,
                state: parser.state(),
                bytes: offset - sent_offset,
                lines: line_no - sent_line,
                end: false,
            };
            send.send(msg).map_err(|_| gone())?;
            sent_offset = offset;
            sent_line = line_no;
        }
    }
    if bad_in_file {
        part.rejected_files.push(plan.path.clone());
        send.send(Msg::Failed).map_err(|_| gone())?;
        return Ok(());
    }
    let msg = Msg::Events {
        file: index,
        format,
        events: batch,
        offset,
        line_no,
        state: parser.state(),
        bytes: offset - sent_offset,
        lines: line_no - sent_line,
        end: true,
    };
    send.send(msg).map_err(|_| gone())?;
    Ok(())
}

/// What a reader thread keeps from file to file (grown once, not per file).
#[derive(Default)]
struct Scratch {
    /// The bytes read (see [`Records`]).
    buf: Vec<u8>,
    /// Where each Claude Code reply of the batch is, to fold its later lines into it.
    replies: Replies,
    /// Events written, parsed into again (no allocation per text field and event).
    spare: Vec<NewEvent>,
}

/// Where each Claude Code reply of a batch is, by the hash of its key (see [`push_event`]).
type Replies = std::collections::HashMap<
    i64,
    usize,
    std::hash::BuildHasherDefault<crate::store::native::KeyHashHasher>,
>;

/// Add an event to a batch; a later line of a Claude Code reply already in the batch is
/// folded into it (largest counts, first line's time) and given back.
fn push_event(batch: &mut Vec<NewEvent>, replies: &mut Replies, ev: NewEvent) -> Option<NewEvent> {
    if ev.source == crate::store::native::CORRECTABLE_SOURCE
        && let Some(key) = ev.unique_key.as_deref()
    {
        let hash = crate::store::native::key_hash(key);
        let same = |i: &usize| batch[*i].unique_key.as_deref() == Some(key);
        // Another key of the same hash (never seen in practice) is looked for in the batch.
        let found = match replies.get(&hash) {
            Some(i) if same(i) => Some(*i),
            Some(_) => (0..batch.len()).find(|i| same(i)),
            None => {
                replies.insert(hash, batch.len());
                None
            }
        };
        if let Some(i) = found {
            batch[i].merge_max(&ev);
            return Some(ev);
        }
    }
    batch.push(ev);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    use crate::store::native::tests::all_rows as rows;

    /// Log files with replies over several lines, a duplicate and several sessions.
    fn logs(dir: &Path) -> PathBuf {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        for f in 0..3 {
            let mut text = String::new();
            for i in 0..40 {
                let id = format!("msg_{f}_{}", i / 2);
                text.push_str(&format!(
                    "{{\"type\":\"assistant\",\"timestamp\":\"2025-11-0{}T10:{:02}:00Z\",\"sessionId\":\"s{f}\",\"requestId\":\"req_{id}\",\"message\":{{\"id\":\"{id}\",\"model\":\"claude-sonnet-4-5\",\"usage\":{{\"input_tokens\":{},\"output_tokens\":{},\"cache_creation_input_tokens\":5,\"cache_read_input_tokens\":7,\"cache_creation\":{{\"ephemeral_5m_input_tokens\":2,\"ephemeral_1h_input_tokens\":3}}}}}}}}\n",
                    f + 1,
                    i,
                    10 + i,
                    i % 2 * 100 + 1,
                ));
            }
            // The same file again under another name: all duplicates.
            let name = if f == 2 {
                "copy.jsonl".to_string()
            } else {
                format!("s{f}.jsonl")
            };
            let text = if f == 2 {
                std::fs::read_to_string(logs.join("s0.jsonl")).unwrap()
            } else {
                text
            };
            std::fs::write(logs.join(name), text).unwrap();
        }
        logs
    }

    /// What an import leaves in a database: every column of the events, the rollup and the
    /// files' read state (but when it was saved).
    fn contents(db: &Path) -> Vec<Vec<Vec<String>>> {
        let c = Connection::open(db).unwrap();
        [
            "SELECT * FROM events ORDER BY id",
            "SELECT * FROM rollup_15m ORDER BY 1, 2, 3, 4",
            "SELECT path, format, size, mtime_ns, \"offset\", line_no, head_len, head_hash,
                    tail_len, tail_hash, state FROM import_files ORDER BY path",
        ]
        .iter()
        .map(|sql| rows(&c, sql))
        .collect()
    }

    #[test]
    fn a_first_import_builds_its_database_aside_with_the_same_contents() {
        let dir = tempfile::tempdir().unwrap();
        let logs = logs(dir.path());
        let opts = Options::default();
        let in_place = dir.path().join("in_place.db");
        let conn = crate::store::native::open_rw(&in_place).unwrap();
        let want = import_paths(&conn, std::slice::from_ref(&logs), &opts, None).unwrap();
        // The CHECK constraints were off while the import wrote, and are on again.
        let ignored: bool = conn
            .query_row("PRAGMA ignore_check_constraints", [], |r| r.get(0))
            .unwrap();
        assert!(!ignored);
        drop(conn);
        let db = dir.path().join("new").join("t.db");
        let got = import_to(&db, std::slice::from_ref(&logs), &opts, None).unwrap();
        assert_eq!(
            (got.inserted, got.duplicates, got.corrected),
            (want.inserted, want.duplicates, want.corrected)
        );
        assert_eq!(want.inserted, 40);
        // Nothing but the database is left: no temporary file, no WAL.
        assert_eq!(names(&dir.path().join("new")), ["t.db"]);
        let c = Connection::open(&db).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let schema = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name";
        let user_version = "PRAGMA user_version";
        let other = Connection::open(&in_place).unwrap();
        assert_eq!(rows(&c, schema), rows(&other, schema));
        assert_eq!(rows(&c, user_version), rows(&other, user_version));
        drop((c, other));
        assert_eq!(contents(&db), contents(&in_place));
        // A second import goes into it the usual way, and finds everything there.
        let again = import_to(&db, &[logs], &opts, None).unwrap();
        assert_eq!(again.inserted, 0);
    }

    #[test]
    fn a_failed_first_import_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Two counts whose sum in one rollup row is too large for SQLite: the import fails
        // while writing.
        let log = dir.path().join("big.jsonl");
        let line = |s: u32| {
            format!(
                "{{\"ts\":\"2025-01-01T00:00:0{s}Z\",\"model\":\"m\",\"input_tokens\":{}}}\n",
                i64::MAX
            )
        };
        std::fs::write(&log, line(1) + &line(2)).unwrap();
        let db_dir = dir.path().join("db");
        std::fs::create_dir(&db_dir).unwrap();
        let db = db_dir.join("t.db");
        assert!(import_to(&db, &[log], &Options::default(), None).is_err());
        assert!(names(&db_dir).is_empty(), "{:?}", names(&db_dir));
    }

    /// A progress that makes a database at `db`, with one event, when the import starts.
    struct Intruder {
        db: PathBuf,
    }

    impl Progress for Intruder {
        fn start(&self, _files: u64, _bytes: u64) {
            if !self.db.exists() {
                let mut w = crate::store::Writer::open(&self.db).unwrap();
                let e = NewEvent {
                    ts_ms: 1_700_000_000_000,
                    model: "theirs".into(),
                    input_tokens: 1,
                    source: "record".into(),
                    ..Default::default()
                };
                w.record(&e).unwrap();
            }
        }
        fn advance(&self, _bytes: u64, _files_done: u64, _lines: u64) {}
    }

    #[test]
    fn a_database_made_meanwhile_is_imported_into_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let logs = logs(dir.path());
        let db_dir = dir.path().join("db");
        let db = db_dir.join("t.db");
        let intruder = Intruder { db: db.clone() };
        let s = import_to(&db, &[logs], &Options::default(), Some(&intruder)).unwrap();
        assert_eq!(s.inserted, 40);
        let c = Connection::open(&db).unwrap();
        let models = rows(
            &c,
            "SELECT model, COUNT(*) FROM events GROUP BY 1 ORDER BY 1",
        );
        assert_eq!(
            models,
            [
                ["Text(\"claude-sonnet-4-5\")", "Integer(40)"],
                ["Text(\"theirs\")", "Integer(1)"]
            ]
        );
        drop(c);
        let left: Vec<String> = names(&db_dir)
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn project_dir_from_path() {
        assert_eq!(
            claude_project_dir(Path::new("/h/.claude/projects/-home-me-app/abc.jsonl")).as_deref(),
            Some("-home-me-app")
        );
        assert_eq!(
            claude_project_dir(Path::new("/h/.claude/projects/p/abc/subagents/x.jsonl")).as_deref(),
            Some("p")
        );
        assert_eq!(claude_project_dir(Path::new("/h/projects/abc.jsonl")), None);
        assert_eq!(claude_project_dir(Path::new("/h/x/abc.jsonl")), None);
    }

    #[test]
    fn sniffing() {
        let codex =
            br#"{"timestamp":"2025-09-01T00:00:00Z","type":"session_meta","payload":{"id":"s"}}"#;
        assert_eq!(sniff(codex), Some(Format::Codex));
        let cc = br#"{"type":"assistant","message":{"usage":{"input_tokens":1}}}"#;
        assert_eq!(sniff(cc), Some(Format::ClaudeCode));
        let generic =
            b"not json\n{\"ts\":\"2025-01-01T00:00:00Z\",\"model\":\"m\",\"input_tokens\":3}\n";
        assert_eq!(sniff(generic), Some(Format::Jsonl));
        assert_eq!(sniff(b"{\"display\":\"hello\",\"timestamp\":1}\n"), None);
        // Spaces around values, escaped keys, and values of another kind than expected.
        let spaced = b"{ \"message\" : { \"usage\" : {\"input_tokens\":1} } }";
        assert_eq!(sniff(spaced), Some(Format::ClaudeCode));
        let escaped = br#"{"\u0074ype": "event_msg", "payload": {}}"#;
        assert_eq!(sniff(escaped), Some(Format::Codex));
        let not_object = br#"{"message":{"usage":[1]},"model":3,"input_tokens":1}"#;
        assert_eq!(sniff(not_object), None);
        assert_eq!(
            sniff(br#"{"model" : "m", "input_tokens": 2}"#),
            Some(Format::Jsonl)
        );
    }

    #[test]
    fn content_goes_before_path_shape() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("projects/bot/logs/usage.jsonl");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "{\"ts\":1,\"model\":\"m\",\"input_tokens\":1}\n").unwrap();
        assert_eq!(detect_format(&p, false).unwrap(), Some(Format::Jsonl));
        std::fs::write(&p, "").unwrap();
        assert_eq!(detect_format(&p, false).unwrap(), Some(Format::ClaudeCode));
        let other = dir.path().join("notes.jsonl");
        std::fs::write(&other, "{\"a\":1}\n").unwrap();
        assert_eq!(detect_format(&other, false).unwrap(), None);
        assert_eq!(detect_format(&other, true).unwrap(), Some(Format::Jsonl));
    }

    /// The readers sniff each file's format from the first bytes they read (no planning
    /// pass opens every file first): the same format as [`detect_format`] for every file, the
    /// files that look like no log skipped (and counted), and the events of every file in its
    /// lines' order whichever reader read it.
    #[test]
    fn readers_choose_the_formats_detect_format_chooses() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let cc = |i: usize| {
            format!(
                "{{\"type\":\"assistant\",\"timestamp\":\"2025-11-18T21:39:{:02}.5Z\",\"sessionId\":\"s\",\"uuid\":\"u{i}\",\"requestId\":\"r{i}\",\"message\":{{\"id\":\"m{i}\",\"model\":\"claude-x\",\"usage\":{{\"input_tokens\":{i},\"output_tokens\":1}}}}}}\n",
                i % 60
            )
        };
        let long_first = format!(
            "{}\n{{\"ts\":1,\"model\":\"m\",\"input_tokens\":1}}\n",
            "x".repeat(SNIFF_LEN)
        );
        let files: Vec<(&str, String)> = vec![
            ("projects/p/a.jsonl", (0..50).map(cc).collect()),
            ("projects/p/empty.jsonl", String::new()),
            ("projects/p/summary.jsonl", "{\"type\":\"summary\",\"summary\":\"x\"}\n".into()),
            ("projects/p/b.jsonl", (50..120).map(cc).collect()),
            (
                "projects/p/codex.jsonl",
                "{\"timestamp\":\"2025-09-01T00:00:00Z\",\"type\":\"session_meta\",\"payload\":{\"id\":\"s\"}}\n".into(),
            ),
            ("logs/usage.jsonl", "{\"ts\":\"2025-11-01T10:00:00Z\",\"model\":\"m\",\"input_tokens\":3}\n".into()),
            ("logs/notes.jsonl", "{\"display\":\"hello\",\"timestamp\":1}\n".into()),
            // The generic line comes after the first 64 KiB: not seen, so no log.
            ("logs/late.jsonl", long_first),
            ("logs/u.csv", "ts,model,input_tokens\n2025-11-02 08:00:00,m,10\n".into()),
        ];
        for (rel, text) in &files {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
        }
        let db = root.join("t.db");
        let conn = crate::store::native::open_rw(&db).unwrap();
        let roots = [root.join("projects"), root.join("logs")];
        let s = import_paths(&conn, &roots, &Options::default(), None).unwrap();
        assert_eq!((s.files_found, s.files_skipped), (7, 2), "{s:?}");
        assert_eq!(s.files_read, 7);
        assert_eq!(s.bad_lines, 0, "{:?}", s.bad);
        let stored: std::collections::HashMap<String, String> = conn
            .prepare("SELECT path, format FROM import_files")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (rel, _) in &files {
            let p = root.join(rel);
            let key = std::fs::canonicalize(&p).unwrap();
            let want = detect_format(&p, false).unwrap().map(Format::label);
            assert_eq!(
                stored.get(key.to_str().unwrap()).map(String::as_str),
                want,
                "{rel}"
            );
        }
        // Each file's events in its lines' order: ids grow with the line.
        let keys: Vec<String> = conn
            .prepare(
                "SELECT unique_key FROM events WHERE source = 'import:claude-code' ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<String> = (0..120).map(|i| format!("cc:m{i}:r{i}")).collect();
        assert_eq!(keys, want);
        // A file named by the user is read as generic JSONL when nothing else fits.
        let named = root.join("logs/notes.jsonl");
        let s = import_paths(&conn, &[named], &Options::default(), None).unwrap();
        assert_eq!((s.files_found, s.files_skipped, s.files_read), (1, 0, 1));
    }

    #[cfg(unix)]
    #[test]
    fn found_files_keyed_by_canonical_path() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(logs.join("sub")).unwrap();
        std::fs::write(logs.join("a.jsonl"), "{}\n").unwrap();
        std::fs::write(logs.join("sub/b.jsonl"), "{}\n").unwrap();
        // A link to a file elsewhere, and the same directory reached through a link.
        let other = dir.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("c.jsonl"), "{}\n").unwrap();
        std::os::unix::fs::symlink(other.join("c.jsonl"), logs.join("link.jsonl")).unwrap();
        std::os::unix::fs::symlink(&logs, dir.path().join("alias")).unwrap();
        let found = collect_files(&[logs.clone(), dir.path().join("alias")]).unwrap();
        let keys: Vec<PathBuf> = found.iter().map(|c| c.key.clone()).collect();
        for c in &found {
            assert_eq!(c.key, std::fs::canonicalize(&c.path).unwrap());
            assert!(c.meta.as_ref().is_some_and(|m| m.is_file()));
        }
        // Each file once, though the alias reaches the same three.
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert!(keys.contains(&std::fs::canonicalize(other.join("c.jsonl")).unwrap()));
    }

    /// A reader that hands out at most `n` bytes a call (as a pipe or a slow disk may).
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn records(data: &[u8], step: usize, csv: bool) -> Vec<(Vec<u8>, u64)> {
        let mut buf = b"left from the file before".to_vec();
        let mut r = Records::new(Trickle(data, step), &mut buf);
        let mut out = Vec::new();
        while let Some((rec, lines)) = r.next(csv).unwrap() {
            out.push((rec.to_vec(), lines));
        }
        out
    }

    #[test]
    fn records_are_whole_lines_whatever_the_reads() {
        let long = "x".repeat(3 * READ_CHUNK + 17);
        let data = format!("a\n\n{long}\nb\r\nhalf-written");
        for step in [1, 7, 4096, usize::MAX] {
            if step == 1 && data.len() > 100_000 {
                // One byte a call over megabytes: covered by the short input below.
                let short = records(b"a\nbc\nd", 1, false);
                assert_eq!(short, vec![(b"a\n".to_vec(), 1), (b"bc\n".to_vec(), 1)]);
                continue;
            }
            let got = records(data.as_bytes(), step, false);
            let want: Vec<(Vec<u8>, u64)> = ["a\n", "\n", &format!("{long}\n"), "b\r\n"]
                .iter()
                .map(|l| (l.as_bytes().to_vec(), 1))
                .collect();
            assert_eq!(got, want, "reads of {step} bytes");
        }
        // A CSV record spans lines until its quotes close; an unclosed last one is left.
        let csv = b"h1,h2\n\"multi\nline\",2\n3,4\n\"open\n";
        for step in [1, 5, usize::MAX] {
            assert_eq!(
                records(csv, step, true),
                vec![
                    (b"h1,h2\n".to_vec(), 1),
                    (b"\"multi\nline\",2\n".to_vec(), 2),
                    (b"3,4\n".to_vec(), 1)
                ]
            );
        }
    }

    #[test]
    fn hashes_are_stable() {
        assert_eq!(short_hash(&[b"a", b"bc"]).len(), 32);
        assert_ne!(short_hash(&[b"a", b"bc"]), short_hash(&[b"ab", b"c"]));
    }
}

//! Finding agent logs without being told, and keeping the database in step with them.
//!
//! When no database is named (no `--db`, `TOKMON_DB` or config `db`), tokmon uses its default
//! database and the logs Claude Code and Codex write where they always write them:
//! `$CLAUDE_CONFIG_DIR` (a comma-separated list; each entry's `projects/`), else
//! `~/.config/claude/projects` and `~/.claude/projects`; `$CODEX_HOME/sessions`, else
//! `~/.codex/sessions`. The config key `logs` adds paths (and is all there is when discovery is
//! off: `discover = false` or `--no-discover`).
//!
//! [`refresh`] is the "never stale" check of `report`, `status` and `statusline`: it stats the
//! log files and compares them with the per-file state kept in the database (one query), and
//! runs the ordinary incremental import only when something changed.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::import::{ImportSummary, Options, collect_files, import_into, import_to_fresh};
use crate::store::native::FreshDb;
use crate::timefmt::Zone;

/// Where the agents' logs are looked for, before checking what exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// `claude-code` or `codex`.
    pub agent: &'static str,
    pub path: PathBuf,
    /// Where the path came from (an environment variable or the default).
    pub from: String,
}

/// The places Claude Code and Codex write their logs, given the environment and the home
/// directory (passed in so tests need not touch the process environment).
pub fn places(env: &dyn Fn(&str) -> Option<OsString>, home: Option<&Path>) -> Vec<Place> {
    let mut out = Vec::new();
    let claude_dirs: Vec<PathBuf> = env("CLAUDE_CONFIG_DIR")
        .map(|v| {
            v.to_string_lossy()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| expand_home(s, home))
                .collect()
        })
        .unwrap_or_default();
    if claude_dirs.is_empty() {
        if let Some(h) = home {
            for dir in [h.join(".config/claude"), h.join(".claude")] {
                out.push(Place {
                    agent: "claude-code",
                    path: dir.join("projects"),
                    from: "default".into(),
                });
            }
        }
    } else {
        for dir in claude_dirs {
            out.push(Place {
                agent: "claude-code",
                path: dir.join("projects"),
                from: "CLAUDE_CONFIG_DIR".into(),
            });
        }
    }
    match env("CODEX_HOME").filter(|v| !v.is_empty()) {
        Some(v) => out.push(Place {
            agent: "codex",
            path: expand_home(&v.to_string_lossy(), home).join("sessions"),
            from: "CODEX_HOME".into(),
        }),
        None => {
            if let Some(h) = home {
                out.push(Place {
                    agent: "codex",
                    path: h.join(".codex/sessions"),
                    from: "default".into(),
                });
            }
        }
    }
    out
}

/// `~` and `~/…` become the home directory.
pub fn expand_home(s: &str, home: Option<&Path>) -> PathBuf {
    match (s.strip_prefix('~'), home) {
        (Some(""), Some(h)) => h.to_path_buf(),
        (Some(rest), Some(h)) if rest.starts_with('/') => h.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(s),
    }
}

fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf())
}

/// What the process environment and the config say about log paths.
#[derive(Debug, Clone, Default)]
pub struct LogPaths {
    /// Discovered places (existing or not), empty when discovery is off.
    pub places: Vec<Place>,
    /// The config's `logs` paths.
    pub configured: Vec<PathBuf>,
}

impl LogPaths {
    /// The paths to import: discovered places that exist, then the configured paths that exist.
    pub fn existing(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for p in self
            .places
            .iter()
            .map(|p| &p.path)
            .chain(self.configured.iter())
        {
            if p.exists() && !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// Every path looked at, for messages.
    pub fn looked_at(&self) -> Vec<String> {
        self.places
            .iter()
            .map(|p| &p.path)
            .chain(self.configured.iter())
            .map(|p| p.display().to_string())
            .collect()
    }
}

/// The log paths of this run: the places discovery looks at when `discover` (the caller
/// decides: only when no database was named, as discovery feeds the default database, and it
/// is not turned off), and the config's `logs`, which always apply.
pub fn log_paths(discover: bool, logs: &[PathBuf]) -> LogPaths {
    let home = home_dir();
    let places = if discover {
        places(&|k| std::env::var_os(k), home.as_deref())
    } else {
        Vec::new()
    };
    let configured = logs
        .iter()
        .map(|p| expand_home(&p.to_string_lossy(), home.as_deref()))
        .collect();
    LogPaths { places, configured }
}

/// Whether the database may be written by an import: tokmon's own, or not there yet.
pub fn importable(db: &Path) -> bool {
    // A PostgreSQL database: the writer refuses one that is not tokmon's.
    crate::store::pg::is_url(db)
        || !db.exists()
        || crate::store::detect_path(db)
            .ok()
            .flatten()
            .is_none_or(|k| k.is_native())
}

/// Whether any log file under `paths` differs (size, modification time) from the state the
/// database keeps, or is not known to it. Only stats files; one query reads the whole state.
pub fn changed(db: &Path, paths: &[PathBuf]) -> anyhow::Result<bool> {
    // A PostgreSQL database: the import looks at each file's state itself.
    if crate::store::pg::is_url(db) || !db.exists() {
        return Ok(true);
    }
    let conn = Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    changed_in(&conn, paths)
}

/// [`changed`], read through a connection to the database that is already open.
pub fn changed_in(conn: &Connection, paths: &[PathBuf]) -> anyhow::Result<bool> {
    let known = match stored_state(conn) {
        Ok(k) => k,
        // No import_files table yet (a database only `record` wrote, or an old one).
        Err(_) => return Ok(true),
    };
    for c in collect_files(paths)? {
        let Ok(meta) = std::fs::metadata(&c.path) else {
            return Ok(true);
        };
        let key = match known.get(c.path.to_string_lossy().as_ref()) {
            Some(k) => Some(k),
            None => std::fs::canonicalize(&c.path)
                .ok()
                .and_then(|p| known.get(p.to_string_lossy().as_ref())),
        };
        match key {
            Some(&(size, mtime)) if size == meta.len() && mtime == mtime_ns(&meta) => {}
            _ => return Ok(true),
        }
    }
    Ok(false)
}

type FileState = HashMap<String, (u64, i64)>;

fn stored_state(conn: &Connection) -> rusqlite::Result<FileState> {
    let mut stmt = conn.prepare("SELECT path, size, mtime_ns FROM import_files")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get::<_, i64>(1)? as u64, r.get(2)?),
        ))
    })?;
    rows.collect()
}

/// Modification time in unix nanoseconds, as the importer stores it.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// Import what is new in `paths` into `db` when anything changed. `None`: nothing to do.
pub fn refresh_paths(
    db: &Path,
    paths: &[PathBuf],
    opts: &Options,
) -> anyhow::Result<Option<ImportSummary>> {
    if paths.is_empty() || !importable(db) || !changed(db, paths)? {
        return Ok(None);
    }
    let mut w = match crate::store::Writer::open(db) {
        Ok(w) => w,
        // A PostgreSQL database that is not tokmon's (the team service's): only read, as a
        // foreign file is.
        Err(e)
            if crate::store::pg::is_url(db)
                && crate::error::exit_code_for(&e) == crate::error::exit::BAD_INPUT =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    Ok(Some(import_into(&mut w, paths, opts, None)?))
}

/// The "never stale" check: import what is new in the logs at `paths` into the database
/// before answering (naive times read in `naive_zone`). Problems are told on stderr and never
/// stop the command.
pub fn refresh(db: &Path, paths: &[PathBuf], naive_zone: Zone) {
    let opts = Options {
        naive_zone,
        ..Options::default()
    };
    // No database yet (a first `report` or `status`): built aside and given its name when
    // complete, as a first `tokmon import` does, much faster than into a new one in place.
    // (Not for the status line: Claude Code may call it again before a first import is done,
    // and the next call had better wait for that one than import everything again.)
    let result = if paths.is_empty() {
        Ok(None)
    } else {
        FreshDb::create(db).and_then(|fresh| match fresh {
            Some(fresh) => import_to_fresh(Some(fresh), db, paths, &opts, None).map(Some),
            None => refresh_paths(db, paths, &opts),
        })
    };
    match result {
        Ok(Some(s)) => {
            tracing::info!("auto-import: {}", s.one_line());
            if s.bad_lines > 0 || !s.errors.is_empty() {
                crate::error::tell!(
                    "tokmon: importing new log lines: {} bad line{} skipped, {} file{} unreadable \
                     (`tokmon import` shows which)",
                    s.bad_lines,
                    if s.bad_lines == 1 { "" } else { "s" },
                    s.errors.len(),
                    if s.errors.len() == 1 { "" } else { "s" }
                );
            }
        }
        Ok(None) => {}
        Err(e) => crate::error::tell!(
            "tokmon: could not import new log lines: {}",
            crate::text::printable_lines(&format!("{e:#}"))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn paths(p: &[Place]) -> Vec<String> {
        p.iter().map(|p| p.path.display().to_string()).collect()
    }

    #[test]
    fn defaults_under_home() {
        let p = places(&env_of(&[]), Some(Path::new("/h")));
        assert_eq!(
            paths(&p),
            [
                "/h/.config/claude/projects",
                "/h/.claude/projects",
                "/h/.codex/sessions"
            ]
        );
        assert!(places(&env_of(&[]), None).is_empty());
    }

    #[test]
    fn claude_config_dir_is_a_comma_separated_list() {
        let env = env_of(&[("CLAUDE_CONFIG_DIR", "/a, ~/b,,"), ("CODEX_HOME", "/cx")]);
        let p = places(&env, Some(Path::new("/h")));
        assert_eq!(paths(&p), ["/a/projects", "/h/b/projects", "/cx/sessions"]);
        assert_eq!(p[0].from, "CLAUDE_CONFIG_DIR");
        assert_eq!(p[2].from, "CODEX_HOME");
    }

    #[test]
    fn tilde_expansion() {
        let h = Some(Path::new("/h"));
        assert_eq!(expand_home("~", h), PathBuf::from("/h"));
        assert_eq!(expand_home("~/x", h), PathBuf::from("/h/x"));
        assert_eq!(expand_home("~x", h), PathBuf::from("~x"));
        assert_eq!(expand_home("/abs", h), PathBuf::from("/abs"));
    }

    fn cc_line(id: &str, ts: &str) -> String {
        format!(
            r#"{{"type":"assistant","timestamp":"{ts}","sessionId":"s","requestId":"r{id}","cwd":"/w","message":{{"id":"m{id}","model":"claude-sonnet-4-5","usage":{{"input_tokens":10,"output_tokens":5}}}}}}"#
        ) + "\n"
    }

    #[test]
    fn refresh_imports_only_when_something_changed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("projects/p");
        std::fs::create_dir_all(&logs).unwrap();
        let file = logs.join("s.jsonl");
        std::fs::write(&file, cc_line("1", "2025-01-01T00:00:00Z")).unwrap();
        let db = dir.path().join("t.db");
        let roots = vec![dir.path().join("projects")];
        let opts = Options::default();
        assert!(changed(&db, &roots).unwrap());
        let s = refresh_paths(&db, &roots, &opts).unwrap().unwrap();
        assert_eq!(s.inserted, 1);
        assert!(!changed(&db, &roots).unwrap());
        assert!(refresh_paths(&db, &roots, &opts).unwrap().is_none());
        let mut text = std::fs::read_to_string(&file).unwrap();
        text.push_str(&cc_line("2", "2025-01-01T00:01:00Z"));
        std::fs::write(&file, text).unwrap();
        assert!(changed(&db, &roots).unwrap());
        assert_eq!(
            refresh_paths(&db, &roots, &opts).unwrap().unwrap().inserted,
            1
        );
        // A new file is a change too.
        std::fs::write(logs.join("t.jsonl"), cc_line("3", "2025-01-01T00:02:00Z")).unwrap();
        assert!(changed(&db, &roots).unwrap());
    }
}

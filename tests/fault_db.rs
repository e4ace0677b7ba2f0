//! Fault tests for database files: a database tokmon did not make is refused before anything
//! is written to it (byte-identical afterwards, no WAL switch, no retries), a foreign database
//! locked by its writer says so, and concurrent importers on a new database all succeed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Sandbox, bytes, json};

fn sqlite(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

/// Every writing command refuses `db` with exit 2 and a one-line message containing `says`,
/// at once, and leaves the file byte-identical with no side files.
fn refused_untouched(sb: &Sandbox, db: &Path, says: &str) {
    let before = bytes(db);
    let log = sb.path("ok.jsonl");
    std::fs::write(&log, "{\"ts\":1,\"model\":\"m\",\"input_tokens\":1}\n").unwrap();
    let mut record = sb.cmd();
    record
        .arg("--db")
        .arg(db)
        .args(["record", "--model", "m", "--input", "1"]);
    let mut import = sb.cmd();
    import.arg("--db").arg(db).arg("import").arg(&log);
    for cmd in [&mut record, &mut import] {
        let t = Instant::now();
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains(says), "{cmd:?} should say {says:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "refused without retrying ({:?})",
            t.elapsed()
        );
        assert_eq!(bytes(db), before, "{} was changed", db.display());
        for side in ["-wal", "-shm", "-journal"] {
            let mut p = db.as_os_str().to_owned();
            p.push(side);
            assert!(
                !Path::new(&p).exists(),
                "{side} file left beside the database"
            );
        }
    }
}

#[test]
fn native_looking_events_table_missing_columns_is_refused_untouched() {
    let sb = Sandbox::new();
    let db = sb.path("looks-native.db");
    sqlite(
        &db,
        "CREATE TABLE events (id INTEGER PRIMARY KEY, ts INTEGER, model TEXT,
             input_tokens INTEGER, cache_creation_tokens INTEGER, unique_key TEXT);
         INSERT INTO events (ts, model, input_tokens) VALUES (1, 'm', 3);",
    );
    refused_untouched(&sb, &db, "did not create");
}

#[test]
fn unknown_database_is_refused_untouched() {
    let sb = Sandbox::new();
    let db = sb.path("other.db");
    sqlite(
        &db,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
    );
    refused_untouched(&sb, &db, "neither a tokmon database");
}

#[test]
fn database_of_a_newer_tokmon_is_refused_untouched() {
    let sb = Sandbox::new();
    let db = sb.path("newer.db");
    sb.cmd()
        .arg("--db")
        .arg(&db)
        .args(["record", "--model", "m", "--input", "1"])
        .assert()
        .success();
    sqlite(
        &db,
        "PRAGMA journal_mode = DELETE; PRAGMA user_version = 999;",
    );
    refused_untouched(&sb, &db, "newer tokmon");
}

#[test]
fn locked_foreign_database_says_it_is_locked() {
    let sb = Sandbox::new();
    let db = sb.path("bot.db");
    sqlite(
        &db,
        "CREATE TABLE token_usage (id INTEGER PRIMARY KEY, timestamp TEXT, provider TEXT,
             model TEXT, request_type TEXT, user_id TEXT, cost_usd REAL, input_tokens INTEGER,
             output_tokens INTEGER);
         INSERT INTO token_usage (timestamp, provider, model, input_tokens, output_tokens)
             VALUES ('2025-01-01 00:00:00', 'p', 'm', 1, 2);",
    );
    // A writer that holds an exclusive lock (rollback journal) past tokmon's busy timeout.
    let (held, release) = (
        std::sync::Arc::new(std::sync::Barrier::new(2)),
        std::sync::mpsc::channel::<()>(),
    );
    let (h2, rx) = (held.clone(), release.1);
    let p = db.clone();
    let writer = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&p).unwrap();
        conn.execute_batch(
            "BEGIN EXCLUSIVE; INSERT INTO token_usage (timestamp, model) VALUES ('2025-01-02', 'm');",
        )
        .unwrap();
        h2.wait();
        let _ = rx.recv_timeout(Duration::from_secs(30));
        conn.execute_batch("COMMIT").unwrap();
    });
    held.wait();
    let out = sb
        .cmd()
        .arg("--db")
        .arg(&db)
        .args(["report", "--range", "all"])
        .output()
        .unwrap();
    release.0.send(()).unwrap();
    writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is locked"), "{err}");
    assert!(err.contains("Try again"), "says what to do: {err}");
    assert!(!err.contains("not a SQLite database"), "{err}");
}

#[test]
fn concurrent_importers_on_a_new_database_all_succeed() {
    let sb = Sandbox::new();
    let mut files = Vec::new();
    for f in 0..4u64 {
        let p = sb.path(&format!("log{f}.jsonl"));
        let text: String = (0..400u64)
            .map(|i| {
                format!(
                    "{{\"ts\":\"2025-01-0{}T00:{:02}:{:02}Z\",\"model\":\"m{f}\",\"input_tokens\":{}}}\n",
                    f + 1,
                    i / 60,
                    i % 60,
                    i + 1
                )
            })
            .collect();
        std::fs::write(&p, text).unwrap();
        files.push(p);
    }
    for round in 0..3 {
        let db = sb.path(&format!("new{round}.db"));
        let children: Vec<_> = files
            .iter()
            .map(|f| {
                let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tokmon"));
                c.env("HOME", sb.dir.path())
                    .env("XDG_DATA_HOME", sb.path(".local/share"))
                    .env("XDG_CONFIG_HOME", sb.path(".config"))
                    .arg("--db")
                    .arg(&db)
                    .arg("import")
                    .arg(f)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect();
        for ch in children {
            let out = ch.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v = json(
            sb.cmd()
                .arg("--db")
                .arg(&db)
                .args(["report", "--range", "all", "--format", "json"]),
        );
        assert_eq!(v["totals"]["events"], 1600, "round {round}");
        assert_eq!(
            v["totals"]["input_tokens"],
            4 * (400 * 401 / 2),
            "round {round}"
        );
    }
}

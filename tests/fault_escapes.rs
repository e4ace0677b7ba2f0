//! Fault test: terminal escape sequences in every text field, from every source (a native
//! database written by `record`, a foreign tracker's database, an imported log, a sync note, a
//! budget name), never reach the terminal raw through `report`, `status` or `import` output:
//! they are shown escaped (`\x1b`). JSON carries them escaped as JSON does.

mod common;

use std::path::Path;

use common::Sandbox;

/// Retitles the window, clears the screen, rings the bell; C1 CSI; a bidi override.
const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}x";

fn assert_clean(what: &str, text: &str) {
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(
            !text.contains(bad),
            "{what}: raw {:?} reached the terminal: {text:?}",
            bad
        );
    }
}

/// Run, require `code`, and check that neither stdout nor stderr carries a raw escape; return
/// both.
fn run_clean(what: &str, cmd: &mut assert_cmd::Command, code: i32) -> (String, String) {
    let out = cmd.output().unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(code), "{what}: {e}");
    assert_clean(&format!("{what} stdout"), &o);
    assert_clean(&format!("{what} stderr"), &e);
    (o, e)
}

fn reports(sb: &Sandbox, db: &Path, label: &str) {
    for by in [
        "model",
        "agent",
        "provider",
        "session",
        "project",
        "user",
        "channel",
        "operation",
    ] {
        for format in ["table", "csv"] {
            let (o, _) = run_clean(
                &format!("{label} report --by {by} --format {format}"),
                sb.cmd()
                    .arg("--db")
                    .arg(db)
                    .args(["report", "--range", "all", "--by", by, "--format", format]),
                0,
            );
            if by == "model" && format == "table" {
                assert!(o.contains("\\x1b]0;pwned\\x07"), "shown escaped: {o}");
            }
        }
    }
    // JSON escapes by itself: the value comes back exactly.
    let out = sb
        .cmd()
        .arg("--db")
        .arg(db)
        .args(["report", "--range", "all", "--format", "json"])
        .output()
        .unwrap();
    assert_clean(
        &format!("{label} json stderr"),
        &String::from_utf8_lossy(&out.stderr),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["key"].as_str().is_some_and(|k| k.contains(EVIL))),
        "{v}"
    );
}

#[test]
fn native_database_fields_from_record() {
    let sb = Sandbox::new();
    let db = sb.path("n.db");
    let evil_model = format!("model-{EVIL}");
    sb.cmd()
        .arg("--db")
        .arg(&db)
        .args(["record", "--input", "5"])
        .args(["--model", &evil_model])
        .args(["--agent", EVIL, "--provider", EVIL])
        .args(["--session", EVIL, "--project", EVIL, "--user", EVIL])
        .args(["--channel", EVIL, "--operation", EVIL])
        .assert()
        .success();
    reports(&sb, &db, "native");
}

#[test]
fn foreign_database_fields_and_timestamps() {
    let sb = Sandbox::new();
    let db = sb.path("bot.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE token_usage (id INTEGER PRIMARY KEY, timestamp TEXT, provider TEXT,
             model TEXT, request_type TEXT, user_id TEXT, cost_usd REAL, input_tokens INTEGER,
             output_tokens INTEGER);",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO token_usage (timestamp, provider, model, request_type, user_id, input_tokens, output_tokens)
         VALUES ('2025-01-01 00:00:00', ?1, ?2, ?1, ?1, 10, 2), (?1, ?1, ?1, ?1, ?1, 1, 1)",
        [EVIL, &format!("model-{EVIL}")],
    )
    .unwrap();
    drop(conn);
    reports(&sb, &db, "foreign");
    // A foreign table whose columns do not fit: the error lists them, printable.
    let bad = sb.path("badcols.db");
    let conn = rusqlite::Connection::open(&bad).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE token_usage (id INTEGER PRIMARY KEY, provider TEXT, model TEXT,
             input_tokens INTEGER, output_tokens INTEGER, \"{}\" TEXT);",
        EVIL.replace('"', "")
    ))
    .unwrap();
    drop(conn);
    run_clean(
        "foreign columns error",
        sb.cmd().arg("--db").arg(&bad).arg("report"),
        2,
    );
}

#[test]
fn imported_log_fields_and_bad_lines() {
    let sb = Sandbox::new();
    let db = sb.path("i.db");
    let log = sb.path("evil.jsonl");
    let good = serde_json::json!({
        "ts": "2025-01-01T00:00:00Z", "model": format!("model-{EVIL}"), "agent": EVIL,
        "provider": EVIL, "input_tokens": 3
    });
    let bad_ts = serde_json::json!({"ts": EVIL, "model": "m", "input_tokens": 1});
    let bad_num = serde_json::json!({"ts": 1, "model": "m", "input_tokens": EVIL});
    std::fs::write(&log, format!("{good}\n{bad_ts}\n{bad_num}\n{EVIL}\n")).unwrap();
    let (_, err) = run_clean(
        "import",
        sb.cmd().arg("--db").arg(&db).arg("import").arg(&log),
        0,
    );
    assert!(err.contains("bad line"), "{err}");
    reports(&sb, &db, "imported");
    // A log file whose name carries an escape.
    let named = sb.path(&format!("x{}.jsonl", "\u{1b}[2J"));
    std::fs::write(&named, format!("{bad_ts}\n")).unwrap();
    run_clean(
        "import of an oddly named file",
        sb.cmd().arg("--db").arg(&db).arg("import").arg(&named),
        0,
    );
}

#[test]
fn sync_notes_and_budget_names() {
    let sb = Sandbox::new();
    let db = sb.path("s.db");
    let state = sb.path("state.json");
    sb.cmd()
        .arg("--db")
        .arg(&db)
        .arg("--state")
        .arg(&state)
        .args(["sync", "1000", "--total", "100000", "--note", EVIL])
        .assert()
        .success();
    for format in ["table", "csv"] {
        run_clean(
            &format!("status --history --format {format}"),
            sb.cmd()
                .arg("--db")
                .arg(&db)
                .arg("--state")
                .arg(&state)
                .args(["status", "--history", "--format", format]),
            0,
        );
    }
    let config = sb.path("config.toml");
    let name = EVIL.replace(['\u{7}', '"'], "");
    std::fs::write(
        &config,
        format!(
            "[[budget]]\nname = {}\nwindow = \"day\"\nlimit_tokens = 1\nmodel = [{}]\n",
            toml_str(&format!("b-{name}")),
            toml_str(&format!("m-{}*", name.replace('[', "")))
        ),
    )
    .unwrap();
    sb.cmd()
        .arg("--db")
        .arg(&db)
        .args(["record", "--model", "m", "--input", "5"])
        .assert()
        .success();
    for args in [&["status"][..], &["status", "--check"][..]] {
        let out = sb
            .cmd()
            .arg("--db")
            .arg(&db)
            .arg("--state")
            .arg(&state)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.code().is_some_and(|c| c != 2), "{args:?}: {e}");
        assert_clean(&format!("{args:?} stdout"), &o);
        assert_clean(&format!("{args:?} stderr"), &e);
    }
}

/// A TOML basic string with every control character escaped.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

//! `tokmon sync` and `tokmon status` through the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Map, Value};

/// The example of formats.md, with more keys owned by other tools.
const EXAMPLE: &str = r#"{
  "token_usage": {
    "used": 299000,
    "total": 1000000,
    "percentage": 29.9,
    "by_other_tool": {"x": [1, 2.5, "三"]},
    "sessions": [
      {"timestamp": "2025-11-18 21:39:51", "tokens": 115000, "event": "手动同步",
       "conversation_id": "manual-sync-1763473191578", "sync_type": "manual"},
      {"timestamp": "2025-11-18 20:10:02", "tokens": 15000, "event": "完成架构设计",
       "conversation_id": "manual-1", "method": "manual"},
      {"session_id": "s-7", "start_time": "2025-11-17 09:00:00", "end_time": "2025-11-17 10:00:00",
       "task": "review", "achievements": ["a", "b"]}
    ]
  },
  "status": {"text": "工作中", "reviewed_count": 10, "last_update": "2025-11-19 00:20:00"},
  "project_info": {"name": "…"},
  "last_updated": "2025-11-18T21:39:51.578123",
  "prompt": "zzz",
  "events": []
}
"#;

struct Env {
    dir: tempfile::TempDir,
    state: PathBuf,
    db: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let db = dir.path().join("tokmon.db");
        Env { dir, state, db }
    }

    fn with_state(text: &str) -> Env {
        let env = Env::new();
        std::fs::write(&env.state, text).unwrap();
        env
    }

    /// The binary, with explicit paths and a home that holds no real config.
    fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    fn std_cmd(&self) -> std::process::Command {
        self.std_cmd_with(&self.state, &self.db)
    }

    /// The binary with other `--state` and `--db` paths.
    fn std_cmd_with(&self, state: &Path, db: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tokmon"));
        c.env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env_remove("TOKMON_CONFIG")
            .env_remove("TOKMON_DB")
            .env_remove("TOKMON_STATE")
            .arg("--state")
            .arg(state)
            .arg("--db")
            .arg(db);
        c
    }

    fn sync(&self, value: &str) -> assert_cmd::assert::Assert {
        self.cmd().arg("sync").arg(value).assert()
    }

    fn doc(&self) -> Map<String, Value> {
        match serde_json::from_slice(&std::fs::read(&self.state).unwrap()).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn used(&self) -> u64 {
        self.doc()["token_usage"]["used"].as_u64().unwrap()
    }

    fn history(&self) -> Vec<Value> {
        let out = self
            .cmd()
            .args(["status", "--history", "--format", "json"])
            .assert()
            .success();
        let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        v["history"].as_array().unwrap().clone()
    }

    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

/// The document with tokmon's keys taken out, as compact JSON: what must never change.
fn foreign_part(doc: &Map<String, Value>) -> String {
    let mut d = doc.clone();
    d.shift_remove("last_updated");
    if let Some(Value::Object(tu)) = d.get_mut("token_usage") {
        for k in ["used", "total", "percentage", "sessions"] {
            tu.shift_remove(k);
        }
    }
    serde_json::to_string(&d).unwrap()
}

fn keys(m: &Map<String, Value>) -> Vec<String> {
    m.keys().cloned().collect()
}

#[test]
fn example_file_keeps_unknown_keys_and_order_through_many_syncs() {
    let env = Env::with_state(EXAMPLE);
    let original: Map<String, Value> = serde_json::from_str(EXAMPLE).unwrap();
    let original_sessions = original["token_usage"]["sessions"]
        .as_array()
        .unwrap()
        .clone();
    // (value typed, used after, increment, reset)
    let steps: &[(&str, u64, u64, bool)] = &[
        ("350K", 350_000, 51_000, false),
        ("400,000 tokens used", 400_000, 50_000, false),
        ("35万", 350_000, 350_000, true),
        ("1.5M", 1_500_000, 1_150_000, false),
        ("１，６００，０００", 1_600_000, 100_000, false),
    ];
    let mut previous_bytes = std::fs::read(&env.state).unwrap();
    for (i, (typed, used, inc, reset)) in steps.iter().enumerate() {
        let a = env
            .cmd()
            .args(["sync", typed, "--note", &format!("step {i}")])
            .assert()
            .success();
        assert_eq!(stdout(&a).contains("reset"), *reset, "{}", stdout(&a));
        let doc = env.doc();
        assert_eq!(keys(&doc), keys(&original), "top-level order");
        assert_eq!(
            keys(doc["token_usage"].as_object().unwrap()),
            keys(original["token_usage"].as_object().unwrap()),
            "token_usage order"
        );
        assert_eq!(foreign_part(&doc), foreign_part(&original));
        let tu = &doc["token_usage"];
        assert_eq!(tu["used"], *used);
        assert_eq!(tu["total"], 1_000_000);
        let pct = (*used as f64 / 10_000.0 * 100.0).round() / 100.0;
        assert_eq!(tu["percentage"].as_f64(), Some(pct));
        let sessions = tu["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 3 + i + 1);
        assert_eq!(
            &sessions[i + 1..],
            &original_sessions[..],
            "old entries kept as they were"
        );
        let s = sessions[0].as_object().unwrap();
        assert_eq!(
            keys(s),
            [
                "timestamp",
                "tokens",
                "event",
                "conversation_id",
                "method",
                "sync_type"
            ]
        );
        assert_eq!(s["tokens"], *inc);
        assert_eq!(s["event"], format!("step {i}").as_str());
        assert_eq!(
            (&s["method"], &s["sync_type"]),
            (&Value::from("manual"), &Value::from("manual"))
        );
        assert!(
            s["conversation_id"]
                .as_str()
                .unwrap()
                .starts_with("manual-sync-")
        );
        let ts = s["timestamp"].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").is_ok(),
            "{ts}"
        );
        let lu = doc["last_updated"].as_str().unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(lu, "%Y-%m-%dT%H:%M:%S%.6f").is_ok(),
            "{lu}"
        );
        assert_eq!(lu.len(), "2025-11-18T21:39:51.578123".len());

        // Apart from tokmon's keys, the bytes written are the bytes of the previous write.
        let bytes = std::fs::read(&env.state).unwrap();
        if i > 0 {
            let strip = |b: &[u8]| {
                let d: Map<String, Value> = serde_json::from_slice(b).unwrap();
                let mut d2 = d.clone();
                d2.shift_remove("last_updated");
                let tu = d2["token_usage"].as_object_mut().unwrap();
                tu.insert("used".into(), Value::Null);
                tu.insert("percentage".into(), Value::Null);
                tu.insert("sessions".into(), Value::Null);
                serde_json::to_vec_pretty(&d2).unwrap()
            };
            assert_eq!(strip(&bytes), strip(&previous_bytes));
        }
        previous_bytes = bytes;
    }
    let history = env.history();
    assert_eq!(history.len(), steps.len());
    let values: Vec<u64> = history
        .iter()
        .map(|h| h["value"].as_u64().unwrap())
        .collect();
    assert_eq!(
        values,
        [1_600_000, 1_500_000, 350_000, 400_000, 350_000],
        "newest first"
    );
    let h = history[0].as_object().unwrap();
    assert_eq!(keys(h), ["at", "value", "increment", "note", "method"]);
    assert_eq!(
        (&h["increment"], &h["note"], &h["method"]),
        (
            &Value::from(100_000),
            &Value::from("step 4"),
            &Value::from("manual")
        )
    );
    assert!(chrono::DateTime::parse_from_rfc3339(h["at"].as_str().unwrap()).is_ok());
}

#[test]
fn formats_md_value_examples_through_the_cli() {
    for (typed, want) in [
        ("350000", 350_000),
        ("350,000", 350_000),
        ("350 000", 350_000),
        ("350K", 350_000),
        ("1.5K", 1_500),
        ("35万", 350_000),
        ("1.5万", 15_000),
        ("350,000 tokens used", 350_000),
    ] {
        let env = Env::new();
        env.sync(typed).success();
        assert_eq!(env.used(), want, "{typed}");
    }
}

#[test]
fn new_file_gets_the_default_total_or_the_given_one() {
    let env = Env::new();
    let a = env.sync("100").success();
    assert!(stdout(&a).contains("Created"), "{}", stdout(&a));
    let doc = env.doc();
    // #16 item 18: the shape the dashboard creates for itself (formats.md §5).
    assert_eq!(keys(&doc), ["token_usage", "status", "last_updated"]);
    assert_eq!(
        keys(doc["token_usage"].as_object().unwrap()),
        ["used", "total", "percentage", "sessions"]
    );
    assert_eq!(
        doc["status"],
        serde_json::json!({"text": "工作中", "reviewed_count": 0})
    );
    assert_eq!(doc["token_usage"]["total"], 1_000_000);
    assert_eq!(doc["token_usage"]["percentage"], 0.01);
    env.cmd()
        .args(["sync", "200", "--total", "2M"])
        .assert()
        .success();
    assert_eq!(env.doc()["token_usage"]["total"], 2_000_000);
    assert_eq!(env.doc()["token_usage"]["percentage"], 0.01);
}

#[test]
fn reset_and_equal_values() {
    let env = Env::with_state(EXAMPLE);
    let a = env.sync("5,000").success();
    assert!(stdout(&a).contains("reset"), "{}", stdout(&a));
    let doc = env.doc();
    assert_eq!(doc["token_usage"]["used"], 5_000);
    assert_eq!(doc["token_usage"]["sessions"][0]["tokens"], 5_000);
    let before = std::fs::read(&env.state).unwrap();
    let a = env.sync("5K").success();
    assert!(stdout(&a).contains("Nothing new"), "{}", stdout(&a));
    assert_eq!(
        std::fs::read(&env.state).unwrap(),
        before,
        "an equal value writes nothing"
    );
    assert_eq!(env.history().len(), 1);
}

#[test]
fn session_list_is_capped_history_is_not() {
    // The default cap: 100 entries, the oldest dropped.
    let mut doc: Map<String, Value> = serde_json::from_str(EXAMPLE).unwrap();
    let many: Vec<Value> = (0..100)
        .map(|i| serde_json::json!({"tokens": i, "task": format!("t{i}")}))
        .collect();
    doc["token_usage"]["sessions"] = Value::Array(many);
    let env = Env::with_state(&serde_json::to_string_pretty(&doc).unwrap());
    env.sync("300000").success();
    let s = env.doc()["token_usage"]["sessions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(s.len(), 100);
    assert_eq!(s[0]["tokens"], 1_000);
    assert_eq!(s[1]["task"], "t0");
    assert_eq!(s[99]["task"], "t98");

    // A configured cap.
    let env = Env::new();
    let config = env.dir.path().join("tokmon.toml");
    std::fs::write(&config, "[sync]\nsession_cap = 3\ndefault_total = 5000\n").unwrap();
    for v in ["1000", "2000", "3000", "4000", "5000"] {
        env.cmd()
            .arg("--config")
            .arg(&config)
            .args(["sync", v])
            .assert()
            .success();
    }
    let doc = env.doc();
    let tokens: Vec<u64> = doc["token_usage"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(tokens, [1000, 1000, 1000]);
    assert_eq!(doc["token_usage"]["total"], 5000);
    assert_eq!(doc["token_usage"]["percentage"], 100.0);
    assert_eq!(env.history().len(), 5);
}

#[test]
fn rejected_values_exit_2_and_change_nothing() {
    let env = Env::with_state(EXAMPLE);
    let before = std::fs::read(&env.state).unwrap();
    let files = env.files();
    for bad in [
        "",
        "-5",
        "abc",
        "12 and 13",
        "12..5K",
        "1,2,3",
        "1.5",
        "1e999",
        "99999999999999999999",
        "350KE",
    ] {
        let a = env.sync(bad).code(2);
        let msg = stderr(&a);
        if !bad.is_empty() {
            assert!(msg.contains(bad), "{bad:?}: {msg}");
        }
        assert_eq!(std::fs::read(&env.state).unwrap(), before, "{bad:?}");
    }
    for bad_total in ["0", "lots", "-1"] {
        env.cmd()
            .args(["sync", "5", "--total", bad_total])
            .assert()
            .code(2);
    }
    assert_eq!(std::fs::read(&env.state).unwrap(), before);
    assert_eq!(
        env.files(),
        files,
        "no database, lock or temporary file was created"
    );

    // Without a state file, nothing at all is created.
    let env = Env::new();
    env.sync("12..5K").code(2);
    assert!(env.files().is_empty(), "{:?}", env.files());
}

#[test]
fn unparseable_file_is_left_untouched() {
    let text = "{\n  \"token_usage\": {\"used\": 1,,\n}\n";
    let env = Env::with_state(text);
    let a = env.sync("500").code(1);
    let msg = stderr(&a);
    assert!(
        msg.contains("state.json") && msg.contains("line 2, column 29"),
        "{msg}"
    );
    assert!(msg.contains("not overwrite"), "{msg}");
    assert_eq!(std::fs::read_to_string(&env.state).unwrap(), text);
    assert!(!env.db.exists(), "no history row for a refused sync");
    let a = env.cmd().arg("status").assert().code(1);
    assert!(stderr(&a).contains("line 2, column 29"), "{}", stderr(&a));
}

/// #16 item 10: the history of a state file is found from the state file, whatever `--db`
/// says; a foreign `--db` changes nothing about a sync (the monitor's `s` does the same).
#[test]
fn history_belongs_to_its_state_file_whatever_db_says() {
    let env = Env::with_state(EXAMPLE);
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    conn.execute_batch(
        "CREATE TABLE token_usage (id INTEGER PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL,
         input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL, timestamp DATETIME);",
    )
    .unwrap();
    drop(conn);
    let foreign_before = std::fs::read(&env.db).unwrap();
    env.sync("400000").success();
    assert_eq!(env.used(), 400_000);
    assert_eq!(std::fs::read(&env.db).unwrap(), foreign_before);
    // A second state file next to it, synced through another database.
    let h2 = env.dir.path().join("h2.json");
    let other_db = env.dir.path().join("other.db");
    for v in ["7", "9"] {
        Command::from_std(env.std_cmd_with(&h2, &other_db))
            .args(["sync", v])
            .assert()
            .success();
    }
    assert!(!other_db.exists(), "a sync writes no database");
    let values = |state: &Path, db: &Path| -> Vec<u64> {
        let out = Command::from_std(env.std_cmd_with(state, db))
            .args(["status", "--history", "--format", "json"])
            .assert()
            .success();
        let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(values(&env.state, &env.db), [400_000]);
    assert_eq!(values(&env.state, &other_db), [400_000]);
    assert_eq!(values(&h2, &env.db), [9, 7]);
    assert_eq!(values(&h2, &other_db), [9, 7]);
}

#[test]
fn twenty_concurrent_syncs_lose_nothing() {
    let env = Env::new();
    // Create the file and the database first, so the race below is only about the state file.
    env.cmd()
        .args(["sync", "500", "--note", "p0"])
        .assert()
        .success();
    let children: Vec<_> = (1..=20u64)
        .map(|i| {
            let mut c = env.std_cmd();
            c.args(["sync", &(i * 1000).to_string(), "--note", &format!("p{i}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc = env.doc();
    let sessions = doc["token_usage"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 21);
    // Replay the rows in the order they were applied: every increment follows from the value
    // before it, so no sync saw a stale state.
    let mut rows: Vec<(u64, u64, String)> = env
        .history()
        .iter()
        .map(|r| {
            (
                r["value"].as_u64().unwrap(),
                r["increment"].as_u64().unwrap(),
                r["note"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.reverse();
    assert_eq!(rows.len(), 21);
    let mut used = 0;
    for (value, inc, _) in &rows {
        let expected = if *value < used { *value } else { value - used };
        assert_eq!(*inc, expected);
        used = *value;
    }
    assert_eq!(env.used(), used);
    let mut notes: Vec<&str> = rows[1..].iter().map(|r| r.2.as_str()).collect();
    notes.sort();
    let mut want: Vec<String> = (1..=20).map(|i| format!("p{i}")).collect();
    want.sort();
    assert_eq!(notes, want);
    // The session list is the same sequence, newest first.
    let session_events: Vec<&str> = sessions[..20]
        .iter()
        .map(|s| s["event"].as_str().unwrap())
        .collect();
    let row_notes: Vec<&str> = rows[1..].iter().rev().map(|r| r.2.as_str()).collect();
    assert_eq!(session_events, row_notes);
}

#[test]
fn status_json_and_table() {
    let env = Env::with_state(EXAMPLE);
    let a = env
        .cmd()
        .args(["status", "--format", "json"])
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    let m = v.as_object().unwrap();
    assert_eq!(
        keys(m),
        [
            "used",
            "total",
            "percentage",
            "remaining",
            "sessions",
            "last_updated",
            "level",
            "budgets"
        ]
    );
    // The quota is always one of the budgets.
    assert_eq!(v["budgets"][0]["name"], "quota");
    assert_eq!(v["budgets"][0]["used_tokens"], 299_000);
    assert_eq!(v["used"], 299_000);
    assert_eq!(v["percentage"], 29.9);
    assert_eq!(v["remaining"], 701_000);
    assert_eq!(v["sessions"], 3);
    assert_eq!(v["last_updated"], "2025-11-18T21:39:51.578123");
    assert_eq!(v["level"], "ok");

    env.sync("960000").success();
    let a = env.cmd().arg("status").assert().success();
    let table = stdout(&a);
    assert!(
        table.contains("960,000") && table.contains("96.00 %") && table.contains("critical"),
        "{table}"
    );
    assert!(table.contains("40,000"), "remaining: {table}");
}

#[test]
fn status_without_a_state_file_says_how_to_create_one() {
    let env = Env::new();
    let a = env.cmd().arg("status").assert().code(1);
    assert!(
        stderr(&a).contains("tokmon sync VALUE --total N"),
        "{}",
        stderr(&a)
    );
    // The history of a database that does not exist is empty, and nothing is created.
    let a = env
        .cmd()
        .args(["status", "--history", "--format", "json"])
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v, serde_json::json!({"history": []}));
    assert!(!Path::new(&env.db).exists());
}

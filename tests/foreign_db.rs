//! `report` over the three foreign tracker databases (exact DDL from formats.md), checked to
//! the token, with the foreign file byte-identical afterwards.

mod common;

use common::{Sandbox, bytes, json};
use rusqlite::Connection;

const BOT_DDL: &str = "CREATE TABLE token_usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, model TEXT NOT NULL,
  input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL,
  user_id TEXT, request_type TEXT, metadata TEXT,
  timestamp DATETIME DEFAULT CURRENT_TIMESTAMP);";

const CHAT_DDL: &str = "CREATE TABLE sessions (id INTEGER PRIMARY KEY, title TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id INTEGER, content TEXT);
CREATE TABLE token_usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT, session_id INTEGER NOT NULL, message_id INTEGER,
  timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, chat_mode TEXT NOT NULL,
  model_name TEXT NOT NULL, agent_name TEXT, input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL, total_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL,
  duration_ms REAL, tool_calls TEXT, additional_info TEXT,
  FOREIGN KEY (session_id) REFERENCES sessions(id), FOREIGN KEY (message_id) REFERENCES messages(id));
CREATE TABLE session_token_summary (session_id INTEGER PRIMARY KEY, total_input_tokens INTEGER,
  total_output_tokens INTEGER, total_tokens INTEGER, total_cost_usd REAL, mode_breakdown TEXT,
  model_breakdown TEXT, agent_breakdown TEXT, first_message_at DATETIME, last_updated DATETIME);
CREATE TABLE global_token_stats (id INTEGER PRIMARY KEY, total_tokens INTEGER);
CREATE TABLE migration_history (id INTEGER PRIMARY KEY, version TEXT);";

const DESKTOP_DDL: &str = "CREATE TABLE token_usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  session_id TEXT, endpoint_name TEXT, model TEXT, operation_type TEXT, operation_detail TEXT,
  input_tokens INTEGER DEFAULT 0, output_tokens INTEGER DEFAULT 0,
  cache_creation_tokens INTEGER DEFAULT 0, cache_read_tokens INTEGER DEFAULT 0,
  context_tokens INTEGER DEFAULT 0, iteration INTEGER DEFAULT 0, channel TEXT, user_id TEXT,
  estimated_cost REAL DEFAULT 0);";

fn make(sb: &Sandbox, name: &str, ddl: &str, rows: &str) -> std::path::PathBuf {
    let p = sb.path(name);
    let c = Connection::open(&p).unwrap();
    c.execute_batch(ddl).unwrap();
    c.execute_batch(rows).unwrap();
    drop(c);
    p
}

fn group<'a>(v: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {v}"))
}

#[test]
fn bot_tracker() {
    let sb = Sandbox::new();
    let db = make(
        &sb,
        "bot.db",
        BOT_DDL,
        "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, user_id, request_type, metadata, timestamp) VALUES
          ('openai', 'gpt-4o', 1000, 200, 0.5, 'u1', 'chat', '{}', '2025-11-18 10:00:00'),
          ('openai', 'gpt-4o', 300, 100, NULL, 'u2', 'summary', NULL, '2025-11-18 11:30:00'),
          ('deepseek', 'deepseek-chat', 5000, 50, 0.01, 'u1', '', '{}', '2025-11-19 09:00:00'),
          ('openai', 'gpt-4o', 7, 7, 0.1, 'u1', 'chat', '{}', '2025-11-20 00:00:00');",
    );
    let before = bytes(&db);
    let v = json(sb.cmd().args(["report", "--db"]).arg(&db).args([
        "--range",
        "2025-11-18..2025-11-20",
        "--by",
        "agent",
        "--format",
        "json",
    ]));
    assert_eq!(v["totals"]["events"], 3);
    assert_eq!(v["totals"]["input_tokens"], 6300);
    assert_eq!(v["totals"]["output_tokens"], 350);
    assert_eq!(v["totals"]["total_tokens"], 6650);
    assert_eq!(group(&v, "chat")["total_tokens"], 1200);
    assert_eq!(group(&v, "summary")["input_tokens"], 300);
    // An empty request_type is no agent.
    assert_eq!(group(&v, "(none)")["total_tokens"], 5050);
    assert_eq!(v["range"]["from"], "2025-11-18T00:00:00Z");
    assert_eq!(v["range"]["to"], "2025-11-20T00:00:00Z");
    // Stored cost is used where present; the NULL row is priced from the table.
    let stored = sb
        .cmd()
        .args([
            "report",
            "--range",
            "all",
            "--by",
            "provider",
            "--format",
            "json",
            "--cost-mode",
            "stored",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&stored.stdout).unwrap();
    assert!((s["totals"]["cost_usd"].as_f64().unwrap() - 0.61).abs() < 1e-9);
    assert_eq!(group(&s, "openai")["events"], 3);
    assert_eq!(bytes(&db), before, "the foreign database must not change");
    assert!(!sb.path("bot.db-wal").exists());
}

#[test]
fn chat_agent_tracker() {
    let sb = Sandbox::new();
    let db = make(
        &sb,
        "chat.db",
        CHAT_DDL,
        "INSERT INTO sessions VALUES (1, 'a'), (2, 'b');
         INSERT INTO token_usage (session_id, message_id, timestamp, chat_mode, model_name, agent_name, input_tokens, output_tokens, total_tokens, cost_usd, duration_ms, tool_calls) VALUES
          (1, NULL, '2025-11-18 10:00:00', 'simple', 'gpt-4o-mini', NULL, 100, 10, 110, 0.001, 500, NULL),
          (1, NULL, '2025-11-18 10:05:00', 'tool', 'gpt-4o-mini', 'researcher', 2000, 300, 2300, 0.002, 900, '[\"search\"]'),
          (2, NULL, '2025-11-18 12:00:00', 'rag', 'claude-sonnet-4-5', 'researcher', 4000, 400, 4400, 0.03, 1500, NULL);
         INSERT INTO session_token_summary (session_id, total_tokens, last_updated) VALUES (1, 999999, '2025-11-18T10:05:00.123456');",
    );
    let before = bytes(&db);
    let v = json(sb.cmd().arg("--db").arg(&db).args([
        "report",
        "--range",
        "all",
        "--by",
        "operation",
        "--format",
        "json",
    ]));
    // Totals come from token_usage, never from session_token_summary.
    assert_eq!(v["totals"]["total_tokens"], 6810);
    assert_eq!(group(&v, "rag")["total_tokens"], 4400);
    assert_eq!(group(&v, "simple")["events"], 1);
    let by_session = json(sb.cmd().arg("--db").arg(&db).args([
        "report", "--range", "all", "--by", "session", "--format", "json",
    ]));
    assert_eq!(group(&by_session, "1")["total_tokens"], 2410);
    let by_agent = json(sb.cmd().arg("--db").arg(&db).args([
        "report", "--range", "all", "--by", "agent", "--format", "json",
    ]));
    assert_eq!(group(&by_agent, "researcher")["events"], 2);
    assert_eq!(group(&by_agent, "(none)")["events"], 1);
    assert_eq!(bytes(&db), before);
}

#[test]
fn desktop_tracker() {
    let sb = Sandbox::new();
    let db = make(
        &sb,
        "desk.db",
        DESKTOP_DDL,
        "INSERT INTO token_usage (timestamp, session_id, endpoint_name, model, operation_type, operation_detail, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, channel, user_id, estimated_cost) VALUES
          ('2025-11-18 10:00:00', 's1', 'anthropic', 'claude-sonnet-4-5', 'chat', '', 100, 50, 1000, 20000, 'telegram', 'u1', 0),
          ('2025-11-18 23:59:59', '', 'anthropic', 'claude-sonnet-4-5', 'unknown', '', 10, 5, 0, 0, '', '', 0),
          ('2025-11-19 00:00:00', 's2', 'openai', 'gpt-4o', 'tool_call', 'search', 1, 2, 3, 4, 'web', 'u2', 0);",
    );
    let before = bytes(&db);
    let v = json(sb.cmd().arg("--db").arg(&db).args([
        "report", "--range", "all", "--by", "day", "--format", "json", "--tz", "UTC",
    ]));
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["key"], "2025-11-18");
    assert_eq!(groups[0]["total_tokens"], 21165);
    assert_eq!(groups[0]["cache_read_tokens"], 20000);
    assert_eq!(groups[1]["key"], "2025-11-19");
    assert_eq!(groups[1]["total_tokens"], 10);
    // The same rows seen from UTC+02:00: the 23:59:59 row moves to the next local day.
    let v = json(sb.cmd().arg("--db").arg(&db).args([
        "report", "--range", "all", "--by", "day", "--format", "json", "--tz", "+02:00",
    ]));
    assert_eq!(v["groups"][1]["total_tokens"], 25);
    // 'unknown' and '' mean no agent; channel '' means none.
    let a = json(sb.cmd().arg("--db").arg(&db).args([
        "report", "--range", "all", "--by", "agent", "--format", "json",
    ]));
    assert_eq!(group(&a, "(none)")["total_tokens"], 15);
    let c = json(sb.cmd().arg("--db").arg(&db).args([
        "report", "--range", "all", "--by", "channel", "--format", "json",
    ]));
    assert_eq!(group(&c, "(none)")["events"], 1);
    assert_eq!(bytes(&db), before);
}

#[test]
fn forced_schema_and_unknown_database() {
    let sb = Sandbox::new();
    let db = make(
        &sb,
        "other.db",
        "CREATE TABLE things (a TEXT); CREATE TABLE more (b TEXT);",
        "",
    );
    let before = bytes(&db);
    let out = sb
        .cmd()
        .arg("--db")
        .arg(&db)
        .args(["report", "--range", "all"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("things") && err.contains("more"), "{err}");
    let out = sb
        .cmd()
        .arg("--db")
        .arg(&db)
        .args(["report", "--schema", "bot"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token_usage"));
    assert_eq!(bytes(&db), before);
}

#[test]
fn custom_table_from_config() {
    let sb = Sandbox::new();
    let db = make(
        &sb,
        "custom.db",
        "CREATE TABLE llm_log (ts INTEGER, llm TEXT, who TEXT, p INTEGER, c INTEGER, cents INTEGER);",
        "INSERT INTO llm_log VALUES (1763460000, 'gpt-4o', 'bot', 10, 20, 150), (1763460000123, 'gpt-4o', NULL, 5, NULL, 0);",
    );
    let cfg = sb.path("config.toml");
    std::fs::write(
        &cfg,
        "[[table]]\nname = \"mylog\"\ntable = \"llm_log\"\ntimestamp = \"ts\"\nmodel = \"llm\"\nagent = \"who\"\n\
         input_tokens = \"p\"\noutput_tokens = \"c\"\ncost_usd = \"cents\"\ncost_scale = 0.01\n",
    )
    .unwrap();
    let v = json(
        sb.cmd()
            .arg("--db")
            .arg(&db)
            .arg("--config")
            .arg(&cfg)
            .args([
                "report",
                "--schema",
                "mylog",
                "--range",
                "2025-11-18..2025-11-19",
                "--by",
                "agent",
                "--format",
                "json",
                "--cost-mode",
                "stored",
            ]),
    );
    assert_eq!(v["totals"]["events"], 2);
    assert_eq!(v["totals"]["total_tokens"], 35);
    assert!((v["totals"]["cost_usd"].as_f64().unwrap() - 1.5).abs() < 1e-9);
    // A column name that is not a plain identifier is refused before any SQL is built.
    std::fs::write(
        &cfg,
        "[[table]]\ntable = \"llm_log\"\ntimestamp = \"ts\"\nmodel = \"llm; DROP TABLE llm_log\"\n",
    )
    .unwrap();
    let out = sb
        .cmd()
        .arg("--db")
        .arg(&db)
        .arg("--config")
        .arg(&cfg)
        .args(["report", "--schema", "llm_log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("llm; DROP TABLE llm_log"));
}

//! tokmon's store on PostgreSQL: record, import, report and status against a server the test
//! binary starts (one, shared by its tests, a database each), the team service's `ai_usage`
//! read read-only, credentials, and the bad-input rules for a `postgres://` `--db`.

mod common;

use common::Sandbox;
use common::pg;
use serde_json::{Value, json};

/// `tokmon --db DB ARGS…` in the sandbox.
fn tokmon(sb: &Sandbox, db: &str, args: &[&str]) -> assert_cmd::assert::Assert {
    sb.cmd()
        .arg("--db")
        .arg(db)
        .arg("--no-discover")
        .args(args)
        .assert()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// Three events with different models, agents, costs and times.
const EVENTS: [&[&str]; 4] = [
    &[
        "--model",
        "gpt-4o",
        "--agent",
        "coder",
        "--input",
        "1000",
        "--output",
        "500",
        "--at",
        "2025-11-18T10:00:00Z",
        "--cost",
        "0.25",
    ],
    &[
        "--model",
        "claude-sonnet-4-5",
        "--agent",
        "coder",
        "--provider",
        "anthropic",
        "--input",
        "10",
        "--output",
        "20",
        "--cache-write",
        "30",
        "--cache-read",
        "40",
        "--at",
        "2025-11-18 11:07:00",
    ],
    &[
        "--model",
        "gpt-4o",
        "--agent",
        "reviewer",
        "--session",
        "s1",
        "--input",
        "1",
        "--at",
        "2025-11-17 23:00:00",
        "--key",
        "k-1",
    ],
    // The same key again: nothing added.
    &[
        "--model",
        "gpt-4o",
        "--input",
        "999",
        "--at",
        "2025-11-17 23:00:00",
        "--key",
        "k-1",
    ],
];

/// Every report a user would ask for, as JSON.
const REPORTS: [&[&str]; 8] = [
    &["report", "--format", "json", "--range", "all"],
    &[
        "report",
        "--format",
        "json",
        "--by",
        "model",
        "--range",
        "2025-11-01..2025-12-01",
    ],
    &[
        "report",
        "--format",
        "json",
        "--by",
        "agent",
        "--range",
        "2025-11-17T23:30:00Z..2025-11-18T10:40:00Z",
    ],
    &[
        "report", "--format", "json", "--by", "session", "--range", "all",
    ],
    &[
        "report",
        "--format",
        "json",
        "--by",
        "day",
        "--range",
        "2025-11-17..2025-11-19",
    ],
    &[
        "report",
        "--format",
        "json",
        "--by",
        "provider",
        "--range",
        "2025-11-18T10:10:00Z..2025-11-19",
    ],
    &[
        "report", "--format", "json", "--by", "hour", "--range", "all",
    ],
    &[
        "report",
        "--format",
        "csv",
        "--by",
        "user",
        "--range",
        "2025-11-01..2025-12-01",
    ],
];

/// A report's output without the range (its end is "now" for open ranges).
fn report_body(out: &str) -> String {
    match serde_json::from_str::<Value>(out) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.remove("range");
            }
            v.to_string()
        }
        Err(_) => out.to_string(),
    }
}

/// The totals of a JSON report.
fn totals(sb: &Sandbox, db: &str, range: &str) -> Value {
    let out = stdout(&tokmon(sb, db, &["report", "--format", "json", "--range", range]).success());
    let v: Value = serde_json::from_str(&out).unwrap();
    v["totals"].clone()
}

#[test]
fn record_and_report_match_sqlite() {
    let db = pg::db("record_report");
    let sb = Sandbox::new();
    let file = sb.path("usage.db");
    let file = file.to_str().unwrap();
    for e in EVENTS {
        sb.cmd()
            .args(["--db", &db.url, "--no-discover", "record"])
            .args(e)
            .assert()
            .success();
        sb.cmd()
            .args(["--db", file, "--no-discover", "record"])
            .args(e)
            .assert()
            .success();
    }
    // The duplicate said so, naming the database without a password.
    let again = sb
        .cmd()
        .args(["--db", &db.url, "--no-discover", "record"])
        .args(EVENTS[3])
        .assert()
        .success();
    assert!(
        stderr(&again).contains("already recorded") || stdout(&again).contains("already recorded")
    );
    assert_eq!(db.psql("SELECT count(*) FROM events"), "3");
    for r in REPORTS {
        let want = report_body(&stdout(&tokmon(&sb, file, r).success()));
        let got = report_body(&stdout(&tokmon(&sb, &db.url, r).success()));
        assert_eq!(got, want, "{r:?}");
    }
    // No file or folder named after the URL appeared anywhere.
    assert!(!sb.path("postgres:").exists());
}

#[test]
fn rollup_is_kept_exact_by_the_trigger() {
    let db = pg::db("rollup");
    let sb = Sandbox::new();
    tokmon(
        &sb,
        &db.url,
        &[
            "record",
            "--model",
            "m",
            "--input",
            "1",
            "--at",
            "2025-01-01T00:00:00Z",
        ],
    )
    .success();
    // Rows written straight into the table (as another tool or a bulk load would).
    db.psql(
        "INSERT INTO events (ts, model, agent, input_tokens, output_tokens, cost_usd, source, corrects)
         SELECT 1735689600000 + i * 60000, 'm' || (i % 3), CASE WHEN i % 2 = 0 THEN 'a' END,
                i, 2 * i, CASE WHEN i % 4 = 0 THEN 0.5 END, 'test',
                CASE WHEN i % 10 = 0 THEN 1 END
         FROM generate_series(1, 500) i;
         DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts % 7 = 0 LIMIT 20);",
    );
    let rollup = db.psql(
        "SELECT slice, model, agent, provider, events, input_tokens, output_tokens, stored_cost,
                uncosted_events, uncosted_input
         FROM rollup_15m ORDER BY 1, 2, 3, 4",
    );
    let scan = db.psql(
        "SELECT tokmon_slice(ts), model, COALESCE(agent, ''), COALESCE(provider, ''),
                count(*) FILTER (WHERE corrects IS NULL), sum(input_tokens), sum(output_tokens),
                COALESCE(sum(cost_usd), 0),
                count(*) FILTER (WHERE corrects IS NULL AND NOT COALESCE(cost_usd, 0) > 0),
                COALESCE(sum(input_tokens) FILTER (WHERE NOT COALESCE(cost_usd, 0) > 0), 0)
         FROM events GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    );
    assert_eq!(rollup, scan);
    assert!(rollup.lines().count() > 10, "{rollup}");
    // Reports read through the rollup and through the events agree (all time vs by session,
    // which only the events keep).
    let by = |by: &str| -> Value {
        let args = [
            "report",
            "--format",
            "json",
            "--by",
            by,
            "--range",
            "2024-12-31..2025-01-02",
        ];
        let v: Value =
            serde_json::from_str(&stdout(&tokmon(&sb, &db.url, &args).success())).unwrap();
        v["totals"].clone()
    };
    assert_eq!(by("model"), by("session"));
    assert_eq!(by("agent"), by("operation"));
    // Rows are append-only.
    let out = db.psql_output("UPDATE events SET input_tokens = 5 WHERE id = 1");
    assert!(!out.status.success());
}

#[test]
fn a_sum_past_the_largest_count_is_refused() {
    let db = pg::db("overflow");
    let sb = Sandbox::new();
    let big = (i64::MAX - 10).to_string();
    tokmon(
        &sb,
        &db.url,
        &[
            "record",
            "--model",
            "m",
            "--input",
            &big,
            "--at",
            "2025-01-01T00:00:00Z",
        ],
    )
    .success();
    let a = tokmon(
        &sb,
        &db.url,
        &[
            "record",
            "--model",
            "m",
            "--input",
            "100",
            "--at",
            "2025-01-01T00:01:00Z",
        ],
    )
    .code(2);
    assert!(stderr(&a).contains("not recorded"), "{}", stderr(&a));
    assert_eq!(db.psql("SELECT count(*) FROM events"), "1");
}

/// One Claude Code assistant line.
/// The `events` table that the PostgreSQL migration makes has exactly the declared columns
/// (the event's, the store's own, the id), each of its declared type: a field declared without
/// a migration, or the other way round, fails here (as SQLite's twin in `store::native`).
#[test]
fn the_events_table_has_the_declared_columns() {
    use tokmon::domain::NewEvent;
    use tokmon::domain::event::SqlType;
    let db = pg::db("columns");
    let sb = Sandbox::new();
    tokmon(&sb, &db.url, &["record", "--model", "m", "--input", "1"]).success();
    let out = db.psql(
        "SELECT column_name || ' ' || data_type FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = 'events'",
    );
    let mut table: Vec<&str> = out.lines().collect();
    table.sort();
    let pg_type = |t: &SqlType| match t {
        SqlType::Int => "bigint",
        SqlType::Real => "double precision",
        SqlType::Text => "text",
    };
    let store = tokmon::store::native::STORE_COLUMNS
        .into_iter()
        .zip(["bigint", "bigint", "boolean"]);
    let mut declared: Vec<String> = NewEvent::COLUMNS
        .iter()
        .zip(NewEvent::SQL_TYPES)
        .map(|(c, t)| format!("{c} {}", pg_type(t)))
        .chain(store.map(|(c, t)| format!("{c} {t}")))
        .chain(["id bigint".to_string()])
        .collect();
    declared.sort();
    assert_eq!(table, declared);
}

fn cc_line(msg: &str, ts: &str, u: [u64; 4]) -> String {
    json!({
        "type": "assistant", "sessionId": "s", "cwd": "/w/app", "timestamp": ts,
        "uuid": format!("u-{msg}-{ts}"), "requestId": format!("req-{msg}"),
        "message": {
            "id": msg, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "usage": {"input_tokens": u[0], "output_tokens": u[1],
                      "cache_creation_input_tokens": u[2], "cache_read_input_tokens": u[3]}
        }
    })
    .to_string()
}

fn write_log(sb: &Sandbox, rel: &str, lines: &[String]) {
    let p = sb.path(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, lines.join("\n") + "\n").unwrap();
}

#[test]
fn two_machines_importing_overlapping_logs_count_each_reply_once() {
    let db = pg::db("two_machines");
    let (a, b) = (Sandbox::new(), Sandbox::new());
    let r1 = |out: u64| cc_line("msg_1", "2025-11-18T10:00:00.000Z", [10, out, 100, 1000]);
    // Machine A saw reply 1 while it streamed, and reply 2.
    write_log(
        &a,
        ".claude/projects/-w-app/s.jsonl",
        &[
            r1(3),
            r1(9),
            cc_line("msg_2", "2025-11-18T10:05:00.000Z", [5, 50, 0, 0]),
        ],
    );
    // Machine B has a later copy: reply 1 finished, reply 2, and reply 3.
    write_log(
        &b,
        "logs/-w-app/s.jsonl",
        &[
            r1(3),
            r1(159),
            cc_line("msg_2", "2025-11-18T10:05:00.000Z", [5, 50, 0, 0]),
            cc_line("msg_3", "2025-11-18T10:20:00.000Z", [7, 70, 0, 0]),
        ],
    );
    let import = |sb: &Sandbox, dir: &str| {
        tokmon(sb, &db.url, &["import", sb.path(dir).to_str().unwrap()]).success()
    };
    import(&a, ".claude");
    import(&b, "logs");
    // Again, both: nothing new.
    import(&a, ".claude");
    import(&b, "logs");
    let t = totals(&a, &db.url, "all");
    assert_eq!(t["events"], 3, "{t}");
    assert_eq!(t["output_tokens"], 159 + 50 + 70, "{t}");
    assert_eq!(t["input_tokens"], 10 + 5 + 7, "{t}");
    // The same logs into one SQLite file give the same numbers.
    let file = a.path("one.db");
    let file = file.to_str().unwrap();
    tokmon(&a, file, &["import", a.path(".claude").to_str().unwrap()]).success();
    tokmon(&a, file, &["import", b.path("logs").to_str().unwrap()]).success();
    assert_eq!(totals(&a, file, "all"), t);
    // Each machine's read state is its own.
    assert_eq!(db.psql("SELECT count(*) FROM import_files"), "2");
}

#[test]
fn status_reads_budgets_from_postgres() {
    let db = pg::db("status");
    let sb = Sandbox::new();
    let now = chrono::Utc::now().to_rfc3339();
    tokmon(
        &sb,
        &db.url,
        &[
            "record", "--model", "gpt-4o", "--input", "900", "--at", &now,
        ],
    )
    .success();
    let cfg = sb.path("config.toml");
    std::fs::write(
        &cfg,
        "[[budget]]\nname = \"daily\"\nwindow = \"24h\"\nlimit_tokens = 1000\n",
    )
    .unwrap();
    let a = sb
        .cmd()
        .args(["--db", &db.url, "--config", cfg.to_str().unwrap()])
        .arg("--state")
        .arg(sb.path("state.json"))
        .args(["status", "--format", "json", "--no-import"])
        .assert()
        .success();
    let v: Value = serde_json::from_str(&stdout(&a)).unwrap();
    let text = v.to_string();
    assert!(text.contains("daily") && text.contains("900"), "{text}");
    // 90 % of the budget: --check says so (exit 3).
    sb.cmd()
        .args(["--db", &db.url, "--config", cfg.to_str().unwrap()])
        .arg("--state")
        .arg(sb.path("state.json"))
        .args(["status", "--check", "--no-import"])
        .assert()
        .code(3);
}

#[test]
fn statusline_shows_the_session_cost_from_postgres() {
    let db = pg::db("statusline");
    let sb = Sandbox::new();
    tokmon(
        &sb,
        &db.url,
        &["record", "--model", "gpt-4o", "--input", "1"],
    )
    .success();
    let now = chrono::Utc::now().timestamp_millis() - 1_000;
    db.psql(&format!(
        "INSERT INTO events (ts, model, agent, provider, session, input_tokens, output_tokens, source)
         VALUES ({now}, 'claude-sonnet-4-5', 'claude-code', 'anthropic', 's1', 100000, 600, 'test'),
                ({now}, 'claude-sonnet-4-5', 'claude-code', 'anthropic', 's2', 1000000, 0, 'test'),
                ({now}, 'gpt-5', 'codex', 'openai', 's1', 1000000, 0, 'test')"
    ));
    let hook = json!({"session_id": "s1", "model": {"display_name": "Sonnet 4.5"}});
    let a = sb
        .cmd()
        .args(["--db", &db.url, "statusline"])
        .write_stdin(hook.to_string())
        .assert()
        .success();
    let line = stdout(&a);
    // Claude Code's events of s1 only: 100,000 in at $3/M and 600 out at $15/M.
    assert!(
        line.starts_with("Sonnet 4.5 | session $0.31 | today "),
        "{line}"
    );
}

const AI_USAGE_ROWS: &str = "INSERT INTO ai_usage VALUES
 ('00000000-0000-0000-0000-000000000001', '10000000-0000-0000-0000-000000000001', '20000000-0000-0000-0000-000000000001',
  'openai', 'gpt-4o', 100, 50, 150, 125, false, '2025-11-18 23:30:00'),
 ('00000000-0000-0000-0000-000000000002', '10000000-0000-0000-0000-000000000002', NULL,
  'anthropic', 'claude-sonnet-4-5', 1000, 10, 1010, 0, false, '2025-11-19 00:30:00'),
 ('00000000-0000-0000-0000-000000000003', '10000000-0000-0000-0000-000000000001', '20000000-0000-0000-0000-000000000001',
  'cache', 'cache', 0, 0, 0, 0, true, '2025-11-19 00:40:00'),
 ('00000000-0000-0000-0000-000000000004', '10000000-0000-0000-0000-000000000001', '20000000-0000-0000-0000-000000000002',
  'openai', 'gpt-4o', 1, 2, 3, 7, false, '2025-11-19 01:00:00');";

#[test]
fn team_service_ai_usage_is_read_read_only() {
    let db = pg::db("ai_usage");
    db.psql(pg::AI_USAGE_TABLE);
    db.psql(AI_USAGE_ROWS);
    let sb = Sandbox::new();
    let report = |args: &[&str]| -> Value {
        serde_json::from_str(&stdout(&tokmon(&sb, &db.url, args).success())).unwrap()
    };
    let all = report(&[
        "report",
        "--format",
        "json",
        "--range",
        "all",
        "--cost-mode",
        "stored",
    ]);
    let t = &all["totals"];
    // The cache-hit marker is no event.
    assert_eq!(t["events"], 3, "{all}");
    assert_eq!(t["input_tokens"], 1101, "{all}");
    assert_eq!(t["output_tokens"], 62, "{all}");
    // Cents: 125 + 0 + 7.
    assert!(
        (t["cost_usd"].as_f64().unwrap() - 1.32).abs() < 1e-9,
        "{all}"
    );
    // `timestamp` is UTC: the day boundary falls between the first and second rows.
    let days = report(&[
        "report",
        "--format",
        "json",
        "--by",
        "day",
        "--range",
        "2025-11-18..2025-11-20",
        "--cost-mode",
        "stored",
    ]);
    let text = days.to_string();
    assert!(
        text.contains("2025-11-18") && text.contains("2025-11-19"),
        "{text}"
    );
    let by_user = report(&[
        "report", "--format", "json", "--by", "user", "--range", "all",
    ]);
    let text = by_user.to_string();
    assert!(
        text.contains("10000000-0000-0000-0000-000000000001"),
        "{text}"
    );
    assert!(
        text.contains("10000000-0000-0000-0000-000000000002"),
        "{text}"
    );
    let by_project = report(&[
        "report", "--format", "json", "--by", "project", "--range", "all",
    ]);
    assert!(
        by_project
            .to_string()
            .contains("20000000-0000-0000-0000-000000000002")
    );
    let forced = report(&[
        "report", "--format", "json", "--by", "project", "--range", "all", "--schema", "ai-usage",
    ]);
    assert_eq!(forced["groups"], by_project["groups"]);
    tokmon(&sb, &db.url, &["report", "--schema", "native"]).code(2);
    // Never written: record is refused, and nothing was created.
    let before = db.psql("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'");
    let a = tokmon(&sb, &db.url, &["record", "--model", "m", "--input", "1"]).code(2);
    assert!(stderr(&a).contains("ai_usage"), "{}", stderr(&a));
    let after = db.psql("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'");
    assert_eq!(before, after);
    assert_eq!(after, "ai_usage");
    // A report that first imports this machine's agent logs leaves the team's database alone,
    // quietly (as a foreign file is left alone).
    write_log(
        &sb,
        ".claude/projects/-w-app/s.jsonl",
        &[cc_line("msg_9", "2025-11-18T10:00:00.000Z", [1, 2, 0, 0])],
    );
    let a = sb
        .cmd()
        .args([
            "--db", &db.url, "report", "--format", "json", "--range", "all",
        ])
        .assert()
        .success();
    assert!(stderr(&a).is_empty(), "{}", stderr(&a));
    assert_eq!(db.psql("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'"), "ai_usage");
}

#[test]
fn a_bad_url_is_refused_by_name_without_its_password() {
    let sb = Sandbox::new();
    for url in [
        "postgres://alice:s3cret@db.example:notaport/usage",
        "postgres:s3cret",
        "postgresql://alice:s3cret@db.example/usage?sslmode=verify-full",
    ] {
        for cmd in [
            &["record", "--model", "m", "--input", "1"][..],
            &["report"][..],
            &["import", "."][..],
        ] {
            let a = tokmon(&sb, url, cmd).code(2);
            let err = stderr(&a);
            assert!(!err.contains("s3cret"), "{err}");
            assert!(err.contains("postgres"), "{err}");
        }
    }
    // Nothing was created in the working directory or the home.
    let left: Vec<_> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with("postgres")),
        "{left:?}"
    );
}

#[test]
fn credentials_come_from_the_url_pgpassword_or_pgpass_and_never_show() {
    let db = pg::db("credentials");
    db.psql(&format!(
        "CREATE ROLE writer LOGIN PASSWORD 'pw-Secret-1'; ALTER DATABASE \"{}\" OWNER TO writer;
         ALTER SCHEMA public OWNER TO writer;",
        db.name
    ));
    let server = pg::PgServer::shared();
    let base = format!("postgres://writer@127.0.0.1:{}/{}", server.port(), db.name);
    let sb = Sandbox::new();
    let rec = [
        "record",
        "--model",
        "m",
        "--input",
        "1",
        "--at",
        "2025-01-01T00:00:00Z",
    ];
    // In the URL.
    let with_pw = base.replace("writer@", "writer:pw-Secret-1@");
    let a = tokmon(&sb, &with_pw, &rec).success();
    assert!(!stderr(&a).contains("pw-Secret-1") && !stdout(&a).contains("pw-Secret-1"));
    // A wrong one: refused, and neither password is shown.
    let wrong = base.replace("writer@", "writer:wrong-Pw-2@");
    let a = tokmon(&sb, &wrong, &rec).failure();
    let err = stderr(&a);
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(
        !err.contains("wrong-Pw-2") && !err.contains("pw-Secret-1"),
        "{err}"
    );
    // PGPASSWORD.
    sb.cmd()
        .env("PGPASSWORD", "pw-Secret-1")
        .args(["--db", &base, "--no-discover"])
        .args(rec)
        .assert()
        .success();
    // ~/.pgpass, only while it is private to its owner.
    let pgpass = sb.path(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{}:*:writer:pw-Secret-1\n", server.port()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    tokmon(&sb, &base, &rec).success();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    tokmon(&sb, &base, &rec).failure();
    assert_eq!(db.psql("SELECT count(*) FROM events"), "3");
    // doctor names the database without the password.
    let a = sb.cmd().args(["--db", &with_pw, "doctor"]).assert();
    let all = stdout(&a) + &stderr(&a);
    assert!(all.contains("writer:***@127.0.0.1"), "{all}");
    assert!(!all.contains("pw-Secret-1"), "{all}");
}

/// Turn TLS on in the shared server (a self-signed certificate; a reload suffices). Other
/// tests connect with the default `prefer`, which works with or without it.
fn enable_tls(db: &pg::PgDb) {
    // In the server's data directory, which goes with the server.
    let dir = pg::PgServer::shared().data_dir();
    let (crt, key) = (dir.join("tokmon-test.crt"), dir.join("tokmon-test.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let id = |flag: &str| -> u32 {
            let o = std::process::Command::new("id")
                .args([flag, "postgres"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        for f in [&crt, &key] {
            std::os::unix::fs::chown(f, Some(id("-u")), Some(id("-g"))).unwrap();
        }
    }
    db.psql(&format!(
        "ALTER SYSTEM SET ssl_cert_file = '{}'",
        crt.display()
    ));
    db.psql(&format!(
        "ALTER SYSTEM SET ssl_key_file = '{}'",
        key.display()
    ));
    db.psql("ALTER SYSTEM SET ssl = on");
    db.psql("SELECT pg_reload_conf()");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.psql("SHOW ssl") != "on" {
        assert!(std::time::Instant::now() < deadline, "TLS did not come on");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sslmode_is_honoured() {
    let db = pg::db("sslmode");
    let sb = Sandbox::new();
    let server = pg::PgServer::shared();
    let url = |mode: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}?sslmode={mode}",
            server.port(),
            db.name
        )
    };
    let rec = ["record", "--model", "m", "--input", "1"];
    tokmon(&sb, &url("disable"), &rec).success();
    // Without TLS on the server: prefer goes on without it, require refuses.
    if db.psql("SHOW ssl") == "off" {
        tokmon(&sb, &url("prefer"), &rec).success();
        let a = tokmon(&sb, &url("require"), &rec).failure();
        let err = stderr(&a).to_lowercase();
        assert!(err.contains("tls") || err.contains("ssl"), "{err}");
        assert_eq!(db.psql("SELECT count(*) FROM events"), "2");
        enable_tls(&db);
    }
    // With TLS (a self-signed certificate, not verified, as libpq's require): encrypted.
    tokmon(&sb, &url("require"), &rec).success();
    tokmon(&sb, &url("prefer"), &rec).success();
    tokmon(&sb, &url("disable"), &rec).success();
    assert_eq!(db.psql("SELECT count(*) FROM events"), "5");
}

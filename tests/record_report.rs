//! The native store through `record` and `report`, and every bad input of both.

mod common;

use common::{Sandbox, bytes, json, refused};

fn record(sb: &Sandbox, db: &std::path::Path, args: &[&str]) -> assert_cmd::assert::Assert {
    sb.cmd()
        .arg("--db")
        .arg(db)
        .arg("record")
        .args(args)
        .assert()
}

#[test]
fn recorded_events_add_up() {
    let sb = Sandbox::new();
    let db = sb.path("data/usage.db");
    record(
        &sb,
        &db,
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
    )
    .success();
    record(
        &sb,
        &db,
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
            "2025-11-18 11:00:00",
        ],
    )
    .success();
    record(
        &sb,
        &db,
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
            "--metadata",
            "{\"k\": [1, 2]}",
        ],
    )
    .success();
    // The same key twice stores one event.
    record(
        &sb,
        &db,
        &[
            "--model",
            "gpt-4o",
            "--input",
            "5",
            "--key",
            "abc",
            "--at",
            "2025-11-18 12:00:00",
        ],
    )
    .success();
    let out = record(
        &sb,
        &db,
        &[
            "--model",
            "gpt-4o",
            "--input",
            "5",
            "--key",
            "abc",
            "--at",
            "2025-11-18 12:00:00",
        ],
    )
    .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("already recorded"));

    let v = json(sb.cmd().arg("--db").arg(&db).args([
        "report",
        "--range",
        "2025-11-18..2025-11-19",
        "--by",
        "agent",
        "--format",
        "json",
    ]));
    assert_eq!(v["totals"]["events"], 3);
    assert_eq!(v["totals"]["total_tokens"], 1605);
    assert_eq!(v["totals"]["cache_creation_tokens"], 30);
    assert_eq!(v["totals"]["cache_read_tokens"], 40);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups[0]["key"], "coder");
    assert_eq!(groups[0]["total_tokens"], 1600);
    assert_eq!(groups[1]["key"], "(none)");

    let v = json(sb.cmd().arg("--db").arg(&db).args([
        "report", "--range", "all", "--by", "hour", "--format", "json",
    ]));
    let keys: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "2025-11-17 23:00",
            "2025-11-18 10:00",
            "2025-11-18 11:00",
            "2025-11-18 12:00"
        ]
    );

    let csv = sb
        .cmd()
        .arg("--db")
        .arg(&db)
        .args([
            "report", "--range", "all", "--by", "session", "--format", "csv",
        ])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&csv.get_output().stdout).to_string();
    assert!(text.starts_with("key,events,input_tokens,output_tokens,cache_creation_tokens,cache_read_tokens,total_tokens,cost_usd\n"), "{text}");
    assert!(text.contains("\ns1,1,1,0,0,0,1,"), "{text}");

    let table = sb
        .cmd()
        .arg("--db")
        .arg(&db)
        .args(["report", "--range", "all"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&table.get_output().stdout).to_string();
    assert!(
        text.contains("TOTAL") && text.contains("1,606") && text.contains("100.0%"),
        "{text}"
    );
}

/// A model without a price: the table says so in a `Note:` line of its own; JSON and CSV
/// stay pure data on stdout and the note goes to stderr after them.
#[test]
fn unpriced_models_are_noted_in_the_table_or_on_stderr() {
    let sb = Sandbox::new();
    let db = sb.path("data/usage.db");
    record(
        &sb,
        &db,
        &[
            "--model",
            "mystery-model-x",
            "--input",
            "3000",
            "--output",
            "7",
        ],
    )
    .success();
    let note = "1 events of models without a price counted at $0: mystery-model-x (1) \
                (see `tokmon prices MODEL`)";
    for format in ["table", "json", "csv"] {
        let out = sb
            .cmd()
            .arg("--db")
            .arg(&db)
            .args([
                "report",
                "--range",
                "all",
                "--no-import",
                "--format",
                format,
            ])
            .assert()
            .success();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.get_output().stdout).to_string(),
            String::from_utf8_lossy(&out.get_output().stderr).to_string(),
        );
        if format == "table" {
            assert!(stdout.contains(&format!("Note: {note}\n")), "{stdout}");
            assert!(!stderr.contains(note), "{stderr}");
        } else {
            assert!(!stdout.contains("without a price"), "{stdout}");
            assert!(stderr.contains(&format!("tokmon: {note}\n")), "{stderr}");
        }
    }
}

#[test]
fn bad_record_values_write_nothing() {
    let sb = Sandbox::new();
    let db = sb.path("usage.db");
    record(&sb, &db, &["--model", "gpt-4o", "--input", "1"]).success();
    let before = bytes(&db);
    let cases: &[(&[&str], &str)] = &[
        (&["--model", "gpt-4o", "--input", "-5"], "-5"),
        (&["--model", "gpt-4o", "--output", "12abc"], "12abc"),
        (&["--model", "gpt-4o", "--cache-read", "1.5"], "1.5"),
        (
            &["--model", "gpt-4o", "--cache-write", "99999999999999999999"],
            "99999999999999999999",
        ),
        (&["--model", "gpt-4o", "--cost", "-0.1"], "-0.1"),
        (&["--model", "gpt-4o", "--cost", "free"], "free"),
        (
            &["--model", "gpt-4o", "--at", "last tuesday"],
            "last tuesday",
        ),
        (
            &["--model", "gpt-4o", "--metadata", "{not json"],
            "{not json",
        ),
        (&["--model", "", "--input", "1"], "--model"),
        (&["--model", "gpt-4o", "--duration-ms", "-3"], "-3"),
    ];
    for (args, named) in cases {
        refused(
            sb.cmd().arg("--db").arg(&db).arg("record").args(*args),
            named,
        );
        assert_eq!(bytes(&db), before, "{args:?} changed the database");
    }
    // A bad value never creates a database either.
    let fresh = sb.path("fresh.db");
    sb.cmd()
        .arg("--db")
        .arg(&fresh)
        .args(["record", "--model", "m", "--input", "-1"])
        .assert()
        .code(2);
    assert!(!fresh.exists());
}

#[test]
fn bad_report_values() {
    let sb = Sandbox::new();
    let db = sb.path("usage.db");
    record(&sb, &db, &["--model", "gpt-4o", "--input", "1"]).success();
    let before = bytes(&db);
    for (args, named) in [
        (vec!["--range", "yesterday"], "yesterday"),
        (
            vec!["--range", "2025-12-01..2025-11-01"],
            "2025-12-01..2025-11-01",
        ),
        (vec!["--tz", "Mars/Base"], "Mars/Base"),
        (vec!["--by", "color"], "color"),
        (vec!["--format", "xml"], "xml"),
        (vec!["--schema", "nonsense"], "nonsense"),
    ] {
        refused(
            sb.cmd().arg("--db").arg(&db).arg("report").args(&args),
            named,
        );
    }
    let missing = sb.path("missing.db");
    let out = sb
        .cmd()
        .arg("--db")
        .arg(&missing)
        .args(["report"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.db"));
    assert!(!missing.exists());
    assert_eq!(bytes(&db), before);
}

#[test]
fn record_refuses_foreign_database() {
    let sb = Sandbox::new();
    let db = sb.path("bot.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE token_usage (id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, model TEXT NOT NULL,
          input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL, user_id TEXT,
          request_type TEXT, metadata TEXT, timestamp DATETIME DEFAULT CURRENT_TIMESTAMP);",
    )
    .unwrap();
    drop(c);
    let before = bytes(&db);
    let out = sb
        .cmd()
        .arg("--db")
        .arg(&db)
        .args(["record", "--model", "gpt-4o", "--input", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bot"));
    assert_eq!(bytes(&db), before);
}

#[test]
fn env_and_config_choose_the_database() {
    let sb = Sandbox::new();
    let db = sb.path("env.db");
    sb.cmd()
        .env("TOKMON_DB", &db)
        .args(["record", "--model", "m", "--input", "3"])
        .assert()
        .success();
    assert!(db.exists());
    let cfg_db = sb.path("cfg.db");
    let cfg = sb.path("c.toml");
    std::fs::write(&cfg, format!("db = {:?}\n", cfg_db.display().to_string())).unwrap();
    sb.cmd()
        .env("TOKMON_CONFIG", &cfg)
        .args(["record", "--model", "m", "--input", "3"])
        .assert()
        .success();
    assert!(cfg_db.exists());
    // The flag beats the environment.
    let flag_db = sb.path("flag.db");
    sb.cmd()
        .env("TOKMON_DB", &db)
        .arg("--db")
        .arg(&flag_db)
        .args(["record", "--model", "m"])
        .assert()
        .success();
    assert!(flag_db.exists());
    // A config file with a typo is an error naming the file.
    std::fs::write(&cfg, "dbb = 1\n").unwrap();
    let out = sb
        .cmd()
        .env("TOKMON_CONFIG", &cfg)
        .args(["report"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.toml"));
}

#[test]
fn demo_writes_a_new_database_and_refuses_bad_values() {
    let sb = Sandbox::new();
    let out = sb.path("demo.db");
    sb.cmd()
        .args(["demo", "--rows", "500", "--days", "3", "--out"])
        .arg(&out)
        .assert()
        .success();
    let v = json(
        sb.cmd()
            .arg("--db")
            .arg(&out)
            .args(["report", "--range", "all", "--format", "json"]),
    );
    assert_eq!(v["totals"]["events"], 500);
    let before = bytes(&out);
    for (args, named) in [
        (vec!["--rows", "-5"], "-5"),
        (vec!["--rows", "many"], "many"),
        (vec!["--days", "0"], "--days"),
        (vec!["--rows", "10"], "already exists"),
    ] {
        refused(
            sb.cmd().arg("demo").args(&args).arg("--out").arg(&out),
            named,
        );
    }
    assert_eq!(bytes(&out), before);
    let fresh = sb.path("fresh.db");
    sb.cmd()
        .args(["demo", "--rows", "-1", "--out"])
        .arg(&fresh)
        .assert()
        .code(2);
    assert!(!fresh.exists());
}

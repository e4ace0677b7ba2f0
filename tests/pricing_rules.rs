//! The pricing rules end to end: 1-hour cache writes, long-context tiers and embeddings, through
//! `record`, `import` and `report` under `--cost-mode calculate` and `auto`, read from the
//! rollups (whole slices) and from the events (a scan) with the same result, on a database
//! migrated from before the price-detail columns, and on a foreign tracker's database.

mod common;

use std::path::Path;

use common::{Sandbox, json, refused};
use rusqlite::Connection;
use tokmon::cli::CostMode;
use tokmon::config::Config;
use tokmon::cost::cost_of;
use tokmon::store::native::{NewEvent, insert_events, open_rw};
use tokmon::store::{AggQuery, AggRow, Dimension, Source};
use tokmon::timefmt::Zone;

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn record(sb: &Sandbox, db: &Path, args: &[&str]) {
    sb.cmd()
        .arg("--db")
        .arg(db)
        .arg("record")
        .args(args)
        .assert()
        .success();
}

/// `report --format json` with extra arguments.
fn report(sb: &Sandbox, db: &Path, args: &[&str]) -> serde_json::Value {
    json(
        sb.cmd()
            .arg("--db")
            .arg(db)
            .args(["report", "--format", "json"])
            .args(args),
    )
}

fn total_cost(v: &serde_json::Value) -> f64 {
    v["totals"]["cost_usd"]
        .as_f64()
        .unwrap_or_else(|| panic!("no totals.cost_usd in {v}"))
}

fn group_cost(v: &serde_json::Value, key: &str) -> f64 {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {v}"))["cost_usd"]
        .as_f64()
        .unwrap()
}

/// The four "done when" requests, recorded at `at` without a stored cost, and their costs.
fn record_examples(sb: &Sandbox, db: &Path, at: &str) -> Vec<(&'static str, f64)> {
    let examples: [(&str, &[&str], f64); 4] = [
        // 1M tokens of 1-hour cache writes on claude-sonnet-4-5: $6.00.
        (
            "claude-sonnet-4-5",
            &["--cache-write", "1000000", "--cache-write-1h", "1000000"],
            6.0,
        ),
        // A 250,000-token prompt and 1,000 output tokens on gemini-2.5-pro: $0.64.
        (
            "gemini-2.5-pro",
            &["--input", "250000", "--output", "1000"],
            0.64,
        ),
        // The same on Sonnet 4.5 through Bedrock: $6 / $22.50 per M above 200k.
        (
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            &["--input", "250000", "--output", "1000"],
            1.5225,
        ),
        // 1M tokens of embeddings: $0.02.
        ("text-embedding-3-small", &["--input", "1000000"], 0.02),
    ];
    for (model, args, _) in &examples {
        let mut all = vec!["--model", model, "--at", at];
        all.extend_from_slice(args);
        record(sb, db, &all);
    }
    examples.iter().map(|(m, _, c)| (*m, *c)).collect()
}

#[test]
fn recorded_requests_cost_what_the_table_says() {
    let sb = Sandbox::new();
    let db = sb.path("usage.db");
    let examples = record_examples(&sb, &db, "2025-11-18T10:07:00Z");
    let want: f64 = examples.iter().map(|(_, c)| c).sum();
    for mode in ["calculate", "auto"] {
        // Whole days (the rollup), a range with partial slices at both ends, and a grouping
        // the rollup does not keep (a scan of the events): the same costs.
        for extra in [
            &["--range", "2025-11-18..2025-11-19"][..],
            &["--range", "2025-11-18T10:05:00Z..2025-11-18T10:08:00Z"][..],
            &["--range", "all", "--by", "session"][..],
        ] {
            let mut args = vec!["--cost-mode", mode];
            args.extend_from_slice(extra);
            let v = report(&sb, &db, &args);
            assert!(near(total_cost(&v), want), "{mode} {extra:?}: {v}");
            if !extra.contains(&"session") {
                for (model, cost) in &examples {
                    assert!(
                        near(group_cost(&v, model), *cost),
                        "{mode} {extra:?} {model}: {v}"
                    );
                }
            }
        }
    }
    // A stored cost still wins under auto, and is all that counts under stored.
    record(
        &sb,
        &db,
        &[
            "--model",
            "gemini-2.5-pro",
            "--input",
            "300000",
            "--cost",
            "0.5",
            "--at",
            "2025-11-18T10:30:00Z",
        ],
    );
    let range = ["--range", "2025-11-18..2025-11-19"];
    let auto = report(&sb, &db, &[&range[..], &["--cost-mode", "auto"]].concat());
    assert!(near(total_cost(&auto), want + 0.5), "{auto}");
    let stored = report(&sb, &db, &[&range[..], &["--cost-mode", "stored"]].concat());
    assert!(near(total_cost(&stored), 0.5), "{stored}");
    let calc = report(
        &sb,
        &db,
        &[&range[..], &["--cost-mode", "calculate"]].concat(),
    );
    assert!(near(total_cost(&calc), want + 0.75), "{calc}");
}

#[test]
fn more_one_hour_writes_than_cache_writes_is_refused() {
    let sb = Sandbox::new();
    let db = sb.path("usage.db");
    refused(
        sb.cmd().arg("--db").arg(&db).args([
            "record",
            "--model",
            "claude-sonnet-4-5",
            "--cache-write",
            "10",
            "--cache-write-1h",
            "11",
        ]),
        "--cache-write-1h '11'",
    );
    refused(
        sb.cmd().arg("--db").arg(&db).args([
            "record",
            "--model",
            "claude-sonnet-4-5",
            "--cache-write-1h",
            "-1",
        ]),
        "--cache-write-1h '-1'",
    );
    assert!(!db.exists(), "nothing may be written");
}

/// A Claude Code assistant line.
fn cc_line(id: &str, ts: &str, model: &str, usage: &str) -> String {
    format!(
        r#"{{"type":"assistant","timestamp":"{ts}","sessionId":"s1","requestId":"req_{id}","cwd":"/p","message":{{"id":"msg_{id}","model":"{model}","usage":{usage}}}}}"#
    )
}

#[test]
fn imported_claude_code_replies_price_their_one_hour_writes_and_long_prompts() {
    let sb = Sandbox::new();
    let db = sb.path("usage.db");
    let dir = sb.path("claude/projects/-p");
    std::fs::create_dir_all(&dir).unwrap();
    let lines = [
        // 600k cache writes, 400k of them for 1 hour: 0.2M x 3.75 + 0.4M... on Sonnet 4.5.
        cc_line(
            "a",
            "2025-11-18T10:00:00Z",
            "claude-sonnet-4-5-20250929",
            r#"{"input_tokens":1000,"output_tokens":2000,"cache_creation_input_tokens":600000,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":200000,"ephemeral_1h_input_tokens":400000}}"#,
        ),
        // A long prompt on Vertex AI: input + cache read above 200k, so the tier's rates.
        cc_line(
            "b",
            "2025-11-18T10:20:00Z",
            "claude-sonnet-4-5@20250929",
            r#"{"input_tokens":10000,"output_tokens":1000,"cache_creation_input_tokens":0,"cache_read_input_tokens":240000}"#,
        ),
    ];
    std::fs::write(dir.join("s1.jsonl"), lines.join("\n") + "\n").unwrap();
    sb.cmd()
        .arg("--db")
        .arg(&db)
        .arg("import")
        .arg(sb.path("claude"))
        .assert()
        .success();
    let a = 1000.0 * 3e-6 + 2000.0 * 1.5e-5 + 200_000.0 * 3.75e-6 + 400_000.0 * 6e-6;
    let b = 10_000.0 * 6e-6 + 1000.0 * 2.25e-5 + 240_000.0 * 6e-7;
    for extra in [
        &["--range", "2025-11-18..2025-11-19"][..],
        &["--range", "all", "--by", "session"][..],
    ] {
        for mode in ["calculate", "auto"] {
            let mut args = vec!["--cost-mode", mode];
            args.extend_from_slice(extra);
            let v = report(&sb, &db, &args);
            assert!(near(total_cost(&v), a + b), "{mode} {extra:?}: {v}");
        }
    }
    let v = report(
        &sb,
        &db,
        &[
            "--range",
            "all",
            "--cost-mode",
            "calculate",
            "--by",
            "model",
        ],
    );
    assert!(near(group_cost(&v, "claude-sonnet-4-5-20250929"), a), "{v}");
    assert!(near(group_cost(&v, "claude-sonnet-4-5@20250929"), b), "{v}");
}

fn event(ts_ms: i64, model: &str, t: [u64; 5], cost: Option<f64>) -> NewEvent {
    NewEvent {
        ts_ms,
        model: model.into(),
        agent: Some(if ts_ms % 2 == 0 { "a" } else { "b" }.into()),
        provider: Some("p".into()),
        session: Some(format!("s{}", ts_ms % 3)),
        input_tokens: t[0],
        output_tokens: t[1],
        cache_creation_tokens: t[2],
        cache_creation_1h_tokens: t[3],
        cache_read_tokens: t[4],
        cost_usd: cost,
        source: "test".into(),
        ..Default::default()
    }
}

/// Events of every kind the price needs apart, spread over a few hours.
fn mixed_events(t0: i64) -> Vec<NewEvent> {
    let models = [
        "gemini-2.5-pro",
        "claude-sonnet-4-5",
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "text-embedding-004",
    ];
    (0..120)
        .map(|i: i64| {
            let long = i % 3 == 0;
            let cw = if i % 4 == 0 { 50_000 } else { 3_000 };
            let t = [
                if long { 180_000 } else { 5_000 } + i as u64,
                700 + i as u64,
                cw,
                if i % 5 == 0 { cw / 2 } else { 0 },
                if i % 2 == 0 { 30_000 } else { 0 },
            ];
            let cost = (i % 7 == 0).then_some(0.01 * i as f64);
            event(t0 + i * 137_000, models[i as usize % models.len()], t, cost)
        })
        .collect()
}

fn costs(rows: &[AggRow], mode: CostMode) -> Vec<(Option<String>, Option<String>, f64)> {
    let mut out: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.key.clone(),
                r.model.clone(),
                cost_of(&r.sums, r.model.as_deref(), mode).usd,
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// The rollup (or rollup cache) and a scan of the events give the same sums and costs.
fn assert_rollup_equals_scan(src: &Source, t0: i64) {
    assert!(src.has_rollup_or_cache());
    let slice = tokmon::store::query::SLICE_MS;
    let first = t0.div_euclid(slice) * slice;
    for (from_ms, to_ms) in [
        (None, None),
        (Some(first), Some(first + 16 * slice)),
        (Some(first + 1), Some(first + 9 * slice - 1)),
    ] {
        for by in [None, Some(Dimension::Agent), Some(Dimension::Model)] {
            let q = AggQuery {
                from_ms,
                to_ms,
                by,
                bucket_ms: None,
            };
            let fast = src.aggregate(&q).unwrap();
            let scan = src.aggregate_scan(&q).unwrap();
            let total = |rows: &[AggRow]| {
                let mut s = tokmon::store::Sums::default();
                rows.iter().for_each(|r| s.add(&r.sums).unwrap());
                s
            };
            assert_eq!(total(&fast).all, total(&scan).all, "{q:?}");
            assert_eq!(total(&fast).uncosted, total(&scan).uncosted, "{q:?}");
            assert!(total(&scan).all.long.input > 0, "{q:?}: no long request");
            for mode in [CostMode::Calculate, CostMode::Auto, CostMode::Stored] {
                let (f, s) = (costs(&fast, mode), costs(&scan, mode));
                assert_eq!(f.len(), s.len(), "{q:?}");
                for (a, b) in f.iter().zip(&s) {
                    assert_eq!((&a.0, &a.1), (&b.0, &b.1), "{q:?}");
                    assert!(near(a.2, b.2), "{q:?} {mode:?}: {a:?} vs {b:?}");
                }
            }
        }
    }
}

const T0: i64 = 1_763_460_000_000; // 2025-11-18T10:00:00Z

#[test]
fn native_rollups_and_scans_price_alike_also_after_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = open_rw(&path).unwrap();
    let events = mixed_events(T0);
    insert_events(&mut conn, &events).unwrap();
    let src = Source::open(&path, None, &Config::default(), Zone::UTC).unwrap();
    assert_rollup_equals_scan(&src, T0);
    // The calculated cost is the sum of each event priced alone.
    let q = AggQuery::default();
    let rows = src.aggregate(&q).unwrap();
    let got: f64 = costs(&rows, CostMode::Calculate).iter().map(|c| c.2).sum();
    let want: f64 = events
        .iter()
        .map(|e| {
            let t = tokmon::store::query::Tokens::of_request(
                e.input_tokens,
                e.output_tokens,
                e.cache_creation_tokens,
                e.cache_creation_1h_tokens,
                e.cache_read_tokens,
            );
            tokmon::pricing::resolve(&e.model).unwrap().price.cost(&t)
        })
        .sum();
    assert!(near(got, want), "{got} vs {want}");
    conn.execute("DELETE FROM events WHERE id % 4 = 1", [])
        .unwrap();
    assert_rollup_equals_scan(&src, T0);
}

#[test]
fn an_existing_database_migrates_and_backfills_the_one_hour_split() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // A database as tokmon wrote it before the price-detail columns (schema version 4).
        let c = Connection::open(&path).unwrap();
        for sql in [
            include_str!("../migrations/0001_events.sql"),
            include_str!("../migrations/0002_import_files.sql"),
            include_str!("../migrations/0003_rollups.sql"),
            include_str!("../migrations/0004_rollup_triggers.sql"),
        ] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 4).unwrap();
        c.execute_batch(
            "INSERT INTO events (ts, provider, model, agent, input_tokens, output_tokens,
                 cache_creation_tokens, cache_read_tokens, source, unique_key, metadata) VALUES
             (1763460000000, 'anthropic', 'claude-sonnet-4-5', 'claude-code', 10, 20, 1000000, 0,
              'import:claude-code', 'cc:a', '{\"cache_creation_5m_tokens\":0,\"cache_creation_1h_tokens\":1000000}'),
             (1763460100000, 'google', 'gemini-2.5-pro', NULL, 250000, 1000, 0, 0, 'record', NULL, NULL),
             (1763460200000, 'anthropic', 'claude-sonnet-4-5', 'x', 0, 0, 500, 0, 'record', NULL,
              '{\"cache_creation_1h_tokens\":500}');",
        )
        .unwrap();
        // Read as it is, before any write migrates it: the old columns, scanned.
        let src = Source::open(&path, None, &Config::default(), Zone::UTC).unwrap();
        assert!(!src.has_rollup_or_cache());
        assert_eq!(src.aggregate(&AggQuery::default()).unwrap().len(), 2);
    }
    let _ = open_rw(&path).unwrap();
    let c = Connection::open(&path).unwrap();
    let split: Vec<i64> = c
        .prepare("SELECT cache_creation_1h_tokens FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Only Claude Code imports carried the split; other metadata is not read.
    assert_eq!(split, [1_000_000, 0, 0]);
    let src = Source::open(&path, None, &Config::default(), Zone::UTC).unwrap();
    assert!(src.has_rollup_or_cache());
    let q = AggQuery {
        by: Some(Dimension::Model),
        ..Default::default()
    };
    let rows = src.aggregate(&q).unwrap();
    let cost = |model: &str| {
        let r = rows
            .iter()
            .find(|r| r.model.as_deref() == Some(model))
            .unwrap();
        cost_of(&r.sums, r.model.as_deref(), CostMode::Calculate).usd
    };
    assert!(near(
        cost("claude-sonnet-4-5"),
        10.0 * 3e-6 + 20.0 * 1.5e-5 + 6.0 + 500.0 * 3.75e-6
    ));
    assert!(near(cost("gemini-2.5-pro"), 0.64));
    let scan = src.aggregate_scan(&q).unwrap();
    assert_eq!(
        costs(&rows, CostMode::Calculate),
        costs(&scan, CostMode::Calculate)
    );
}

#[test]
fn a_foreign_trackers_rollup_cache_prices_like_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE token_usage (
               id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, model TEXT NOT NULL,
               input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL,
               user_id TEXT, request_type TEXT, metadata TEXT,
               timestamp DATETIME DEFAULT CURRENT_TIMESTAMP);",
        )
        .unwrap();
        let mut ins = c
            .prepare(
                "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd,
                     request_type, timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .unwrap();
        for e in mixed_events(T0) {
            let ts = chrono::DateTime::from_timestamp_millis(e.ts_ms)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            // The bot tracker keeps no cache columns: the whole prompt is input.
            ins.execute(rusqlite::params![
                "p",
                e.model,
                (e.input_tokens + e.cache_creation_tokens + e.cache_read_tokens) as i64,
                e.output_tokens as i64,
                e.cost_usd,
                e.agent,
                ts
            ])
            .unwrap();
        }
    }
    let mut src = Source::open(&path, None, &Config::default(), Zone::UTC).unwrap();
    src.use_cache_dir(&dir.path().join("cache"));
    assert_rollup_equals_scan(&src, T0);
    // Embeddings are priced: 30 text-embedding-004 rows.
    let q = AggQuery {
        by: Some(Dimension::Model),
        ..Default::default()
    };
    let rows = src.aggregate(&q).unwrap();
    let emb = rows
        .iter()
        .find(|r| r.model.as_deref() == Some("text-embedding-004"))
        .unwrap();
    let c = cost_of(&emb.sums, emb.model.as_deref(), CostMode::Calculate);
    assert_eq!(c.unpriced_events, 0);
    assert!(near(c.usd, emb.sums.all.input as f64 * 1e-7), "{c:?}");
}

#[test]
fn a_correction_of_a_long_context_reply_is_priced_in_its_tier() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = open_rw(&path).unwrap();
    // A streamed reply: its first line stored, a later line (more output) read later.
    let line = |output: u64| NewEvent {
        ts_ms: T0,
        model: "claude-sonnet-4-5@20250929".into(),
        agent: Some("claude-code".into()),
        input_tokens: 10_000,
        output_tokens: output,
        cache_read_tokens: 240_000,
        source: tokmon::store::native::CORRECTABLE_SOURCE.into(),
        unique_key: Some("cc:msg_1:req_1".into()),
        ..Default::default()
    };
    insert_events(&mut conn, [&line(3)]).unwrap();
    insert_events(&mut conn, [&line(159)]).unwrap();
    let corrections: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE corrects IS NOT NULL AND long_context = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(corrections, 1, "the correction takes the reply's tier");
    let want = 10_000.0 * 6e-6 + 159.0 * 2.25e-5 + 240_000.0 * 6e-7;
    let src = Source::open(&path, None, &Config::default(), Zone::UTC).unwrap();
    let slice = tokmon::store::query::SLICE_MS;
    for q in [
        AggQuery::default(),
        AggQuery {
            from_ms: Some(T0 - T0 % slice),
            to_ms: Some(T0 - T0 % slice + slice),
            ..Default::default()
        },
    ] {
        for rows in [src.aggregate(&q).unwrap(), src.aggregate_scan(&q).unwrap()] {
            let got: f64 = costs(&rows, CostMode::Calculate).iter().map(|c| c.2).sum();
            assert!(near(got, want), "{got} vs {want}");
        }
    }
    // The monitor's tail prices row by row: the same.
    let mut sums = tokmon::store::Sums::default();
    for e in src.events_after(0, 10).unwrap() {
        sums.add(&tokmon::store::Sums::of_event(&e)).unwrap();
    }
    assert_eq!(sums.all.events, 1);
    let got = cost_of(
        &sums,
        Some("claude-sonnet-4-5@20250929"),
        CostMode::Calculate,
    )
    .usd;
    assert!(near(got, want), "{got} vs {want}");
}

//! The monitor's first look at a foreign tracker's database: all-time numbers come before the
//! rollup cache is built (without reading a timestamp), the cache is built on a thread of its
//! own, and the numbers read through it afterwards are the same. A newer request stops a read
//! in progress; the block watcher waits for the cache; readers sharing a cache file never fold
//! a row twice.

mod common;
#[path = "common/tail.rs"]
mod tail;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokmon::config::Config;
use tokmon::demo::{Flavor, generate};
use tokmon::store::{AggQuery, AggRow, Dimension, Source};
use tokmon::timefmt::Zone;
use tokmon::tui::app::Msg;
use tokmon::tui::live::{Cmd, load_snapshot};
use tokmon::tui::model::{LoadRequest, RangeKind, Snapshot};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-11-18T21:39:51Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A bot tracker's database with rows whose time cannot be read.
fn tracker(dir: &std::path::Path) -> (std::path::PathBuf, u64) {
    let db = dir.join("bot.db");
    generate(&db, Flavor::Bot, 3_000, 10, 11, now()).unwrap();
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, request_type, timestamp)
         VALUES ('openai', 'gpt-4o', 1, 2, 0.5, 'chat', 'garbage'),
                ('openai', 'gpt-4o', 5, 6, NULL, NULL, NULL);",
    )
    .unwrap();
    let rows = c
        .query_row("SELECT COUNT(*) FROM token_usage", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap() as u64;
    (db, rows)
}

type Key = (Option<String>, Option<String>, Option<String>);

/// Sums by agent, provider and model, whatever the time buckets.
fn by_agent_model(rows: &[(AggRow, Option<String>)]) -> BTreeMap<Key, (u64, u64, i64)> {
    let mut out: BTreeMap<_, (u64, u64, i64)> = BTreeMap::new();
    for (r, provider) in rows {
        let e = out
            .entry((r.key.clone(), provider.clone(), r.model.clone()))
            .or_default();
        e.0 += r.sums.all.events;
        e.1 += r.sums.all.total();
        e.2 += (r.sums.stored_cost * 1e6).round() as i64;
    }
    out
}

fn events(s: &Snapshot) -> u64 {
    s.rows.iter().map(|(r, _)| r.sums.all.events).sum()
}

fn request() -> LoadRequest {
    LoadRequest {
        generation: 1,
        range: RangeKind::All,
        now_ms: now().timestamp_millis(),
    }
}

#[test]
fn all_time_numbers_before_the_cache_equal_those_after() {
    let dir = tempfile::tempdir().unwrap();
    let (db, rows) = tracker(dir.path());
    let cache_dir = dir.path().join("cache");
    let mut src = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
    src.use_cache_dir(&cache_dir);
    src.defer_cache_build(true);
    assert!(src.cache_pending());

    let first = load_snapshot(&src, &request()).unwrap();
    assert!(
        src.cache_pending(),
        "the first numbers do not build the cache"
    );
    assert_eq!(events(&first), rows, "every row counts in all time");
    assert!(first.rows.iter().all(|(r, _)| r.bucket_ms.is_none()));
    assert_eq!(
        first.last_event_ms, None,
        "the newest time waits for the cache"
    );

    src.build_cache().unwrap();
    assert!(!src.cache_pending());
    let second = load_snapshot(&src, &request()).unwrap();
    assert_eq!(events(&second), rows);
    assert!(second.rows.iter().any(|(r, _)| r.bucket_ms.is_some()));
    assert!(second.last_event_ms.is_some());
    assert_eq!(by_agent_model(&first.rows), by_agent_model(&second.rows));

    // A shorter range while the cache is still to be built is read from the events.
    let mut cold = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
    cold.use_cache_dir(&dir.path().join("other-cache"));
    cold.defer_cache_build(true);
    let day = LoadRequest {
        range: RangeKind::Day,
        ..request()
    };
    let scanned = load_snapshot(&cold, &day).unwrap();
    assert!(cold.cache_pending());
    let cached = load_snapshot(&src, &day).unwrap();
    assert!(events(&scanned) > 0);
    assert_eq!(by_agent_model(&scanned.rows), by_agent_model(&cached.rows));
}

#[test]
fn the_tail_builds_the_cache_behind_the_first_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (db, rows) = tracker(dir.path());
    let cache_dir = dir.path().join("cache");
    let (tail, cmd_tx, mut rx) = tail::spawn_tail(&db, Config::default(), Some(cache_dir.clone()));
    cmd_tx.send(Cmd::Load(request())).unwrap();
    // Snapshots until one carries the timeline (read through the built cache).
    let mut snaps = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while snaps
        .last()
        .is_none_or(|s: &Snapshot| s.last_event_ms.is_none())
    {
        assert!(Instant::now() < deadline, "no snapshot with the timeline");
        match rx.try_recv() {
            Ok(Msg::Snapshot(s)) => snaps.push(*s),
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let last = snaps.last().unwrap();
    assert_eq!(events(last), rows);
    for s in &snaps {
        assert_eq!(by_agent_model(&s.rows), by_agent_model(&last.rows));
    }
    // The cache is there for the next start.
    let mut again = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
    again.use_cache_dir(&cache_dir);
    assert!(!again.cache_pending());
    drop(cmd_tx);
    tail.join().unwrap();
}

/// A bot tracker's table of `n` rows, all within the day before `now_ms` (so a 24-hour read
/// reads every row's time), written by SQLite itself (fast in a debug build).
fn day_of_rows(dir: &std::path::Path, n: u64, now_ms: i64) -> std::path::PathBuf {
    let db = dir.join("big.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(&format!(
        "CREATE TABLE token_usage (
           id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, model TEXT NOT NULL,
           input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL,
           user_id TEXT, request_type TEXT, metadata TEXT,
           timestamp DATETIME DEFAULT CURRENT_TIMESTAMP);
         WITH RECURSIVE k(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM k WHERE v < {n})
         INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd,
                                  request_type, timestamp)
           SELECT CASE v % 3 WHEN 0 THEN 'openai' ELSE 'anthropic' END,
                  CASE v % 3 WHEN 0 THEN 'gpt-4o' ELSE 'claude-sonnet-4-5' END,
                  v % 1000, v % 77, (v % 5) * 0.001,
                  CASE v % 2 WHEN 0 THEN 'claude-code' ELSE 'chat' END,
                  strftime('%Y-%m-%d %H:%M:%S', {start} + (v * 80000) / {n}, 'unixepoch')
           FROM k;",
        start = now_ms / 1000 - 82_000,
    ))
    .unwrap();
    db
}

fn next_msg(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Msg>, what: &str) -> Msg {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        match rx.try_recv() {
            Ok(m) => return m,
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

#[test]
fn a_newer_request_stops_the_read_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let now_ms = Utc::now().timestamp_millis();
    let db = day_of_rows(dir.path(), 300_000, now_ms);
    let (tail, cmd_tx, mut rx) =
        tail::spawn_tail(&db, Config::default(), Some(dir.path().join("cache")));
    let day = LoadRequest {
        generation: 1,
        range: RangeKind::Day,
        now_ms,
    };
    cmd_tx.send(Cmd::Load(day)).unwrap();
    // Opened, then the day's read starts: every row's time is read (hundreds of ms here).
    while !matches!(next_msg(&mut rx, "the source opened"), Msg::Opened { .. }) {}
    std::thread::sleep(Duration::from_millis(20));
    cmd_tx
        .send(Cmd::Load(LoadRequest {
            generation: 2,
            range: RangeKind::All,
            now_ms,
        }))
        .unwrap();
    let first = loop {
        if let Msg::Snapshot(s) = next_msg(&mut rx, "a snapshot") {
            break s;
        }
    };
    assert_eq!(
        first.generation, 2,
        "the day's read, no longer wanted, was stopped and the newer request answered first"
    );
    assert_eq!(events(&first), 300_000);
    drop(cmd_tx);
    tail.join().unwrap();
}

#[test]
fn all_time_numbers_before_the_cache_equal_report() {
    let dir = tempfile::tempdir().unwrap();
    let (db, rows) = tracker(dir.path());
    let mut src = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
    src.use_cache_dir(&dir.path().join("cache"));
    src.defer_cache_build(true);
    let first = load_snapshot(&src, &request()).unwrap();
    assert!(src.cache_pending(), "read before the cache exists");
    assert_eq!(events(&first), rows);

    // The monitor's numbers by model …
    let mut shown: BTreeMap<String, (u64, u64, u64, i64)> = BTreeMap::new();
    for (r, _) in &first.rows {
        let e = shown
            .entry(r.model.clone().unwrap_or_else(|| "(none)".into()))
            .or_default();
        e.0 += r.sums.all.events;
        e.1 += r.sums.all.input;
        e.2 += r.sums.all.output;
        e.3 += (r.sums.stored_cost * 1e6).round() as i64;
    }
    // … are `report`'s (with the stored costs, which the snapshot carries).
    let sb = common::Sandbox::new();
    let v = common::json(sb.cmd().arg("--db").arg(&db).args([
        "report",
        "--range",
        "all",
        "--by",
        "model",
        "--cost-mode",
        "stored",
        "--format",
        "json",
    ]));
    let mut reported: BTreeMap<String, (u64, u64, u64, i64)> = BTreeMap::new();
    for g in v["groups"].as_array().unwrap() {
        reported.insert(
            g["key"].as_str().unwrap().to_string(),
            (
                g["events"].as_u64().unwrap(),
                g["input_tokens"].as_u64().unwrap(),
                g["output_tokens"].as_u64().unwrap(),
                (g["cost_usd"].as_f64().unwrap() * 1e6).round() as i64,
            ),
        );
    }
    assert_eq!(shown, reported);
}

#[test]
fn the_block_watcher_reads_a_foreign_database_only_through_its_built_cache() {
    use std::sync::{Arc, Mutex};
    use tokmon::tui::agent_logs::{AgentLogsMsg, Setup, Watchers};
    let dir = tempfile::tempdir().unwrap();
    let now_ms = Utc::now().timestamp_millis();
    // Claude Code rows (the block agent) up to a few minutes ago: an active block.
    let db = day_of_rows(dir.path(), 2_000, now_ms);
    let cache_dir = dir.path().join("cache");
    let got: Arc<Mutex<Vec<AgentLogsMsg>>> = Arc::default();
    let sink = {
        let got = got.clone();
        Arc::new(move |m| {
            got.lock().unwrap().push(m);
            true
        })
    };
    let watchers = Watchers::start(
        Setup {
            paths: Vec::new(),
            db: db.clone(),
            config: Config::default(),
            schema: None,
            foreign_zone: Zone::UTC,
            cost_mode: tokmon::cli::CostMode::Auto,
            cache_dir: Some(cache_dir.clone()),
        },
        sink,
    )
    .unwrap();
    // No cache yet: the watcher reads nothing (it would read every row's time).
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        got.lock().unwrap().is_empty(),
        "nothing read before the cache is built"
    );
    // The tail builds the cache: the watcher then shows the active block from it.
    let mut src = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
    src.use_cache_dir(&cache_dir);
    src.build_cache().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let block = loop {
        assert!(
            Instant::now() < deadline,
            "no gauge after the cache was built"
        );
        let found = got.lock().unwrap().iter().find_map(|m| match m {
            AgentLogsMsg::Gauge(Some(g)) => g.block.clone(),
            _ => None,
        });
        if let Some(b) = found {
            break b;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(block.active);
    assert!(block.tokens.events > 0);
    drop(watchers);
}

#[test]
fn readers_sharing_a_cache_file_never_fold_a_row_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = tracker(dir.path());
    let cache_dir = dir.path().join("cache");
    let open = || {
        let mut s = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
        s.use_cache_dir(&cache_dir);
        s
    };
    open().build_cache().unwrap();
    // Two readers (say the monitor's tail and its block watcher, or a report) with the cache
    // as it is now …
    let (a, b) = (open(), open());
    let range = AggQuery {
        from_ms: Some(now().timestamp_millis() - 20 * 86_400_000),
        to_ms: None,
        by: Some(Dimension::Model),
        bucket_ms: Some(86_400_000),
    };
    let totals = |rows: &[AggRow]| {
        rows.iter().fold((0u64, 0u64), |(e, t), r| {
            (e + r.sums.all.events, t + r.sums.all.total())
        })
    };
    let before = totals(&a.aggregate(&range).unwrap());
    // … then rows come, and each reader brings the cache up to date in turn.
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, request_type, timestamp)
         VALUES ('openai', 'gpt-4o', 1000, 10, 0.5, 'chat', '2025-11-18 20:00:00'),
                ('openai', 'gpt-4o', 2000, 20, 0.5, 'chat', '2025-11-18 20:01:00');",
    )
    .unwrap();
    let after_a = totals(&a.aggregate(&range).unwrap());
    let after_b = totals(&b.aggregate(&range).unwrap());
    assert_eq!(after_a, (before.0 + 2, before.1 + 3030));
    assert_eq!(
        after_b, after_a,
        "the second reader did not fold the rows again"
    );
    assert_eq!(totals(&b.aggregate_scan(&range).unwrap()), after_a);
}

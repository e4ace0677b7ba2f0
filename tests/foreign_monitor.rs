//! The monitor's first look at a foreign tracker's database: all-time numbers come before the
//! rollup cache is built (without reading a timestamp), the cache is built on a thread of its
//! own, and the numbers read through it afterwards are the same.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokmon::config::Config;
use tokmon::demo::{Flavor, generate};
use tokmon::store::{AggRow, Source};
use tokmon::timefmt::Zone;
use tokmon::tui::app::Msg;
use tokmon::tui::live::{Cmd, Tail, TailConfig, load_snapshot};
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
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
    let tail = Tail::new(
        TailConfig {
            db: db.clone(),
            schema: None,
            config: Config::default(),
            foreign_zone: Zone::UTC,
            zone: Zone::UTC,
            cost_mode: tokmon::cli::CostMode::Auto,
            quota_state: None,
            cache_dir: Some(cache_dir.clone()),
        },
        cmd_rx,
        tx,
    )
    .spawn();
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

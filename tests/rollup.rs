//! The rollup table answers every range and grouping with exactly the numbers of a full scan,
//! also after new events are appended and after events are deleted.

use chrono::{DateTime, Utc};
use tokmon::config::Config;
use tokmon::demo::{Flavor, Generator, generate};
use tokmon::store::native::{insert_events, open_rw};
use tokmon::store::query::SLICE_MS;
use tokmon::store::{AggQuery, AggRow, Dimension, Source};
use tokmon::timefmt::Zone;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-11-18T21:39:51.250Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn sorted(mut rows: Vec<AggRow>) -> Vec<AggRow> {
    rows.retain(|r| r.sums.all.events > 0);
    rows.sort_by(|a, b| (&a.key, a.bucket_ms, &a.model).cmp(&(&b.key, b.bucket_ms, &b.model)));
    rows
}

fn assert_same(src: &Source, q: &AggQuery) {
    assert_rows_equal(src.aggregate(q).unwrap(), src.aggregate_scan(q).unwrap(), q);
}

/// The same groups with the same sums (costs to the nano-dollar: float sums in another order).
fn assert_rows_equal(fast: Vec<AggRow>, scan: Vec<AggRow>, q: &AggQuery) {
    let fast = sorted(fast);
    let scan = sorted(scan);
    assert_eq!(fast.len(), scan.len(), "{q:?}");
    for (f, s) in fast.iter().zip(&scan) {
        assert_eq!(
            (&f.key, f.bucket_ms, &f.model),
            (&s.key, s.bucket_ms, &s.model),
            "{q:?}"
        );
        assert_eq!(f.sums.all, s.sums.all, "{q:?}");
        assert_eq!(f.sums.uncosted, s.sums.uncosted, "{q:?}");
        assert!(
            (f.sums.stored_cost - s.sums.stored_cost).abs() < 1e-9,
            "{q:?}"
        );
        assert!(
            (f.sums.positive_cost - s.sums.positive_cost).abs() < 1e-9,
            "{q:?}"
        );
    }
}

/// The two-dimension read (the monitor's drill-down data) agrees with its scan.
fn assert_same_two(src: &Source, q: &AggQuery, second: Dimension) {
    let split = |rows: Vec<(AggRow, Option<String>)>| {
        let mut rows: Vec<_> = rows
            .into_iter()
            .filter(|(r, _)| r.sums.all.events > 0)
            .map(|(r, k2)| ((r.key, r.bucket_ms, r.model, k2), r.sums))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    };
    let fast = split(src.aggregate_two(q, second).unwrap());
    let scan = split(src.aggregate_two_scan(q, second).unwrap());
    assert_eq!(fast.len(), scan.len(), "{q:?} {second:?}");
    for (f, s) in fast.iter().zip(&scan) {
        assert_eq!(f.0, s.0, "{q:?}");
        assert_eq!(f.1.all, s.1.all, "{q:?}");
        assert_eq!(f.1.uncosted, s.1.uncosted, "{q:?}");
        assert!((f.1.stored_cost - s.1.stored_cost).abs() < 1e-9, "{q:?}");
    }
}

fn check_all(src: &Source) {
    assert!(src.has_rollup_or_cache());
    let end = now().timestamp_millis();
    let ranges = [
        (None, None),
        (Some(end - 3_600_000), None),
        (Some(end - 86_400_000), None),
        (Some(end - 7 * 86_400_000), Some(end - 86_400_000 + 12_345)),
        (Some(end - 2 * SLICE_MS * 4), Some(end - SLICE_MS * 4)),
        (Some(end - 600_000), Some(end - 300_000)),
        (None, Some(end - 5 * 86_400_000 - 1)),
    ];
    let dims = [
        None,
        Some(Dimension::Model),
        Some(Dimension::Agent),
        Some(Dimension::Provider),
    ];
    let buckets = [None, Some(SLICE_MS), Some(86_400_000)];
    for (from_ms, to_ms) in ranges {
        for (by, second) in [
            (Dimension::Agent, Dimension::Provider),
            (Dimension::Model, Dimension::Agent),
        ] {
            let q = AggQuery {
                from_ms,
                to_ms,
                by: Some(by),
                bucket_ms: Some(SLICE_MS),
            };
            assert_same_two(src, &q, second);
        }
        for by in dims {
            for bucket_ms in buckets {
                assert_same(
                    src,
                    &AggQuery {
                        from_ms,
                        to_ms,
                        by,
                        bucket_ms,
                    },
                );
            }
        }
    }
}

#[test]
fn rollup_matches_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    generate(&db, Flavor::Native, 2_000, 10, 3, now()).unwrap();
    let open = || Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
    check_all(&open());

    // Events appended through the normal write path (triggers keep the rollup in step).
    let mut conn = open_rw(&db).unwrap();
    let mut g = Generator::new(99);
    let end = now().timestamp_millis();
    let mut fresh: Vec<_> = (0..500).map(|i| g.event(end - i * 7_919)).collect();
    fresh[0].cost_usd = Some(0.0);
    fresh[1].agent = None;
    insert_events(&mut conn, &fresh).unwrap();
    check_all(&open());

    // Events deleted (a rewritten source): the rollup follows.
    conn.execute("DELETE FROM events WHERE id % 3 = 0", [])
        .unwrap();
    check_all(&open());

    // Events cannot be changed in place, which would leave the rollup behind.
    let err = conn
        .execute("UPDATE events SET input_tokens = 1 WHERE id = 1", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[test]
fn foreign_cache_matches_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let cache_dir = dir.path().join("cache");
    generate(&db, Flavor::Bot, 2_000, 10, 4, now()).unwrap();
    let open = || {
        let mut s = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
        s.use_cache_dir(&cache_dir);
        s
    };
    let src = open();
    check_all(&src);

    // The tracker appends rows (one with a time that cannot be read, one with no agent).
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer
        .execute_batch(
            "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, request_type, timestamp)
             VALUES ('openai', 'gpt-4o', 10, 20, NULL, 'late', '2025-11-18 21:00:00'),
                    ('openai', 'gpt-4o', 1, 2, 0.5, NULL, 'garbage'),
                    ('x', 'm', 3, 4, NULL, '', '2025-11-10 00:00:00');",
        )
        .unwrap();
    check_all(&src);
    check_all(&open());

    // Rows deleted in the middle: the count no longer matches and the cache is rebuilt.
    writer
        .execute("DELETE FROM token_usage WHERE id % 5 = 0", [])
        .unwrap();
    check_all(&open());

    // The file replaced by another database: the first row differs, the cache is rebuilt.
    drop(writer);
    std::fs::remove_file(&db).unwrap();
    generate(&db, Flavor::Bot, 1_000, 5, 8, now()).unwrap();
    check_all(&open());
    assert!(std::fs::read_dir(&cache_dir).unwrap().count() >= 1);
}

/// Rows a tracker may hold besides clean ones: a time that cannot be read, no time at all, a
/// time as unix seconds, negative and textual token counts, NULL and zero costs, empty agents.
const ODD_BOT_ROWS: &str = "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, request_type, timestamp)
    VALUES ('openai', 'gpt-4o', 10, 20, NULL, 'late', '2025-11-18 21:00:00'),
           ('openai', 'gpt-4o', 1, 2, 0.5, NULL, 'garbage'),
           ('openai', 'gpt-4o', 5, 6, 0.25, 'chat', NULL),
           ('x', 'm', -3, '4', NULL, '', '2025-11-10 00:00:00'),
           ('x', 'm', 'many', 8, 0, 'chat', 1763500000),
           ('', 'gpt-4o', 7, 8, -1.5, 'chat', '2025-11-18T20:00:00Z');";

const ODD_DESKTOP_ROWS: &str = "INSERT INTO token_usage (timestamp, session_id, endpoint_name, model, operation_type,
        operation_detail, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, channel, user_id, estimated_cost)
    VALUES ('not a time', '', 'anthropic', 'claude-sonnet-4-5', 'unknown', '', 1, 2, 3, 4, '', '', 0),
           (NULL, 's9', '', '', 'chat', '', 5, -6, 'x', 8, 'web', 'u1', NULL),
           ('2025-11-18 21:30:00', 's9', 'openai', 'gpt-4o', 'chat', '', 9, 10, 11, 12, 'web', 'u1', 0.75);";

/// The first all-time read of a foreign database (grouped in one pass, no timestamp read, no
/// cache built) gives exactly the numbers of the rollup cache once it is built, and of the
/// SQL GROUP BY. Rows whose time cannot be read count in all time, in both.
#[test]
fn first_all_time_read_equals_cache() {
    for (flavor, odd) in [
        (Flavor::Bot, ODD_BOT_ROWS),
        (Flavor::Desktop, ODD_DESKTOP_ROWS),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tracker.db");
        let cache_dir = dir.path().join("cache");
        generate(&db, flavor, 3_000, 10, 6, now()).unwrap();
        let writer = rusqlite::Connection::open(&db).unwrap();
        writer.execute_batch(odd).unwrap();
        let rows = writer
            .query_row("SELECT COUNT(*) FROM token_usage", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap() as u64;
        drop(writer);
        let mut src = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
        src.use_cache_dir(&cache_dir);
        assert!(src.cache_pending(), "{flavor:?}");
        let all = |by| AggQuery {
            by,
            ..AggQuery::default()
        };
        let dims = [
            None,
            Some(Dimension::Model),
            Some(Dimension::Agent),
            Some(Dimension::Provider),
        ];
        let first: Vec<_> = dims
            .iter()
            .map(|d| src.aggregate(&all(*d)).unwrap())
            .collect();
        assert!(
            src.cache_pending(),
            "{flavor:?}: an all-time read does not wait for the cache"
        );
        let events: u64 = first[0].iter().map(|r| r.sums.all.events).sum();
        assert_eq!(events, rows, "{flavor:?}: every row counts in all time");
        for (d, fast) in dims.iter().zip(&first) {
            assert_rows_equal(
                fast.clone(),
                src.aggregate_scan(&all(*d)).unwrap(),
                &all(*d),
            );
        }
        // Groupings the rollup does not keep read the events the same way.
        for d in [Dimension::Session, Dimension::User, Dimension::Channel] {
            assert_same(&src, &all(Some(d)));
        }

        src.build_cache().unwrap();
        assert!(!src.cache_pending(), "{flavor:?}");
        for (d, fast) in dims.iter().zip(first) {
            assert_rows_equal(fast, src.aggregate(&all(*d)).unwrap(), &all(*d));
        }
        // A second reader of the built cache gets the same numbers, and the event time bounds.
        let mut again = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
        again.use_cache_dir(&cache_dir);
        assert!(!again.cache_pending(), "{flavor:?}");
        check_all(&again);
        let cached = again.time_bounds().unwrap();
        let scanned = Source::open(&db, None, &Config::default(), Zone::UTC)
            .unwrap()
            .time_bounds()
            .unwrap();
        assert_eq!(cached, scanned, "{flavor:?}");
    }
}

/// A tracker's own index on its timestamp column serves range reads (when the cache is not
/// built), and without one a text comparison spares reading most times: either way exactly the
/// numbers of reading every row's time, also for times written in other forms.
#[test]
fn timestamp_index_serves_ranges_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.db");
    let indexed = dir.path().join("indexed.db");
    generate(&plain, Flavor::Bot, 2_000, 10, 7, now()).unwrap();
    let writer = rusqlite::Connection::open(&plain).unwrap();
    writer.execute_batch(ODD_BOT_ROWS).unwrap();
    writer
        .execute_batch(
            "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, request_type, timestamp)
             VALUES ('p', 'gpt-4o', 1, 1, 0.1, 'a', ' 2025-11-18 20:00:00'),
                    ('p', 'gpt-4o', 2, 2, 0.2, 'a', '2025-11-18T23:30:00-14:00'),
                    ('p', 'gpt-4o', 3, 3, 0.3, 'a', '2025-11-18 21:00:00.250 UTC'),
                    ('p', 'gpt-4o', 4, 4, 0.4, 'a', 1763499000123),
                    ('p', 'gpt-4o', 5, 5, 0.5, 'a', '1763499000.5'),
                    ('p', 'gpt-4o', 6, 6, 0.6, 'a', '2025-11-17');",
        )
        .unwrap();
    drop(writer);
    std::fs::copy(&plain, &indexed).unwrap();
    rusqlite::Connection::open(&indexed)
        .unwrap()
        .execute_batch("CREATE INDEX token_usage_time ON token_usage (timestamp)")
        .unwrap();
    let open = |p: &std::path::Path| Source::open(p, None, &Config::default(), Zone::UTC).unwrap();
    let (plain, indexed) = (open(&plain), open(&indexed));
    let end = now().timestamp_millis();
    let ranges = [
        (Some(end - 3_600_000), None),
        (Some(end - 86_400_000), None),
        (Some(end - 3 * 86_400_000), Some(end - 86_400_000 + 12_345)),
        (Some(end - 600_000), Some(end - 300_000)),
    ];
    for (from_ms, to_ms) in ranges {
        for by in [None, Some(Dimension::Agent), Some(Dimension::User)] {
            for bucket_ms in [None, Some(SLICE_MS)] {
                let q = AggQuery {
                    from_ms,
                    to_ms,
                    by,
                    bucket_ms,
                };
                assert!(indexed.aggregate_sql(&q).contains("INDEXED BY"), "{q:?}");
                assert!(!plain.aggregate_sql(&q).contains("INDEXED BY"), "{q:?}");
                assert!(plain.aggregate_sql(&q).contains("GLOB"), "{q:?}");
                let scan = plain.aggregate_scan(&q).unwrap();
                let wide = to_ms.is_none_or(|t| from_ms.is_some_and(|f| t - f > 3_600_000));
                assert!(!wide || !scan.is_empty(), "{q:?}");
                // Every row's time read, nothing skipped: the plain reference.
                let (events, input): (i64, i64) = plain
                    .conn()
                    .query_row(
                        "SELECT COUNT(*), TOTAL(MAX(COALESCE(CAST(input_tokens AS INTEGER), 0), 0))
                         FROM token_usage WHERE tokmon_ts(timestamp) >= ?1 AND tokmon_ts(timestamp) < ?2",
                        [from_ms.unwrap_or(i64::MIN), to_ms.unwrap_or(i64::MAX)],
                        |r| Ok((r.get(0)?, r.get::<_, f64>(1)? as i64)),
                    )
                    .unwrap();
                let sum = |rows: &[AggRow]| {
                    rows.iter().fold((0, 0), |(e, i), r| {
                        (e + r.sums.all.events as i64, i + r.sums.all.input as i64)
                    })
                };
                assert_eq!(sum(&scan), (events, input), "{q:?}");
                assert_rows_equal(indexed.aggregate_scan(&q).unwrap(), scan, &q);
            }
        }
    }
}

/// The monitor's threads (and a report) may open a foreign database's new rollup cache at the
/// same moment: every one of them gets the cache (one that got none read the tracker's every
/// row for the whole session: the monitor's first all-time numbers took 1.8× sqlite3's time).
#[test]
fn a_new_cache_opened_by_several_at_once_serves_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    generate(&db, Flavor::Bot, 200, 3, 2, now()).unwrap();
    for round in 0..30 {
        let cache_dir = dir.path().join(format!("cache{round}"));
        let start = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            let opened: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut src =
                            Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
                        start.wait();
                        src.use_cache_dir(&cache_dir);
                        src.cache_pending()
                    })
                })
                .collect();
            for o in opened {
                assert!(o.join().unwrap(), "a reader got no cache (round {round})");
            }
        });
    }
}

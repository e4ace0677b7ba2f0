//! Issue #16, the core items: ranges, budget windows, demo spans, impossible dates, negative
//! zones, the config file's encoding and cost_scale. Each of these crashed (exit 101) or gave a
//! wrong answer before; now each is a clear error (exit 2) or the right number.

mod common;

use common::{Sandbox, bytes, json, refused};
use rusqlite::Connection;

const BOT_DDL: &str = "CREATE TABLE token_usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, model TEXT NOT NULL,
  input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL,
  user_id TEXT, request_type TEXT, metadata TEXT,
  timestamp DATETIME DEFAULT CURRENT_TIMESTAMP);";

/// A bot-tracker database with the given rows (VALUES tuples after the column list).
fn bot_db(sb: &Sandbox, name: &str, values: &str) -> std::path::PathBuf {
    let p = sb.path(name);
    let c = Connection::open(&p).unwrap();
    c.execute_batch(BOT_DDL).unwrap();
    c.execute_batch(&format!(
        "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, timestamp) \
         VALUES {values};"
    ))
    .unwrap();
    p
}

fn record(sb: &Sandbox, db: &std::path::Path, args: &[&str]) -> assert_cmd::assert::Assert {
    sb.cmd()
        .arg("--db")
        .arg(db)
        .arg("record")
        .args(args)
        .assert()
}

fn events(sb: &Sandbox, db: &std::path::Path, range: &str) -> serde_json::Value {
    json(
        sb.cmd()
            .arg("--db")
            .arg(db)
            .args(["report", "--range", range, "--format", "json"]),
    )["totals"]["events"]
        .clone()
}

#[test]
fn ranges_too_long_are_refused_not_a_crash() {
    let sb = Sandbox::new();
    let db = sb.path("u.db");
    record(&sb, &db, &["--model", "m", "--input", "5"]).success();
    for r in [
        "100000000d",
        "99999999999d",
        "15250284452w",
        "365251d",
        "99999999999999999999h",
    ] {
        refused(
            sb.cmd().arg("--db").arg(&db).args(["report", "--range", r]),
            r,
        );
    }
    // The longest span allowed still works, and counts the event.
    assert_eq!(events(&sb, &db, "365250d"), 1);
    assert_eq!(events(&sb, &db, "52178w"), 1);
}

#[test]
fn budget_window_too_long_is_a_config_error() {
    let sb = Sandbox::new();
    let db = sb.path("u.db");
    record(&sb, &db, &["--model", "m", "--input", "5"]).success();
    let cfg = sb.path("c.toml");
    std::fs::write(
        &cfg,
        "[[budget]]\nname = \"forever\"\nwindow = \"100000000d\"\nlimit_tokens = 10\n",
    )
    .unwrap();
    refused(
        sb.cmd()
            .arg("--config")
            .arg(&cfg)
            .arg("--db")
            .arg(&db)
            .arg("status"),
        "100000000d",
    );
    // A long but allowed rolling window is measured.
    std::fs::write(
        &cfg,
        "[[budget]]\nname = \"long\"\nwindow = \"365250d\"\nlimit_tokens = 10\n",
    )
    .unwrap();
    let v = json(
        sb.cmd()
            .arg("--config")
            .arg(&cfg)
            .arg("--db")
            .arg(&db)
            .args(["status", "--format", "json"]),
    );
    assert!(v.to_string().contains("\"used_tokens\":5"), "{v}");
}

#[test]
fn demo_days_out_of_range_is_refused() {
    let sb = Sandbox::new();
    let out = sb.path("d.db");
    for days in ["4294967295", "36501"] {
        refused(
            sb.cmd()
                .args(["demo", "--rows", "10", "--days", days, "--out"])
                .arg(&out),
            days,
        );
    }
    refused(
        sb.cmd()
            .args(["demo", "--rows", "18446744073709551615", "--out"])
            .arg(&out),
        "18446744073709551615",
    );
    refused(
        sb.cmd()
            .args(["demo", "--rows", "10", "--days", "-3", "--out"])
            .arg(&out),
        "-3",
    );
    assert!(!out.exists());
    // A century back reaches before 1970: those events are generated too.
    sb.cmd()
        .args(["demo", "--rows", "300", "--days", "36500", "--out"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(events(&sb, &out, "all"), 300);
}

#[test]
fn impossible_dates_are_bad_input() {
    let sb = Sandbox::new();
    let db = sb.path("u.db");
    for at in [
        "2025-02-30 10:00:00",
        "2025-02-29",
        "2025-04-31T00:00:00Z",
        "2025-13-01 00:00:00",
    ] {
        refused(
            sb.cmd()
                .arg("--db")
                .arg(&db)
                .args(["record", "--model", "m", "--at", at]),
            at,
        );
    }
    assert!(!db.exists(), "nothing may be written");
    // A leap day is a real date.
    record(&sb, &db, &["--model", "m", "--at", "2024-02-29 10:00:00"]).success();
    assert_eq!(events(&sb, &db, "2024-02-29..2024-03-01"), 1);
    refused(
        sb.cmd()
            .arg("--db")
            .arg(&db)
            .args(["report", "--range", "2025-02-30..2025-03-05"]),
        "2025-02-30",
    );
}

#[test]
fn impossible_foreign_date_is_unreadable_not_moved() {
    let sb = Sandbox::new();
    let db = bot_db(
        &sb,
        "bot.db",
        "('openai', 'gpt-4o', 100, 1, 0.1, '2026-02-30 10:00:00'),
         ('openai', 'gpt-4o', 200, 2, 0.1, '2026-03-02 10:00:00')",
    );
    let before = bytes(&db);
    // Before: the impossible date was read as 2026-03-02 and counted there.
    assert_eq!(events(&sb, &db, "2026-03-01..2026-03-03"), 1);
    // Its time is unreadable: it counts for all time only.
    assert_eq!(events(&sb, &db, "all"), 2);
    assert_eq!(bytes(&db), before);
}

#[test]
fn events_before_1970_land_in_their_own_slice() {
    let sb = Sandbox::new();
    let db = sb.path("u.db");
    record(
        &sb,
        &db,
        &[
            "--model",
            "m",
            "--input",
            "5",
            "--at",
            "1969-12-31T23:50:00Z",
        ],
    )
    .success();
    assert_eq!(
        events(&sb, &db, "1969-12-31T23:45:00Z..1970-01-01T00:00:00Z"),
        1
    );
    assert_eq!(
        events(&sb, &db, "1970-01-01T00:00:00Z..1970-01-01T00:15:00Z"),
        0
    );
    assert_eq!(
        events(&sb, &db, "1969-12-31T23:30:00Z..1969-12-31T23:45:00Z"),
        0
    );
    let v = json(sb.cmd().arg("--db").arg(&db).args([
        "report", "--range", "all", "--by", "hour", "--format", "json", "--tz", "UTC",
    ]));
    assert_eq!(v["groups"][0]["key"], "1969-12-31 23:00", "{v}");

    // A foreign epoch of -1 (one second before 1970) belongs to 1969 too.
    let fdb = bot_db(
        &sb,
        "bot.db",
        "('openai', 'gpt-4o', 100, 1, 0.1, -1), ('openai', 'gpt-4o', 100, 1, 0.1, -1000)",
    );
    assert_eq!(
        events(&sb, &fdb, "1969-12-31T23:45:00Z..1970-01-01T00:00:00Z"),
        1
    );
    assert_eq!(
        events(&sb, &fdb, "1970-01-01T00:00:00Z..1970-01-01T00:15:00Z"),
        0
    );
    assert_eq!(
        events(&sb, &fdb, "1969-12-31T23:00:00Z..1969-12-31T23:45:00Z"),
        1
    );
    let v = json(sb.cmd().arg("--db").arg(&fdb).args([
        "report", "--range", "all", "--by", "day", "--format", "json", "--tz", "UTC",
    ]));
    assert_eq!(v["groups"][0]["key"], "1969-12-31", "{v}");
    assert_eq!(v["groups"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn negative_zone_offsets_as_separate_arguments() {
    let sb = Sandbox::new();
    let db = sb.path("u.db");
    record(
        &sb,
        &db,
        &[
            "--model",
            "m",
            "--input",
            "5",
            "--at",
            "2025-11-18T10:30:00Z",
        ],
    )
    .success();
    // 10:30 UTC is 23:30 the day before at -11:00.
    let v = json(sb.cmd().arg("--db").arg(&db).args([
        "report", "--tz", "-11:00", "--range", "all", "--by", "day", "--format", "json",
    ]));
    assert_eq!(v["groups"][0]["key"], "2025-11-17", "{v}");
    // Before the subcommand too, and as --at in that zone.
    record(
        &sb,
        &db,
        &[
            "--tz",
            "-0530",
            "--model",
            "m",
            "--at",
            "2025-11-18 00:00:00",
        ],
    )
    .success();
    assert_eq!(
        events(&sb, &db, "2025-11-18T05:30:00Z..2025-11-18T05:30:01Z"),
        1
    );
    sb.cmd()
        .args(["--tz", "-11:00", "--db"])
        .arg(&db)
        .args(["report", "--range", "today"])
        .assert()
        .success();
    // A hyphenated value that is not a zone or time is still a clear error.
    refused(
        sb.cmd()
            .arg("--db")
            .arg(&db)
            .args(["report", "--tz", "-25:00"]),
        "-25:00",
    );
    refused(
        sb.cmd()
            .arg("--db")
            .arg(&db)
            .args(["report", "--range", "-1h"]),
        "-1h",
    );
    refused(
        sb.cmd()
            .arg("--db")
            .arg(&db)
            .args(["record", "--model", "m", "--at", "-5"]),
        "-5",
    );
}

#[test]
fn config_that_is_not_utf8_is_bad_input() {
    let sb = Sandbox::new();
    let cfg = sb.path("c.toml");
    std::fs::write(&cfg, b"tz = \"UTC\"\n# caf\xe9\n").unwrap();
    let out = sb
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .args(["report", "--db"])
        .arg(sb.path("none.db"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("c.toml") && err.contains("UTF-8"), "{err}");
}

#[test]
fn absurd_cost_scale_is_refused() {
    let sb = Sandbox::new();
    let db = sb.path("t.db");
    let c = Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE calls (ts TEXT, m TEXT, p INTEGER, c INTEGER, cents REAL);
         INSERT INTO calls VALUES ('2025-11-18 10:00:00', 'gpt-4o', 10, 5, 25);",
    )
    .unwrap();
    drop(c);
    let cfg = sb.path("c.toml");
    let table = "[[table]]\nname = \"calls\"\ntable = \"calls\"\ntimestamp = \"ts\"\nmodel = \"m\"\n\
                 input_tokens = \"p\"\noutput_tokens = \"c\"\ncost_usd = \"cents\"\n";
    for (scale, named) in [
        ("1e308", "1e308"),
        ("0.0", "cost_scale = 0"),
        ("-0.01", "-0.01"),
        ("nan", "NaN"),
        ("inf", "inf"),
        ("1e-12", "1e-12"),
        ("1001", "1001"),
    ] {
        std::fs::write(&cfg, format!("{table}cost_scale = {scale}\n")).unwrap();
        refused(
            sb.cmd()
                .arg("--config")
                .arg(&cfg)
                .arg("--db")
                .arg(&db)
                .args(["--schema", "calls", "report", "--range", "all"]),
            named,
        );
    }
    // The ends of the allowed range work: cents and thousands.
    for (scale, usd) in [("0.01", 0.25), ("1000", 25_000.0)] {
        std::fs::write(&cfg, format!("{table}cost_scale = {scale}\n")).unwrap();
        let v = json(
            sb.cmd()
                .arg("--config")
                .arg(&cfg)
                .arg("--db")
                .arg(&db)
                .args([
                    "--schema",
                    "calls",
                    "report",
                    "--range",
                    "all",
                    "--format",
                    "json",
                    "--cost-mode",
                    "stored",
                ]),
        );
        assert_eq!(v["totals"]["cost_usd"], usd, "{v}");
    }
}

/// Around 1970 the rollup (native) and the rollup cache (foreign) give the numbers of a scan,
/// and the scan puts every event in the bucket that floor division gives.
#[test]
fn rollups_and_scans_agree_across_1970() {
    use std::collections::BTreeMap;
    use tokmon::config::Config;
    use tokmon::demo::{Flavor, generate};
    use tokmon::store::query::SLICE_MS;
    use tokmon::store::{AggQuery, Source};
    use tokmon::timefmt::Zone;

    let dir = tempfile::tempdir().unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("1970-01-02T01:07:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    for (flavor, name) in [(Flavor::Native, "n.db"), (Flavor::Bot, "b.db")] {
        let db = dir.path().join(name);
        generate(&db, flavor, 3_000, 4, 7, now).unwrap();
        let mut src = Source::open(&db, None, &Config::default(), Zone::UTC).unwrap();
        src.use_cache_dir(&dir.path().join("cache"));
        assert!(src.has_rollup_or_cache());
        let all = src.events_after(i64::MIN, 1_000_000).unwrap();
        assert_eq!(all.len(), 3_000);
        assert!(
            all.iter().any(|e| e.ts_ms.unwrap() < 0),
            "{name}: none before 1970"
        );
        let day = 86_400_000;
        for bucket in [SLICE_MS, 3_600_000, day] {
            // Expected: each event in the bucket that contains it.
            let mut want: BTreeMap<i64, u64> = BTreeMap::new();
            for e in &all {
                *want
                    .entry(e.ts_ms.unwrap().div_euclid(bucket) * bucket)
                    .or_default() += 1;
            }
            for q in [
                AggQuery {
                    bucket_ms: Some(bucket),
                    ..Default::default()
                },
                AggQuery {
                    from_ms: Some(-day - 1),
                    to_ms: Some(day + 5),
                    bucket_ms: Some(bucket),
                    ..Default::default()
                },
            ] {
                for rows in [src.aggregate(&q).unwrap(), src.aggregate_scan(&q).unwrap()] {
                    let mut got: BTreeMap<i64, u64> = BTreeMap::new();
                    for r in rows {
                        *got.entry(r.bucket_ms.unwrap()).or_default() += r.sums.all.events;
                    }
                    got.retain(|_, n| *n > 0);
                    let want: BTreeMap<i64, u64> = want
                        .iter()
                        .filter(|(b, _)| {
                            q.from_ms
                                .is_none_or(|f| **b >= f.div_euclid(bucket) * bucket)
                                && q.to_ms.is_none_or(|t| **b < t)
                        })
                        .map(|(b, n)| (*b, *n))
                        .collect();
                    if q.from_ms.is_none() {
                        assert_eq!(got, want, "{name} {q:?}");
                    } else {
                        // The edges hold part of a bucket: compare the buckets inside.
                        let inner = |m: &BTreeMap<i64, u64>| -> BTreeMap<i64, u64> {
                            m.iter()
                                .filter(|(b, _)| **b >= -day && **b + bucket <= day)
                                .map(|(b, n)| (*b, *n))
                                .collect()
                        };
                        assert_eq!(inner(&got), inner(&want), "{name} {q:?}");
                    }
                }
            }
        }
        // Every 15-minute range from two hours before 1970 to two after counts its events.
        for k in -8..8 {
            let (f, t) = (k * SLICE_MS, (k + 1) * SLICE_MS);
            let want = all
                .iter()
                .filter(|e| (f..t).contains(&e.ts_ms.unwrap()))
                .count() as u64;
            let q = AggQuery {
                from_ms: Some(f),
                to_ms: Some(t),
                ..Default::default()
            };
            let got: u64 = src
                .aggregate(&q)
                .unwrap()
                .iter()
                .map(|r| r.sums.all.events)
                .sum();
            assert_eq!(got, want, "{name} slice {k}");
        }
    }
}

const MAX: &str = "9223372036854775807";

#[test]
fn token_sums_are_exact_or_refused() {
    let sb = Sandbox::new();
    let db = sb.path("u.db");
    // One event whose four counts add up past i64::MAX: refused before anything is written.
    refused(
        sb.cmd().arg("--db").arg(&db).args([
            "record",
            "--model",
            "m",
            "--input",
            MAX,
            "--output",
            MAX,
            "--cache-write",
            MAX,
            "--cache-read",
            MAX,
        ]),
        "9,223,372,036,854,775,807",
    );
    assert!(!db.exists());
    // The largest event is counted exactly, and said so.
    let out = record(
        &sb,
        &db,
        &[
            "--model",
            "m",
            "--input",
            MAX,
            "--at",
            "2025-01-01T00:00:00Z",
        ],
    )
    .success();
    let o = out.get_output();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(said.contains("9,223,372,036,854,775,807 tokens"), "{said}");
    // A second one in the same 15 minutes would overflow the stored sums: refused, unchanged.
    let before = events(&sb, &db, "all");
    refused(
        sb.cmd().arg("--db").arg(&db).args([
            "record",
            "--model",
            "m",
            "--input",
            MAX,
            "--at",
            "2025-01-01T00:01:00Z",
        ]),
        "9,223,372,036,854,775,807",
    );
    assert_eq!(events(&sb, &db, "all"), before);
    let v = json(
        sb.cmd()
            .arg("--db")
            .arg(&db)
            .args(["report", "--range", "all", "--format", "json"]),
    );
    assert_eq!(v["totals"]["total_tokens"].to_string(), MAX, "{v}");
    // In another slice it is stored, but a range holding both cannot be summed: a clear error.
    record(
        &sb,
        &db,
        &[
            "--model",
            "m",
            "--input",
            "1",
            "--at",
            "2025-01-02T00:00:00Z",
        ],
    )
    .success();
    for (range, by) in [
        ("all", "model"),
        ("all", "day"),
        ("2024-12-31..2025-01-03", "model"),
        ("2024-12-31T23:59:59Z..2025-01-02T00:00:01Z", "agent"),
    ] {
        let out = sb
            .cmd()
            .arg("--db")
            .arg(&db)
            .args(["report", "--range", range, "--by", by, "--format", "json"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{range} {by}: {err}");
        assert!(err.contains("9,223,372,036,854,775,807"), "{err}");
        assert!(out.stdout.is_empty(), "{range}: no partial numbers");
    }
    // Each day alone is exact.
    assert_eq!(events(&sb, &db, "2025-01-02..2025-01-03"), 1);
    let v = json(sb.cmd().arg("--db").arg(&db).args([
        "report",
        "--range",
        "2025-01-01..2025-01-02",
        "--format",
        "json",
    ]));
    assert_eq!(v["totals"]["total_tokens"].to_string(), MAX, "{v}");
}

#[test]
fn sums_beyond_2_pow_53_stay_exact() {
    let sb = Sandbox::new();
    let db = sb.path("u.db");
    let big = "9007199254740993"; // 2^53 + 1: an f64 on the way would make it 2^53
    for at in ["2025-01-01T00:00:00Z", "2025-01-01T00:20:00Z"] {
        record(&sb, &db, &["--model", "m", "--output", big, "--at", at]).success();
    }
    record(
        &sb,
        &db,
        &[
            "--model",
            "m",
            "--input",
            "1",
            "--at",
            "2025-01-01T00:40:00Z",
        ],
    )
    .success();
    let want = "18014398509481987"; // 2 × (2^53 + 1) + 1
    // Whole slices (rollup), partial slices (scan), and buckets.
    for range in [
        "all",
        "2025-01-01..2025-01-02",
        "2024-12-31T23:59:59.5Z..2025-01-01T00:40:00.5Z",
    ] {
        for by in ["model", "day", "agent", "session"] {
            let v = json(
                sb.cmd()
                    .arg("--db")
                    .arg(&db)
                    .args(["report", "--range", range, "--by", by, "--format", "json"]),
            );
            assert_eq!(
                v["totals"]["total_tokens"].to_string(),
                want,
                "{range} {by}: {v}"
            );
            assert_eq!(
                v["groups"][0]["total_tokens"].to_string(),
                want,
                "{range} {by}: {v}"
            );
        }
        let csv = sb
            .cmd()
            .arg("--db")
            .arg(&db)
            .args(["report", "--range", range, "--format", "csv"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&csv.stdout).contains(want));
    }
    // A foreign database (read through its rollup cache) too.
    let fdb = bot_db(
        &sb,
        "bot.db",
        "('openai', 'gpt-4o', 9007199254740993, 1, NULL, '2025-01-01 00:00:00'),
         ('openai', 'gpt-4o', 9007199254740993, 1, NULL, '2025-01-01 00:30:00')",
    );
    for _ in 0..2 {
        let v = json(
            sb.cmd()
                .arg("--db")
                .arg(&fdb)
                .args(["report", "--range", "all", "--format", "json"]),
        );
        assert_eq!(
            v["totals"]["input_tokens"].to_string(),
            "18014398509481986",
            "{v}"
        );
    }
    // A foreign row whose counts add up past i64::MAX is refused, not wrapped.
    let fdb = bot_db(
        &sb,
        "bot2.db",
        &format!("('openai', 'gpt-4o', {MAX}, {MAX}, NULL, '2025-01-01 00:00:00')"),
    );
    let out = sb
        .cmd()
        .arg("--db")
        .arg(&fdb)
        .args(["report", "--range", "all"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("9,223,372,036,854,775,807"), "{err}");
}

#[test]
fn budgets_refuse_overflowing_sums() {
    let sb = Sandbox::new();
    let db = sb.path("u.db");
    let now = chrono::Utc::now();
    for mins in [1, 40] {
        let at = (now - chrono::Duration::minutes(mins)).to_rfc3339();
        record(&sb, &db, &["--model", "m", "--input", MAX, "--at", &at]).success();
    }
    let cfg = sb.path("c.toml");
    std::fs::write(
        &cfg,
        "[[budget]]\nname = \"day\"\nwindow = \"24h\"\nlimit_tokens = 10\n",
    )
    .unwrap();
    let out = sb
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("9,223,372,036,854,775,807"), "{err}");
}

#[test]
fn absurd_costs_are_refused_the_same_way_in_every_format() {
    let sb = Sandbox::new();
    let db = bot_db(
        &sb,
        "bot.db",
        "('openai', 'gpt-4o', 1, 1, 1e300, '2025-01-01 00:00:00'),
         ('openai', 'gpt-4o', 1, 1, 1e308, '2025-01-01 00:30:00')",
    );
    for range in ["all", "2025-01-01T00:00:00Z..2025-01-01T00:10:00Z"] {
        for format in ["table", "json", "csv"] {
            let out = sb
                .cmd()
                .arg("--db")
                .arg(&db)
                .args(["report", "--range", range, "--format", format])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{format}: {err}");
            assert!(err.contains("90,071,992,547,409.92"), "{err}");
            assert!(out.stdout.is_empty(), "{format}");
        }
    }
}

//! Hot paths, measured with divan: `cargo bench --bench hot_paths`.
//!
//! The database-level figures (report against the sqlite3 shell, the monitor's latency, idle
//! CPU and memory) come from `scripts/bench.sh`, which writes BENCHMARKS.md.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use divan::{Bencher, black_box};
use tempfile::TempDir;
use tokmon::cli::CostMode;
use tokmon::config::Config;
use tokmon::demo::{Flavor, Generator, generate};
use tokmon::range::TimeRange;
use tokmon::report::{Bucket, Grouping, fold};
use tokmon::store::query::{SLICE_MS, Sums};
use tokmon::store::{AggQuery, Dimension, EventRow, Source};
use tokmon::timefmt::{Zone, parse_stored_timestamp};

fn main() {
    divan::main();
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-11-18T21:39:51Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A 200,000-event native database over 30 days, made once per run.
static DB: LazyLock<(TempDir, std::path::PathBuf)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    generate(&path, Flavor::Native, 200_000, 30, 1, now()).unwrap();
    (dir, path)
});

fn source() -> Source {
    Source::open(&DB.1, None, &Config::default(), Zone::UTC).unwrap()
}

/// Folding tailed events into running sums (what the monitor does per new row).
#[divan::bench]
fn tail_fold_10k(bencher: Bencher) {
    let mut g = Generator::new(5);
    let rows: Vec<EventRow> = (0..10_000)
        .map(|i| {
            let e = g.event(i * 1000);
            EventRow {
                id: i,
                ts_ms: Some(e.ts_ms),
                model: Some(e.model),
                agent: e.agent,
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
                cache_creation_tokens: e.cache_creation_tokens,
                cache_read_tokens: e.cache_read_tokens,
                cost_usd: e.cost_usd,
                ..Default::default()
            }
        })
        .collect();
    bencher.bench(|| {
        let mut by_agent: std::collections::HashMap<(&str, &str), Sums> = Default::default();
        for r in &rows {
            let key = (
                r.agent.as_deref().unwrap_or(""),
                r.model.as_deref().unwrap_or(""),
            );
            by_agent
                .entry(key)
                .or_default()
                .add(&Sums::of_event(r))
                .unwrap();
        }
        black_box(by_agent.len())
    });
}

/// Grouped sums over all time, by agent: from the rollup, and by scanning the events.
#[divan::bench(args = ["rollup", "scan"])]
fn aggregate_all_by_agent(bencher: Bencher, how: &str) {
    let src = source();
    let q = AggQuery {
        by: Some(Dimension::Agent),
        ..Default::default()
    };
    bencher.bench_local(|| {
        let rows = if how == "rollup" {
            src.aggregate(&q)
        } else {
            src.aggregate_scan(&q)
        };
        black_box(rows.unwrap().len())
    });
}

/// The last 24 hours in 15-minute buckets (a sparkline's worth), edges read from events.
#[divan::bench]
fn aggregate_24h_buckets(bencher: Bencher) {
    let src = source();
    let end = now().timestamp_millis();
    let q = AggQuery {
        from_ms: Some(end - 86_400_000 + 12_345),
        to_ms: Some(end),
        by: None,
        bucket_ms: Some(SLICE_MS),
    };
    bencher.bench_local(|| black_box(src.aggregate(&q).unwrap().len()));
}

/// Folding 15-minute rows into local days with prices applied (the report's own work).
#[divan::bench]
fn report_fold_by_day(bencher: Bencher) {
    let src = source();
    let q = AggQuery {
        bucket_ms: Some(SLICE_MS),
        ..Default::default()
    };
    let rows = src.aggregate(&q).unwrap();
    let zone = Zone::parse("Europe/Paris").unwrap();
    bencher.with_inputs(|| rows.clone()).bench_values(|rows| {
        let r = fold(
            rows,
            TimeRange {
                from: None,
                to: None,
            },
            Grouping::Time(Bucket::Day),
            CostMode::Auto,
            &zone,
        )
        .unwrap();
        black_box(r.groups.len())
    });
}

/// Reading a foreign tracker's timestamp text.
#[divan::bench(args = ["2025-11-18 21:39:51", "2025-11-18T21:39:51.578123+08:00"])]
fn parse_timestamp(s: &str) -> Option<i64> {
    parse_stored_timestamp(black_box(s), &Zone::UTC)
}

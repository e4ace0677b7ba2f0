//! Budgets with a fixed clock: windows across their boundaries, limits, filters, levels,
//! burn rates, projections and alerts.

use chrono::{DateTime, Duration, Utc};

use super::eval::{Recent, Usage, assess, assess_quota, burn_rate, measure};
use super::*;
use crate::config::Config;
use crate::domain::CostMode;
use crate::store::Source;
use crate::store::native::{NewEvent, insert_events, open_rw};
use crate::timefmt::Zone;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn budgets(toml_text: &str) -> Vec<Budget> {
    let cfg = Config::parse(toml_text).unwrap();
    compile_all(&cfg.budgets).unwrap()
}

fn budget(body: &str) -> Budget {
    budgets(&format!("[[budget]]\nname = \"b\"\n{body}")).remove(0)
}

struct Db {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

/// (time, provider, model, agent, tokens, stored cost)
type Ev<'a> = (
    &'a str,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    u64,
    Option<f64>,
);

fn db(events: &[Ev]) -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = open_rw(&path).unwrap();
    let rows: Vec<NewEvent> = events
        .iter()
        .map(|(t, p, m, a, n, c)| NewEvent {
            ts_ms: at(t).timestamp_millis(),
            provider: p.map(String::from),
            model: m.to_string(),
            agent: a.map(String::from),
            input_tokens: *n,
            cost_usd: *c,
            source: "test".into(),
            ..Default::default()
        })
        .collect();
    insert_events(&mut conn, &rows).unwrap();
    Db { _dir: dir, path }
}

impl Db {
    fn source(&self) -> Source {
        Source::open(&self.path, None, &Config::default(), Zone::UTC).unwrap()
    }
}

fn eval_one(b: &Budget, src: &Source, now: &str) -> BudgetStatus {
    let now = at(now);
    let bounds = window_bounds(&b.window, now, &Zone::UTC);
    let u = measure(src, b, &bounds, now, CostMode::Stored).unwrap();
    assess(b, &bounds, &u, now)
}

#[test]
fn month_window_across_its_first_instant() {
    let d = db(&[
        ("2025-11-30T23:59:59.998Z", None, "m", None, 700, None),
        ("2025-12-01T00:00:00Z", None, "m", None, 50, None),
    ]);
    let src = d.source();
    let b = budget("window = \"month\"\nlimit_tokens = 1000");
    let nov = eval_one(&b, &src, "2025-11-30T23:59:59.998Z");
    // The clock is exclusive: an event at exactly now is not yet in.
    assert_eq!(nov.used_tokens, 0);
    let nov = eval_one(&b, &src, "2025-11-30T23:59:59.999Z");
    assert_eq!((nov.used_tokens, nov.level), (700, Level::Ok));
    let nov = eval_one(&b, &src, "2025-12-01T00:00:00Z");
    assert_eq!(nov.used_tokens, 0, "the new month starts empty");
    assert_eq!(nov.resets_at, Some(at("2026-01-01T00:00:00Z")));
    let dec = eval_one(&b, &src, "2025-12-01T00:00:00.001Z");
    assert_eq!((dec.used_tokens, dec.level), (50, Level::Ok));
}

#[test]
fn week_window_across_its_start() {
    // 2025-11-17 is a Monday.
    let d = db(&[
        ("2025-11-16T22:00:00Z", None, "m", None, 900, None),
        ("2025-11-17T01:00:00Z", None, "m", None, 100, None),
    ]);
    let src = d.source();
    let b = budget("window = \"week\"\nlimit_tokens = 1000");
    let before = eval_one(&b, &src, "2025-11-16T23:59:59Z");
    assert_eq!((before.used_tokens, before.level), (900, Level::Warning));
    let after = eval_one(&b, &src, "2025-11-17T02:00:00Z");
    assert_eq!((after.used_tokens, after.level), (100, Level::Ok));
    assert_eq!(after.window_start, Some(at("2025-11-17T00:00:00Z")));
}

#[test]
fn rolling_window_slides() {
    let d = db(&[
        ("2025-11-18T07:00:00Z", None, "m", None, 600, None),
        ("2025-11-18T09:30:00Z", None, "m", None, 300, None),
    ]);
    let src = d.source();
    let b = budget("window = \"5h\"\nlimit_tokens = 1000");
    let s = eval_one(&b, &src, "2025-11-18T12:00:00Z");
    assert_eq!(s.used_tokens, 900);
    assert_eq!(s.resets_at, None);
    // The oldest usage (07:00) has left by the end of its one-minute slice plus 5 h.
    assert_eq!(s.frees_at, Some(at("2025-11-18T12:01:00Z")));
    let s = eval_one(&b, &src, "2025-11-18T12:00:00.001Z");
    assert_eq!(s.used_tokens, 300, "the 07:00 event slid out");
    assert_eq!(s.frees_at, Some(at("2025-11-18T14:31:00Z")));
    assert_eq!(
        window_words(&s),
        "rolling 5h, oldest usage leaves in 2h 30m"
    );
    let s = eval_one(&b, &src, "2025-11-18T15:00:00Z");
    assert_eq!((s.used_tokens, s.frees_at), (0, None));
}

#[test]
fn token_and_cost_limits() {
    let d = db(&[
        ("2025-11-18T10:00:00Z", None, "m", None, 100, Some(4.0)),
        ("2025-11-18T10:10:00Z", None, "m", None, 100, Some(5.0)),
    ]);
    let src = d.source();
    let tokens = budget("window = \"day\"\nlimit_tokens = 1000");
    let s = eval_one(&tokens, &src, "2025-11-18T11:00:00Z");
    assert_eq!((s.percentage, s.level), (20.0, Level::Ok));
    let cost = budget("window = \"day\"\nlimit_usd = 10");
    let s = eval_one(&cost, &src, "2025-11-18T11:00:00Z");
    assert_eq!(s.used_usd, Some(9.0));
    assert_eq!((s.percentage, s.level), (90.0, Level::Warning));
    // Both: the larger percentage counts.
    let both = budget("window = \"day\"\nlimit_tokens = 1000\nlimit_usd = 9");
    let s = eval_one(&both, &src, "2025-11-18T11:00:00Z");
    assert_eq!((s.percentage, s.level), (100.0, Level::Exceeded));
    assert_eq!(s.projection, Projection::Reached);
    assert_eq!(projection_words(&s), "limit reached");
}

#[test]
fn filters_on_provider_model_and_agent() {
    let d = db(&[
        (
            "2025-11-18T10:00:00Z",
            Some("openai"),
            "gpt-4o",
            Some("coder"),
            1,
            None,
        ),
        (
            "2025-11-18T10:00:01Z",
            Some("OpenAI"),
            "gpt-4o-mini",
            Some("reviewer"),
            10,
            None,
        ),
        (
            "2025-11-18T10:00:02Z",
            Some("anthropic"),
            "claude-sonnet-4-5",
            Some("coder"),
            100,
            None,
        ),
        ("2025-11-18T10:00:03Z", None, "gpt-4o", None, 1000, None),
        (
            "2025-11-18T10:00:04Z",
            Some("azure-east"),
            "gpt-4o",
            Some("coder-2"),
            10000,
            None,
        ),
    ]);
    let src = d.source();
    let used = |filter: &str| {
        let b = budget(&format!(
            "window = \"day\"\nlimit_tokens = 1000000\n{filter}"
        ));
        eval_one(&b, &src, "2025-11-18T11:00:00Z").used_tokens
    };
    assert_eq!(used(""), 11111);
    assert_eq!(used("provider = \"openai\""), 11, "case-insensitive");
    assert_eq!(used("provider = [\"openai\", \"azure-*\"]"), 10011);
    assert_eq!(
        used("provider = \"*\""),
        10111,
        "no provider matches no filter"
    );
    assert_eq!(used("model = \"gpt-4o*\""), 11011);
    assert_eq!(used("model = \"claude-*\""), 100);
    assert_eq!(used("agent = \"coder*\""), 10101);
    // Two dimensions at once besides the model.
    assert_eq!(used("provider = \"openai\"\nagent = \"coder\""), 1);
    assert_eq!(
        used("provider = \"*\"\nagent = \"coder*\"\nmodel = \"gpt-*\""),
        10001
    );
}

#[test]
fn foreign_database_is_read_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE token_usage (id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL,
           model TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
           cost_usd REAL, user_id TEXT, request_type TEXT, metadata TEXT,
           timestamp DATETIME DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO token_usage (provider, model, input_tokens, output_tokens, timestamp)
           VALUES ('openai', 'gpt-4o', 40000, 5000, '2025-11-10 08:00:00'),
                  ('deepseek', 'deepseek-chat', 7000, 0, '2025-11-10 09:00:00'),
                  ('openai', 'gpt-4o', 999, 0, '2025-10-31 23:59:59');",
    )
    .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let src = Source::open(&path, None, &Config::default(), Zone::UTC).unwrap();
    let b = budget("window = \"month\"\nprovider = \"openai\"\nlimit_tokens = 50000");
    let s = eval_one(&b, &src, "2025-11-18T00:00:00Z");
    assert_eq!((s.used_tokens, s.level), (45000, Level::Warning));
    drop(src);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn no_database_means_nothing_used() {
    let b = budgets("[[budget]]\nname = \"a\"\nwindow = \"month\"\nlimit_tokens = 5");
    let all = evaluate_all(
        &b,
        None,
        None,
        &Zone::UTC,
        CostMode::Auto,
        at("2025-11-18T00:00:00Z"),
    )
    .unwrap();
    assert_eq!((all[0].used_tokens, all[0].level), (0, Level::Ok));
    assert_eq!(all[0].projection, Projection::TooLittleData);
}

fn recent(events: u64, tokens: u64, first: &str, last: &str) -> Recent {
    Recent {
        tokens,
        usd: tokens as f64 / 1000.0,
        events,
        first_ms: Some(at(first).timestamp_millis()),
        last_ms: Some(at(last).timestamp_millis()),
    }
}

#[test]
fn burn_rate_from_the_last_hour_and_its_projection() {
    let now = at("2025-11-18T12:00:00Z");
    let b = budget("window = \"month\"\nlimit_tokens = 100000");
    let bounds = window_bounds(&b.window, now, &Zone::UTC);
    let u = Usage {
        tokens: 58_000,
        usd: 58.0,
        events: 40,
        recent: recent(5, 12_400, "2025-11-18T11:10:00Z", "2025-11-18T11:55:00Z"),
        ..Default::default()
    };
    let s = assess(&b, &bounds, &u, now);
    let r = s.burn.unwrap();
    assert_eq!(r.basis, Basis::LastHour);
    assert_eq!(r.basis.text(), "last 60 min");
    assert!((r.tokens_per_hour - 12_400.0).abs() < 1e-6);
    // (100000 - 58000) / 12400 per hour = 3.387 h = 3h 23m 13s.
    match s.projection {
        Projection::At { at: t, limit } => {
            assert_eq!(limit, LimitKind::Tokens);
            assert_eq!((t - now).num_minutes(), 203);
        }
        p => panic!("{p:?}"),
    }
    assert_eq!(projection_words(&s), "at 12.4K tok/h: limit in 3h 23m");
    assert_eq!(
        s.projected_exhaustion(),
        Some(now + Duration::milliseconds(12_193_549))
    );
}

#[test]
fn burn_rate_falls_back_to_the_window_so_far() {
    let now = at("2025-11-18T12:00:00Z");
    let b = budget("window = \"day\"\nlimit_tokens = 100000");
    let bounds = window_bounds(&b.window, now, &Zone::UTC);
    // Three calls in one burst: no rate from the last hour.
    let u = Usage {
        tokens: 24_000,
        usd: 0.0,
        events: 10,
        recent: recent(3, 3000, "2025-11-18T11:58:00Z", "2025-11-18T11:59:00Z"),
        ..Default::default()
    };
    let s = assess(&b, &bounds, &u, now);
    let r = s.burn.unwrap();
    assert_eq!(r.basis, Basis::WindowSoFar(Duration::hours(12)));
    assert_eq!(r.basis.text(), "window so far (12h 0m)");
    assert!((r.tokens_per_hour - 2000.0).abs() < 1e-9);
    // 76000 tokens at 2000/h is 38 h: after the reset at midnight.
    assert_eq!(s.projection, Projection::NotBeforeReset);
    assert_eq!(
        projection_words(&s),
        "at 2.00K tok/h: not before the window resets"
    );
}

#[test]
fn no_projection_on_thin_data() {
    let b = budget("window = \"day\"\nlimit_tokens = 1000");
    // Two events only, in a window that has run for hours.
    let now = at("2025-11-18T12:00:00Z");
    let bounds = window_bounds(&b.window, now, &Zone::UTC);
    let u = Usage {
        tokens: 500,
        events: 2,
        recent: recent(2, 500, "2025-11-18T11:00:00Z", "2025-11-18T11:40:00Z"),
        ..Default::default()
    };
    let s = assess(&b, &bounds, &u, now);
    assert_eq!((s.burn, s.projection), (None, Projection::TooLittleData));
    assert_eq!(s.projected_exhaustion(), None);
    assert_eq!(projection_words(&s), "too little data for a projection");
    // Many events, but a window only ten minutes old and a burst in the last hour.
    let now = at("2025-11-18T00:10:00Z");
    let bounds = window_bounds(&b.window, now, &Zone::UTC);
    let u = Usage {
        tokens: 900,
        events: 30,
        recent: recent(30, 900, "2025-11-18T00:05:00Z", "2025-11-18T00:09:00Z"),
        ..Default::default()
    };
    assert_eq!(burn_rate(&u, &bounds, now), None);
}

#[test]
fn cost_projection_when_it_comes_first() {
    let now = at("2025-11-18T12:00:00Z");
    let b = budget("window = \"month\"\nlimit_tokens = 10000000\nlimit_usd = 20");
    let bounds = window_bounds(&b.window, now, &Zone::UTC);
    let u = Usage {
        tokens: 10_000,
        usd: 10.0,
        events: 10,
        // 1000 tokens / h, $1/h: cost runs out after 10 h, tokens after months.
        recent: recent(5, 1000, "2025-11-18T11:00:00Z", "2025-11-18T11:50:00Z"),
        ..Default::default()
    };
    let s = assess(&b, &bounds, &u, now);
    assert_eq!(
        s.projection,
        Projection::At {
            at: at("2025-11-18T22:00:00Z"),
            limit: LimitKind::Usd
        }
    );
    assert_eq!(projection_words(&s), "at $1.00/h: limit in 10h 0m");
}

#[test]
fn rolling_projection_past_its_span() {
    let now = at("2025-11-18T12:00:00Z");
    let b = budget("window = \"5h\"\nlimit_tokens = 100000");
    let bounds = window_bounds(&b.window, now, &Zone::UTC);
    let u = Usage {
        tokens: 50_000,
        events: 10,
        recent: recent(5, 1000, "2025-11-18T11:00:00Z", "2025-11-18T11:50:00Z"),
        ..Default::default()
    };
    let s = assess(&b, &bounds, &u, now);
    assert_eq!(s.projection, Projection::NotBeforeReset);
    assert_eq!(
        projection_words(&s),
        "at 1.00K tok/h: not within the rolling 5h"
    );
}

fn status(name: &str, pct: f64, window_start: Option<&str>, rolling: bool) -> BudgetStatus {
    let t = Thresholds::default();
    BudgetStatus {
        name: name.into(),
        window: if rolling { "5h".into() } else { "month".into() },
        is_quota: false,
        filter: String::new(),
        window_start: window_start.map(at),
        resets_at: None,
        rolling_span: rolling.then(|| Duration::hours(5)),
        frees_at: None,
        used_tokens: (pct * 10.0) as u64,
        used_usd: Some(0.0),
        limit_tokens: Some(1000),
        limit_usd: None,
        percentage: pct,
        level: t.level_of(pct),
        thresholds: t,
        burn: None,
        projection: Projection::TooLittleData,
        unpriced_events: 0,
        now: at("2025-11-18T12:00:00Z"),
    }
}

#[test]
fn each_crossing_is_reported_once_per_window() {
    let mut tr = AlertTracker::new();
    let nov = Some("2025-11-01T00:00:00Z");
    let levels = |tr: &mut AlertTracker, pct: f64, w: Option<&str>| -> Vec<Level> {
        tr.crossings(&[status("team", pct, w, false)])
            .into_iter()
            .map(|a| a.level)
            .collect()
    };
    assert!(levels(&mut tr, 50.0, nov).is_empty());
    assert_eq!(levels(&mut tr, 91.0, nov), [Level::Warning]);
    assert!(
        levels(&mut tr, 91.0, nov).is_empty(),
        "not again on the next refresh"
    );
    assert!(levels(&mut tr, 93.0, nov).is_empty());
    assert_eq!(levels(&mut tr, 96.0, nov), [Level::Critical]);
    assert_eq!(levels(&mut tr, 120.0, nov), [Level::Exceeded]);
    assert!(levels(&mut tr, 130.0, nov).is_empty());
    // A new month re-arms every threshold; a jump over two reports the higher only, once.
    let dec = Some("2025-12-01T00:00:00Z");
    assert!(levels(&mut tr, 1.0, dec).is_empty());
    assert_eq!(levels(&mut tr, 97.0, dec), [Level::Critical]);
    assert!(
        levels(&mut tr, 94.0, dec).is_empty(),
        "warning was passed with critical"
    );
    let a = tr.crossings(&[status("team", 100.0, dec, false)]);
    assert_eq!(
        a[0].message,
        "budget 'team' is exceeded: 100.0% used, 1.00K of 1.00K tokens (threshold 100%)"
    );
}

#[test]
fn rolling_and_quota_alerts_rearm_when_usage_falls() {
    let mut tr = AlertTracker::new();
    let n =
        |tr: &mut AlertTracker, pct: f64| tr.crossings(&[status("plan", pct, None, true)]).len();
    assert_eq!(n(&mut tr, 92.0), 1);
    assert_eq!(
        n(&mut tr, 89.5),
        0,
        "hovering at the threshold is not a new crossing"
    );
    assert_eq!(n(&mut tr, 90.5), 0);
    assert_eq!(n(&mut tr, 80.0), 0);
    assert_eq!(n(&mut tr, 91.0), 1, "crossed again after usage aged out");
}

#[test]
fn primed_tracker_reports_only_new_crossings() {
    let mut tr = AlertTracker::new();
    let w = Some("2025-11-01T00:00:00Z");
    tr.prime(&[status("a", 92.0, w, false), status("b", 10.0, w, false)]);
    let a = tr.crossings(&[status("a", 92.0, w, false), status("b", 91.0, w, false)]);
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].budget.as_str(), a[0].level), ("b", Level::Warning));
}

#[test]
fn quota_is_a_budget_of_its_own() {
    let now = at("2025-11-18T12:00:00Z");
    let syncs = [
        ("2025-11-18T08:00:00Z", 100_000),
        ("2025-11-18T09:00:00Z", 20_000),
        ("2025-11-18T10:00:00Z", 20_000),
        ("2025-11-16T10:00:00Z", 500_000),
    ]
    .map(|(t, n)| SyncPoint {
        at: at(t),
        increment: n,
    });
    let q = QuotaInput {
        used: 920_000,
        total: 1_000_000,
        syncs: syncs.to_vec(),
        ..Default::default()
    };
    let s = assess_quota(&q, now);
    assert_eq!((s.name.as_str(), s.window.as_str()), ("quota", "manual"));
    assert_eq!((s.percentage, s.level), (92.0, Level::Warning));
    let r = s.burn.unwrap();
    assert_eq!(r.tokens_per_hour, 20_000.0);
    assert_eq!(r.basis.text(), "3 syncs over 2h 0m");
    assert_eq!(
        s.projection,
        Projection::At {
            at: at("2025-11-18T16:00:00Z"),
            limit: LimitKind::Tokens
        }
    );
    // Thin history: no rate.
    let thin = QuotaInput {
        syncs: syncs[..2].to_vec(),
        ..q.clone()
    };
    assert_eq!(
        assess_quota(&thin, now).projection,
        Projection::TooLittleData
    );
    // Sorted with the budgets, most urgent first.
    let b = budgets(
        "[[budget]]\nname = \"a\"\nwindow = \"month\"\nlimit_tokens = 5\n\
         [[budget]]\nname = \"b\"\nwindow = \"day\"\nlimit_tokens = 5",
    );
    let all = evaluate_all(&b, None, Some(&q), &Zone::UTC, CostMode::Auto, now).unwrap();
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["quota", "a", "b"]);
}

#[test]
fn words_for_calendar_windows() {
    let now = at("2025-11-28T20:40:00Z");
    let b = budget("window = \"month\"\nlimit_tokens = 5");
    let bounds = window_bounds(&b.window, now, &Zone::UTC);
    let s = assess(&b, &bounds, &Usage::default(), now);
    assert_eq!(window_words(&s), "resets in 2d 3h");
    assert_eq!(usage_words(&s), "0 of 5 tokens");
}

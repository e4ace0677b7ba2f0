//! A fixed database and a fixed clock for the monitor's tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokmon::budget::{Budget, BudgetStatus, QuotaInput, SyncPoint, evaluate_all};
use tokmon::cli::CostMode;
use tokmon::config::Config;
use tokmon::store::Source;
use tokmon::store::native::{NewEvent, insert_events, open_rw};
use tokmon::timefmt::{Zone, from_ms};
use tokmon::tui::app::{App, FixedClock, Msg};
use tokmon::tui::live::load_snapshot;
use tokmon::tui::quota::{Quota, QuotaMsg};
use tokmon::tui::theme::Themes;

/// 2025-11-18T12:00:00Z
pub const NOW: i64 = 1_763_467_200_000;
pub const MIN: i64 = 60_000;

pub const AGENTS: [&str; 5] = [
    "claude-code",
    "support-bot",
    "rag-pipeline",
    "研究助手-长名字的代理程序",
    "a-very-long-agent-name-that-must-be-truncated",
];
pub const MODELS: [&str; 5] = [
    "claude-sonnet-4-5-20250929",
    "gpt-4o-mini",
    "gemini-2.5-flash",
    "anthropic/claude-opus-4-1-with-a-long-suffix",
    "gpt-5",
];

/// Event `i` of the fixture: every 7 minutes back from NOW, stored costs only (so the
/// numbers do not depend on the price table).
pub fn event(i: i64, ts_ms: i64) -> NewEvent {
    let a = (i % 5) as usize;
    let m = ((i * 3 + i / 5) % 5) as usize;
    let input = 800 + (i * 37 % 5000) as u64 * (a as u64 + 1);
    let output = 100 + (i * 53 % 900) as u64;
    let cache = if a == 0 { input * 3 } else { 0 };
    NewEvent {
        ts_ms,
        model: MODELS[m].into(),
        agent: Some(AGENTS[a].into()),
        provider: Some("p".into()),
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache,
        cost_usd: Some(((input + output) as f64 * 2e-6 * 1e6).round() / 1e6),
        source: "test".into(),
        ..Default::default()
    }
}

/// A native database of 600 events over the ~70 hours before NOW.
pub fn fixture_db(dir: &Path) -> PathBuf {
    let path = dir.join("usage.db");
    let mut conn = open_rw(&path).unwrap();
    let events: Vec<NewEvent> = (0..600)
        .map(|i| event(i, NOW - 30_000 - i * 7 * MIN))
        .collect();
    insert_events(&mut conn, &events).unwrap();
    path
}

pub fn open(path: &Path) -> Source {
    Source::open(path, None, &Config::default(), Zone::UTC).unwrap()
}

/// An app on the fixture, loaded for its current range, with a quota reading.
pub fn app_on(path: &Path) -> (App, Arc<FixedClock>) {
    let clock = FixedClock::new(NOW);
    // A stable path for the header (the numbers are read from `path` itself).
    let mut app = App::new(
        PathBuf::from("/data/usage.db"),
        PathBuf::from("/data/state.json"),
        Themes::built_in(None, false).unwrap(),
        clock.clone(),
        Zone::UTC,
        CostMode::Auto,
    );
    load(&mut app, path);
    app.on_msg(Msg::Quota(QuotaMsg::State(Quota {
        used: 620_000,
        total: 1_000_000,
        last_sync_ms: Some(NOW - 42 * MIN),
    })));
    // The tail's evaluation of the quota alone (no budgets configured).
    app.on_msg(Msg::Budgets(statuses(path, &[])));
    (app, clock)
}

/// Three budgets over the fixture: one critical, one at warning, one fine.
pub const BUDGETS_TOML: &str = r#"
[[budget]]
name = "claude-daily"
window = "day"
agent = "claude-code"
limit_tokens = 240_000

[[budget]]
name = "monthly-usd"
window = "month"
limit_usd = 10.0

[[budget]]
name = "bots-5h"
window = "5h"
agent = ["support-bot", "rag-*"]
limit_tokens = 1_000_000
"#;

pub fn budgets() -> Vec<Budget> {
    tokmon::budget::from_config(&Config::parse(BUDGETS_TOML).unwrap()).unwrap()
}

/// The quota of `app_on` as the tail passes it: 62 % used, four syncs over the last three
/// hours (20K an hour).
pub fn quota_input() -> QuotaInput {
    QuotaInput {
        used: 620_000,
        total: 1_000_000,
        syncs: (0..4)
            .map(|i| SyncPoint {
                at: from_ms(NOW - 60 * MIN * i),
                increment: 20_000,
            })
            .collect(),
        ..Default::default()
    }
}

/// What the tail would send at NOW: `budgets` and the quota, most urgent first.
pub fn statuses(path: &Path, budgets: &[Budget]) -> Vec<BudgetStatus> {
    let src = open(path);
    evaluate_all(
        budgets,
        Some(&src),
        Some(&quota_input()),
        &Zone::UTC,
        CostMode::Auto,
        from_ms(NOW),
    )
    .unwrap()
}

/// An app on the fixture with the three budgets of [`BUDGETS_TOML`] evaluated.
pub fn app_with_budgets(path: &Path) -> (App, Arc<FixedClock>) {
    let (mut app, clock) = app_on(path);
    app.on_msg(Msg::Budgets(statuses(path, &budgets())));
    (app, clock)
}

/// Answer the app's current range the way the tail thread does.
pub fn load(app: &mut App, path: &Path) {
    let src = open(path);
    let req = app.load_request();
    app.on_msg(Msg::Opened {
        kind: src.kind.label(),
    });
    app.on_msg(Msg::Snapshot(Box::new(load_snapshot(&src, &req).unwrap())));
}

pub fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| tokmon::tui::ui::draw(f, app)).unwrap();
    t
}

pub fn screen(app: &App, w: u16, h: u16) -> String {
    render(app, w, h).backend().to_string()
}

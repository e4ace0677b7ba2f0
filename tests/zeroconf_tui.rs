//! The monitor's agent-log line: the first import's progress, then the active 5-hour block
//! against its limit, in the gauge panel (TestBackend, fixed clock).

mod tui_common;

use tokmon::blocks::Block;
use tokmon::store::query::Tokens;
use tokmon::tui::agent_logs::{AgentLogsMsg, BlockGauge, GaugeLimit, ImportProgress};
use tokmon::tui::app::Msg;
use tui_common::*;

fn block() -> Block {
    // 10:00–15:00, first event 10:12, last 11:42; NOW is 12:00: 3 hours left.
    Block {
        start_ms: NOW - 2 * 60 * MIN,
        end_ms: NOW + 3 * 60 * MIN,
        first_ms: NOW - 108 * MIN,
        last_ms: NOW - 18 * MIN,
        tokens: Tokens {
            events: 12,
            input: 300_000,
            output: 60_000,
            ..Tokens::default()
        },
        cost_usd: 1.8,
        active: true,
    }
}

#[test]
fn first_import_progress_then_the_block_gauge() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    let before = screen(&app, 99, 30);
    assert!(!before.contains("5h block"), "{before}");

    assert!(
        app.on_msg(Msg::AgentLogs(AgentLogsMsg::Progress(ImportProgress {
            files_total: 450,
            files_done: 120,
            bytes_total: 1000,
            bytes_done: 450,
            lines: 35_000,
        })))
    );
    let s = screen(&app, 99, 30);
    assert!(s.contains("Importing agent logs █"), "{s}");
    assert!(s.contains("45% · files 120/450 · 35.0K lines"), "{s}");
    // The quota panel keeps its place above it.
    assert!(s.contains("Quota"), "{s}");

    app.on_msg(Msg::AgentLogs(AgentLogsMsg::FirstDone(
        "imported 9 events".into(),
    )));
    app.on_msg(Msg::AgentLogs(AgentLogsMsg::Gauge(Some(BlockGauge {
        block: Some(block()),
        limit: Some(GaugeLimit::Tokens {
            limit: 900_000,
            max: true,
        }),
    }))));
    let s = screen(&app, 99, 30);
    assert!(!s.contains("Importing"), "{s}");
    // 360K of 900K = 40%; 4K tokens a minute over 90 minutes, 180 minutes left: 1.08M = 120%.
    assert!(
        s.contains("40% of max 900K · 360K tok $1.80 · 3h 0m left · → 120%"),
        "{s}"
    );

    // No limit: tokens, time left and the projection at the block's end.
    app.on_msg(Msg::AgentLogs(AgentLogsMsg::Gauge(Some(BlockGauge {
        block: Some(block()),
        limit: None,
    }))));
    let s = screen(&app, 200, 50);
    assert!(
        s.contains("360,000 tok $1.80 · 3h 0m left · → 1,080,000 $5.40"),
        "{s}"
    );
    // Claude Code data but no active block.
    app.on_msg(Msg::AgentLogs(AgentLogsMsg::Gauge(Some(BlockGauge {
        block: None,
        limit: None,
    }))));
    assert!(screen(&app, 99, 30).contains("5h block none active"));
    // The compact screen keeps the quota line; the gauge waits for room.
    let small = screen(&app, 40, 12);
    assert!(!small.contains("5h block"), "{small}");
}

/// A database the first import fills aside is not there until it is complete: meanwhile the
/// monitor says it is being imported, not that there is no database; once the import is
/// over, a database still missing is told as before.
#[test]
fn a_database_being_imported_is_not_missing() {
    use tokmon::tui::app::SourceState;
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(&fixture_db(dir.path()));
    // The tail finds no database (its numbers are dropped).
    app.on_msg(Msg::AgentLogs(AgentLogsMsg::Progress(
        ImportProgress::default(),
    )));
    app.on_msg(Msg::Source(SourceState::Missing));
    let s = screen(&app, 120, 30);
    assert!(s.contains("◌ importing…"), "{s}");
    assert!(s.contains("importing the agent logs…"), "{s}");
    assert!(!s.contains("no database"), "{s}");
    // Starting: nothing is counted yet, nothing read.
    assert!(s.contains("0% · files 0/0 · 0 lines"), "{s}");

    app.on_msg(Msg::AgentLogs(AgentLogsMsg::FirstDone(
        "import stopped: disk full".into(),
    )));
    let s = screen(&app, 120, 30);
    assert!(s.contains("✕ no database"), "{s}");
    assert!(!s.contains("importing"), "{s}");
}

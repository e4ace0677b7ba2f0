//! The monitor's model: what each key does, how new rows and quota readings change what is
//! shown, the event loop on a test backend, and the tail thread against a real database.

#[path = "common/tail.rs"]
mod tail;
mod tui_common;
use tail::wait_for;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokmon::budget::{BudgetStatus, Level};
use tokmon::store::native::{insert_events, open_rw};
use tokmon::tui::app::{Action, Effect, Focus, Msg, Overlay, SortCol, SourceState};
use tokmon::tui::live::Cmd;
use tokmon::tui::model::RangeKind;
use tokmon::tui::quota::{Quota, QuotaMsg};
use tui_common::*;

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Press a key: the action it maps to, applied. Returns the effect it left in the outbox
/// (what was queued before is dropped).
fn press(app: &mut tokmon::tui::app::App, ev: KeyEvent) -> Option<Effect> {
    let a = app
        .handle_key(ev)
        .unwrap_or_else(|| panic!("{ev:?} does nothing"));
    app.take_effects();
    assert!(app.update(a));
    let mut added = app.take_effects();
    assert!(added.len() <= 1, "{added:?}");
    added.pop()
}

#[test]
fn range_keys_ask_for_their_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    for (c, r) in [
        ('1', RangeKind::Hour),
        ('2', RangeKind::Day),
        ('3', RangeKind::Week),
        ('4', RangeKind::Month),
        ('5', RangeKind::All),
    ] {
        match press(&mut app, key(c)) {
            Some(Effect::Load(req)) => assert_eq!(req.range, r),
            other => panic!("{c}: {other:?}"),
        }
        assert_eq!(app.range(), r);
        assert!(app.is_loading());
    }
    press(&mut app, key(']'));
    assert_eq!(app.range(), RangeKind::Hour);
    press(&mut app, key('['));
    assert_eq!(app.range(), RangeKind::All);
    press(&mut app, key('['));
    assert_eq!(app.range(), RangeKind::Month);
}

#[test]
fn stale_answers_are_dropped_and_new_ones_shown() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    let day_total = app.agg().unwrap().total.tokens();
    let src = open(&db);
    let old = app.load_request();
    press(&mut app, key('3'));
    let stale = tokmon::tui::live::load_snapshot(&src, &old).unwrap();
    assert!(!app.on_msg(Msg::Snapshot(Box::new(stale))));
    assert!(app.is_loading());
    load(&mut app, &db);
    assert!(!app.is_loading());
    assert!(
        app.agg().unwrap().total.tokens() > day_total,
        "7 days hold more than 24 hours"
    );
    assert!(screen(&app, 80, 24).contains("7d in 2h buckets"));
}

#[test]
fn focus_selection_and_sort_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    assert_eq!(app.focus(), Focus::Agents);
    press(&mut app, key('j'));
    press(&mut app, code(KeyCode::Down));
    assert_eq!(app.table(Focus::Agents).selected, 2);
    press(&mut app, key('k'));
    assert_eq!(app.table(Focus::Agents).selected, 1);
    press(&mut app, code(KeyCode::Up));
    press(&mut app, code(KeyCode::Up));
    assert_eq!(app.table(Focus::Agents).selected, 0, "stops at the top");
    press(&mut app, code(KeyCode::End));
    assert_eq!(app.table(Focus::Agents).selected, 4, "five agents");
    press(&mut app, key('j'));
    assert_eq!(app.table(Focus::Agents).selected, 4, "stops at the bottom");
    press(&mut app, code(KeyCode::Home));
    assert_eq!(app.table(Focus::Agents).selected, 0);

    press(&mut app, code(KeyCode::Tab));
    assert_eq!(app.focus(), Focus::Models);
    press(&mut app, key('j'));
    assert_eq!(
        (
            app.table(Focus::Agents).selected,
            app.table(Focus::Models).selected
        ),
        (0, 1)
    );
    press(&mut app, code(KeyCode::BackTab));
    assert_eq!(app.focus(), Focus::Agents);

    let by_total: Vec<String> = app
        .rows(Focus::Agents)
        .into_iter()
        .map(|r| r.name)
        .collect();
    press(&mut app, key('o'));
    assert_eq!(app.table(Focus::Agents).sort, SortCol::Cost);
    let by_cost: Vec<String> = app
        .rows(Focus::Agents)
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_ne!(by_total, by_cost);
    assert!(screen(&app, 80, 24).contains("Cost▼"));
    for _ in 0..5 {
        press(&mut app, key('o'));
    }
    assert_eq!(app.table(Focus::Agents).sort, SortCol::Name);
    let names: Vec<String> = app
        .rows(Focus::Agents)
        .into_iter()
        .map(|r| r.name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    press(&mut app, key('o'));
    assert_eq!(app.table(Focus::Agents).sort, SortCol::Total);
}

#[test]
fn overlays_theme_reload_and_quit() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    press(&mut app, key('?'));
    assert_eq!(*app.overlay(), Overlay::Help);
    assert_eq!(app.handle_key(key('j')), None, "help swallows other keys");
    press(&mut app, code(KeyCode::Esc));
    assert_eq!(*app.overlay(), Overlay::None);

    press(&mut app, key('s'));
    assert!(matches!(app.overlay(), Overlay::Sync(_)));
    press(&mut app, key('q'));
    press(&mut app, code(KeyCode::Backspace));
    press(&mut app, key('7'));
    let Overlay::Sync(d) = app.overlay() else {
        panic!()
    };
    assert_eq!(d.input, "7");
    assert!(!app.should_quit(), "q types into the dialog");
    press(&mut app, code(KeyCode::Esc));
    assert_eq!(*app.overlay(), Overlay::None);

    let before = app.theme().name.clone();
    press(&mut app, key('t'));
    assert_ne!(app.theme().name, before);

    assert!(matches!(press(&mut app, key('r')), Some(Effect::Reload(_))));

    let release = KeyEvent {
        kind: KeyEventKind::Release,
        ..key('q')
    };
    assert_eq!(app.handle_key(release), None, "only presses count");
    press(&mut app, key('q'));
    assert!(app.should_quit());

    let (mut app, _) = app_on(&db);
    press(
        &mut app,
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    );
    assert!(app.should_quit());
}

#[test]
fn sync_dialog_previews_and_submits() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    press(&mut app, key('s'));
    assert_eq!(press(&mut app, code(KeyCode::Enter)), None, "nothing typed");
    for c in "700K".chars() {
        press(&mut app, key(c));
    }
    let Overlay::Sync(d) = app.overlay() else {
        panic!()
    };
    let p = d.preview.clone().unwrap().unwrap();
    assert_eq!((p.value, p.increment, p.reset), (700_000, 80_000, false));
    assert_eq!(
        press(&mut app, code(KeyCode::Enter)),
        Some(Effect::Sync("700K".into()))
    );
    app.on_msg(Msg::SyncDone(Ok("synced 700,000".into())));
    assert_eq!(*app.overlay(), Overlay::None);
    assert!(screen(&app, 80, 24).contains("synced 700,000"));

    press(&mut app, key('s'));
    app.update(Action::Paste("oops".into()));
    assert_eq!(
        press(&mut app, code(KeyCode::Enter)),
        None,
        "a bad value is not written"
    );
    let Overlay::Sync(d) = app.overlay() else {
        panic!()
    };
    assert!(matches!(d.preview, Some(Err(_))));

    // Pasting on the main screen opens the dialog with the value.
    app.update(Action::Cancel);
    app.update(Action::Paste("350,000 ".into()));
    let Overlay::Sync(d) = app.overlay() else {
        panic!()
    };
    assert_eq!(d.preview.clone().unwrap().unwrap().value, 350_000);
}

#[test]
fn new_rows_update_tables_and_sparkline() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, clock) = app_on(&db);
    press(&mut app, key('1'));
    load(&mut app, &db);
    let agg = app.agg().unwrap();
    let (tokens_before, _) = agg.series(NOW);
    let total_before = agg.total.tokens();
    let last_id = agg.last_id;
    let row = tokmon::store::EventRow {
        id: last_id + 1,
        ts_ms: Some(NOW + 5_000),
        agent: Some("newcomer".into()),
        model: Some("gpt-5".into()),
        input_tokens: 123_456,
        cost_usd: Some(1.0),
        ..Default::default()
    };
    clock.set(NOW + 10_000);
    assert!(app.on_msg(Msg::Rows(vec![row.clone()])));
    let agg = app.agg().unwrap();
    assert_eq!(agg.total.tokens(), total_before + 123_456);
    assert_eq!(agg.agents["newcomer"].tokens(), 123_456);
    let (tokens_after, _) = agg.series(NOW + 10_000);
    assert_eq!(
        tokens_after.last().unwrap() - tokens_before.last().unwrap(),
        123_456
    );
    assert!(screen(&app, 100, 30).contains("newcomer"));
    assert!(!app.on_msg(Msg::Rows(vec![row])), "a row is counted once");
}

#[test]
fn quota_messages_drive_the_gauge() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    assert!(screen(&app, 80, 24).contains("62.0% OK"));
    for (used, text) in [
        (900_000, "90.0% WARNING"),
        (950_000, "95.0% CRITICAL"),
        (1_200_000, "120.0% EXCEEDED"),
    ] {
        app.on_msg(Msg::Quota(QuotaMsg::State(Quota {
            used,
            total: 1_000_000,
            last_sync_ms: Some(NOW - 3 * MIN),
        })));
        let s = screen(&app, 80, 24);
        assert!(s.contains(text), "{text}\n{s}");
        assert!(s.contains("synced 3m ago"));
    }
    app.on_msg(Msg::Quota(QuotaMsg::Problem(
        "state.json is not valid JSON".into(),
    )));
    let s = screen(&app, 80, 24);
    assert!(
        s.contains("120.0% EXCEEDED") && s.contains("not valid JSON"),
        "{s}"
    );
    app.on_msg(Msg::Quota(QuotaMsg::Missing));
    assert!(screen(&app, 80, 24).contains("no state file"));
}

#[test]
fn missing_database_is_said_on_screen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(&fixture_db(dir.path()));
    app.on_msg(Msg::Source(SourceState::Missing));
    let s = screen(&app, 80, 24);
    assert!(s.contains("no database"), "{s}");
    // Nothing is being loaded, so the sparkline does not pretend to wait for numbers.
    assert!(!s.contains("loading…"), "{s}");
}

#[test]
fn a_lost_connection_keeps_the_numbers_and_says_reconnecting() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(&fixture_db(dir.path()));
    let before = screen(&app, 100, 30);
    assert!(before.contains("● live"), "{before}");
    app.on_msg(Msg::Source(SourceState::Reconnecting(
        "cannot connect to postgres://db/t".into(),
    )));
    let s = screen(&app, 100, 30);
    assert!(
        s.contains("↻ reconnecting…") && !s.contains("● live"),
        "{s}"
    );
    // The last numbers stay on screen meanwhile.
    assert!(s.contains("206 events") && s.contains("claude-code"), "{s}");
    // A fresh snapshot once the server is back: live again.
    load(&mut app, &dir.path().join("usage.db"));
    assert!(screen(&app, 100, 30).contains("● live"));
}

#[test]
fn event_loop_draws_and_quits_on_q() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    // Two budgets cross a threshold with the bell on: two bells for the loop to ring.
    app.set_bell(true);
    let (now, before) = budgets_now_and_before(&db);
    app.on_msg(Msg::Budgets(before));
    app.on_msg(Msg::Budgets(now));
    assert_eq!(app.pending_bells(), 2);
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    let events = futures::stream::iter(vec![
        Ok(Event::Key(key('j'))),
        Ok(Event::Key(key('2'))),
        Ok(Event::Key(key('q'))),
    ]);
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut effects = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(tokmon::tui::run_loop(
        &mut term,
        &mut app,
        events,
        rx,
        &mut |e| effects.push(e),
        false,
    ))
    .unwrap();
    assert!(app.should_quit());
    // The quota reading of `app_on` goes to the tail first, then the range key's load.
    assert!(
        matches!(effects.as_slice(), [Effect::Quota(Some(_)), Effect::Load(r)] if r.range == RangeKind::Day),
        "{effects:?}"
    );
    assert_eq!(
        app.pending_bells(),
        0,
        "the loop takes the bells with the frame"
    );
    assert!(term.backend().to_string().contains("tokmon"));
}

#[test]
fn tail_follows_inserts_replacement_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("later.db");
    let (tail, cmd_tx, mut rx) = tail::spawn_tail(&db, Default::default(), None);
    let req = tokmon::tui::model::LoadRequest {
        generation: 1,
        range: RangeKind::All,
        now_ms: NOW,
    };
    cmd_tx.send(Cmd::Load(req)).unwrap();
    wait_for(&mut rx, "missing", |m| {
        matches!(m, Msg::Source(SourceState::Missing)).then_some(())
    });

    // The database appears.
    let path = fixture_db(dir.path());
    std::fs::rename(&path, &db).unwrap();
    let snap = wait_for(&mut rx, "snapshot", |m| match m {
        Msg::Snapshot(s) => Some(s),
        _ => None,
    });
    assert_eq!(snap.last_id, 600);

    // Another process commits a row.
    let mut conn = open_rw(&db).unwrap();
    insert_events(&mut conn, [&event(7, NOW)]).unwrap();
    let rows = wait_for(&mut rx, "rows", |m| match m {
        Msg::Rows(r) => Some(r),
        _ => None,
    });
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![601]);
    // Empty the write-ahead log: the tail keeps the file open, so the log would outlive the
    // file it belongs to and be read into the replacement.
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    drop(conn);

    // The file is replaced by a smaller one.
    let other = tempfile::tempdir().unwrap();
    let small = other.path().join("small.db");
    let mut c = open_rw(&small).unwrap();
    insert_events(&mut c, [&event(1, NOW - MIN)]).unwrap();
    drop(c);
    std::fs::rename(&small, &db).unwrap();
    wait_for(&mut rx, "reset", |m| {
        matches!(m, Msg::Reset(_)).then_some(())
    });
    let snap = wait_for(&mut rx, "snapshot after reset", |m| match m {
        Msg::Snapshot(s) => Some(s),
        _ => None,
    });
    assert_eq!(snap.last_id, 1);

    // And removed.
    std::fs::remove_file(&db).unwrap();
    wait_for(&mut rx, "missing again", |m| {
        matches!(m, Msg::Source(SourceState::Missing)).then_some(())
    });
    drop(cmd_tx);
    tail.join().unwrap();
}

/// The statuses of the three test budgets at NOW, and the same as they stood earlier, all
/// below their thresholds.
fn budgets_now_and_before(db: &std::path::Path) -> (Vec<BudgetStatus>, Vec<BudgetStatus>) {
    let now = statuses(db, &budgets());
    let before = now
        .iter()
        .cloned()
        .map(|mut s| {
            s.level = Level::Ok;
            s.percentage = 50.0;
            s
        })
        .collect();
    (now, before)
}

#[test]
fn levels_crossed_before_the_start_do_not_alert() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    app.set_bell(true);
    let (now, _) = budgets_now_and_before(&db);
    assert!(now.iter().any(|s| s.level == Level::Exceeded));
    app.on_msg(Msg::Budgets(now.clone()));
    app.on_msg(Msg::Budgets(now));
    assert!(app.alerts().is_empty(), "{:?}", app.alerts());
    assert_eq!(app.pending_bells(), 0);
}

#[test]
fn a_crossing_alerts_once_per_window_and_rings_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, clock) = app_on(&db);
    app.set_bell(true);
    let (now, before) = budgets_now_and_before(&db);
    app.on_msg(Msg::Budgets(before));
    app.on_msg(Msg::Budgets(now.clone()));
    let names: Vec<&str> = app.alerts().iter().map(|a| a.budget.as_str()).collect();
    assert_eq!(names, ["monthly-usd", "claude-daily"], "worst first");
    assert_eq!(app.alerts()[0].level, Level::Exceeded);
    assert_eq!(app.pending_bells(), 2, "one bell per new alert");
    assert!(screen(&app, 80, 24).contains("▲ EXCEEDED monthly-usd at 101.3%"));

    // The same crossing again (a redraw, a new evaluation): nothing new.
    app.on_msg(Msg::Budgets(now.clone()));
    assert_eq!(app.alerts().len(), 2);
    assert_eq!(app.pending_bells(), 2);

    // Acknowledged: gone, and the next evaluation does not bring it back.
    press(&mut app, key('a'));
    assert!(app.alerts().is_empty());
    app.on_msg(Msg::Budgets(now.clone()));
    assert!(app.alerts().is_empty());
    assert!(!screen(&app, 80, 24).contains('▲'));

    // A new month: the monthly budget is over again in its new window, and says so.
    let next: Vec<BudgetStatus> = now
        .into_iter()
        .map(|mut s| {
            if s.name == "monthly-usd" {
                s.window_start = s.resets_at;
            }
            s
        })
        .collect();
    app.on_msg(Msg::Budgets(next));
    assert_eq!(app.alerts().len(), 1);
    assert_eq!(app.alerts()[0].budget, "monthly-usd");
    assert_eq!(app.pending_bells(), 3);

    // Unacknowledged, the line goes after a few minutes.
    clock.set(NOW + tokmon::tui::app::ALERT_MS);
    assert!(app.on_tick());
    assert!(app.alerts().is_empty());
}

#[test]
fn without_bell_nothing_rings() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    let (now, before) = budgets_now_and_before(&db);
    app.on_msg(Msg::Budgets(before));
    app.on_msg(Msg::Budgets(now));
    assert_eq!(app.alerts().len(), 2);
    assert_eq!(app.pending_bells(), 0);
}

#[test]
fn b_scrolls_the_budget_panel_and_wraps() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_with_budgets(&db);
    assert_eq!(app.budgets().len(), 4);
    app.set_viewport(ratatui::layout::Rect::new(0, 0, 80, 24));
    let first_line = |app: &tokmon::tui::app::App| {
        let s = screen(app, 80, 24);
        let lines: Vec<&str> = s.lines().collect();
        // The line below the panel's title rule.
        let rule = lines.iter().position(|l| l.contains(" Budgets ")).unwrap();
        lines[rule + 1]
            .trim_matches('"')
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(first_line(&app), "monthly-usd");
    press(&mut app, key('b'));
    assert_eq!(app.budget_scroll(), 1);
    assert_eq!(first_line(&app), "claude-daily");
    assert!(screen(&app, 80, 24).contains("2–4 of 4"));
    press(&mut app, key('b'));
    assert_eq!(app.budget_scroll(), 0, "back to the most urgent");

    // Compact: one line, so every budget comes in turn.
    app.set_viewport(ratatui::layout::Rect::new(0, 0, 40, 12));
    for i in 1..4 {
        press(&mut app, key('b'));
        assert_eq!(app.budget_scroll(), i);
    }
    assert!(screen(&app, 40, 12).contains("4 of 4"));
    press(&mut app, key('b'));
    assert_eq!(app.budget_scroll(), 0);

    // Wide: all four fit, nothing to scroll.
    app.set_viewport(ratatui::layout::Rect::new(0, 0, 200, 50));
    press(&mut app, key('b'));
    assert_eq!(app.budget_scroll(), 0);
}

#[test]
fn quota_changes_go_to_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    match app.take_effects().as_slice() {
        [Effect::Quota(Some(q))] => assert_eq!((q.used, q.total), (620_000, 1_000_000)),
        other => panic!("{other:?}"),
    }
    let same = Quota {
        used: 620_000,
        total: 1_000_000,
        last_sync_ms: Some(NOW),
    };
    app.on_msg(Msg::Quota(QuotaMsg::State(same)));
    assert!(app.take_effects().is_empty(), "only the counter matters");
    app.on_msg(Msg::Quota(QuotaMsg::Missing));
    assert!(matches!(
        app.take_effects().as_slice(),
        [Effect::Quota(None)]
    ));
}

#[test]
fn tail_evaluates_budgets_and_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (tail, cmd_tx, mut rx) = tail::spawn_tail(
        &db,
        tokmon::config::Config::parse(BUDGETS_TOML).unwrap(),
        None,
    );
    cmd_tx
        .send(Cmd::Load(tokmon::tui::model::LoadRequest {
            generation: 1,
            range: RangeKind::Day,
            now_ms: NOW,
        }))
        .unwrap();
    let names = |v: Vec<BudgetStatus>| {
        let mut n: Vec<String> = v.into_iter().map(|s| s.name).collect();
        n.sort();
        n
    };
    let first = wait_for(&mut rx, "budgets", |m| match m {
        Msg::Budgets(b) => Some(b),
        _ => None,
    });
    assert_eq!(names(first), ["bots-5h", "claude-daily", "monthly-usd"]);
    cmd_tx.send(Cmd::Quota(Some(quota_input()))).unwrap();
    let with_quota = wait_for(&mut rx, "budgets with the quota", |m| match m {
        Msg::Budgets(b) => Some(b),
        _ => None,
    });
    let quota = with_quota.iter().find(|s| s.is_quota).expect("quota");
    assert_eq!(quota.used_tokens, 620_000);
    drop(cmd_tx);
    tail.join().unwrap();
}

/// The sum of a table's tokens, by name.
fn table_tokens(app: &tokmon::tui::app::App, which: Focus) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = app
        .rows(which)
        .into_iter()
        .map(|r| (r.name, r.tally.tokens()))
        .collect();
    v.sort();
    v
}

#[test]
fn drill_down_filters_the_rest_and_keeps_following_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, clock) = app_on(&db);
    let all_models = table_tokens(&app, Focus::Models);
    let all_total = app.total().unwrap().tokens();
    // Enter on the first agent: the models table, the total and the sparkline follow it.
    let agent = app.selected_row(Focus::Agents).unwrap();
    press(&mut app, code(KeyCode::Enter));
    assert_eq!(app.filters().len(), 1);
    assert_eq!(app.focus(), Focus::Models);
    let total = app.total().unwrap();
    assert_eq!(total.tokens(), agent.tally.tokens());
    assert!((total.cost - agent.tally.cost).abs() < 1e-9);
    let models = table_tokens(&app, Focus::Models);
    assert_ne!(models, all_models);
    assert_eq!(
        models.iter().map(|(_, t)| t).sum::<u64>(),
        agent.tally.tokens()
    );
    let (tokens, _) = app.series().unwrap();
    assert_eq!(tokens.iter().sum::<u64>(), agent.tally.tokens());
    // The agents table itself still lists every agent.
    assert_eq!(app.rows(Focus::Agents).len(), 5);
    assert!(screen(&app, 100, 30).contains(&format!("▼ agent {}", agent.name)));

    // Drill further into a model: both filters hold.
    let model = app.selected_row(Focus::Models).unwrap();
    press(&mut app, code(KeyCode::Enter));
    assert_eq!(app.filters().len(), 2);
    assert_eq!(app.total().unwrap().tokens(), model.tally.tokens());

    // New rows: only those under the filters count on screen, and they do count.
    let last_id = app.agg().unwrap().last_id;
    let row = |id: i64, agent: &str, model: &str, input: u64| tokmon::store::EventRow {
        id,
        ts_ms: Some(NOW + 5_000),
        agent: Some(agent.into()),
        model: Some(model.into()),
        provider: Some("p".into()),
        input_tokens: input,
        cost_usd: Some(0.25),
        ..Default::default()
    };
    clock.set(NOW + 10_000);
    app.on_msg(Msg::Rows(vec![
        row(last_id + 1, &agent.name, &model.name, 1_000),
        row(last_id + 2, "someone-else", &model.name, 50_000),
    ]));
    assert_eq!(app.total().unwrap().tokens(), model.tally.tokens() + 1_000);
    let (tokens, _) = app.series().unwrap();
    assert_eq!(*tokens.last().unwrap(), 1_000);
    assert!(
        app.rows(Focus::Agents)
            .iter()
            .any(|r| r.name == "someone-else" && r.tally.tokens() == 50_000),
        "the agents table is filtered by the model only"
    );

    // Backspace undoes the model, Esc the agent: everything again (with the new rows).
    press(&mut app, code(KeyCode::Backspace));
    assert_eq!(app.filters().len(), 1);
    press(&mut app, code(KeyCode::Esc));
    assert!(app.filters().is_empty());
    assert_eq!(app.total().unwrap().tokens(), all_total + 51_000);
    assert!(!screen(&app, 100, 30).contains("▼ agent"));
}

#[test]
fn providers_table_and_drilling_into_a_provider() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    press(&mut app, key('p'));
    assert!(screen(&app, 100, 30).contains("Providers"));
    let providers = table_tokens(&app, Focus::Models);
    assert_eq!(
        providers.len(),
        1,
        "the fixture has one provider: {providers:?}"
    );
    press(&mut app, code(KeyCode::Tab));
    press(&mut app, code(KeyCode::Enter));
    assert_eq!(app.filters()[0].value, "p");
    assert_eq!(
        app.total().unwrap().tokens(),
        app.agg().unwrap().total.tokens()
    );
    press(&mut app, key('p'));
    assert!(screen(&app, 100, 30).contains("Models"));
}

#[test]
fn cursor_moves_over_buckets_and_goes_off_past_now() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    assert_eq!(app.cursor(), None);
    press(&mut app, code(KeyCode::Left));
    let (last, start, ..) = app.cursor().unwrap();
    assert_eq!(start, NOW, "the newest bucket first");
    press(&mut app, key('h'));
    press(&mut app, key('h'));
    let (i, start, tokens, cost) = app.cursor().unwrap();
    assert_eq!((i, start), (last - 2, NOW - 30 * MIN));
    let (series, costs) = app.series().unwrap();
    assert_eq!((tokens, cost), (series[i], costs[i]));
    for _ in 0..500 {
        press(&mut app, key('h'));
    }
    assert_eq!(app.cursor().unwrap().0, 0, "stops at the first bucket");
    press(&mut app, code(KeyCode::Right));
    assert_eq!(app.cursor().unwrap().0, 1);
    press(&mut app, code(KeyCode::Esc));
    assert_eq!(app.cursor(), None, "Esc hides the cursor");
    press(&mut app, key('h'));
    press(&mut app, key('l'));
    assert_eq!(app.cursor(), None, "past now it goes off");
    // A new range starts without it.
    press(&mut app, key('h'));
    press(&mut app, key('1'));
    assert_eq!(app.cursor_ms(), None);
}

#[test]
fn export_writes_what_the_screen_shows() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    app.set_export_dir(dir.path().join("exports"));
    press(&mut app, code(KeyCode::Enter));
    let Some(Effect::Export(export, to)) = press(&mut app, key('e')) else {
        panic!("e exports");
    };
    assert_eq!(to, dir.path().join("exports"));
    let paths = export.write(&to).unwrap();
    assert_eq!(paths.len(), 2);
    app.on_msg(Msg::Exported(Ok(paths.clone())));
    assert!(app.status().unwrap().contains("exported to"));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&paths[1]).unwrap()).unwrap();
    assert_eq!(json["range"], "24h");
    assert_eq!(json["filter"][0]["dimension"], "agent");
    assert_eq!(json["total"]["total_tokens"], app.total().unwrap().tokens());
    assert_eq!(
        json["tables"]["models"].as_array().unwrap().len(),
        app.rows(Focus::Models).len()
    );
    assert_eq!(json["tables"]["agents"].as_array().unwrap().len(), 5);
    let buckets = json["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), app.series().unwrap().0.len());

    let mut csv = csv::Reader::from_path(&paths[0]).unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    assert_eq!(&rows[0][2], "total");
    assert_eq!(
        rows[0][10].parse::<u64>().unwrap(),
        app.total().unwrap().tokens()
    );
    assert!(rows.iter().all(|r| r[1].starts_with("agent=")));
    assert_eq!(
        rows.iter().filter(|r| &r[2] == "bucket").count(),
        buckets.len()
    );

    // A second export in the same second gets a new name.
    let again = export.write(&to).unwrap();
    assert_ne!(again, paths);
    // A place that cannot be a directory: an error, no panic.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    assert!(export.write(&file).is_err());
}

#[test]
fn names_from_data_reach_the_screen_printable() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, clock) = app_on(&db);
    let last_id = app.agg().unwrap().last_id;
    clock.set(NOW + 10_000);
    app.on_msg(Msg::Rows(vec![tokmon::store::EventRow {
        id: last_id + 1,
        ts_ms: Some(NOW + 5_000),
        agent: Some("evil\u{1b}[2Jagent".into()),
        model: Some("gpt-5".into()),
        input_tokens: 9_000_000,
        ..Default::default()
    }]));
    // The biggest agent now: selected, so its name is in the title too; then drilled into.
    press(&mut app, code(KeyCode::Enter));
    let s = screen(&app, 120, 34);
    assert!(!s.contains('\u{1b}'), "{s}");
    assert!(s.contains("evil\\x1b[2Jagent"), "{s}");
    assert!(s.contains("▼ agent evil\\x1b[2Jagent"), "{s}");
}

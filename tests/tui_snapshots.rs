//! The whole screen at three sizes, the help overlay and the sync dialog, on a fixed
//! database and a fixed clock (UTC), as insta snapshots.

mod tui_common;

use tokmon::tui::app::Action;
use tui_common::*;

#[test]
fn whole_screen_at_three_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (app, _) = app_on(&db);
    insta::assert_snapshot!("screen_80x24", screen(&app, 80, 24));
    insta::assert_snapshot!("screen_40x12", screen(&app, 40, 12));
    insta::assert_snapshot!("screen_200x50", screen(&app, 200, 50));
    insta::assert_snapshot!("screen_too_small", screen(&app, 28, 7));
}

#[test]
fn help_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    app.update(Action::ToggleHelp);
    insta::assert_snapshot!("help_100x40", screen(&app, 100, 40));
}

#[test]
fn sync_dialog_valid_and_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    app.update(Action::OpenSync);
    for c in "700K".chars() {
        app.update(Action::Input(c));
    }
    insta::assert_snapshot!("sync_valid_80x24", screen(&app, 80, 24));
    app.update(Action::ClearInput);
    for c in "lots".chars() {
        app.update(Action::Input(c));
    }
    insta::assert_snapshot!("sync_invalid_80x24", screen(&app, 80, 24));
}

#[test]
fn selected_row_is_reverse_video() {
    use ratatui::style::Modifier;
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    app.update(Action::Down);
    let t = render(&app, 80, 24);
    let buf = t.backend().buffer();
    let reversed: Vec<u16> = (0..24)
        .filter(|y| (0..80).all(|x| buf[(x, *y)].modifier.contains(Modifier::REVERSED)))
        .collect();
    assert_eq!(reversed.len(), 1, "one selected row: {reversed:?}");
}

#[test]
fn budget_panel_at_three_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (app, _) = app_with_budgets(&db);
    insta::assert_snapshot!("budgets_80x24", screen(&app, 80, 24));
    insta::assert_snapshot!("budgets_40x12", screen(&app, 40, 12));
    insta::assert_snapshot!("budgets_200x50", screen(&app, 200, 50));
}

#[test]
fn alert_line_after_a_crossing() {
    use tokmon::budget::Level;
    use tokmon::tui::app::Msg;
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    let now = statuses(&db, &budgets());
    // At start the critical budget was still fine; the next evaluation crosses.
    let before: Vec<_> = now
        .iter()
        .cloned()
        .map(|mut s| {
            s.level = Level::Ok;
            s.percentage = 50.0;
            s
        })
        .collect();
    app.on_msg(Msg::Budgets(before));
    app.on_msg(Msg::Budgets(now));
    assert_eq!(app.alerts().len(), 2, "{:?}", app.alerts());
    insta::assert_snapshot!("alert_80x24", screen(&app, 80, 24));
    insta::assert_snapshot!("alert_40x12", screen(&app, 40, 12));
}

/// A demo database (the models `tokmon --demo` shows) at the fixture's clock.
fn demo_app(dir: &std::path::Path) -> tokmon::tui::app::App {
    let db = dir.join("demo.db");
    let now = tokmon::timefmt::from_ms(NOW);
    tokmon::demo::generate(&db, tokmon::demo::Flavor::Native, 4_000, 3, 7, now).unwrap();
    app_on(&db).0
}

/// The demo's model names as they are stored.
fn demo_models(dir: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join("demo.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT DISTINCT model FROM events ORDER BY model")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn demo_model_names_whole_at_three_sizes() {
    use tokmon::tui::app::Focus;
    let dir = tempfile::tempdir().unwrap();
    let mut app = demo_app(dir.path());
    app.update(Action::FocusNext);
    assert_eq!(app.focus(), Focus::Models);
    let models = demo_models(dir.path());
    assert!(models.len() >= 8, "{models:?}");
    for (w, h) in [(80, 24), (120, 34), (200, 50)] {
        let s = screen(&app, w, h);
        // Every model row on screen shows a whole name: the stored one, or the same
        // without its date suffix or route prefix — never cut.
        let lines: Vec<&str> = s.lines().collect();
        let shown = models
            .iter()
            .filter(|m| {
                let short = m.rsplit('/').next().unwrap();
                let short = short.trim_end_matches(|c: char| c.is_ascii_digit());
                let short = short.strip_suffix('-').unwrap_or(short);
                let whole = |n: &str| {
                    lines
                        .iter()
                        .any(|l| l.contains(&format!("\"{n} ")) || l.contains(&format!(" {n} ")))
                };
                whole(m) || whole(short)
            })
            .count();
        let rows = app.rows(Focus::Models).len();
        let body = if w >= 100 { h as usize - 12 } else { 6 };
        assert!(
            shown >= rows.min(body),
            "{shown} of {rows} at {w}x{h}:\n{s}"
        );
        assert!(!s.contains('…'), "nothing cut at {w}x{h}:\n{s}");
        insta::assert_snapshot!(format!("demo_{w}x{h}"), s);
    }
}

#[test]
fn drilled_into_a_model_at_three_sizes() {
    use tokmon::tui::app::Focus;
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    app.update(Action::FocusNext);
    app.update(Action::Down);
    let model = app.selected_row(Focus::Models).unwrap().name;
    app.update(Action::Drill);
    assert_eq!(
        app.focus(),
        Focus::Agents,
        "the other table takes the focus"
    );
    for (w, h) in [(80, 24), (120, 34), (200, 50)] {
        let s = screen(&app, w, h);
        assert!(s.contains(&format!("▼ model {model}")), "{s}");
        insta::assert_snapshot!(format!("drill_{w}x{h}"), s);
    }
}

#[test]
fn bucket_cursor_at_three_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let (mut app, _) = app_on(&db);
    for _ in 0..5 {
        app.update(Action::CursorLeft);
    }
    app.update(Action::CursorRight);
    for (w, h) in [(80, 24), (120, 34), (200, 50)] {
        let s = screen(&app, w, h);
        // The bucket holding 12:00, four back, one on.
        assert!(s.contains("▲ 11:15–11:30"), "{s}");
        insta::assert_snapshot!(format!("cursor_{w}x{h}"), s);
    }
}

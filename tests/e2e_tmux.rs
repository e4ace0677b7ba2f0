//! The real binary in a private tmux server: a foreign (bot tracker) database, a row
//! committed by another process, a state file rewritten by another writer, a sync typed
//! into the dialog, a resize to 40×12, and `q` with the terminal given back.
//! Skipped (passing, with a note) only when tmux is not installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::tmux::{Tmux, have_tmux};

const BOT_DDL: &str = "CREATE TABLE token_usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, model TEXT NOT NULL,
  input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL,
  user_id TEXT, request_type TEXT, metadata TEXT,
  timestamp DATETIME DEFAULT CURRENT_TIMESTAMP)";

fn write_state(path: &Path, used: u64) {
    let tmp = path.with_extension("tmp");
    let text = serde_json::json!({
        "token_usage": {"used": used, "total": 1_000_000, "sessions": []},
        "status": {"text": "other tool"},
    });
    std::fs::write(&tmp, serde_json::to_string_pretty(&text).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn shell_quote(p: &Path) -> String {
    common::tmux::shell_quote(&p.display().to_string())
}

/// A temporary directory with a home, a database path named `db` and a state file path;
/// `None` (the test is skipped, with a note) when tmux is not installed.
fn places(db: &str) -> Option<(tempfile::TempDir, PathBuf, PathBuf, PathBuf)> {
    if !have_tmux() {
        eprintln!("skipped: tmux is not installed (.ci/run installs it)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (db, state) = (dir.path().join(db), dir.path().join("state.json"));
    Some((dir, home, db, state))
}

/// The monitor on `db` and `state` with its own home, in a `w`×`h` pane; when it exits the
/// pane says `EXITED <code>`.
fn start_monitor(home: &Path, db: &Path, state: &Path, w: u16, h: u16) -> Tmux {
    let cmd = format!(
        "env HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config TOKMON_DB={db} TOKMON_STATE={state} \
         {bin} --tz UTC; echo EXITED $?; sleep 60",
        home = shell_quote(home),
        db = shell_quote(db),
        state = shell_quote(state),
        bin = shell_quote(Path::new(env!("CARGO_BIN_EXE_tokmon"))),
    );
    Tmux::start(&cmd, w, h)
}

#[test]
fn monitor_in_tmux() {
    let Some((_dir, home, db, state)) = places("bot.db") else {
        return;
    };
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(BOT_DDL).unwrap();
        for i in 0..50 {
            c.execute(
                "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, request_type, metadata, timestamp)
                 VALUES ('openai', 'gpt-4o-mini', ?1, 200, 0.001, 'support', '{}', datetime('now', ?2))",
                rusqlite::params![1000 + i, format!("-{} minutes", i * 5)],
            )
            .unwrap();
        }
    }
    write_state(&state, 300_000);

    let t = start_monitor(&home, &db, &state, 100, 30);

    // The foreign database is detected and read.
    let s = t.wait("the bot database", |s| {
        s.contains("(bot)") && s.contains("support") && s.contains("● live")
    });
    assert!(s.contains("30.0% OK"), "{s}");

    // A row committed by another process appears.
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute(
            "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, request_type, metadata)
             VALUES ('anthropic', 'claude-sonnet-4-5', 9000000, 1000, 0.5, 'e2e-newcomer', '{}')",
            [],
        )
        .unwrap();
    }
    t.wait_text("e2e-newcomer");

    // Another writer changes the state file.
    write_state(&state, 960_000);
    t.wait_text("96.0% CRITICAL");

    // Sync 700K through the dialog.
    t.keys(&["s"]);
    t.wait_text("Sync quota");
    t.text("700K");
    t.wait_text("700,000");
    t.keys(&["Enter"]);
    t.wait("the dialog to close", |s| !s.contains("Sync quota"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(json["token_usage"]["used"], 700_000, "{json}");
    assert_eq!(
        json["status"]["text"], "other tool",
        "keys of other tools are kept"
    );
    // The bot database is never written, nor tokmon's default one: the sync history is kept
    // beside the state file, as `tokmon sync` keeps it (#16 item 10).
    assert!(!home.join("data/tokmon/tokmon.db").exists());
    let (rows, _) = tokmon::state_file::history::history_of(&state).unwrap();
    assert_eq!(rows.iter().map(|r| r.value).collect::<Vec<_>>(), [700_000]);
    t.wait_text("70.0% OK");

    // A resize to 40×12 still shows the gauge and the top rows.
    assert!(
        t.tmux(&["resize-window", "-t", "t", "-x", "40", "-y", "12"])
            .status
            .success()
    );
    let s = t.wait("the compact layout", |s| {
        s.lines().next().is_some_and(|l| l.starts_with("tokmon"))
            && s.contains("Quota")
            && s.contains("e2e-newco")
    });
    assert!(s.lines().all(|l| l.chars().count() <= 40), "{s}");

    // q quits and gives the terminal back.
    t.keys(&["q"]);
    let s = t.wait_text("EXITED 0");
    assert!(!s.contains("Quota"), "the monitor's screen is gone:\n{s}");
    let alt = t.tmux(&["display-message", "-p", "-t", "t", "#{alternate_on}"]);
    assert_eq!(
        String::from_utf8_lossy(&alt.stdout).trim(),
        "0",
        "alternate screen left"
    );
}

#[test]
fn no_tty_no_monitor() {
    let out = Command::new(env!("CARGO_BIN_EXE_tokmon"))
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a terminal"));
}

/// Drill into a model, see a new row arrive under the filter, move the bucket cursor,
/// export, and read the exported files back.
#[test]
fn drill_cursor_and_export_in_tmux() {
    use tokmon::store::native::{NewEvent, insert_events, open_rw};
    let Some((_dir, home, db, state)) = places("usage.db") else {
        return;
    };
    let now = chrono::Utc::now();
    tokmon::demo::generate(&db, tokmon::demo::Flavor::Native, 2_000, 2, 5, now).unwrap();
    write_state(&state, 300_000);
    let t = start_monitor(&home, &db, &state, 120, 34);
    t.wait("the models table", |s| {
        s.contains("● live") && s.contains("Models") && s.contains("claude-code")
    });

    // Focus the models table: its title names the selected model in full.
    t.keys(&["Tab"]);
    let s = t.wait_text("▸ Models ");
    let title = s.lines().find(|l| l.contains("▸ Models ")).unwrap();
    let model = title
        .split("▸ Models ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(s.contains(&format!("{model} ")), "{s}");

    // Enter drills into it: the header says so.
    t.keys(&["Enter"]);
    t.wait_text(&format!("▼ model {model}"));

    // A row for that model from another process shows under the filter.
    let mut conn = open_rw(&db).unwrap();
    let fresh = NewEvent {
        ts_ms: chrono::Utc::now().timestamp_millis(),
        model: model.clone(),
        agent: Some("e2e-live".into()),
        provider: Some("anthropic".into()),
        input_tokens: 7_777,
        output_tokens: 1,
        source: "test".into(),
        ..Default::default()
    };
    insert_events(&mut conn, [&fresh]).unwrap();
    t.wait_text("e2e-live");

    // The cursor: three buckets back, its time, tokens and cost in the title.
    t.keys(&["Left", "h", "h"]);
    t.wait("the cursor", |s| s.contains("▲ ") && s.contains(" tok ·"));

    // Export: the footer says where; the files hold the filtered screen.
    t.keys(&["e"]);
    t.wait_text("exported to");
    let exports = home.join("data/tokmon/exports");
    let files: Vec<PathBuf> = std::fs::read_dir(&exports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let json_path = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).unwrap()).unwrap();
    assert_eq!(json["filter"][0]["dimension"], "model");
    assert_eq!(json["filter"][0]["value"], model.as_str());
    let agents = json["tables"]["agents"].as_array().unwrap();
    assert!(
        agents
            .iter()
            .any(|a| a["name"] == "e2e-live" && a["input_tokens"] == 7_777),
        "{agents:?}"
    );
    assert!(!json["buckets"].as_array().unwrap().is_empty());
    let csv_path = json_path.with_extension("csv");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(csv.contains(&format!("model={model}")), "{csv}");
    assert!(csv.contains(",agent,e2e-live,"), "{csv}");

    // Esc goes back: the cursor first, then the filter.
    t.keys(&["Escape"]);
    t.wait("the cursor to go", |s| !s.contains(" tok ·"));
    t.keys(&["Escape"]);
    t.wait("the filter to go", |s| !s.contains("▼ model"));
    t.keys(&["q"]);
    t.wait_text("EXITED 0");
}

/// A panic in a thread of the monitor (here the tail, where budgets are evaluated; injected
/// through a switch that only debug builds have) restores the terminal and ends the process
/// with exit code 101, instead of leaving it drawing frozen data over the shell.
#[test]
fn panic_in_a_thread_restores_the_terminal_and_exits_non_zero() {
    let Some((_dir, home, db, state)) = places("bot.db") else {
        return;
    };
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(BOT_DDL).unwrap();
        c.execute(
            "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, request_type)
             VALUES ('openai', 'gpt-4o-mini', 5, 5, 'support')",
            [],
        )
        .unwrap();
    }
    write_state(&state, 300_000);
    let cmd = format!(
        "env HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config TOKMON_DB={db} TOKMON_STATE={state} \
         TOKMON_TEST_PANIC=tail {bin} --tz UTC; echo EXITED $?; sleep 60",
        home = shell_quote(&home),
        db = shell_quote(&db),
        state = shell_quote(&state),
        bin = shell_quote(Path::new(env!("CARGO_BIN_EXE_tokmon"))),
    );
    let t = Tmux::start(&cmd, 100, 30);
    let s = t.wait_text("EXITED 101");
    assert!(s.contains("panicked"), "the panic is reported:\n{s}");
    let alt = t.tmux(&["display-message", "-p", "-t", "t", "#{alternate_on}"]);
    assert_eq!(
        String::from_utf8_lossy(&alt.stdout).trim(),
        "0",
        "alternate screen left"
    );
    // Keys typed now reach the shell's terminal in cooked mode: no frame is drawn over it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.screen().contains("Quota"), "{}", t.screen());
}

/// #16 item 17: 3,000+ characters typed into the sync dialog in one burst (a paste without
/// bracketed paste) and the Esc right after them: the Esc closes the dialog. Input arriving
/// in more than one read of the terminal used to stay unread until the next key.
#[test]
fn a_long_paste_does_not_swallow_the_next_esc() {
    if !have_tmux() {
        eprintln!("skipped: tmux is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let state = dir.path().join("state.json");
    write_state(&state, 300_000);
    let cmd = format!(
        "env HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config \
         TOKMON_DB={home}/none.db TOKMON_STATE={state} {bin} --tz UTC; sleep 60",
        home = shell_quote(&home),
        state = shell_quote(&state),
        bin = shell_quote(Path::new(env!("CARGO_BIN_EXE_tokmon"))),
    );
    let t = Tmux::start(&cmd, 100, 30);
    t.wait_text("30.0% OK");
    t.keys(&["s"]);
    t.wait_text("Sync quota");
    t.text(&"350,000 tokens used ".repeat(160));
    t.keys(&["Escape"]);
    t.wait("the dialog to close", |s| !s.contains("Sync quota"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(json["token_usage"]["used"], 300_000, "nothing was synced");
}

/// Closing the monitor's terminal (its tmux server killed: the window closed, the ssh link
/// dropped) ends it cleanly, exit code 0: nothing panics on the way out (the terminal library
/// told stderr, the closed terminal itself, that the cursor could not be shown again, and
/// that write failing was a panic).
#[test]
fn a_closed_terminal_ends_the_monitor_without_a_panic() {
    let Some((dir, home, db, state)) = places("bot.db") else {
        return;
    };
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(BOT_DDL)
        .unwrap();
    write_state(&state, 300_000);
    let code = dir.path().join("exit-code");
    // The shell outlives the hangup to write down how the monitor ended.
    let cmd = format!(
        "trap '' HUP; env HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config \
         TOKMON_DB={db} TOKMON_STATE={state} {bin} --tz UTC; echo $? > {code}",
        home = shell_quote(&home),
        db = shell_quote(&db),
        state = shell_quote(&state),
        bin = shell_quote(Path::new(env!("CARGO_BIN_EXE_tokmon"))),
        code = shell_quote(&code),
    );
    let t = Tmux::start(&cmd, 100, 30);
    t.wait_text("Quota");
    drop(t);
    let start = std::time::Instant::now();
    while !code.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the monitor did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
    let log = std::fs::read_to_string(home.join("data/tokmon/logs/tokmon.log")).unwrap();
    assert!(!log.contains("panic"), "{log}");
    assert_eq!(std::fs::read_to_string(&code).unwrap().trim(), "0");
}

//! The monitor over PostgreSQL, end to end in tmux: a row committed with `psql` shows within a
//! second (heard through LISTEN/NOTIFY); without the trigger, and on the team service's
//! `ai_usage` table, it polls; a read-only role listens too; a server stopped and started
//! under a running monitor: "reconnecting", then totals equal to a fresh `report`.
//! Skipped (passing, with a note) only when tmux is not installed; PostgreSQL is required.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Sandbox;
use common::pg::{PgDb, PgServer, db};
use common::tmux::{Tmux, have_tmux};
use tokmon::numfmt::thousands;

fn no_tmux() -> bool {
    if have_tmux() {
        return false;
    }
    eprintln!("skipped: tmux is not installed (.ci/run installs it)");
    true
}

/// `tokmon record` into `url` (which creates and migrates tokmon's schema).
fn record(sb: &Sandbox, url: &str, agent: &str, input: u64) {
    sb.cmd()
        .args([
            "record",
            "--db",
            url,
            "--model",
            "claude-sonnet-4-5",
            "--agent",
            agent,
        ])
        .args(["--input", &input.to_string(), "--output", "100"])
        .assert()
        .success();
}

/// A row for now, as another program would write it.
fn insert_sql(agent: &str, input: u64) -> String {
    format!(
        "INSERT INTO events (ts, model, agent, provider, input_tokens, output_tokens, source) \
         VALUES ((extract(epoch FROM clock_timestamp()) * 1000)::bigint, 'gpt-5', '{agent}', \
         'openai', {input}, 100, 'psql')"
    )
}

/// How the monitor said it follows the database (`listen` or `poll`), from its log.
fn follow_mode(home: &Path) -> String {
    let log = std::fs::read_to_string(home.join("data/tokmon/logs/tokmon.log")).unwrap_or_default();
    log.lines()
        .rev()
        .filter_map(|l| l.split("follow=").nth(1))
        .find_map(|r| r.split_whitespace().next())
        .unwrap_or("")
        .to_string()
}

fn live_with(t: &Tmux, text: &str) -> String {
    t.wait(&format!("the monitor live with {text}"), |s| {
        s.contains("● live") && s.contains(text)
    })
}

#[test]
fn a_row_inserted_with_psql_shows_in_the_monitor_within_a_second() {
    if no_tmux() {
        return;
    }
    let d = db("monitor_notify");
    let sb = Sandbox::new();
    record(&sb, &d.url, "seed-agent", 1_000);
    let t = Tmux::monitor(sb.dir.path(), &d.url, &[], 120, 30);
    live_with(&t, "seed-agent");
    assert_eq!(follow_mode(sb.dir.path()), "listen");
    for (i, agent) in ["psql-first", "psql-second"].into_iter().enumerate() {
        d.psql(&insert_sql(agent, 5_000 + i as u64));
        let committed = Instant::now();
        t.wait_for(agent, Duration::from_secs(5), |s| s.contains(agent));
        let took = committed.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "{agent} took {took:?} to show"
        );
    }
}

#[test]
fn without_the_trigger_the_monitor_polls() {
    if no_tmux() {
        return;
    }
    let d = db("monitor_poll");
    let sb = Sandbox::new();
    record(&sb, &d.url, "seed-agent", 1_000);
    d.psql("DROP TRIGGER events_notify ON events");
    let t = Tmux::monitor(sb.dir.path(), &d.url, &[], 120, 30);
    live_with(&t, "seed-agent");
    assert_eq!(follow_mode(sb.dir.path()), "poll");
    d.psql(&insert_sql("polled-agent", 2_000));
    t.wait_text("polled-agent");
}

#[test]
fn a_read_only_role_listens_too() {
    if no_tmux() {
        return;
    }
    let d = db("monitor_reader");
    let sb = Sandbox::new();
    record(&sb, &d.url, "seed-agent", 1_000);
    let url = d.read_only_role("monitor_reader", "pw-reader");
    let t = Tmux::monitor(sb.dir.path(), &url, &[], 120, 30);
    live_with(&t, "seed-agent");
    assert_eq!(follow_mode(sb.dir.path()), "listen");
    d.psql(&insert_sql("heard-by-reader", 3_000));
    t.wait_text("heard-by-reader");
    // The password is never on screen.
    assert!(!t.screen().contains("pw-reader"));
    // The network drops (the server ends the monitor's connections): it connects again,
    // reads afresh and hears the next commit; every row once.
    assert!(d.terminate_connections() >= 2, "the reads and the listener");
    d.psql(&insert_sql("after-the-drop", 4_000));
    t.wait("the row after the drop", |s| {
        s.contains("● live") && s.contains("after-the-drop") && s.contains("3 events")
    });
}

#[test]
fn the_team_services_ai_usage_is_followed_by_polling() {
    if no_tmux() {
        return;
    }
    let d = db("monitor_ai_usage");
    d.psql(common::pg::AI_USAGE_TABLE);
    d.psql(
        "INSERT INTO ai_usage (id, user_id, provider, model, prompt_tokens, completion_tokens,
           total_tokens, cost, timestamp)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'openai', 'team-model-one', 1000, 100,
           1100, 5, now() AT TIME ZONE 'UTC')",
    );
    let sb = Sandbox::new();
    let t = Tmux::monitor(sb.dir.path(), &d.url, &[], 120, 30);
    live_with(&t, "team-model-one");
    assert_eq!(follow_mode(sb.dir.path()), "poll");
    d.psql(
        "INSERT INTO ai_usage (id, user_id, provider, model, prompt_tokens, completion_tokens,
           total_tokens, cost, timestamp)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'openai', 'team-model-two', 2000, 100,
           2100, 7, now() AT TIME ZONE 'UTC')",
    );
    // Read afresh, not added on top: each row once (prompt + completion tokens).
    let s = t.wait("the second model", |s| {
        s.contains("team-model-two") && s.contains("2 events")
    });
    assert!(s.contains(&format!("total {}", thousands(3_200))), "{s}");
}

/// The numbers `report --format json` gives for the monitor's default range (24 h).
fn report_totals(sb: &Sandbox, url: &str) -> (u64, u64) {
    let v = common::json(sb.cmd().args(["report", "--db", url, "--format", "json"]));
    let t = &v["totals"];
    (
        t["events"].as_u64().unwrap(),
        t["total_tokens"].as_u64().unwrap(),
    )
}

#[test]
fn the_monitor_reconnects_after_the_server_restarts_and_agrees_with_report() {
    if no_tmux() {
        return;
    }
    let server = PgServer::start();
    let d: PgDb = server.create_db("restart");
    let sb = Sandbox::new();
    for i in 0..3 {
        record(&sb, &d.url, &format!("before-{i}"), 1_000 + i);
    }
    let t = Tmux::monitor(sb.dir.path(), &d.url, &[], 120, 30);
    live_with(&t, "before-2");

    server.stop();
    // The last numbers stay, marked as not live.
    let s = t.wait_text("reconnecting");
    assert!(s.contains("before-2"), "{s}");
    assert!(s.contains("3 events"), "{s}");
    // Down for a while (several polls of the block watcher).
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    server.wait_ready();
    // Written as soon as the server is back (before or after the monitor reconnects).
    d.psql(&insert_sql("after-restart", 7_000));
    record(&sb, &d.url, "after-record", 9_000);

    let (events, tokens) = report_totals(&sb, &d.url);
    assert_eq!(events, 5);
    let want_events = format!("{} events", thousands(events));
    let want_total = format!("total {}", thousands(tokens));
    let s = t.wait("the monitor to agree with report", |s| {
        s.contains("● live")
            && s.contains("after-record")
            && s.contains(&want_events)
            && s.contains(&want_total)
    });
    assert!(s.contains("after-restart"), "{s}");
    // The outage is logged once by the block watcher, not at every poll.
    let log = std::fs::read_to_string(sb.dir.path().join("data/tokmon/logs/tokmon.log"))
        .unwrap_or_default();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("block watcher"))
        .count();
    assert!(warnings <= 1, "{warnings} block watcher warnings:\n{log}");
    // Nothing counted twice afterwards: one more row adds exactly itself.
    d.psql(&insert_sql("one-more", 500));
    let (events, tokens) = report_totals(&sb, &d.url);
    assert_eq!(events, 6);
    t.wait("the last row", |s| {
        s.contains("one-more")
            && s.contains(&format!("{} events", thousands(events)))
            && s.contains(&format!("total {}", thousands(tokens)))
    });
}

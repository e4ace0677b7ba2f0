//! Zero configuration for agent users: with HOME holding `.claude/projects` and
//! `.codex/sessions` and nothing else (no tokmon config, no TOKMON_* or XDG variables), plain
//! commands find the logs, import what is new before answering, count 5-hour blocks and feed
//! Claude Code's status line.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use common::tmux::{Tmux, have_tmux};

/// A home directory of its own; the environment is cleared but for PATH, HOME and TZ.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("tokmon").expect("binary");
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("TZ", "UTC");
        c
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn append(&self, rel: &str, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path(rel))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        })
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One Claude Code reply line.
fn cc(id: &str, at: DateTime<Utc>, session: &str, input: u64, output: u64) -> String {
    json!({"type": "assistant", "timestamp": ts(at), "sessionId": session, "uuid": format!("u{id}"),
        "requestId": format!("req_{id}"), "cwd": "/home/dev/app",
        "message": {"id": format!("msg_{id}"), "model": "claude-sonnet-4-5-20250929", "role": "assistant",
            "usage": {"input_tokens": input, "output_tokens": output}}})
    .to_string()
        + "\n"
}

/// A Codex rollout with one turn of `input` (100 of them cached) and `output` tokens.
fn codex(at: DateTime<Utc>, input: u64, output: u64) -> String {
    let usage = json!({"input_tokens": input, "cached_input_tokens": 100, "output_tokens": output,
        "reasoning_output_tokens": 0, "total_tokens": input + output});
    let lines = [
        json!({"timestamp": ts(at), "type": "session_meta", "payload": {"id": "cx-1", "cwd": "/w"}}),
        json!({"timestamp": ts(at), "type": "turn_context", "payload": {"cwd": "/w", "model": "gpt-5-codex"}}),
        json!({"timestamp": ts(at), "type": "event_msg", "payload": {"type": "token_count",
            "info": {"total_token_usage": usage, "last_token_usage": usage}}}),
    ];
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

const CC_LOG: &str = ".claude/projects/-home-dev-app/s1.jsonl";
const CODEX_LOG: &str = ".codex/sessions/2025/11/20/rollout-2025-11-20T10-00-00-cx-1.jsonl";

fn agent_home(now: DateTime<Utc>) -> Home {
    let h = Home::new();
    let t0 = now - Duration::minutes(90);
    h.write(
        CC_LOG,
        &(cc("1", t0, "s1", 1000, 200) + &cc("2", t0 + Duration::minutes(30), "s1", 3000, 400)),
    );
    h.write(CODEX_LOG, &codex(t0, 500, 50));
    h
}

#[test]
fn report_with_no_flags_shows_the_agents_logs() {
    let now = Utc::now();
    let h = agent_home(now);
    let v = h.json(&["report", "--format", "json"]);
    // Claude Code 4,000 in / 600 out; Codex 400 in (500 minus 100 cached) / 50 out / 100 read.
    assert_eq!(v["totals"]["events"], 3, "{v}");
    assert_eq!(v["totals"]["input_tokens"], 4400);
    assert_eq!(v["totals"]["output_tokens"], 650);
    assert_eq!(v["totals"]["cache_read_tokens"], 100);
    assert!(h.path(".local/share/tokmon/tokmon.db").exists());

    // Never stale: a line appended since shows in the next report; --no-import does not read it.
    h.append(CC_LOG, &cc("3", now - Duration::minutes(5), "s1", 10, 1));
    let v = h.json(&["report", "--format", "json", "--no-import"]);
    assert_eq!(v["totals"]["events"], 3);
    let v = h.json(&["report", "--format", "json", "--by", "agent"]);
    assert_eq!(v["totals"]["events"], 4);
    assert_eq!(v["groups"][0]["key"], "claude-code");
    // Projects read as the user's own paths (the lines' cwd), not `-home-dev-app`.
    let v = h.json(&["report", "--format", "json", "--by", "project"]);
    let keys: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["/home/dev/app", "/w"]);
}

#[test]
fn import_with_no_path_imports_what_discovery_finds() {
    let h = agent_home(Utc::now());
    let out = h.cmd().arg("import").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("imported 3 events from 2 files"), "{text}");
}

#[test]
fn claude_config_dir_and_codex_home_replace_the_defaults() {
    let now = Utc::now();
    let h = agent_home(now);
    h.write(
        "elsewhere/a/projects/p/x.jsonl",
        &cc("a", now - Duration::hours(1), "x", 7, 1),
    );
    h.write(
        "elsewhere/b/projects/p/y.jsonl",
        &cc("b", now - Duration::hours(1), "y", 9, 1),
    );
    let list = format!(
        "{},{}",
        h.path("elsewhere/a").display(),
        h.path("elsewhere/b").display()
    );
    let out = h
        .cmd()
        .env("CLAUDE_CONFIG_DIR", &list)
        .env("CODEX_HOME", h.path("nothing-here"))
        .args(["report", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["totals"]["events"], 2, "{v}");
    assert_eq!(v["totals"]["input_tokens"], 16);
}

#[test]
fn discovery_can_be_turned_off_and_paths_added() {
    let now = Utc::now();
    let h = agent_home(now);
    h.write(
        "work/usage.jsonl",
        "{\"ts\":\"2025-11-20T10:00:00Z\",\"model\":\"gpt-4o\",\"input_tokens\":5}\n",
    );
    // A database named explicitly is left as it is: no discovery into it.
    let named = h.path("named.db");
    h.cmd()
        .args(["record", "--model", "m", "--input", "1", "--db"])
        .arg(&named)
        .assert()
        .success();
    let v = h.json(&[
        "report",
        "--format",
        "json",
        "--range",
        "all",
        "--db",
        named.to_str().unwrap(),
    ]);
    assert_eq!(v["totals"]["events"], 1);
    // --no-discover: nothing imported, so no database yet.
    h.cmd()
        .args(["report", "--no-discover", "--format", "json"])
        .assert()
        .code(2);
    // Config: discovery off, one log path of its own.
    h.write(
        ".config/tokmon/config.toml",
        "discover = false\nlogs = [\"~/work/usage.jsonl\"]\n",
    );
    let v = h.json(&["report", "--format", "json", "--range", "all"]);
    assert_eq!(v["totals"]["events"], 1, "{v}");
    assert_eq!(v["totals"]["input_tokens"], 5);
}

/// A small Claude Code corpus (tests/fixtures/claude_blocks): the blocks that ccusage 20.0.24
/// (`ccusage claude blocks -O --json`, CLAUDE_CONFIG_DIR=the fixture) lists for it, by start,
/// events and total tokens (its gap entries left out).
#[test]
fn blocks_match_ccusage_on_a_shared_corpus() {
    let h = Home::new();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude_blocks");
    let v = h.json(&[
        "report",
        "--by",
        "block",
        "--range",
        "all",
        "--format",
        "json",
        "--no-discover",
        "--config",
        h.write(
            "c.toml",
            &format!("logs = [{:?}]\n", fixture.display().to_string()),
        )
        .to_str()
        .unwrap(),
    ]);
    let got: Vec<(String, u64, u64)> = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_string(),
                b["events"].as_u64().unwrap(),
                b["total_tokens"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("2025-11-20T09:00:00Z", 30, 875_018),
        ("2025-11-20T14:00:00Z", 2, 66_469),
        ("2025-11-20T22:00:00Z", 20, 603_494),
        ("2025-11-21T10:00:00Z", 15, 391_316),
    ];
    let want: Vec<(String, u64, u64)> = want
        .iter()
        .map(|(s, e, t)| (s.to_string(), *e, *t))
        .collect();
    assert_eq!(got, want);
    assert_eq!(v["blocks"][0]["end"], "2025-11-20T14:00:00Z");
    assert_eq!(v["blocks"][0]["first_event"], "2025-11-20T09:47:12Z");
    assert_eq!(v["blocks"][0]["active"], false);
    assert!(v["blocks"][0]["projection"].is_null());
}

#[test]
fn active_block_in_report_and_statusline() {
    let now = Utc::now();
    let h = agent_home(now);
    let v = h.json(&["report", "--by", "block", "--format", "json"]);
    let blocks = v["blocks"].as_array().unwrap();
    let active = blocks.last().unwrap();
    assert_eq!(active["active"], true, "{v}");
    // Only Claude Code's events: 2 replies, 4,600 tokens.
    assert_eq!(active["events"], 2);
    assert_eq!(active["total_tokens"], 4600);
    assert!(active["remaining_minutes"].as_u64().unwrap() <= 5 * 60);
    assert!(active["projection"]["total_tokens"].as_u64().unwrap() >= 4600);
    let csv = h
        .cmd()
        .args(["report", "--by", "block", "--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    assert!(csv.starts_with("start,end,active,events,"), "{csv}");
    assert!(csv.contains(",true,2,"), "{csv}");

    let hook = json!({"session_id": "s1", "transcript_path": h.path(CC_LOG),
        "model": {"id": "claude-sonnet-4-5", "display_name": "Sonnet 4.5"},
        "workspace": {"current_dir": "/home/dev/app"}});
    // The reply this hook is called for is read from its transcript first.
    h.append(
        CC_LOG,
        &cc("4", now - Duration::minutes(1), "s1", 100_000, 0),
    );
    let out = h
        .cmd()
        .arg("statusline")
        .write_stdin(hook.to_string())
        .assert()
        .success();
    let line = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    // $3/M input, $15/M output: 104,000 in and 600 out.
    assert!(
        line.starts_with("Sonnet 4.5 | session $0.32 | today "),
        "{line}"
    );
    assert!(line.contains("| block $0.32 ("), "{line}");
    assert!(line.contains(" left)"), "{line}");
    assert_eq!(line.lines().count(), 1);
}

#[test]
fn statusline_migrates_an_old_database_then_reads_it_as_migrated() {
    let h = Home::new();
    // tokmon's database as an older version wrote it (schema version 4: no 1-hour split).
    let db = h.path(".local/share/tokmon/tokmon.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let c = rusqlite::Connection::open(&db).unwrap();
    for sql in [
        include_str!("../migrations/0001_events.sql"),
        include_str!("../migrations/0002_import_files.sql"),
        include_str!("../migrations/0003_rollups.sql"),
        include_str!("../migrations/0004_rollup_triggers.sql"),
    ] {
        c.execute_batch(sql).unwrap();
    }
    c.pragma_update(None, "user_version", 4).unwrap();
    drop(c);
    // The reply the hook is called for wrote a million tokens to the 1-hour cache
    // ($6/M for Sonnet 4.5, where a 5-minute write costs $3.75/M).
    let line = json!({"type": "assistant", "timestamp": ts(Utc::now() - Duration::minutes(1)),
        "sessionId": "s1", "uuid": "u1", "requestId": "req_1", "cwd": "/home/dev/app",
        "message": {"id": "msg_1", "model": "claude-sonnet-4-5-20250929", "role": "assistant",
            "usage": {"input_tokens": 10, "output_tokens": 0,
                "cache_creation_input_tokens": 1_000_000,
                "cache_creation": {"ephemeral_5m_input_tokens": 0,
                    "ephemeral_1h_input_tokens": 1_000_000}}}});
    let log = h.write(CC_LOG, &(line.to_string() + "\n"));
    let hook = json!({"session_id": "s1", "transcript_path": log});
    let out = h
        .cmd()
        .arg("statusline")
        .write_stdin(hook.to_string())
        .assert()
        .success();
    let line = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        line.starts_with("session $6.00 | today $6.00 | block $6.00 ("),
        "{line}"
    );
}

#[test]
fn statusline_never_breaks_the_hook() {
    let h = Home::new();
    // Nothing at all: still a line.
    let out = h
        .cmd()
        .arg("statusline")
        .write_stdin("{}")
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout),
        "no active block\n"
    );
    // Bad input and a bad config: a marker, exit 0.
    h.cmd()
        .arg("statusline")
        .write_stdin("not json")
        .assert()
        .success()
        .stdout("tokmon: ?\n");
    h.write(".config/tokmon/config.toml", "block_limit = \"lots\"\n");
    h.cmd()
        .arg("statusline")
        .write_stdin("{}")
        .assert()
        .success()
        .stdout("tokmon: ?\n");
    // Elsewhere the same config is refused as bad input.
    let out = h.cmd().args(["report"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'lots'"));
}

#[test]
fn the_monitor_imports_follows_and_shows_the_block() {
    if !have_tmux() {
        eprintln!("tmux not installed: skipping the monitor test");
        return;
    }
    let now = Utc::now();
    let h = agent_home(now);
    let bin = assert_cmd::cargo::cargo_bin("tokmon");
    let cmd = format!(
        "env -i PATH=/usr/bin:/bin HOME='{}' TZ=UTC TERM=xterm-256color '{}'",
        h.dir.path().display(),
        bin.display()
    );
    let t = Tmux::start(&cmd, 120, 40);
    // Imported at start: the three events, and the active block's gauge.
    let limit = std::time::Duration::from_secs(20);
    t.wait_for("3 events", limit, |s| s.contains("3 events"));
    t.wait_for("5h block", limit, |s| s.contains("5h block"));
    // A line appended to a log shows within a second.
    h.append(CC_LOG, &cc("9", Utc::now(), "s1", 10, 1));
    let took = t.poll(std::time::Duration::from_secs(5), |s| {
        s.contains("4 events")
    });
    assert!(
        took.is_some_and(|d| d < std::time::Duration::from_secs(1)),
        "took {took:?}: {}",
        t.screen()
    );
    t.keys(&["q"]);
}

#[test]
fn doctor_says_what_it_found_and_what_is_broken() {
    let h = agent_home(Utc::now());
    h.cmd().arg("import").assert().success();
    let out = h.cmd().arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("native (schema version"), "{text}");
    assert!(text.contains("3 rows; last event "), "{text}");
    assert!(
        text.contains("claude-code: ~/.claude/projects: 1 file, 1 imported, last import 2"),
        "{text}"
    );
    assert!(
        text.contains("codex: ~/.codex/sessions: 1 file, 1 imported"),
        "{text}"
    );
    assert!(text.contains("watcher      "), "{text}");
    assert!(text.contains("Nothing is broken."), "{text}");

    // A state file that does not parse: exit 1, and what to do.
    h.write(".local/share/tokmon/state.json", "{not json");
    let out = h.cmd().arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("! fix the JSON by hand"), "{text}");
    assert!(text.contains("1 problem (marked !)."), "{text}");

    // A bad config file is reported too, not just refused.
    h.write(".config/tokmon/config.toml", "discover = \"maybe\"\n");
    let out = h.cmd().arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("config file  "), "{text}");
    assert!(text.contains("discover"), "{text}");
}

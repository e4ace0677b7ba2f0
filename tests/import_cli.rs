//! `tokmon import` end to end, on logs generated in temporary directories.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::{Value, json};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn db(&self) -> PathBuf {
        self.path("usage.db")
    }

    /// A tokmon command that reads no user file: home, config and data point into the temp dir.
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("tokmon").unwrap();
        c.env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env_remove("TOKMON_DB")
            .env_remove("TOKMON_CONFIG")
            .env_remove("TOKMON_STATE")
            .env_remove("CLAUDE_CONFIG_DIR")
            .arg("--db")
            .arg(self.db())
            .arg("--tz")
            .arg("UTC");
        c
    }

    fn import(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        self.cmd().arg("import").args(args).assert()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    fn append(&self, rel: &str, text: &str) {
        let mut f = OpenOptions::new()
            .append(true)
            .open(self.path(rel))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Totals of `tokmon report --range all --format json`.
    fn totals(&self) -> Value {
        let out = self
            .cmd()
            .args(["report", "--range", "all", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: Value = serde_json::from_slice(&out).unwrap();
        v["totals"].clone()
    }

    fn query<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        let c = rusqlite::Connection::open(self.db()).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// One Claude Code assistant line with usage.
fn cc(msg: &str, req: &str, session: &str, ts: &str, usage: [u64; 4]) -> String {
    json!({
        "parentUuid": null, "isSidechain": false, "userType": "external", "cwd": "/home/me/app",
        "sessionId": session, "version": "2.0.1", "type": "assistant", "uuid": format!("u-{msg}-{ts}"),
        "timestamp": ts, "requestId": req,
        "message": {
            "id": msg, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "Here is the change you asked for.\nDone."}],
            "stop_reason": null,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1],
                      "cache_creation_input_tokens": usage[2], "cache_read_input_tokens": usage[3],
                      "service_tier": "standard"}
        }
    })
    .to_string()
        + "\n"
}

fn user_line(session: &str) -> String {
    json!({"type": "user", "sessionId": session, "timestamp": "2025-11-18T10:00:00.000Z",
           "message": {"role": "user", "content": "please fix the bug"}, "uuid": "x"})
    .to_string()
        + "\n"
}

fn tokens(t: &Value) -> [u64; 5] {
    [
        t["events"].as_u64().unwrap(),
        t["input_tokens"].as_u64().unwrap(),
        t["output_tokens"].as_u64().unwrap(),
        t["cache_creation_tokens"].as_u64().unwrap(),
        t["cache_read_tokens"].as_u64().unwrap(),
    ]
}

#[test]
fn claude_dedup_across_lines_and_files_and_reimport_adds_nothing() {
    let env = Env::new();
    let a = cc(
        "msg_A",
        "req_A",
        "s1",
        "2025-11-18T10:00:01.000Z",
        [10, 20, 300, 4000],
    );
    let b = cc(
        "msg_B",
        "req_B",
        "s1",
        "2025-11-18T10:00:02.000Z",
        [1, 2, 3, 4],
    );
    let c = cc(
        "msg_C",
        "req_C",
        "s2",
        "2025-11-18T11:00:00.000Z",
        [5, 6, 0, 0],
    );
    // A streams onto three lines; B appears in the session file and again in a subagent file
    // one level deeper; the second project's file repeats A (a resumed session).
    env.write(
        "claude/projects/-home-me-app/s1.jsonl",
        &format!("{}{a}{a}{a}{b}", user_line("s1")),
    );
    env.write(
        "claude/projects/-home-me-app/s1/subagents/agent-1.jsonl",
        &b,
    );
    env.write(
        "claude/projects/-home-me-other/s2.jsonl",
        &format!("{a}{c}"),
    );
    // A file that is not a usage log is never read (outside projects/).
    env.write("claude/history.jsonl", "{\"display\":\"hi\"}\n");

    let out = env
        .import(&[env.path("claude").to_str().unwrap()])
        .success();
    assert!(
        stdout(&out).contains("imported 3 events from 3 files (4 duplicates skipped, 0 bad lines)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(tokens(&env.totals()), [3, 16, 28, 303, 4004]);
    assert_eq!(
        env.query::<String>("SELECT project FROM events WHERE unique_key = 'cc:msg_C:req_C'"),
        "/home/me/app"
    );
    assert_eq!(
        env.query::<String>("SELECT session FROM events WHERE unique_key = 'cc:msg_C:req_C'"),
        "s2"
    );
    assert_eq!(
        env.query::<String>("SELECT agent FROM events LIMIT 1"),
        "claude-code"
    );

    // Again: nothing new is read, nothing is added.
    let out = env
        .import(&[env.path("claude").to_str().unwrap()])
        .success();
    assert!(
        stdout(&out).contains("imported 0 events from 0 files (0 duplicates skipped, 0 bad lines)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(tokens(&env.totals()), [3, 16, 28, 303, 4004]);
}

#[test]
fn cache_creation_split_and_speed_are_kept() {
    let env = Env::new();
    let mut line: Value =
        serde_json::from_str(&cc("m1", "r1", "s", "2025-11-18T10:00:00Z", [1, 2, 700, 0])).unwrap();
    line["message"]["usage"]["cache_creation"] =
        json!({"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 400});
    line["message"]["usage"]["speed"] = json!("fast");
    line["costUSD"] = json!(0.25);
    env.write("c/projects/p/s.jsonl", &format!("{line}\n"));
    env.import(&[env.path("c").to_str().unwrap()]).success();
    let meta: String = env.query("SELECT metadata FROM events");
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["cache_creation_5m_tokens"], 300);
    assert_eq!(meta["cache_creation_1h_tokens"], 400);
    assert_eq!(meta["speed"], "fast");
    assert_eq!(
        env.query::<i64>("SELECT cache_creation_tokens FROM events"),
        700
    );
    assert_eq!(env.query::<f64>("SELECT cost_usd FROM events"), 0.25);
}

#[test]
fn half_written_last_line_waits_for_the_rest() {
    let env = Env::new();
    let full = cc("m2", "r2", "s", "2025-11-18T10:00:05Z", [7, 8, 0, 0]);
    let (head, tail) = full.split_at(full.len() / 2);
    env.write(
        "c/projects/p/s.jsonl",
        &format!(
            "{}{head}",
            cc("m1", "r1", "s", "2025-11-18T10:00:00Z", [1, 1, 0, 0])
        ),
    );
    let out = env.import(&[env.path("c").to_str().unwrap()]).success();
    assert!(
        stdout(&out).contains("imported 1 event from 1 file (0 duplicates skipped, 0 bad lines)"),
        "{}",
        stdout(&out)
    );
    env.append("c/projects/p/s.jsonl", tail);
    let out = env.import(&[env.path("c").to_str().unwrap()]).success();
    assert!(
        stdout(&out).contains("imported 1 event from 1 file (0 duplicates skipped, 0 bad lines)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(tokens(&env.totals()), [2, 8, 9, 0, 0]);
}

#[test]
fn rewritten_file_is_read_again_from_its_start() {
    let env = Env::new();
    let rel = "c/projects/p/s.jsonl";
    env.write(
        rel,
        &format!(
            "{}{}",
            cc("m1", "r1", "s", "2025-11-18T10:00:00Z", [1, 0, 0, 0]),
            cc("m2", "r2", "s", "2025-11-18T10:00:01Z", [2, 0, 0, 0])
        ),
    );
    env.import(&[env.path("c").to_str().unwrap()]).success();
    // Replaced by a longer file with other content: reading on from the old offset would land
    // in the middle of a line.
    env.write(
        rel,
        &format!(
            "{}{}{}",
            cc(
                "m3",
                "r3-longer-request-id",
                "s",
                "2025-11-18T10:00:02Z",
                [4, 0, 0, 0]
            ),
            cc("m1", "r1", "s", "2025-11-18T10:00:00Z", [1, 0, 0, 0]),
            cc("m5", "r5", "s", "2025-11-18T10:00:03Z", [8, 0, 0, 0])
        ),
    );
    let out = env.import(&[env.path("c").to_str().unwrap()]).success();
    assert!(
        stdout(&out).contains("imported 2 events from 1 file (1 duplicate skipped, 0 bad lines)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(tokens(&env.totals())[..2], [4, 15]);
}

fn bad_file(env: &Env) -> PathBuf {
    let mut neg: Value =
        serde_json::from_str(&cc("m3", "r3", "s", "2025-11-18T10:00:03Z", [1, 1, 0, 0])).unwrap();
    neg["message"]["usage"]["output_tokens"] = json!(-5);
    let no_usage = json!({"type": "assistant", "timestamp": "2025-11-18T10:00:04Z", "sessionId": "s",
        "message": {"id": "m4", "role": "assistant", "content": []}});
    env.write(
        "c/projects/p/s.jsonl",
        &format!(
            "{}{}this is not json\n{neg}\n{no_usage}\n{}",
            user_line("s"),
            cc("m1", "r1", "s", "2025-11-18T10:00:00Z", [1, 1, 0, 0]),
            cc("m2", "r2", "s", "2025-11-18T10:00:01Z", [2, 2, 0, 0])
        ),
    )
}

#[test]
fn bad_lines_are_reported_with_file_and_line_and_good_lines_import() {
    let env = Env::new();
    let f = bad_file(&env);
    let out = env.import(&[env.path("c").to_str().unwrap()]).success();
    let err = stderr(&out);
    let name = f.display().to_string();
    assert!(err.contains(&format!("{name}:3: not JSON")), "{err}");
    assert!(
        err.contains(&format!("{name}:4: negative output_tokens -5")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{name}:5: missing message.usage")),
        "{err}"
    );
    assert!(err.contains("skipped 3 bad lines"), "{err}");
    assert!(
        stdout(&out).contains("imported 2 events from 1 file (0 duplicates skipped, 3 bad lines)")
    );
    assert_eq!(tokens(&env.totals())[..3], [2, 3, 3]);
    // The bad lines were passed over: a re-import neither re-reports nor adds anything.
    let out = env.import(&[env.path("c").to_str().unwrap()]).success();
    assert!(
        stdout(&out).contains("imported 0 events from 0 files (0 duplicates skipped, 0 bad lines)")
    );
}

#[test]
fn strict_imports_nothing_from_a_file_with_a_bad_line() {
    let env = Env::new();
    bad_file(&env);
    env.write(
        "c/projects/q/good.jsonl",
        &cc("g1", "gr1", "g", "2025-11-18T12:00:00Z", [9, 9, 0, 0]),
    );
    let out = env
        .import(&["--strict", env.path("c").to_str().unwrap()])
        .code(2);
    let err = stderr(&out);
    assert!(err.contains("s.jsonl:3: not JSON"), "{err}");
    assert!(err.contains("--strict: 3 bad lines in"), "{err}");
    // Only the good file's event is stored.
    assert_eq!(env.query::<i64>("SELECT COUNT(*) FROM events"), 1);
    assert_eq!(
        env.query::<String>("SELECT unique_key FROM events"),
        "cc:g1:gr1"
    );
    // Still rejected on the next strict run (nothing was marked as read).
    env.import(&["--strict", env.path("c").to_str().unwrap()])
        .code(2);
}

#[test]
fn codex_sessions() {
    let env = Env::new();
    let meta = json!({"timestamp": "2025-10-01T09:00:00.000Z", "type": "session_meta",
        "payload": {"id": "0199-abc", "cwd": "/w/api", "cli_version": "0.46.0"}});
    let ctx = json!({"timestamp": "2025-10-01T09:00:01.000Z", "type": "turn_context",
        "payload": {"cwd": "/w/api", "model": "gpt-5-codex", "approval_policy": "on-request"}});
    let usage = |i: u64, c: u64, o: u64, r: u64| {
        json!({"input_tokens": i, "cached_input_tokens": c,
        "output_tokens": o, "reasoning_output_tokens": r, "total_tokens": i + o})
    };
    let tc1 = json!({"timestamp": "2025-10-01T09:00:05.000Z", "type": "event_msg", "payload": {"type": "token_count",
        "info": {"total_token_usage": usage(1000, 600, 100, 40), "last_token_usage": usage(1000, 600, 100, 40)}}});
    // Repeated with unchanged totals (Codex does this): counted once.
    let tc1_again = tc1.clone();
    // No last_token_usage: the difference of running totals.
    let tc2 = json!({"timestamp": "2025-10-01T09:01:00.000Z", "type": "event_msg", "payload": {"type": "token_count",
        "info": {"total_token_usage": usage(2500, 1600, 150, 60)}}});
    let msg = json!({"timestamp": "2025-10-01T09:01:01.000Z", "type": "response_item",
        "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}});
    let text = format!("{meta}\n{ctx}\n{tc1}\n{tc1_again}\n{msg}\n{tc2}\n");
    env.write(
        "codex/sessions/2025/10/01/rollout-2025-10-01T09-00-00-0199-abc.jsonl",
        &text,
    );
    // The same session copied elsewhere adds nothing.
    env.write("codex/archived/rollout-copy.jsonl", &text);
    let out = env.import(&[env.path("codex").to_str().unwrap()]).success();
    assert!(
        stdout(&out).contains("imported 2 events from 2 files"),
        "{}",
        stdout(&out)
    );
    // input excludes cached: (1000-600) + (1500-1000); cached 600 + 1000; output 100 + 50.
    assert_eq!(tokens(&env.totals()), [2, 900, 150, 0, 1600]);
    assert_eq!(
        env.query::<String>("SELECT DISTINCT model FROM events"),
        "gpt-5-codex"
    );
    assert_eq!(env.query::<String>("SELECT DISTINCT provider || '/' || agent || '/' || session || '/' || project FROM events"), "openai/codex/0199-abc//w/api");

    // Appended turn: resumes with the stored running totals.
    let tc3 = json!({"timestamp": "2025-10-01T09:02:00.000Z", "type": "event_msg", "payload": {"type": "token_count",
        "info": {"total_token_usage": usage(2600, 1600, 160, 60)}}});
    env.append(
        "codex/sessions/2025/10/01/rollout-2025-10-01T09-00-00-0199-abc.jsonl",
        &format!("{tc3}\n"),
    );
    env.import(&[env.path("codex").to_str().unwrap()]).success();
    assert_eq!(tokens(&env.totals()), [3, 1000, 160, 0, 1600]);
}

#[test]
fn generic_jsonl_and_csv() {
    let env = Env::new();
    let jl = env.write(
        "in/usage.jsonl",
        "{\"ts\":\"2025-11-01T10:00:00Z\",\"model\":\"gpt-4o\",\"provider\":\"openai\",\"agent\":\"bot\",\"input_tokens\":100,\"output_tokens\":20,\"cost_usd\":0.002}\n\
         {\"ts\":1761991200,\"model\":\"gpt-4o\",\"agent\":\"bot\",\"input_tokens\":5,\"unique_key\":\"evt-2\"}\n\
         {\"ts\":\"2025-11-01T10:00:00Z\",\"model\":\"gpt-4o\",\"output_tokens\":-1}\n",
    );
    let csv = env.write(
        "in/usage.csv",
        "ts,model,agent,input_tokens,output_tokens,cache_read_tokens,metadata,comment,unique_key\n\
         2025-11-02 08:00:00,claude-haiku-4-5,chat,10,1,5,\"{\"\"k\"\":\"\"v\"\"}\",\"multi\nline\",\n\
         2025-11-02 09:00:00,claude-haiku-4-5,chat,20,2,0,,,evt-2\n",
    );
    let out = env
        .import(&[jl.to_str().unwrap(), csv.to_str().unwrap()])
        .success();
    assert!(
        stdout(&out).contains("imported 3 events from 2 files (1 duplicate skipped, 1 bad line)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("usage.jsonl:3: negative output_tokens -1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tokens(&env.totals()), [3, 115, 21, 0, 5]);
    assert_eq!(
        env.query::<String>("SELECT metadata FROM events WHERE source = 'import:csv'"),
        r#"{"k":"v"}"#
    );
    // Line 3 of the CSV (the record after the two-line one) is evt-2, already stored from JSONL.
    env.import(&[jl.to_str().unwrap(), csv.to_str().unwrap()])
        .success();
    assert_eq!(tokens(&env.totals())[0], 3);
}

#[test]
fn missing_path_is_bad_input() {
    let env = Env::new();
    let out = env.import(&[env.path("nope").to_str().unwrap()]).code(2);
    assert!(stderr(&out).contains("no such file or directory"));
}

fn count_events(db: &Path) -> Option<i64> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()?;
    c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .ok()
}

fn wait_for(db: &Path, n: i64, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if count_events(db) == Some(n) {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn follow_picks_up_an_appended_line() {
    let env = Env::new();
    let rel = "c/projects/p/s.jsonl";
    env.write(
        rel,
        &cc("m1", "r1", "s", "2025-11-18T10:00:00Z", [1, 1, 0, 0]),
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tokmon"))
        .env("HOME", env.dir.path())
        .env("XDG_CONFIG_HOME", env.path("config"))
        .env("XDG_DATA_HOME", env.path("data"))
        .env_remove("TOKMON_DB")
        .env_remove("TOKMON_CONFIG")
        .arg("--db")
        .arg(env.db())
        .args(["import", "--follow"])
        .arg(env.path("c"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = wait_for(&env.db(), 1, Duration::from_secs(10));
    // Give the follower a moment to have its watcher in place after the first pass.
    std::thread::sleep(Duration::from_millis(300));
    env.append(
        rel,
        &cc("m2", "r2", "s", "2025-11-18T10:00:09Z", [2, 2, 0, 0]),
    );
    let second = wait_for(&env.db(), 2, Duration::from_secs(10));
    // And a brand-new session file in a new project directory.
    env.write(
        "c/projects/q/t.jsonl",
        &cc("m3", "r3", "t", "2025-11-18T10:00:10Z", [3, 3, 0, 0]),
    );
    let third = wait_for(&env.db(), 3, Duration::from_secs(10));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.is_some(), "the first pass never imported");
    let second = second.expect("the appended line was never imported");
    assert!(third.is_some(), "the new file was never imported");
    // The budget is one second; allow slack for a loaded test machine.
    assert!(second < Duration::from_secs(3), "took {second:?}");
}

#[test]
fn counts_whose_sum_no_integer_holds_are_bad_input_and_nothing_is_saved() {
    let env = Env::new();
    // Each count fits; the two replies' sum for their 15 minutes does not.
    let big = 5_000_000_000_000_000_000;
    let text = cc(
        "msg_a",
        "req_a",
        "s1",
        "2025-11-18T10:00:00.000Z",
        [big, 1, 0, 0],
    ) + &cc(
        "msg_b",
        "req_b",
        "s1",
        "2025-11-18T10:05:00.000Z",
        [big, 1, 0, 0],
    );
    let log = env.write("projects/-home-me-app/s1.jsonl", &text);
    let out = env.import(&[log.to_str().unwrap()]).code(2);
    let err = stderr(&out);
    assert!(
        err.contains("input_tokens 5000000000000000000 of model claude-sonnet-4-5-20250929")
            && err.contains("2025-11-18T10:00:00Z"),
        "{err}"
    );
    // A first import builds its database aside: nothing is left at all.
    let left: Vec<_> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "projects")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // Into a database that holds events: refused the same way, the events as they were.
    let good = env.write(
        "projects/-home-me-app/s0.jsonl",
        &cc(
            "msg_0",
            "req_0",
            "s0",
            "2025-11-18T09:00:00.000Z",
            [10, 1, 0, 0],
        ),
    );
    env.import(&[good.to_str().unwrap()]).success();
    let out = env.import(&[log.to_str().unwrap()]).code(2);
    assert!(stderr(&out).contains("input_tokens 5000000000000000000"));
    assert_eq!(count_events(&env.db()), Some(1));

    // One reply in a file of its own fits, and is stored; the next import's reply fits alone
    // too, but not on top of the stored sum of the same 15 minutes: refused, nothing saved.
    let first = env.write(
        "projects/-home-me-app/s2.jsonl",
        &cc(
            "msg_c",
            "req_c",
            "s2",
            "2025-11-18T11:00:00.000Z",
            [big, 1, 0, 0],
        ),
    );
    env.import(&[first.to_str().unwrap()]).success();
    let second = env.write(
        "projects/-home-me-app/s3.jsonl",
        &cc(
            "msg_d",
            "req_d",
            "s3",
            "2025-11-18T11:05:00.000Z",
            [big, 1, 0, 0],
        ),
    );
    let out = env.import(&[second.to_str().unwrap()]).code(2);
    let err = stderr(&out);
    assert!(
        err.contains("input_tokens of model claude-sonnet-4-5-20250929")
            && err.contains("2025-11-18T11:00:00Z")
            && err.contains("nothing of it was saved"),
        "{err}"
    );
    assert_eq!(count_events(&env.db()), Some(2));
    let kinds: Vec<String> = rusqlite::Connection::open(env.db())
        .unwrap()
        .prepare("SELECT DISTINCT typeof(input_tokens) FROM rollup_15m")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(kinds, ["integer"]);
}

#[cfg(unix)]
#[test]
fn an_interrupted_first_import_leaves_no_file() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    // Enough lines that the import is still running when it is interrupted.
    for f in 0..20 {
        let mut text = String::new();
        for i in 0..2_000 {
            let id = format!("msg_{f}_{i}");
            text += &cc(
                &id,
                &format!("req_{f}_{i}"),
                "s1",
                "2025-11-18T10:00:00.000Z",
                [10, 1, 0, 0],
            );
        }
        env.write(&format!("projects/-home-me-app/s{f}.jsonl"), &text);
    }
    let leftovers = || -> Vec<String> {
        fs::read_dir(env.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "projects")
            .collect()
    };
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tokmon"))
            .env("HOME", env.dir.path())
            .env("XDG_CONFIG_HOME", env.path("config"))
            .env("XDG_DATA_HOME", env.path("data"))
            .args(["--db", env.db().to_str().unwrap(), "import"])
            .arg(env.path("projects"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Interrupted while its database is being built aside.
        let start = Instant::now();
        while !leftovers().iter().any(|n| n.ends_with(".tmp")) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no temporary file appeared"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "the import ended before it was interrupted"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        // Well inside the import (the handler is set right after the file is made).
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it was interrupted"
        );
        // SAFETY: a signal to the child this test started.
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(sig), "{status:?}");
        assert!(leftovers().is_empty(), "left behind: {:?}", leftovers());
    }
}

/// A first import killed with SIGKILL (or cut by a power loss) leaves its temporary file: the
/// next first import into that database removes it, but never one still in use (locked by
/// its import), one just made, nor another database's.
#[cfg(unix)]
#[test]
fn a_first_import_removes_what_an_abandoned_one_left() {
    let env = Env::new();
    env.write(
        "projects/-home-me-app/s.jsonl",
        &cc("m1", "r1", "s1", "2025-11-18T10:00:00.000Z", [10, 1, 0, 0]),
    );
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let made = |name: &str, old: bool| -> fs::File {
        fs::write(env.path(name), [7u8; 4096]).unwrap();
        let f = fs::File::options()
            .write(true)
            .open(env.path(name))
            .unwrap();
        if old {
            f.set_modified(hour_ago).unwrap();
        }
        f
    };
    drop(made(".usage.db.Ab12Cd.tmp", true));
    // In use: another process holds it locked (this one, for the test).
    let in_use = made(".usage.db.InUse1.tmp", true);
    in_use.lock().unwrap();
    drop(made(".usage.db.New123.tmp", false));
    drop(made(".other.db.Ab12Cd.tmp", true));
    drop(made(".usage.db.long-name.tmp", true));
    env.import(&[env.path("projects").to_str().unwrap()])
        .success();
    let mut left: Vec<String> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ".other.db.Ab12Cd.tmp",
            ".usage.db.InUse1.tmp",
            ".usage.db.New123.tmp",
            ".usage.db.long-name.tmp"
        ]
    );
    assert!(env.db().exists());
}

/// Output that cannot be written (a full device, a closed terminal) is an error like any
/// other, exit code 1, never a panic (101); what was imported stays saved.
#[cfg(target_os = "linux")]
#[test]
fn output_that_cannot_be_written_is_an_error_not_a_panic() {
    let env = Env::new();
    env.write(
        "projects/-home-me-app/s.jsonl",
        &cc("m1", "r1", "s1", "2025-11-18T10:00:00.000Z", [10, 1, 0, 0]),
    );
    let full = || std::process::Stdio::from(fs::File::create("/dev/full").unwrap());
    let import = || {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("tokmon"));
        c.env("HOME", env.dir.path())
            .env("XDG_CONFIG_HOME", env.path("config"))
            .env("XDG_DATA_HOME", env.path("data"))
            .args(["--db", env.db().to_str().unwrap(), "import"])
            .arg(env.path("projects"));
        c
    };
    let out = import().stdout(full()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the import is saved"), "{err}");
    assert_eq!(count_events(&env.db()), Some(1));
    // Nor when stderr is the one that cannot be written (a bad line is told there).
    env.append("projects/-home-me-app/s.jsonl", "{not json\n");
    let out = import().stderr(full()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 bad line"));
}

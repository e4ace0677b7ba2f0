//! How agent logs are counted (issue #11 items 1 and 2): Claude Code replies streamed over
//! several lines count once with their largest values at their first line's time, replies
//! without `requestId` are deduplicated by `message.id`, a resumed session counts nothing
//! twice, `<synthetic>` replies are not usage, and a Codex subagent counts only what follows
//! the parent history it replays. The same corpus imported whole, line by line, or over two
//! reads of a reply gives the same totals and rollups.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::{Value, json};
use tokmon::config::Config;
use tokmon::import::{Options, import_paths};
use tokmon::store::{AggQuery, Dimension, Source};
use tokmon::timefmt::Zone;

const SONNET: &str = "claude-sonnet-4-5-20250929";
const OPUS: &str = "claude-opus-4-1-20250805";
const HAIKU: &str = "claude-haiku-4-5-20251001";

/// One Claude Code assistant line. `req`: the requestId, if any.
fn cc(msg: &str, req: Option<&str>, model: &str, ts: &str, u: [u64; 4]) -> String {
    let mut v = json!({
        "parentUuid": null, "isSidechain": false, "userType": "external", "cwd": "/w/app",
        "sessionId": "s", "version": "2.0.30", "type": "assistant", "uuid": format!("u-{msg}-{ts}"),
        "timestamp": ts,
        "message": {
            "id": msg, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "Done."}],
            "usage": {"input_tokens": u[0], "output_tokens": u[1],
                      "cache_creation_input_tokens": u[2], "cache_read_input_tokens": u[3],
                      "cache_creation": {"ephemeral_5m_input_tokens": u[2], "ephemeral_1h_input_tokens": 0}}
        }
    });
    if let Some(r) = req {
        v["requestId"] = r.into();
    }
    v.to_string()
}

fn user(ts: &str, result_len: usize) -> String {
    json!({"type": "user", "sessionId": "s", "timestamp": ts, "uuid": format!("user-{ts}"),
           "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
               "content": "x".repeat(result_len)}]}})
    .to_string()
}

fn synthetic(ts: &str, with_usage: bool) -> String {
    let mut v = json!({"type": "assistant", "sessionId": "s", "timestamp": ts, "requestId": "req_syn",
        "message": {"id": format!("syn-{ts}"), "model": "<synthetic>", "role": "assistant",
            "content": [{"type": "text", "text": "No response requested."}]}});
    if with_usage {
        v["message"]["usage"] = json!({"input_tokens": 0, "output_tokens": 0,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    }
    v.to_string()
}

fn token_count(ts: &str, last: Option<[u64; 3]>, total: [u64; 3]) -> String {
    let u = |[i, c, o]: [u64; 3]| {
        json!({"input_tokens": i, "cached_input_tokens": c, "output_tokens": o,
               "reasoning_output_tokens": 0, "total_tokens": i + o})
    };
    let mut info = json!({"total_token_usage": u(total)});
    if let Some(l) = last {
        info["last_token_usage"] = u(l);
    }
    json!({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": info}})
        .to_string()
}

/// The corpus: files (relative paths, in the order they are written) and their lines.
fn corpus() -> Vec<(&'static str, Vec<String>)> {
    let s1 = vec![
        user("2025-11-18T23:59:50.000Z", 300),
        // R1 streams over three lines; the last one is past midnight.
        cc(
            "msg_1",
            Some("req_1"),
            SONNET,
            "2025-11-18T23:59:58.000Z",
            [10, 3, 100, 1000],
        ),
        cc(
            "msg_1",
            Some("req_1"),
            SONNET,
            "2025-11-18T23:59:59.000Z",
            [10, 9, 100, 1000],
        ),
        cc(
            "msg_1",
            Some("req_1"),
            SONNET,
            "2025-11-19T00:00:01.000Z",
            [10, 159, 100, 1000],
        ),
        user("2025-11-19T09:59:00.000Z", 2000),
        // R2 has no requestId; only its first line made it into this file.
        cc(
            "msg_2",
            None,
            SONNET,
            "2025-11-19T10:00:00.000Z",
            [5, 1, 0, 200],
        ),
        synthetic("2025-11-19T10:30:00.000Z", true),
        synthetic("2025-11-19T10:31:00.000Z", false),
        // R3: no requestId, one line.
        cc(
            "msg_3",
            None,
            OPUS,
            "2025-11-19T11:00:00.000Z",
            [7, 70, 0, 0],
        ),
    ];
    // The resumed session replays R1's last line and R2's final line, then goes on with R4.
    let s2 = vec![
        cc(
            "msg_1",
            Some("req_1"),
            SONNET,
            "2025-11-19T00:00:01.000Z",
            [10, 159, 100, 1000],
        ),
        cc(
            "msg_2",
            None,
            SONNET,
            "2025-11-19T10:00:01.000Z",
            [5, 40, 0, 200],
        ),
        user("2025-11-19T11:59:00.000Z", 800),
        cc(
            "msg_4",
            Some("req_4"),
            HAIKU,
            "2025-11-19T12:00:00.000Z",
            [1, 2, 3, 4],
        ),
        cc(
            "msg_4",
            Some("req_4"),
            HAIKU,
            "2025-11-19T12:00:02.000Z",
            [1, 20, 3, 4],
        ),
    ];
    let parent = vec![
        json!({"timestamp": "2025-11-19T08:00:00.000Z", "type": "session_meta",
               "payload": {"id": "parent-xyz", "cwd": "/w/app"}})
        .to_string(),
        json!({"timestamp": "2025-11-19T08:00:00.000Z", "type": "turn_context",
               "payload": {"model": "gpt-5", "cwd": "/w/app"}})
        .to_string(),
        token_count(
            "2025-11-19T08:01:00.000Z",
            Some([1000, 100, 200]),
            [1000, 100, 200],
        ),
        token_count(
            "2025-11-19T08:02:00.000Z",
            Some([500, 50, 100]),
            [1500, 150, 300],
        ),
    ];
    let fork = vec![
        json!({"timestamp": "2025-11-19T08:03:00.000Z", "type": "session_meta",
               "payload": {"id": "sub-abc", "cwd": "/w/app",
                   "source": {"subagent": {"thread_spawn": {"parent_thread_id": "parent-xyz"}}}}})
        .to_string(),
        json!({"timestamp": "2025-11-19T08:03:00.000Z", "type": "session_meta",
               "payload": {"id": "parent-xyz", "cwd": "/w/app"}})
        .to_string(),
        json!({"timestamp": "2025-11-19T08:03:00.000Z", "type": "turn_context",
               "payload": {"model": "gpt-5", "cwd": "/w/app"}})
        .to_string(),
        // The parent's history, replayed at the second the subagent was made.
        token_count(
            "2025-11-19T08:03:00.120Z",
            Some([1000, 100, 200]),
            [1000, 100, 200],
        ),
        token_count(
            "2025-11-19T08:03:00.480Z",
            Some([500, 50, 100]),
            [1500, 150, 300],
        ),
        // The subagent's own calls.
        token_count(
            "2025-11-19T08:04:00.000Z",
            Some([100, 10, 20]),
            [100, 10, 20],
        ),
        token_count("2025-11-19T08:05:00.000Z", None, [150, 15, 30]),
    ];
    vec![
        ("claude/projects/-w-app/s1.jsonl", s1),
        ("claude/projects/-w-app/s2.jsonl", s2),
        (
            "codex/sessions/2025/11/19/rollout-2025-11-19T08-00-00-parent.jsonl",
            parent,
        ),
        (
            "codex/sessions/2025/11/19/rollout-2025-11-19T08-03-00-sub.jsonl",
            fork,
        ),
    ]
}

/// (day, model) → [events, input, output, cache write, cache read].
type Totals = BTreeMap<(String, String), [u64; 5]>;

fn expected() -> Totals {
    let mut t = Totals::new();
    let mut put = |day: &str, model: &str, v: [u64; 5]| {
        t.insert((day.to_string(), model.to_string()), v);
    };
    put("2025-11-18", SONNET, [1, 10, 159, 100, 1000]);
    put("2025-11-19", SONNET, [1, 5, 40, 0, 200]);
    put("2025-11-19", OPUS, [1, 7, 70, 0, 0]);
    put("2025-11-19", HAIKU, [1, 1, 20, 3, 4]);
    // Parent: 900 + 450 uncached input, 150 cached, 300 output; subagent after its replay:
    // 90 + 45, 15, 30.
    put("2025-11-19", "gpt-5", [4, 1485, 330, 0, 165]);
    t
}

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

    fn append(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn import(&self) -> tokmon::import::ImportSummary {
        let conn = tokmon::store::native::open_rw(&self.db()).unwrap();
        let roots = [self.path("claude"), self.path("codex")];
        let roots: Vec<PathBuf> = roots.into_iter().filter(|p| p.exists()).collect();
        let s = import_paths(&conn, &roots, &Options::default(), None).unwrap();
        assert_eq!(s.bad_lines, 0, "{:?}", s.bad);
        s
    }

    fn source(&self) -> Source {
        Source::open(&self.db(), None, &Config::default(), Zone::UTC).unwrap()
    }
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

/// Per day and model, from the rollup; checked equal to a full scan of the events.
fn totals(src: &Source) -> Totals {
    let q = AggQuery {
        from_ms: None,
        to_ms: None,
        by: Some(Dimension::Model),
        bucket_ms: Some(86_400_000),
    };
    let fold = |rows: Vec<tokmon::store::AggRow>| {
        let mut t = Totals::new();
        for r in rows {
            let s = r.sums.all;
            let e = t
                .entry((day(r.bucket_ms.unwrap()), r.key.unwrap_or_default()))
                .or_default();
            for (a, b) in
                e.iter_mut()
                    .zip([s.events, s.input, s.output, s.cache_write, s.cache_read])
            {
                *a += b;
            }
        }
        t.retain(|_, v| v.iter().any(|n| *n > 0));
        t
    };
    let rolled = fold(src.aggregate(&q).unwrap());
    assert!(src.has_rollup);
    assert_eq!(
        rolled,
        fold(src.aggregate_scan(&q).unwrap()),
        "rollup = full scan"
    );
    rolled
}

/// The rollup table's contents, to compare two imports row by row.
fn rollup_rows(db: &Path) -> Vec<Vec<i64>> {
    let c = Connection::open(db).unwrap();
    let mut s = c
        .prepare(
            "SELECT slice, model, agent, provider, events, input_tokens, output_tokens,
                    cache_creation_tokens, cache_read_tokens, uncosted_events
             FROM rollup_15m ORDER BY slice, model, agent, provider",
        )
        .unwrap();
    s.query_map([], |r| {
        let text = |i: usize| -> rusqlite::Result<i64> {
            let t: String = r.get(i)?;
            Ok(t.bytes()
                .fold(0i64, |h, b| h.wrapping_mul(31).wrapping_add(b as i64)))
        };
        Ok(vec![
            r.get(0)?,
            text(1)?,
            text(2)?,
            text(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
        ])
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn whole_corpus_counts_exactly() {
    let env = Env::new();
    for (rel, lines) in corpus() {
        env.append(rel, &(lines.join("\n") + "\n"));
    }
    let s = env.import();
    // R1, R2, R3, R4 and six Codex calls; R2's final line corrects it (it lies in s2).
    assert_eq!((s.inserted, s.corrected), (8, 1), "{}", s.one_line());
    assert_eq!(totals(&env.source()), expected());
    // Nothing of the synthetic replies, and nothing more on a second run.
    let n: i64 = Connection::open(env.db())
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM events WHERE model = '<synthetic>'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    let again = env.import();
    assert_eq!((again.inserted, again.corrected), (0, 0));
    assert_eq!(totals(&env.source()), expected());
}

#[test]
fn line_by_line_equals_whole() {
    let whole = Env::new();
    for (rel, lines) in corpus() {
        whole.append(rel, &(lines.join("\n") + "\n"));
    }
    whole.import();

    let split = Env::new();
    for (rel, lines) in corpus() {
        for line in lines {
            split.append(rel, &(line + "\n"));
            split.import();
        }
    }
    assert_eq!(totals(&split.source()), expected());
    assert_eq!(totals(&whole.source()), totals(&split.source()));
    assert_eq!(rollup_rows(&whole.db()), rollup_rows(&split.db()));
}

#[test]
fn reply_split_across_two_reads_is_corrected_and_the_tail_sees_it() {
    let env = Env::new();
    let rel = "claude/projects/-w-app/live.jsonl";
    let ts = "2025-11-18T12:00:00.000Z";
    env.append(
        rel,
        &(cc("m", Some("r"), SONNET, ts, [10, 3, 100, 1000]) + "\n"),
    );
    env.import();
    let src = env.source();
    let last = src.max_id().unwrap();
    // The rest of the reply arrives while it is being written, half a line first.
    let rest = cc(
        "m",
        Some("r"),
        SONNET,
        "2025-11-18T12:00:03.000Z",
        [10, 159, 100, 1000],
    );
    let (a, b) = rest.split_at(40);
    env.append(rel, a);
    assert_eq!(env.import().corrected, 0);
    env.append(rel, &format!("{b}\n"));
    let s = env.import();
    assert_eq!((s.inserted, s.corrected), (0, 1));

    // What the monitor's tail reads after the rows it has: the correction, adding 156
    // output tokens at the reply's time, and no event.
    let rows = src.events_after(last, 100).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert!(r.correction);
    // With the corrected reply's dimensions.
    assert_eq!(
        (
            r.model.as_deref(),
            r.agent.as_deref(),
            r.provider.as_deref()
        ),
        (Some(SONNET), Some("claude-code"), Some("anthropic"))
    );
    assert!(r.session.is_some() && r.project.is_some(), "{r:?}");
    assert_eq!(
        (
            r.input_tokens,
            r.output_tokens,
            r.cache_creation_tokens,
            r.cache_read_tokens,
        ),
        (0, 156, 0, 0)
    );
    assert_eq!(
        r.ts_ms,
        Some(
            chrono::DateTime::parse_from_rfc3339(ts)
                .unwrap()
                .timestamp_millis()
        )
    );
    let sums = tokmon::store::Sums::of_event(r);
    assert_eq!(sums.all.events, 0);

    let mut want = Totals::new();
    want.insert(
        ("2025-11-18".into(), SONNET.into()),
        [1, 10, 159, 100, 1000],
    );
    assert_eq!(totals(&env.source()), want);
    // The correction carries the increase of the cache-write split too (none here).
    let meta: String = Connection::open(env.db())
        .unwrap()
        .query_row(
            "SELECT metadata FROM events WHERE corrects IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["cache_creation_5m_tokens"], 0);
    // A smaller or equal line later changes nothing.
    env.append(
        rel,
        &(cc("m", Some("r"), SONNET, ts, [10, 9, 100, 1000]) + "\n"),
    );
    let s = env.import();
    assert_eq!((s.inserted, s.corrected, s.duplicates), (0, 0, 1));
}

#[test]
fn codex_fork_waits_for_its_second_usage_line() {
    // Written one line at a time, the subagent's first replayed line cannot be told from its
    // own first call: it is left unread until the next usage line decides.
    let env = Env::new();
    let fork = corpus().pop().unwrap();
    let mut seen = Vec::new();
    for line in fork.1 {
        env.append(fork.0, &(line + "\n"));
        let s = env.import();
        seen.push(s.inserted);
    }
    assert_eq!(seen, [0, 0, 0, 0, 0, 1, 1]);
    let mut want = Totals::new();
    want.insert(("2025-11-19".into(), "gpt-5".into()), [2, 135, 30, 0, 15]);
    assert_eq!(totals(&env.source()), want);
}

//! Fault tests for the monitor's tail: rows deleted under it, and the last rows deleted and
//! as many inserted again with reused ids, in tokmon's own database and in a foreign tracker's
//! (with its rollup cache). Each is noticed like a shrink or a replacement: the monitor says
//! so and reads the database again, and the new numbers are exact.

#[path = "common/tail.rs"]
mod tail;
#[path = "tui_common/mod.rs"]
mod tui_common;

use std::path::Path;

use tokmon::tui::app::Msg;
use tokmon::tui::live::Cmd;
use tokmon::tui::model::{LoadRequest, RangeKind, Snapshot};
use tui_common::*;

struct Tail_ {
    _thread: std::thread::JoinHandle<()>,
    cmds: std::sync::mpsc::Sender<Cmd>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
}

fn spawn_tail(db: &Path, cache: Option<&Path>) -> Tail_ {
    let (thread, cmds, rx) = tail::spawn_tail(db, Default::default(), cache.map(Path::to_path_buf));
    cmds.send(Cmd::Load(LoadRequest {
        generation: 1,
        range: RangeKind::All,
        now_ms: NOW,
    }))
    .unwrap();
    Tail_ {
        _thread: thread,
        cmds,
        rx,
    }
}

impl Tail_ {
    fn next<T>(&mut self, what: &str, pick: impl FnMut(Msg) -> Option<T>) -> T {
        tail::wait_for(&mut self.rx, what, pick)
    }

    fn snapshot(&mut self) -> Box<Snapshot> {
        self.next("a snapshot", |m| match m {
            Msg::Snapshot(s) => Some(s),
            _ => None,
        })
    }

    /// After a delete or rewrite under a foreign database whose cache is being built: either
    /// the tail says why it reads everything again, or the cache's own reload already reads
    /// the rows as they are now. Either way, the numbers that follow must be the table's.
    fn settled(&mut self, db: &Path) -> Box<Snapshot> {
        loop {
            let m = self.next("a reset or fresh numbers", |m| match m {
                Msg::Reset(why) => Some(Err(why)),
                Msg::Snapshot(s) => Some(Ok(s)),
                _ => None,
            });
            match m {
                Err(why) => {
                    assert!(
                        why.contains("deleted") || why.contains("rewritten"),
                        "{why}"
                    );
                    return self.snapshot();
                }
                Ok(s) if totals(&s) == sql_totals(db, "token_usage", "input_tokens") => return s,
                Ok(_) => {}
            }
        }
    }

    fn reset(&mut self) -> String {
        self.next("the reset", |m| match m {
            Msg::Reset(why) => Some(why),
            _ => None,
        })
    }
}

/// Events and input tokens of a snapshot (all time).
fn totals(s: &Snapshot) -> (u64, u64) {
    s.rows.iter().fold((0, 0), |(e, i), r| {
        (e + r.0.sums.all.events, i + r.0.sums.all.input)
    })
}

fn sql_totals(db: &Path, table: &str, input: &str) -> (u64, u64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        &format!("SELECT COUNT(*), TOTAL({input}) FROM {table}"),
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, f64>(1)? as u64)),
    )
    .unwrap()
}

#[test]
fn native_deletes_and_reused_ids_are_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_db(dir.path());
    let mut t = spawn_tail(&db, None);
    let s = t.snapshot();
    assert_eq!(totals(&s), sql_totals(&db, "events", "input_tokens"));
    assert_eq!(totals(&s).0, 600);

    // Rows in the middle are deleted: the count shows it.
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute("DELETE FROM events WHERE id BETWEEN 200 AND 299", [])
        .unwrap();
    let why = t.reset();
    assert!(why.contains("deleted"), "{why}");
    let s = t.snapshot();
    assert_eq!(totals(&s).0, 500);
    assert_eq!(totals(&s), sql_totals(&db, "events", "input_tokens"));

    // The last rows are deleted and as many inserted again, reusing their ids.
    c.execute_batch(
        "BEGIN; DELETE FROM events WHERE id > 590;
         WITH RECURSIVE n(v) AS (SELECT 591 UNION ALL SELECT v + 1 FROM n WHERE v < 600)
         INSERT INTO events (id, ts, model, agent, input_tokens, output_tokens, source)
             SELECT v, 1700000000000, 'reused-model', 'reused-agent', 1000000, 1, 'test' FROM n;
         COMMIT;",
    )
    .unwrap();
    let why = t.reset();
    assert!(why.contains("reading it again"), "{why}");
    let s = t.snapshot();
    assert_eq!(totals(&s).0, 500);
    assert_eq!(totals(&s), sql_totals(&db, "events", "input_tokens"));
    assert!(
        s.rows
            .iter()
            .any(|r| r.0.model.as_deref() == Some("reused-model")),
        "the new rows are shown"
    );

    // New rows after that are still read one commit at a time, without a reset.
    let mut w = tokmon::store::native::open_rw(&db).unwrap();
    tokmon::store::native::insert_events(&mut w, [&event(9, NOW)]).unwrap();
    let rows = t.next("new rows", |m| match m {
        Msg::Rows(r) => Some(r),
        Msg::Reset(why) => panic!("no reset for an ordinary insert: {why}"),
        _ => None,
    });
    assert_eq!(rows.len(), 1);
}

#[test]
fn foreign_deletes_and_reused_ids_are_noticed_with_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE token_usage (id INTEGER PRIMARY KEY, provider TEXT, model TEXT,
             input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL, user_id TEXT,
             request_type TEXT, timestamp TEXT);
         WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 400)
         INSERT INTO token_usage (id, provider, model, input_tokens, output_tokens, cost_usd,
                                  request_type, timestamp)
             SELECT v, 'openai', 'gpt-4o-mini', v, 1, 0.001, 'support',
                    strftime('%Y-%m-%d %H:%M:%S', 1700000000 + v * 60, 'unixepoch') FROM n;",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let mut t = spawn_tail(&db, Some(&cache));
    let s = t.snapshot();
    assert_eq!(totals(&s), sql_totals(&db, "token_usage", "input_tokens"));

    // Rows deleted in the middle (the last one stays).
    c.execute("DELETE FROM token_usage WHERE id % 4 = 1", [])
        .unwrap();
    let s = t.settled(&db);
    assert_eq!(totals(&s).0, 300);
    assert!(s.last_id == 400);
    assert_eq!(totals(&s), sql_totals(&db, "token_usage", "input_tokens"));

    // The last rows replaced by as many new ones under the same ids.
    c.execute_batch(
        "BEGIN; DELETE FROM token_usage WHERE id > 390;
         WITH RECURSIVE n(v) AS (SELECT 391 UNION ALL SELECT v + 1 FROM n WHERE v < 400)
         INSERT INTO token_usage (id, provider, model, input_tokens, output_tokens, request_type, timestamp)
             SELECT v, 'anthropic', 'reused-model', 100000, 1, 'support', '2023-11-15 00:00:00' FROM n;
         COMMIT;",
    )
    .unwrap();
    let s = t.settled(&db);
    assert_eq!(totals(&s), sql_totals(&db, "token_usage", "input_tokens"));
    drop(t.cmds);
}

//! The monitor's tail over PostgreSQL, driven directly (no screen): its reads share one
//! snapshot while a writer commits, deletes are noticed without counting the rows, and rows
//! that other programs commit out of id order are shown once each.

mod common;
#[path = "common/tail.rs"]
mod tail;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::Sandbox;
use common::pg::{PgDb, db};
use tokmon::tui::app::Msg;
use tokmon::tui::live::Cmd;
use tokmon::tui::model::{LoadRequest, RangeKind, Snapshot};

struct TailRun {
    _thread: std::thread::JoinHandle<()>,
    cmds: std::sync::mpsc::Sender<Cmd>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
    generation: u64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn spawn_tail(url: &str) -> TailRun {
    let (thread, cmds, rx) = tail::spawn_tail(url, Default::default(), None);
    let mut t = TailRun {
        _thread: thread,
        cmds,
        rx,
        generation: 0,
    };
    t.load();
    t
}

impl TailRun {
    /// Ask for all-time numbers afresh.
    fn load(&mut self) {
        self.generation += 1;
        self.cmds
            .send(Cmd::Load(LoadRequest {
                generation: self.generation,
                range: RangeKind::All,
                now_ms: now_ms(),
            }))
            .unwrap();
    }

    fn next<T>(&mut self, what: &str, pick: impl FnMut(Msg) -> Option<T>) -> T {
        tail::wait_for(&mut self.rx, what, pick)
    }

    /// The snapshot answering the newest request.
    fn snapshot(&mut self) -> Box<Snapshot> {
        let generation = self.generation;
        self.next("a snapshot", |m| match m {
            Msg::Snapshot(s) if s.generation == generation => Some(s),
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

/// tokmon's schema (made by `tokmon record`, one event) in a fresh database.
fn native_db(hint: &str) -> PgDb {
    let d = db(hint);
    let sb = Sandbox::new();
    sb.cmd()
        .args([
            "record", "--db", &d.url, "--model", "gpt-5", "--agent", "setup",
        ])
        .args(["--input", "1", "--output", "1"])
        .assert()
        .success();
    d
}

fn insert_sql(input: u64) -> String {
    insert_as("writer", input)
}

/// A row for now by `agent`. Two sessions writing the same agent and model in the same
/// quarter hour wait for each other (the rollup row they both add to), so they cannot commit
/// out of order: the tests that need that use two agents.
fn insert_as(agent: &str, input: u64) -> String {
    format!(
        "INSERT INTO events (ts, model, agent, provider, input_tokens, output_tokens, source) \
         VALUES ((extract(epoch FROM clock_timestamp()) * 1000)::bigint, 'gpt-5', '{agent}', \
         'openai', {input}, 1, 'test')"
    )
}

/// Events and input tokens of the rows with an id up to `last_id`.
fn sql_totals_upto(d: &PgDb, last_id: i64) -> (u64, u64) {
    let out = d.psql(&format!(
        "SELECT count(*), COALESCE(sum(input_tokens), 0) FROM events WHERE id <= {last_id}"
    ));
    let mut it = out.split('|').map(|v| v.trim().parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn a_snapshot_agrees_with_its_last_id_while_a_writer_commits() {
    let d = native_db("snapshot_writer");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (url, stop) = (d.url.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                c.batch_execute(&insert_sql(n)).unwrap();
            }
            n
        })
    };
    let mut t = spawn_tail(&d.url);
    // Each snapshot's numbers must be those of exactly the rows up to the id it says it
    // stops at: rows after it come as new rows, and would otherwise be counted twice.
    for round in 0..15 {
        let s = t.snapshot();
        assert!(s.last_id > 0);
        assert_eq!(
            totals(&s),
            sql_totals_upto(&d, s.last_id),
            "snapshot {round} (last id {}) read rows committed after its last id",
            s.last_id
        );
        t.load();
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(
        written > 15,
        "the writer committed while the snapshots were read"
    );
}

#[test]
fn rows_deleted_by_another_program_are_noticed() {
    let d = native_db("deletes");
    for i in 0..20 {
        d.psql(&insert_sql(100 + i));
    }
    let mut t = spawn_tail(&d.url);
    let s = t.snapshot();
    assert_eq!(totals(&s).0, 21);
    // Rows in the middle go (the last one stays, so only the server's count of deletes
    // tells); a later insert wakes the tail.
    d.psql("DELETE FROM events WHERE id BETWEEN 5 AND 9");
    d.psql(&insert_sql(7));
    let why = t.next("the reset", |m| match m {
        Msg::Reset(why) => Some(why),
        _ => None,
    });
    assert!(why.contains("deleted"), "{why}");
    t.generation = 0;
    let s = t.next("fresh numbers", |m| match m {
        Msg::Snapshot(s) => Some(s),
        _ => None,
    });
    assert_eq!(totals(&s), sql_totals_upto(&d, i64::MAX));
    assert_eq!(totals(&s).0, 17);
}

/// The tail's messages folded as the monitor folds them, from the snapshot on.
struct Folded {
    agg: tokmon::tui::model::Aggregates,
    late_ids: Vec<i64>,
}

impl Folded {
    fn new(s: &Snapshot) -> Folded {
        Folded {
            agg: tokmon::tui::model::Aggregates::from_snapshot(
                RangeKind::All,
                s,
                tokmon::cli::CostMode::Auto,
            )
            .unwrap(),
            late_ids: Vec::new(),
        }
    }

    fn take(&mut self, m: Msg) {
        match m {
            Msg::Rows(rows) => {
                self.agg.fold(&rows).unwrap();
            }
            Msg::LateRows(rows) => {
                self.late_ids.extend(rows.iter().map(|r| r.id));
                self.agg.fold_late(&rows).unwrap();
            }
            Msg::Reset(why) => panic!("no reset expected: {why}"),
            _ => {}
        }
    }

    /// Fold what the tail sent until `done` holds (panics after 20 s).
    fn until(&mut self, t: &mut TailRun, what: &str, done: impl Fn(&Folded) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            match t.rx.try_recv() {
                Ok(m) => self.take(m),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Fold everything the tail sends within `wait`.
    fn drain(&mut self, t: &mut TailRun, wait: Duration) {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match t.rx.try_recv() {
                Ok(m) => self.take(m),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn totals(&self) -> (u64, u64) {
        (
            self.agg.total.sums.all.events,
            self.agg.total.sums.all.input,
        )
    }
}

/// Two sessions of another program: the first takes its id, the second takes the next one
/// and commits first. Both rows show, each counted once, whether the tail read past the
/// first id while following (a gap after a read) or in its first snapshot.
#[test]
fn rows_committed_out_of_id_order_show_once() {
    let d = native_db("out_of_order");
    let connect = || postgres::Client::connect(&d.url, postgres::NoTls).unwrap();
    let (mut a, mut b) = (connect(), connect());
    let mut t = spawn_tail(&d.url);
    let s = t.snapshot();
    let mut f = Folded::new(&s);
    assert_eq!(f.totals(), (1, 1));

    // While following.
    a.batch_execute("BEGIN").unwrap();
    a.batch_execute(&insert_as("first", 1_000)).unwrap();
    b.batch_execute(&insert_sql(20)).unwrap();
    f.until(&mut t, "the second session's row", |f| {
        f.totals() == (2, 21)
    });
    a.batch_execute("COMMIT").unwrap();
    f.until(&mut t, "the first session's row, late", |f| {
        f.totals() == (3, 1_021)
    });
    assert_eq!(f.late_ids, vec![2]);

    // In the first snapshot: the second session commits before the numbers are read.
    a.batch_execute("BEGIN").unwrap();
    a.batch_execute(&insert_as("first", 50_000)).unwrap();
    b.batch_execute(&insert_sql(300)).unwrap();
    t.load();
    let s = t.snapshot();
    assert_eq!(s.last_id, 5);
    let mut f = Folded::new(&s);
    assert_eq!(f.totals(), (4, 1_321));
    a.batch_execute("COMMIT").unwrap();
    f.until(&mut t, "the row committed after the snapshot", |f| {
        f.totals() == (5, 51_321)
    });
    assert_eq!(f.late_ids, vec![4]);

    // Nothing counted twice afterwards: a later row adds only itself.
    b.batch_execute(&insert_sql(7)).unwrap();
    f.until(&mut t, "a later row", |f| f.totals().0 >= 6);
    f.drain(&mut t, Duration::from_millis(700));
    assert_eq!(f.late_ids, vec![4]);
    assert_eq!(f.totals(), (6, 51_328));
    assert_eq!(f.totals(), sql_totals_upto(&d, i64::MAX));
}

/// The team service's `ai_usage` has no insert trigger: it is polled. A writer that keeps its
/// connection and inserts twice within a second sends the server's statistics of the second
/// insert about 10 s late; the row still shows at the next poll (the table's last pages are
/// looked at too).
#[test]
fn ai_usage_rows_from_a_kept_connection_show_at_the_next_poll() {
    let d = db("ai_usage_poll");
    d.psql(common::pg::AI_USAGE_TABLE);
    let insert = |c: &mut postgres::Client, tokens: i32| {
        c.execute(
            "INSERT INTO ai_usage (id, user_id, provider, model, prompt_tokens,
                completion_tokens, total_tokens, cost, timestamp)
             VALUES (gen_random_uuid(), gen_random_uuid(), 'openai', 'gpt-4o', $1, 1, $1 + 1, 1,
                     now() AT TIME ZONE 'UTC')",
            &[&tokens],
        )
        .unwrap();
    };
    let mut w = postgres::Client::connect(&d.url, postgres::NoTls).unwrap();
    insert(&mut w, 10);
    let mut t = spawn_tail(&d.url);
    let mut want = (1, 10);
    assert_eq!(totals(&t.snapshot()), want);
    // The server flushes a session's statistics at most once a second: a row committed
    // within a second of the last flush waits for the next one (about 10 s when idle).
    let wait_for = |t: &mut TailRun, want: (u64, u64), within: Duration| -> Duration {
        let started = Instant::now();
        loop {
            let s = t.snapshot();
            let took = started.elapsed();
            assert!(
                took < within,
                "{:?} after {took:?}, wanted {want:?} within {within:?}",
                totals(&s)
            );
            if totals(&s) == want {
                return took;
            }
        }
    };
    for _ in 0..10 {
        // A first row, flushed at its commit; the tail sees it.
        std::thread::sleep(Duration::from_millis(1_100));
        insert(&mut w, 200);
        let flushed = Instant::now();
        want = (want.0 + 1, want.1 + 200);
        wait_for(&mut t, want, Duration::from_secs(15));
        if flushed.elapsed() > Duration::from_millis(700) {
            continue;
        }
        // A second row within the second: its statistics wait, the row must not.
        insert(&mut w, 3_000);
        want = (want.0 + 1, want.1 + 3_000);
        wait_for(&mut t, want, Duration::from_secs(4));
        return;
    }
    panic!("the tail never saw a row within 0.7 s of its commit, to test the second one");
}

//! PostgreSQL benchmark (not a test): a throwaway server (the tests' harness), tokmon's schema
//! made by `tokmon record`, then 10M rows loaded on the server (`INSERT … SELECT` over
//! `generate_series`, in 1M-row statements, so the rollup trigger runs as it does for an
//! import). Measures `tokmon report --by model --range all` against `psql` running the plain
//! GROUP BY over the events (median of 3 runs each), and the time from a commit (another
//! connection, one row per transaction) to the row on the monitor's screen, heard through
//! LISTEN/NOTIFY (p50/p99 over 50 inserts). Needs PostgreSQL and tmux; prints the figures.
//!
//! `cargo bench --bench pg` (TOKMON_BENCH_PG_ROWS changes the number of rows).
//! TOKMON_BENCH_PG_DIR=<dir> keeps the cluster in `<dir>` (stopped cleanly at the end, never
//! removed): a later run with the same number of rows starts on it and skips the load.
//! TOKMON_BENCH_PG_LOG=1 keeps the monitor's log (at debug level for the tail) and prints the
//! tail's timings from it.

#[path = "../tests/common/pg.rs"]
mod pg;
#[path = "../tests/common/tmux.rs"]
mod tmux;

use std::process::Command;
use std::time::{Duration, Instant};

use tmux::{Tmux, events_shown};

/// Rows per loading statement.
const CHUNK: u64 = 1_000_000;
/// The events are spread over this many days before now.
const DAYS: i64 = 30;

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Wall time of a command that must succeed.
fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().expect("run");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

/// tokmon's schema (by its own migrations), then `rows` events spread over [`DAYS`] days.
fn load(d: &pg::PgDb, tokmon: &dyn Fn() -> Command, rows: u64) {
    timed(tokmon().args([
        "record", "--db", &d.url, "--model", "gpt-5", "--agent", "setup", "--input", "1",
    ]));
    let now_ms = chrono::Utc::now().timestamp_millis();
    let step_ms = (DAYS * 86_400_000) / rows.max(1) as i64;
    let t = Instant::now();
    let mut lo = 1u64;
    while lo <= rows {
        let hi = (lo + CHUNK - 1).min(rows);
        d.psql(&format!(
            "INSERT INTO events (ts, model, agent, provider, input_tokens, output_tokens,
                cache_creation_tokens, cache_read_tokens, cost_usd, source)
             SELECT {now_ms} - g * {step_ms},
                (ARRAY['claude-sonnet-4-5','claude-opus-4-1','gpt-5','gpt-4o-mini','gemini-2.5-flash'])[1 + g % 5],
                (ARRAY['claude-code','support-bot','rag-pipeline','codex'])[1 + (g / 7) % 4],
                (ARRAY['anthropic','openai','google'])[1 + g % 3],
                100 + g % 5000, 10 + g % 900, (g % 3) * 100, (g % 4) * 1000,
                CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 1000) * 0.00001 END, 'bench'
             FROM generate_series({lo}::bigint, {hi}::bigint) AS g"
        ));
        lo = hi + 1;
    }
    d.psql("VACUUM ANALYZE");
    d.psql(&format!("COMMENT ON DATABASE \"{}\" IS 'loaded'", d.name));
    println!(
        "loaded {rows} rows over {DAYS} days in {:.1}s",
        t.elapsed().as_secs_f64()
    );
}

/// The machine's load averages (1, 5, 15 minutes), as /proc/loadavg has them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("pg bench skipped: tmux is not installed");
        return;
    }
    let rows: u64 = std::env::var("TOKMON_BENCH_PG_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let server = match std::env::var_os("TOKMON_BENCH_PG_DIR") {
        Some(dir) => pg::PgServer::keep_at(std::path::Path::new(&dir)),
        None => pg::PgServer::start(),
    };
    let db_name = format!("bench_{rows}");
    // A database is marked loaded by its comment once every row is in.
    let (d, loaded) = match server.existing_db(&db_name) {
        Some((d, comment)) if comment == "loaded" => (d, true),
        Some(_) => {
            // Left half loaded by an interrupted run.
            let (admin, _) = server
                .existing_db("postgres")
                .expect("the postgres database");
            admin.psql(&format!("DROP DATABASE \"{db_name}\""));
            (server.create_named_db(&db_name), false)
        }
        None => (server.create_named_db(&db_name), false),
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let bin = env!("CARGO_BIN_EXE_tokmon");
    let tokmon = || {
        let mut c = Command::new(bin);
        c.env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("d"))
            .env("XDG_CONFIG_HOME", home.join("c"))
            .env("TZ", "UTC");
        c
    };
    if loaded {
        println!(
            "{rows} rows already loaded in {}",
            server.data_dir().display()
        );
    } else {
        load(&d, &tokmon, rows);
    }

    let tail_log = std::env::var_os("TOKMON_BENCH_PG_LOG").is_some();

    // report --by model over all time, against the plain GROUP BY in psql.
    let group_by = "SELECT model, count(*), sum(input_tokens), sum(output_tokens), \
                    sum(cache_creation_tokens), sum(cache_read_tokens), sum(cost_usd) \
                    FROM events GROUP BY model";
    let psql = || {
        let mut c = Command::new(server.bin().join("psql"));
        c.args(["-X", "-q", "-A", "-t", &d.url, "-c", group_by]);
        c
    };
    let report = || {
        let mut c = tokmon();
        c.args(["report", "--db", &d.url, "--by", "model", "--range", "all"]);
        c
    };
    // One untimed run each, so both read from a warm cache.
    timed(&mut psql());
    timed(&mut report());
    let psql_s = median((0..3).map(|_| timed(&mut psql())).collect());
    let report_s = median((0..3).map(|_| timed(&mut report())).collect());
    println!(
        "report --by model (all, {rows} rows)  tokmon {:.0} ms, psql GROUP BY {:.0} ms, ratio {:.2}x",
        report_s * 1000.0,
        psql_s * 1000.0,
        report_s / psql_s
    );

    // Commit → screen through NOTIFY.
    let cmd = format!(
        "exec env HOME='{h}' XDG_DATA_HOME='{h}/d' XDG_CONFIG_HOME='{h}/c' TZ=UTC {log}'{bin}' --db '{db}'",
        h = home.display(),
        db = d.url,
        log = if tail_log {
            "TOKMON_LOG=info,tokmon::tui::live=debug "
        } else {
            ""
        },
    );
    println!("load average before the inserts: {}", load_average());
    let tmux = Tmux::start(&cmd, 120, 40);
    tmux.poll(Duration::from_secs(60), |s| {
        s.contains("● live") && s.contains("claude-code")
    })
    .expect("the monitor's first numbers");
    let mut client = postgres::Client::connect(&d.url, postgres::NoTls).expect("connect");
    let mut lat = Vec::new();
    for i in 0..50 {
        let before = events_shown(&tmux.screen()).unwrap_or(0);
        client
            .execute(
                "INSERT INTO events (ts, model, agent, provider, input_tokens, output_tokens, source)
                 VALUES ((extract(epoch FROM clock_timestamp()) * 1000)::bigint, 'gpt-5',
                         'bench-live', 'openai', 1000, 1, 'bench')",
                &[],
            )
            .expect("insert");
        let t0 = Instant::now();
        match tmux.poll(Duration::from_secs(5), |s| {
            events_shown(s).is_some_and(|n| n > before)
        }) {
            Some(_) => {
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                if ms > 300.0 {
                    println!(
                        "insert {i} at {} took {ms:.0} ms",
                        chrono::Utc::now().format("%H:%M:%S%.3f")
                    );
                }
                lat.push(ms);
            }
            None => eprintln!("insert {i} not seen within 5 s"),
        }
        std::thread::sleep(Duration::from_millis(100 + (i % 5) * 40));
    }
    println!("load average after the inserts: {}", load_average());
    if tail_log {
        let log =
            std::fs::read_to_string(home.join("d/tokmon/logs/tokmon.log")).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("tail:")) {
            println!("{line}");
        }
    }
    lat.sort_by(f64::total_cmp);
    if lat.is_empty() {
        println!("commit → screen    no insert was seen");
    } else {
        println!(
            "commit → screen (NOTIFY)  p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} inserts)",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat[lat.len() - 1],
            lat.len()
        );
    }
}

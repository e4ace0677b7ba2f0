//! Monitor benchmark (not a test): the release binary in a private tmux server on a
//! generated 1M-row database. Measures the first frame, the time until the 24 h numbers
//! are complete, the time from another process's commit to the row on screen (p50/p99
//! over 50 inserts), the bytes written to the terminal per update, idle CPU over 10 s and
//! resident memory. Needs tmux; prints the figures.
//!
//! `cargo bench --bench monitor` (set TOKMON_BENCH_ROWS to change the size of the generated
//! database, or TOKMON_BENCH_DB to use an existing one; TOKMON_BENCH_JSON=1 adds one line of
//! JSON with every figure, which `scripts/bench.py` reads). After the single inserts, another
//! writer commits 100 rows a second for 10 s and every row's commit-to-screen time is taken.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokmon::demo::{Flavor, Generator, generate};
use tokmon::store::native::{insert_events, open_rw};

struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .args(args)
            .output()
            .expect("tmux")
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "b"]).stdout).into_owned()
    }
    fn wait(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if pred(&self.screen()) {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The "N events" count of the header.
fn events_shown(screen: &str) -> Option<u64> {
    let first = screen.lines().next()?;
    let end = first.find(" events")?;
    let start = first[..end]
        .rfind(|c: char| !(c.is_ascii_digit() || c == ','))
        .map_or(0, |i| i + 1);
    first[start..end].replace(',', "").parse().ok()
}

fn proc_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn status_kb(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("monitor bench skipped: tmux is not installed");
        return;
    }
    // `cargo bench` passes --bench; nothing else is understood.
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let state = dir.path().join("state.json");
    let (db, rows) = match std::env::var_os("TOKMON_BENCH_DB") {
        Some(p) => {
            let db = std::path::PathBuf::from(p);
            let rows = rusqlite::Connection::open(&db)
                .and_then(|c| {
                    c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
                })
                .expect("a native database") as u64;
            (db, rows)
        }
        None => {
            let rows: u64 = std::env::var("TOKMON_BENCH_ROWS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1_000_000);
            let db = dir.path().join("bench.db");
            let t = Instant::now();
            generate(&db, Flavor::Native, rows, 30, 1, Utc::now()).unwrap();
            println!(
                "generated {rows} rows over 30 days in {:.1}s",
                t.elapsed().as_secs_f64()
            );
            (db, rows)
        }
    };
    std::fs::write(&state, r#"{"token_usage":{"used":620000,"total":1000000}}"#).unwrap();

    let tmux = Tmux(format!("tokmon-bench-{}", std::process::id()));
    let bin = env!("CARGO_BIN_EXE_tokmon");
    let out = dir.path().join("pane.out");
    let cmd = format!(
        "exec env HOME='{h}' XDG_DATA_HOME='{h}/d' XDG_CONFIG_HOME='{h}/c' '{bin}' --db '{db}' --state '{st}'",
        h = home.display(),
        db = db.display(),
        st = state.display()
    );
    let start = Instant::now();
    let ok = tmux
        .run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "b",
            "-x",
            "120",
            "-y",
            "40",
            &cmd,
        ])
        .status
        .success();
    assert!(ok, "tmux new-session");
    let first = tmux
        .wait(Duration::from_secs(10), |s| s.starts_with("tokmon"))
        .expect("first frame");
    let first_frame = start.elapsed().min(first + Duration::from_millis(0));
    tmux.wait(Duration::from_secs(30), |s| {
        s.contains("● live") && events_shown(s).is_some()
    })
    .expect("numbers");
    let complete = start.elapsed();
    // Switch to all time and wait until its numbers are complete.
    let t_all = Instant::now();
    tmux.run(&["send-keys", "-t", "b", "5"]);
    let complete_all = tmux
        .wait(Duration::from_secs(60), |s| {
            let head = s.lines().next().unwrap_or("");
            head.contains("│ all │") && head.contains("● live")
        })
        .map(|_| t_all.elapsed())
        .expect("all-time numbers");
    tmux.run(&["send-keys", "-t", "b", "2"]);
    tmux.wait(Duration::from_secs(30), |s| {
        let head = s.lines().next().unwrap_or("");
        head.contains("│ 24h │") && head.contains("● live")
    })
    .expect("back to 24h");
    let pid = String::from_utf8_lossy(
        &tmux
            .run(&["display-message", "-p", "-t", "b", "#{pane_pid}"])
            .stdout,
    )
    .trim()
    .to_string();
    tmux.run(&[
        "pipe-pane",
        "-o",
        "-t",
        "b",
        &format!("cat >> '{}'", out.display()),
    ]);

    // Insert-to-screen latency.
    let mut conn = open_rw(&db).unwrap();
    let mut g = Generator::new(99);
    let mut lat = Vec::new();
    std::thread::sleep(Duration::from_millis(500));
    let bytes_before = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    for i in 0..50 {
        let before = events_shown(&tmux.screen()).unwrap_or(0);
        let e = g.event(Utc::now().timestamp_millis());
        insert_events(&mut conn, [&e]).unwrap();
        let t0 = Instant::now();
        let seen = tmux.wait(Duration::from_secs(5), |s| {
            events_shown(s).is_some_and(|n| n > before)
        });
        match seen {
            Some(_) => lat.push(t0.elapsed().as_secs_f64() * 1000.0),
            None => eprintln!("insert {i} not seen within 5 s"),
        }
        std::thread::sleep(Duration::from_millis(100 + (i % 5) * 40));
    }
    std::thread::sleep(Duration::from_millis(300));
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) - bytes_before;
    tmux.run(&["pipe-pane", "-t", "b"]);
    lat.sort_by(f64::total_cmp);

    // Another writer commits 100 rows a second for 10 s; each row's latency is the time from
    // its commit until the event count on screen includes it.
    let base = events_shown(&tmux.screen()).unwrap_or(0);
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut conn = open_rw(&db).unwrap();
            let mut g = Generator::new(7);
            let t0 = Instant::now();
            let mut commits = Vec::new();
            for i in 0..1000u32 {
                let due = Duration::from_millis(u64::from(i) * 10);
                if let Some(wait) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
                let e = g.event(Utc::now().timestamp_millis());
                insert_events(&mut conn, [&e]).unwrap();
                commits.push(Instant::now());
            }
            commits
        })
    };
    let mut seen: Vec<(Instant, u64)> = Vec::new();
    while !writer.is_finished() {
        if let Some(n) = events_shown(&tmux.screen()) {
            seen.push((Instant::now(), n));
        }
    }
    let tail_end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < tail_end {
        if let Some(n) = events_shown(&tmux.screen()) {
            seen.push((Instant::now(), n));
        }
    }
    let commits = writer.join().unwrap();
    let mut sustained: Vec<f64> = commits
        .iter()
        .enumerate()
        .filter_map(|(i, at)| {
            let want = base + i as u64 + 1;
            seen.iter()
                .find(|(t, n)| *n >= want && t >= at)
                .map(|(t, _)| t.duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    sustained.sort_by(f64::total_cmp);

    // Idle: nothing changes for 10 s.
    let t0 = proc_ticks(&pid);
    std::thread::sleep(Duration::from_secs(10));
    let ticks = proc_ticks(&pid) - t0;
    let clk = 100.0;
    let cpu = ticks as f64 / clk / 10.0 * 100.0;

    println!(
        "database           {} rows ({:.0} MB)",
        rows,
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );
    println!(
        "first frame        {:.0} ms (tmux start to first header on screen)",
        first_frame.as_secs_f64() * 1000.0
    );
    println!(
        "24h numbers        {:.0} ms",
        complete.as_secs_f64() * 1000.0
    );
    println!(
        "all-time numbers   {:.0} ms (after pressing 5)",
        complete_all.as_secs_f64() * 1000.0
    );
    if !sustained.is_empty() {
        println!(
            "at 100 rows/s      p50 {:.0} ms, p99 {:.0} ms ({} of 1000 rows seen)",
            pct(&sustained, 0.5),
            pct(&sustained, 0.99),
            sustained.len()
        );
    }
    if !lat.is_empty() {
        println!(
            "commit → screen    p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} inserts)",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat[lat.len() - 1],
            lat.len()
        );
    }
    println!(
        "bytes per update   {:.0} (terminal output averaged over {} updates)",
        bytes as f64 / lat.len().max(1) as f64,
        lat.len()
    );
    println!("idle CPU           {cpu:.2} % of a core over 10 s ({ticks} ticks)");
    println!(
        "resident memory    {} KB now, {} KB peak",
        status_kb(&pid, "VmRSS:"),
        status_kb(&pid, "VmHWM:")
    );
    if std::env::var_os("TOKMON_BENCH_JSON").is_some() {
        let p = |v: &[f64], q: f64| if v.is_empty() { f64::NAN } else { pct(v, q) };
        println!(
            "{}",
            serde_json::json!({
                "rows": rows,
                "first_frame_ms": first_frame.as_secs_f64() * 1000.0,
                "complete_24h_ms": complete.as_secs_f64() * 1000.0,
                "complete_all_ms": complete_all.as_secs_f64() * 1000.0,
                "single_p50_ms": p(&lat, 0.5),
                "single_p99_ms": p(&lat, 0.99),
                "latency_p50_ms": p(&sustained, 0.5),
                "latency_p99_ms": p(&sustained, 0.99),
                "latency_samples": sustained.len(),
                "bytes_per_update": bytes as f64 / lat.len().max(1) as f64,
                "idle_cpu_pct": cpu,
                "rss_kb": status_kb(&pid, "VmRSS:"),
                "peak_rss_mb": status_kb(&pid, "VmHWM:") as f64 / 1024.0,
            })
        );
    }
    let _ = Path::new(&out);
}

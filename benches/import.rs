//! Import benchmark: `cargo bench --bench import`.
//!
//! Generates a Claude Code corpus (default 1,000,000 assistant usage lines plus user lines,
//! with message text so it weighs several hundred MB, spread over projects and sessions, ~5 %
//! of replies written twice as Claude Code does while streaming, and some replies repeated in
//! the next session file), then measures with the release binary:
//!
//! 1. a cold `tokmon import` into a new database,
//! 2. a re-import with nothing changed,
//! 3. a re-import after appending one line,
//!
//! each with wall time and peak RSS (`/usr/bin/time -v` when present). When `ccusage` can be
//! run (`CCUSAGE_BIN`, or installed with npm into a temporary directory), it also times
//! `ccusage claude daily -O --json` on the same corpus and checks that its token totals equal
//! tokmon's exactly. Both are also checked against the totals known from generation.
//!
//! Environment: `TOKMON_BENCH_LINES` (assistant lines, default 1000000), `TOKMON_BENCH_RUNS`
//! (cold runs of each tool, the fastest kept; default 2), `TOKMON_BENCH_DIR`
//! (where to put the corpus and database; default a temporary directory, removed afterwards),
//! `CCUSAGE_BIN` (a ccusage executable), `TOKMON_BENCH_NO_CCUSAGE=1` to skip ccusage.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

const PROJECTS: usize = 20;
const SESSIONS_PER_PROJECT: usize = 25;
const MODELS: [&str; 3] = [
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1-20250805",
    "claude-haiku-4-5-20251001",
];
const WORDS: [&str; 24] = [
    "the", "function", "returns", "a", "value", "when", "called", "with", "config", "file", "test",
    "passes", "refactor", "module", "error", "handling", "should", "update", "database", "query",
    "index", "cache", "build", "ok",
];

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    input: u64,
    output: u64,
    cache_write: u64,
    cache_read: u64,
}

struct Gen {
    rng: fastrand::Rng,
    totals: Totals,
    msg_counter: u64,
    lines: u64,
    bytes: u64,
}

impl Gen {
    fn text(&mut self, out: &mut String) {
        let n = self.rng.usize(4..60);
        for i in 0..n {
            if i > 0 {
                out.push_str(if self.rng.u8(..) < 12 { "\\n" } else { " " });
            }
            out.push_str(WORDS[self.rng.usize(..WORDS.len())]);
        }
    }

    fn uuid(&mut self) -> String {
        let a = self.rng.u128(..);
        let h = format!("{a:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    fn user_line(&mut self, project: &str, session: &str, ts: &str) -> String {
        let mut s = String::with_capacity(512);
        s.push_str(
            r#"{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/home/dev/"#,
        );
        s.push_str(project);
        s.push_str(r#"","sessionId":""#);
        s.push_str(session);
        s.push_str(r#"","version":"2.0.14","gitBranch":"main","type":"user","message":{"role":"user","content":""#);
        self.text(&mut s);
        s.push_str(r#""},"uuid":""#);
        let u = self.uuid();
        s.push_str(&u);
        s.push_str(r#"","timestamp":""#);
        s.push_str(ts);
        s.push_str("\"}\n");
        s
    }

    /// A new assistant reply (its usage is added to the expected totals).
    fn assistant_line(&mut self, project: &str, session: &str, ts: &str) -> String {
        self.msg_counter += 1;
        let input = self.rng.u64(1..50);
        let output = self.rng.u64(1..3000);
        let w5 = if self.rng.u8(..) < 100 {
            self.rng.u64(0..20_000)
        } else {
            0
        };
        let w1h = if self.rng.u8(..) < 30 {
            self.rng.u64(0..10_000)
        } else {
            0
        };
        let read = self.rng.u64(0..150_000);
        self.totals.input += input;
        self.totals.output += output;
        self.totals.cache_write += w5 + w1h;
        self.totals.cache_read += read;
        let model = MODELS[self.rng.usize(..MODELS.len())];
        let mut s = String::with_capacity(1024);
        s.push_str(r#"{"parentUuid":""#);
        let u = self.uuid();
        s.push_str(&u);
        s.push_str(r#"","isSidechain":false,"userType":"external","cwd":"/home/dev/"#);
        s.push_str(project);
        s.push_str(r#"","sessionId":""#);
        s.push_str(session);
        s.push_str(r#"","version":"2.0.14","gitBranch":"main","message":{"id":"msg_01"#);
        s.push_str(&format!(
            "{:020x}",
            self.msg_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ));
        s.push_str(r#"","type":"message","role":"assistant","model":""#);
        s.push_str(model);
        s.push_str(r#"","content":[{"type":"text","text":""#);
        self.text(&mut s);
        s.push_str(&format!(
            r#""}}],"stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":{input},"cache_creation_input_tokens":{},"cache_read_input_tokens":{read},"cache_creation":{{"ephemeral_5m_input_tokens":{w5},"ephemeral_1h_input_tokens":{w1h}}},"output_tokens":{output},"service_tier":"standard"}}}},"requestId":"req_011C{:016x}","type":"assistant","uuid":""#,
            w5 + w1h,
            self.msg_counter
        ));
        let u = self.uuid();
        s.push_str(&u);
        s.push_str(r#"","timestamp":""#);
        s.push_str(ts);
        s.push_str("\"}\n");
        s
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Write the corpus under `root/projects/…`; returns the expected totals and the line count.
fn generate(root: &Path, assistant_lines: u64) -> std::io::Result<Gen> {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(7),
        totals: Totals::default(),
        msg_counter: 0,
        lines: 0,
        bytes: 0,
    };
    let files = (PROJECTS * SESSIONS_PER_PROJECT) as u64;
    let per_file = assistant_lines.div_ceil(files);
    let start = Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap();
    let mut written = 0u64;
    for p in 0..PROJECTS {
        let project = format!("-home-dev-project-{p:02}");
        let dir = root.join("projects").join(&project);
        fs::create_dir_all(&dir)?;
        let mut carry: Option<String> = None;
        for s in 0..SESSIONS_PER_PROJECT {
            let session = g.uuid();
            let mut w = BufWriter::with_capacity(
                1 << 20,
                File::create(dir.join(format!("{session}.jsonl")))?,
            );
            let mut t = start
                + chrono::Duration::hours((p * 7 + s * 50) as i64 % (60 * 24))
                + chrono::Duration::seconds(g.rng.i64(0..3600));
            // A resumed session first repeats a reply of the previous one (another file).
            if let Some(line) = carry.take() {
                w.write_all(line.as_bytes())?;
                g.lines += 1;
                g.bytes += line.len() as u64;
            }
            let mut n = 0;
            while n < per_file && written < assistant_lines {
                let ts = iso(t);
                let user = g.user_line(&project, &session, &ts);
                t += chrono::Duration::milliseconds(g.rng.i64(500..20_000));
                let ts = iso(t);
                let line = g.assistant_line(&project, &session, &ts);
                let mut out = user;
                out.push_str(&line);
                g.lines += 2;
                // Streaming: the same reply written again (~5 %).
                if g.rng.u8(..) < 13 {
                    out.push_str(&line);
                    g.lines += 1;
                }
                w.write_all(out.as_bytes())?;
                g.bytes += out.len() as u64;
                if n + 1 == per_file {
                    carry = Some(line);
                }
                n += 1;
                written += 1;
            }
            w.flush()?;
        }
    }
    Ok(g)
}

#[derive(Debug, Clone)]
struct Run {
    wall: Duration,
    rss_kb: Option<u64>,
    stdout: String,
}

/// Run a command, timing it, under `/usr/bin/time -v` when present for the peak RSS.
fn measure(program: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Run {
    let gnu_time = Path::new("/usr/bin/time");
    let mut cmd = if gnu_time.exists() {
        let mut c = Command::new(gnu_time);
        c.arg("-v").arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd.output().expect("run command");
    let wall = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        panic!("{} {:?} failed: {stderr}", program.display(), args);
    }
    let rss_kb = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok());
    Run {
        wall,
        rss_kb,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// The faster of two runs (with the higher of their peak RSS figures).
fn best(a: Run, b: Run) -> Run {
    let rss_kb = a.rss_kb.max(b.rss_kb);
    let mut r = if b.wall < a.wall { b } else { a };
    r.rss_kb = rss_kb;
    r
}

/// A cold import into a new database.
fn fresh_import(tokmon: &Path, args: &[&str], work: &Path) -> Run {
    for ext in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(work.join(format!("bench.db{ext}")));
    }
    measure(tokmon, args, &[])
}

fn ccusage_bin(work: &Path) -> Option<PathBuf> {
    if std::env::var_os("TOKMON_BENCH_NO_CCUSAGE").is_some() {
        return None;
    }
    if let Some(p) = std::env::var_os("CCUSAGE_BIN") {
        return Some(PathBuf::from(p));
    }
    let dir = work.join("ccusage");
    fs::create_dir_all(&dir).ok()?;
    let ok = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "ccusage@20.0.24",
        ])
        .current_dir(&dir)
        .status()
        .ok()?
        .success();
    let bin = dir.join("node_modules/.bin/ccusage");
    (ok && bin.exists()).then_some(bin)
}

fn tokmon_totals(v: &serde_json::Value) -> Totals {
    let t = &v["totals"];
    let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("no {k} in {t}"));
    Totals {
        input: n("input_tokens"),
        output: n("output_tokens"),
        cache_write: n("cache_creation_tokens"),
        cache_read: n("cache_read_tokens"),
    }
}

fn ccusage_totals(v: &serde_json::Value) -> Totals {
    let t = &v["totals"];
    let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("no {k} in {t}"));
    Totals {
        input: n("inputTokens"),
        output: n("outputTokens"),
        cache_write: n("cacheCreationTokens"),
        cache_read: n("cacheReadTokens"),
    }
}

fn mb(kb: Option<u64>) -> String {
    kb.map(|k| format!("{:.1} MB", k as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: only run when benching.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let lines: u64 = std::env::var("TOKMON_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: u32 = std::env::var("TOKMON_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
        .max(1);
    let tmp;
    let work = match std::env::var_os("TOKMON_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    let corpus = work.join("claude");
    let db = work.join("bench.db");
    let _ = fs::remove_dir_all(&corpus);
    let tokmon = PathBuf::from(env!("CARGO_BIN_EXE_tokmon"));

    let t = Instant::now();
    let mut g = generate(&corpus, lines).expect("generate corpus");
    println!(
        "corpus: {} lines ({} assistant replies), {:.0} MB in {} files, generated in {:.1}s",
        g.lines,
        g.msg_counter,
        g.bytes as f64 / 1e6,
        PROJECTS * SESSIONS_PER_PROJECT,
        t.elapsed().as_secs_f64()
    );

    let db_s = db.to_str().unwrap();
    let corpus_s = corpus.to_str().unwrap();
    let import = ["--db", db_s, "import", corpus_s];
    // The machine may be shared: each cold run is repeated and the fastest one kept.
    let mut cold = fresh_import(&tokmon, &import, &work);
    for _ in 1..runs {
        cold = best(cold, fresh_import(&tokmon, &import, &work));
    }
    println!("tokmon: {}", cold.stdout.trim());
    let unchanged = measure(&tokmon, &import, &[]);

    // Append one new reply to one session file, then re-import.
    let project = "-home-dev-project-00";
    let file = fs::read_dir(corpus.join("projects").join(project))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .min()
        .unwrap();
    let line = g.assistant_line(project, "appended", "2025-11-01T12:00:00.000Z");
    OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    let append = measure(&tokmon, &import, &[]);
    println!("tokmon after append: {}", append.stdout.trim());

    let report = measure(
        &tokmon,
        &["--db", db_s, "report", "--range", "all", "--format", "json"],
        &[],
    );
    let ours = tokmon_totals(&serde_json::from_str(&report.stdout).expect("report JSON"));
    let db_mb = fs::metadata(&db)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0);

    println!();
    println!("| run | wall | peak RSS |");
    println!("| --- | --- | --- |");
    println!(
        "| tokmon import, cold | {:.2} s | {} |",
        cold.wall.as_secs_f64(),
        mb(cold.rss_kb)
    );
    println!(
        "| tokmon import, nothing new | {:.3} s | {} |",
        unchanged.wall.as_secs_f64(),
        mb(unchanged.rss_kb)
    );
    println!(
        "| tokmon import, one line appended | {:.3} s | {} |",
        append.wall.as_secs_f64(),
        mb(append.rss_kb)
    );

    let mut ok = ours == g.totals;
    let cc = ccusage_bin(&work);
    if let Some(bin) = &cc {
        let cc_args = ["claude", "daily", "-O", "--json"];
        let cc_env = [("CLAUDE_CONFIG_DIR", corpus.as_path())];
        let mut run = measure(bin, &cc_args, &cc_env);
        for _ in 1..runs {
            run = best(run, measure(bin, &cc_args, &cc_env));
        }
        let theirs = ccusage_totals(&serde_json::from_str(&run.stdout).expect("ccusage JSON"));
        println!(
            "| ccusage claude daily -O --json | {:.2} s | {} |",
            run.wall.as_secs_f64(),
            mb(run.rss_kb)
        );
        println!();
        println!("ccusage totals: {theirs:?}");
        if theirs != ours {
            ok = false;
            println!("MISMATCH between tokmon and ccusage");
        } else {
            println!("tokmon and ccusage token totals agree exactly");
        }
    } else {
        println!();
        println!("ccusage not available: skipped");
    }
    println!("tokmon totals:   {ours:?}");
    println!("expected totals: {:?}", g.totals);
    println!("database: {db_mb:.0} MB");
    if !ok {
        eprintln!("token totals disagree");
        std::process::exit(1);
    }
}

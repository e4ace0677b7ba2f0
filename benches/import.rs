//! Import benchmark: `cargo bench --bench import`.
//!
//! Generates two Claude Code corpora under `projects/<project>/<session>.jsonl`, spread over
//! projects and sessions, each resumed session repeating the previous session's last reply:
//!
//! - **realistic** (default 120,000 lines): every reply follows a user line carrying a tool
//!   result of 0.2–4 KB, and is streamed over 1–3 lines whose `output_tokens` grows, as Claude
//!   Code writes them;
//! - **compact** (default 1,000,000 lines): short user and assistant lines, ~5 % of replies
//!   written twice.
//!
//! For each it measures with the release binary a cold `tokmon import` into a new database, a
//! re-import with nothing changed, a re-import after one appended line and a first
//! `tokmon report` that finds the corpus with no database yet (wall time, and peak RSS with
//! `/usr/bin/time -v` when present), and checks tokmon's totals against those known
//! from generation. When ccusage is found (`CCUSAGE_BIN`, or `ccusage` on the `PATH`) it also
//! times `ccusage claude daily -O --json` on the same files and checks its daily token totals
//! equal tokmon's; otherwise that part is skipped with a note.
//!
//! The last line printed is one JSON object with every figure:
//! `{"bench":"import","corpora":[{"name","lines","bytes","files","replies","tokmon_cold_s",
//! "tokmon_cold_cpu_s","tokmon_cold_rss_mb","reimport_unchanged_s","reimport_append_s",
//! "reimport_append_cpu_s","first_report_s","ccusage_s"|null,"ccusage_cpu_s"|null,"ccusage_rss_mb"|null,
//! "ratio"|null,"totals_match_expected","daily_match_ccusage"|null},…]}` (`ratio` = tokmon
//! cold / ccusage, wall times; the CPU times, user + system, are null without
//! `/usr/bin/time`; `first_report_s`: `tokmon report` with no database yet, finding the corpus
//! through `CLAUDE_CONFIG_DIR`).
//!
//! Environment: `TOKMON_BENCH_REALISTIC_LINES` (default 120000), `TOKMON_BENCH_LINES` (compact
//! corpus lines, default 1000000), `TOKMON_BENCH_CORPUS` (`realistic`, `compact` or `both`, the
//! default), `TOKMON_BENCH_RUNS` (cold runs of each tool, the fastest kept; default 2),
//! `TOKMON_BENCH_DIR` (where to put corpora and databases; default a temporary directory),
//! `CCUSAGE_BIN`, `TOKMON_BENCH_NO_CCUSAGE=1` to skip ccusage.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

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

impl Totals {
    fn add(&mut self, u: &Usage) {
        self.input += u.input;
        self.output += u.output;
        self.cache_write += u.w5 + u.w1h;
        self.cache_read += u.read;
    }
}

/// The usage of one line of a reply.
#[derive(Debug, Clone, Copy)]
struct Usage {
    input: u64,
    output: u64,
    w5: u64,
    w1h: u64,
    read: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Realistic,
    Compact,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Realistic => "realistic",
            Shape::Compact => "compact",
        }
    }
}

struct Gen {
    rng: fastrand::Rng,
    totals: Totals,
    /// Expected totals per UTC day (`YYYY-MM-DD`), as ccusage reports them.
    daily: BTreeMap<String, Totals>,
    msg_counter: u64,
    lines: u64,
    bytes: u64,
}

impl Gen {
    fn new() -> Gen {
        Gen {
            rng: fastrand::Rng::with_seed(7),
            totals: Totals::default(),
            daily: BTreeMap::new(),
            msg_counter: 0,
            lines: 0,
            bytes: 0,
        }
    }

    fn text(&mut self, out: &mut String, words: usize) {
        for i in 0..words {
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

    /// A user line: a short prompt (compact) or a tool result of 0.2–4 KB (realistic).
    fn user_line(&mut self, shape: Shape, project: &str, session: &str, ts: &str) -> String {
        let mut s = String::with_capacity(4600);
        s.push_str(
            r#"{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/home/dev/"#,
        );
        s.push_str(project);
        s.push_str(r#"","sessionId":""#);
        s.push_str(session);
        s.push_str(r#"","version":"2.0.14","gitBranch":"main","type":"user","message":{"role":"user","content":"#);
        match shape {
            Shape::Compact => {
                s.push('"');
                let n = self.rng.usize(4..60);
                self.text(&mut s, n);
                s.push('"');
            }
            Shape::Realistic => {
                s.push_str(r#"[{"tool_use_id":"toolu_01"#);
                s.push_str(&format!("{:020x}", self.rng.u64(..)));
                s.push_str(r#"","type":"tool_result","content":""#);
                let target = self.rng.usize(200..4000);
                let start = s.len();
                while s.len() - start < target {
                    self.text(&mut s, 8);
                    s.push_str("\\n");
                }
                s.push_str(r#"","is_error":false}]"#);
            }
        }
        s.push_str(r#"},"uuid":""#);
        let u = self.uuid();
        s.push_str(&u);
        s.push_str(r#"","timestamp":""#);
        s.push_str(ts);
        s.push_str("\"}\n");
        s
    }

    fn usage(&mut self) -> Usage {
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
        Usage {
            input: self.rng.u64(1..50),
            output: self.rng.u64(1..3000),
            w5,
            w1h,
            // Prompts stay under 200k tokens (ccusage prices no long-context tier).
            read: self.rng.u64(0..150_000),
        }
    }

    /// One line of reply `msg` (its message id and request id derive from the number).
    #[allow(clippy::too_many_arguments)]
    fn assistant_line(
        &mut self,
        msg: u64,
        model: &str,
        u: &Usage,
        project: &str,
        session: &str,
        ts: &str,
        words: usize,
    ) -> String {
        let mut s = String::with_capacity(1024);
        s.push_str(r#"{"parentUuid":""#);
        let id = self.uuid();
        s.push_str(&id);
        s.push_str(r#"","isSidechain":false,"userType":"external","cwd":"/home/dev/"#);
        s.push_str(project);
        s.push_str(r#"","sessionId":""#);
        s.push_str(session);
        s.push_str(r#"","version":"2.0.14","gitBranch":"main","message":{"id":"msg_01"#);
        s.push_str(&format!("{:020x}", msg.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        s.push_str(r#"","type":"message","role":"assistant","model":""#);
        s.push_str(model);
        s.push_str(r#"","content":[{"type":"text","text":""#);
        self.text(&mut s, words);
        s.push_str(&format!(
            r#""}}],"stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":{},"cache_creation_input_tokens":{},"cache_read_input_tokens":{},"cache_creation":{{"ephemeral_5m_input_tokens":{},"ephemeral_1h_input_tokens":{}}},"output_tokens":{},"service_tier":"standard"}}}},"requestId":"req_011C{:016x}","type":"assistant","uuid":""#,
            u.input,
            u.w5 + u.w1h,
            u.read,
            u.w5,
            u.w1h,
            u.output,
            msg
        ));
        let id = self.uuid();
        s.push_str(&id);
        s.push_str(r#"","timestamp":""#);
        s.push_str(ts);
        s.push_str("\"}\n");
        s
    }

    /// A new reply: its lines (streamed: `output_tokens` grows, the last line is final).
    /// Its final usage is added to the expected totals, on the day of its first line.
    fn reply(
        &mut self,
        shape: Shape,
        project: &str,
        session: &str,
        t: &mut DateTime<Utc>,
    ) -> Vec<String> {
        self.msg_counter += 1;
        let msg = self.msg_counter;
        let model = MODELS[self.rng.usize(..MODELS.len())];
        let last = self.usage();
        let day = t.format("%Y-%m-%d").to_string();
        self.totals.add(&last);
        self.daily.entry(day).or_default().add(&last);
        let parts = match shape {
            // Streaming: the same reply written again (~5 %).
            Shape::Compact => {
                if self.rng.u8(..) < 13 {
                    2
                } else {
                    1
                }
            }
            Shape::Realistic => self.rng.usize(1..=3),
        };
        let mut out = Vec::with_capacity(parts);
        for k in 0..parts {
            let mut u = last;
            if shape == Shape::Realistic && k + 1 < parts {
                u.output = (last.output * (k as u64 + 1) / parts as u64).max(1);
            }
            let words = if shape == Shape::Compact {
                self.rng.usize(4..60)
            } else {
                self.rng.usize(10..120)
            };
            let line = self.assistant_line(msg, model, &u, project, session, &iso(*t), words);
            out.push(line);
            if shape == Shape::Realistic {
                *t += chrono::Duration::milliseconds(self.rng.i64(50..900));
            }
        }
        out
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Write a corpus of about `lines` lines under `root/projects/…`.
fn generate(root: &Path, shape: Shape, lines: u64) -> std::io::Result<Gen> {
    let mut g = Gen::new();
    let files = (PROJECTS * SESSIONS_PER_PROJECT) as u64;
    let per_file = lines.div_ceil(files);
    let start = Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap();
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
            let mut n = 0u64;
            // A resumed session first repeats the previous one's last reply (another file).
            if let Some(line) = carry.take() {
                w.write_all(line.as_bytes())?;
                g.bytes += line.len() as u64;
                n += 1;
            }
            while n < per_file && g.lines + n < lines {
                let user = g.user_line(shape, &project, &session, &iso(t));
                t += chrono::Duration::milliseconds(g.rng.i64(500..20_000));
                let reply = g.reply(shape, &project, &session, &mut t);
                w.write_all(user.as_bytes())?;
                g.bytes += user.len() as u64;
                n += 1 + reply.len() as u64;
                for line in &reply {
                    w.write_all(line.as_bytes())?;
                    g.bytes += line.len() as u64;
                }
                carry = reply.last().cloned();
            }
            g.lines += n;
            w.flush()?;
        }
    }
    Ok(g)
}

#[derive(Debug, Clone)]
struct Run {
    wall: Duration,
    rss_kb: Option<u64>,
    /// User + system CPU time, with `/usr/bin/time -v` (the machine may be shared: CPU time
    /// stretches less than wall time under load).
    cpu: Option<Duration>,
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
    let seconds = |label: &str| -> Option<f64> {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|v| v.trim().parse().ok())
    };
    let cpu = seconds("User time (seconds):")
        .zip(seconds("System time (seconds):"))
        .map(|(u, s)| Duration::from_secs_f64(u + s));
    Run {
        wall,
        rss_kb,
        cpu,
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

fn remove_db(db: &Path) {
    for ext in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(ext);
        let _ = fs::remove_file(PathBuf::from(p));
    }
}

fn ccusage_bin() -> Option<PathBuf> {
    if std::env::var_os("TOKMON_BENCH_NO_CCUSAGE").is_some() {
        return None;
    }
    if let Some(p) = std::env::var_os("CCUSAGE_BIN") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ccusage"))
            .find(|p| p.is_file())
    })
}

fn totals_of(t: &Value, keys: [&str; 4]) -> Totals {
    let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("no {k} in {t}"));
    Totals {
        input: n(keys[0]),
        output: n(keys[1]),
        cache_write: n(keys[2]),
        cache_read: n(keys[3]),
    }
}

const TOKMON_KEYS: [&str; 4] = [
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
];
const CCUSAGE_KEYS: [&str; 4] = [
    "inputTokens",
    "outputTokens",
    "cacheCreationTokens",
    "cacheReadTokens",
];

fn mb(kb: Option<u64>) -> Option<f64> {
    kb.map(|k| (k as f64 / 1024.0 * 10.0).round() / 10.0)
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Generate one corpus, measure both tools on it, print a table; the figures as JSON.
fn bench(shape: Shape, lines: u64, runs: u32, work: &Path, tokmon: &Path) -> Value {
    let corpus = work.join(shape.name());
    let db = work.join(format!("{}.db", shape.name()));
    let _ = fs::remove_dir_all(&corpus);
    let t = Instant::now();
    let mut g = generate(&corpus, shape, lines).expect("generate corpus");
    let files = PROJECTS * SESSIONS_PER_PROJECT;
    println!(
        "{} corpus: {} lines ({} replies), {:.0} MB in {files} files, generated in {:.1}s",
        shape.name(),
        g.lines,
        g.msg_counter,
        g.bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let db_s = db.to_str().unwrap();
    let corpus_s = corpus.to_str().unwrap();
    let import = ["--db", db_s, "import", corpus_s];
    // The machine may be shared: each cold run is repeated and the fastest one kept.
    let mut cold: Option<Run> = None;
    for _ in 0..runs {
        remove_db(&db);
        let r = measure(tokmon, &import, &[]);
        cold = Some(match cold {
            Some(c) => best(c, r),
            None => r,
        });
    }
    let cold = cold.expect("at least one run");
    println!("tokmon: {}", cold.stdout.trim());
    // The first look with nothing set up: `tokmon report` with no database yet finds the logs
    // (through CLAUDE_CONFIG_DIR) and imports them before answering.
    let home = work.join(format!("{}-home", shape.name()));
    let home_env = [
        ("HOME", home.clone()),
        ("XDG_DATA_HOME", home.join("data")),
        ("XDG_CONFIG_HOME", home.join("config")),
        ("XDG_CACHE_HOME", home.join("cache")),
        ("CODEX_HOME", home.join("codex")),
        ("CLAUDE_CONFIG_DIR", corpus.clone()),
    ];
    let home_env: Vec<(&str, &Path)> = home_env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut first_report: Option<Run> = None;
    for _ in 0..runs {
        let _ = fs::remove_dir_all(&home);
        fs::create_dir_all(&home).expect("home for the first report");
        let r = measure(
            tokmon,
            &["--tz", "UTC", "report", "--range", "all"],
            &home_env,
        );
        first_report = Some(match first_report {
            Some(f) => best(f, r),
            None => r,
        });
    }
    let first_report = first_report.expect("at least one run");
    let _ = fs::remove_dir_all(&home);
    let unchanged = measure(tokmon, &import, &[]);

    // Append one new reply to one session file, then re-import.
    let project = "-home-dev-project-00";
    let file = fs::read_dir(corpus.join("projects").join(project))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .min()
        .unwrap();
    let mut t = Utc.with_ymd_and_hms(2025, 11, 1, 12, 0, 0).unwrap();
    let reply = g.reply(Shape::Compact, project, "appended", &mut t);
    let mut f = OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all(reply[0].as_bytes()).unwrap();
    drop(f);
    let append = measure(tokmon, &import, &[]);
    println!("tokmon after append: {}", append.stdout.trim());

    let report = |by: Option<&str>| -> Value {
        let mut args = vec!["--db", db_s, "--tz", "UTC", "report", "--range", "all"];
        if let Some(b) = by {
            args.extend(["--by", b]);
        }
        args.extend(["--format", "json"]);
        let r = measure(tokmon, &args, &[]);
        serde_json::from_str(&r.stdout).expect("report JSON")
    };
    let ours = totals_of(&report(None)["totals"], TOKMON_KEYS);
    let our_days: BTreeMap<String, Totals> = report(Some("day"))["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|d| {
            (
                d["key"].as_str().unwrap_or_default().to_string(),
                totals_of(d, TOKMON_KEYS),
            )
        })
        .collect();
    let expected_ok = ours == g.totals && our_days == g.daily;

    println!();
    println!("| {} corpus | wall | CPU | peak RSS |", shape.name());
    println!("| --- | --- | --- | --- |");
    let row = |what: &str, r: &Run| {
        println!(
            "| {what} | {:.3} s | {} | {} |",
            r.wall.as_secs_f64(),
            r.cpu
                .map_or("n/a".into(), |c| format!("{:.3} s", c.as_secs_f64())),
            mb(r.rss_kb).map_or("n/a".into(), |m| format!("{m:.1} MB"))
        )
    };
    row("tokmon import, cold", &cold);
    row("tokmon import, nothing new", &unchanged);
    row("tokmon import, one line appended", &append);
    row(
        "tokmon report, first run (no database: finds and imports the logs)",
        &first_report,
    );

    let mut cc_run = None;
    let mut daily_match = None;
    if let Some(bin) = ccusage_bin() {
        let cc_args = ["claude", "daily", "-O", "--json", "-z", "UTC"];
        let cc_env = [("CLAUDE_CONFIG_DIR", corpus.as_path())];
        let mut run = measure(&bin, &cc_args, &cc_env);
        for _ in 1..runs {
            run = best(run, measure(&bin, &cc_args, &cc_env));
        }
        let v: Value = serde_json::from_str(&run.stdout).expect("ccusage JSON");
        let theirs: BTreeMap<String, Totals> = v["daily"]
            .as_array()
            .expect("daily")
            .iter()
            .map(|d| {
                (
                    d["date"].as_str().unwrap_or_default().to_string(),
                    totals_of(d, CCUSAGE_KEYS),
                )
            })
            .collect();
        row("ccusage claude daily -O --json", &run);
        println!(
            "tokmon cold import / ccusage: {:.2}",
            cold.wall.as_secs_f64() / run.wall.as_secs_f64()
        );
        let same = theirs == our_days;
        println!(
            "{}",
            if same {
                "tokmon's daily token totals equal ccusage's exactly"
            } else {
                "MISMATCH between tokmon's and ccusage's daily token totals"
            }
        );
        daily_match = Some(same);
        cc_run = Some(run);
    } else {
        println!("ccusage not found (CCUSAGE_BIN or PATH): comparison skipped");
    }
    println!("tokmon totals:   {ours:?}");
    println!("expected totals: {:?}", g.totals);
    println!();
    json!({
        "name": shape.name(),
        "lines": g.lines,
        "bytes": g.bytes,
        "files": files,
        "replies": g.msg_counter,
        "tokmon_cold_s": secs(cold.wall),
        "tokmon_cold_cpu_s": cold.cpu.map(secs),
        "tokmon_cold_rss_mb": mb(cold.rss_kb),
        "reimport_unchanged_s": secs(unchanged.wall),
        "reimport_append_s": secs(append.wall),
        "reimport_append_cpu_s": append.cpu.map(secs),
        "first_report_s": secs(first_report.wall),
        "ccusage_s": cc_run.as_ref().map(|r| secs(r.wall)),
        "ccusage_cpu_s": cc_run.as_ref().and_then(|r| r.cpu.map(secs)),
        "ccusage_rss_mb": cc_run.as_ref().and_then(|r| mb(r.rss_kb)),
        "ratio": cc_run.as_ref().map(|r| {
            (cold.wall.as_secs_f64() / r.wall.as_secs_f64() * 1000.0).round() / 1000.0
        }),
        "totals_match_expected": expected_ok,
        "daily_match_ccusage": daily_match,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: only run when benching.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs = env_num("TOKMON_BENCH_RUNS", 2).max(1) as u32;
    let which = std::env::var("TOKMON_BENCH_CORPUS").unwrap_or_else(|_| "both".into());
    let tmp;
    let work = match std::env::var_os("TOKMON_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    fs::create_dir_all(&work).expect("bench directory");
    let tokmon = PathBuf::from(env!("CARGO_BIN_EXE_tokmon"));
    let mut corpora = Vec::new();
    if which == "both" || which == "realistic" {
        let lines = env_num("TOKMON_BENCH_REALISTIC_LINES", 120_000);
        corpora.push(bench(Shape::Realistic, lines, runs, &work, &tokmon));
    }
    if which == "both" || which == "compact" {
        let lines = env_num("TOKMON_BENCH_LINES", 1_000_000);
        corpora.push(bench(Shape::Compact, lines, runs, &work, &tokmon));
    }
    let ok = corpora.iter().all(|c| {
        c["totals_match_expected"] == json!(true) && c["daily_match_ccusage"] != json!(false)
    });
    println!("{}", json!({"bench": "import", "corpora": corpora}));
    if !ok {
        eprintln!("token totals disagree");
        std::process::exit(1);
    }
}

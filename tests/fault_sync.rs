//! Fault tests of `tokmon sync` (#16 items 8, 9, 12, 17): kill -9 and SIGTERM at random
//! points, then the state file and its history must agree and no temporary may stay behind;
//! a FIFO, a device, a directory or a huge file as `--state` is refused at once (exit 2).
//! Bounded: the whole file runs in a few seconds.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokmon::state_file::StateFile;
use tokmon::state_file::history::{Journal, Outcome, history_of, history_path};

struct Env {
    dir: tempfile::TempDir,
    state: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        Env { dir, state }
    }

    fn cmd_for(&self, state: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tokmon"));
        c.env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env_remove("TOKMON_CONFIG")
            .env_remove("TOKMON_DB")
            .env_remove("TOKMON_STATE")
            .arg("--state")
            .arg(state)
            .arg("--db")
            .arg(self.dir.path().join("t.db"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    fn spawn_sync(&self, value: u64) -> Child {
        self.cmd_for(&self.state)
            .args(["sync", &value.to_string()])
            .spawn()
            .unwrap()
    }

    fn temporaries(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    /// The state file and its history tell the same story: `used` is the value of the
    /// newest sync, and the session list is the history, newest first.
    fn assert_agree(&self, context: &str) {
        let state = StateFile::load(&self.state).unwrap();
        let (rows, _) = history_of(&self.state).unwrap();
        let Some(state) = state else {
            assert!(rows.is_empty(), "{context}: history without a state file");
            return;
        };
        assert_eq!(
            state.view().used,
            rows.first().map_or(0, |r| r.value),
            "{context}: used vs newest history value"
        );
        let sessions = state.sessions();
        assert_eq!(sessions.len(), rows.len(), "{context}: sessions vs history");
        for (s, r) in sessions.iter().zip(&rows) {
            assert_eq!(s.id.as_deref(), Some(r.id.as_str()), "{context}");
            assert_eq!(s.tokens, Some(r.increment), "{context}");
        }
    }

    /// Records in the history without a written outcome.
    fn open_records(&self) -> usize {
        Journal::read(&self.state)
            .unwrap()
            .records
            .iter()
            .filter(|(_, o)| *o == Outcome::Open)
            .count()
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sends a signal to our own child, which has not been waited for yet.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Kill `tokmon sync` with `sig` at random points of its run, then check.
fn kill_at_random_points(sig: i32, rounds: u64, seed: u64) {
    let env = Env::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    // How long one sync takes here, to spread the kills over its whole run.
    let t = Instant::now();
    assert!(env.spawn_sync(1).wait().unwrap().success());
    let run = t.elapsed().max(Duration::from_millis(5));
    let mut value = 1;
    let mut killed = 0;
    for round in 0..rounds {
        value += 1 + rng.u64(..1_000);
        let mut child = env.spawn_sync(value);
        std::thread::sleep(run.mul_f64(rng.f64() * 1.3));
        signal(&child, sig);
        let status = child.wait().unwrap();
        if !status.success() {
            killed += 1;
        }
        let context = format!("signal {sig}, round {round}, value {value}, {status}");
        env.assert_agree(&context);
        if sig == libc::SIGTERM {
            // SIGTERM finishes a write that has begun: nothing open, nothing left over.
            assert_eq!(env.open_records(), 0, "{context}");
            assert_eq!(env.temporaries(), Vec::<String>::new(), "{context}");
        }
    }
    assert!(killed > 0, "no run was killed: the test proves nothing");
    // The next sync settles what kill -9 left open and removes its temporaries.
    value += 1;
    assert!(env.spawn_sync(value).wait().unwrap().success());
    env.assert_agree("after a clean sync");
    assert_eq!(env.open_records(), 0);
    assert_eq!(env.temporaries(), Vec::<String>::new());
    assert_eq!(
        StateFile::load(&env.state).unwrap().unwrap().view().used,
        value
    );
}

#[test]
fn kill_9_at_random_points_keeps_state_and_history_together() {
    kill_at_random_points(libc::SIGKILL, 30, 9);
}

#[test]
fn sigterm_at_random_points_finishes_or_never_starts_the_write() {
    kill_at_random_points(libc::SIGTERM, 30, 15);
}

/// A kill -9 at the worst moment, made deterministic: the history record is on disk, the
/// temporary half-written, the rename never happened.
#[test]
fn a_sync_killed_before_its_rename_is_undone_and_its_temporary_removed() {
    let env = Env::new();
    assert!(env.spawn_sync(100).wait().unwrap().success());
    let before = std::fs::read(&env.state).unwrap();
    let line = r#"{"id":"manual-sync-4102444800000","at_ms":4102444800000,"value":900,"increment":800,"note":null,"method":"manual","last_updated":"2100-01-01T00:00:00.000000"}"#;
    let mut text = std::fs::read_to_string(history_path(&env.state)).unwrap();
    text += line;
    text += "\n";
    std::fs::write(history_path(&env.state), text).unwrap();
    std::fs::write(env.dir.path().join(".state.json.Xy12Zq.tmp"), "{\"tok").unwrap();
    env.assert_agree("reader, before the next sync");
    let out = env
        .cmd_for(&env.state)
        .args(["status", "--history", "--format", "json"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["history"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        std::fs::read(&env.state).unwrap(),
        before,
        "reading changes nothing"
    );
    assert!(env.spawn_sync(300).wait().unwrap().success());
    env.assert_agree("after the next sync");
    assert_eq!(env.temporaries(), Vec::<String>::new());
    assert_eq!(env.open_records(), 0);
}

/// Run to completion within `limit`, or fail (and kill it) instead of hanging the suite.
fn run_bounded(mut c: Command, limit: Duration) -> (i32, String) {
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (st.code().unwrap_or(-1), err);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string and mode.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// #16 item 8: nothing that is not a regular file is read as a state file, nothing blocks,
/// no lock is taken or created for it, exit 2 with words saying what the path is.
#[test]
fn fifo_device_directory_and_huge_file_are_refused_at_once() {
    let env = Env::new();
    let fifo = env.dir.path().join("fifo.json");
    mkfifo(&fifo);
    let dir = env.dir.path().join("adir");
    std::fs::create_dir(&dir).unwrap();
    let huge = env.dir.path().join("huge.json");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(64 * 1024 * 1024 + 1).unwrap();
    drop(f);
    let cases: [(&Path, &str); 4] = [
        (&fifo, "FIFO"),
        (Path::new("/dev/zero"), "character device"),
        (&dir, "directory"),
        (&huge, "larger than the 64 MB"),
    ];
    for (path, words) in cases {
        for args in [&["sync", "5"][..], &["status"], &["status", "--history"]] {
            let mut c = env.cmd_for(path);
            c.args(args);
            let (code, err) = run_bounded(c, Duration::from_secs(10));
            let what = format!("{} {args:?}: {err}", path.display());
            assert_eq!(code, 2, "{what}");
            assert!(err.contains(words), "{what}");
            assert!(err.contains(&path.display().to_string()), "{what}");
        }
    }
    assert_eq!(
        std::fs::metadata(&huge).unwrap().len(),
        64 * 1024 * 1024 + 1
    );
    // Only the huge regular file got as far as a lock; nothing else was created.
    let mut names: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["adir", "fifo.json", "huge.json", "huge.json.lock"]);
}

/// #16 item 8: a FIFO planted as the history file or the lock file blocks nothing either.
#[test]
fn fifo_as_history_or_lock_is_refused_at_once() {
    let env = Env::new();
    mkfifo(&env.dir.path().join("state.json.history.jsonl"));
    let mut c = env.cmd_for(&env.state);
    c.args(["sync", "5"]);
    let (code, err) = run_bounded(c, Duration::from_secs(10));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FIFO"), "{err}");
    let env = Env::new();
    mkfifo(&env.dir.path().join("state.json.lock"));
    let mut c = env.cmd_for(&env.state);
    c.args(["sync", "5"]);
    let (code, err) = run_bounded(c, Duration::from_secs(10));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("FIFO"), "{err}");
    assert!(!env.state.exists());
}

/// #16 item 17: the real maximum is said up front, and nothing is written.
#[test]
fn a_value_above_the_maximum_names_the_maximum() {
    let env = Env::new();
    let mut c = env.cmd_for(&env.state);
    c.args(["sync", "18446744073709551615"]);
    let (code, err) = run_bounded(c, Duration::from_secs(10));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at most 9,223,372,036,854,775,807"), "{err}");
    assert!(!err.contains("store"), "{err}");
    let mut c = env.cmd_for(&env.state);
    c.args(["sync", "9223372036854775807"]);
    let (code, err) = run_bounded(c, Duration::from_secs(10));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        StateFile::load(&env.state).unwrap().unwrap().view().used,
        9_223_372_036_854_775_807
    );
    env.assert_agree("at the maximum");
}

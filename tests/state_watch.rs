//! The state file watcher against a real file that is replaced, truncated, deleted and recreated.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tokmon::state_file::{StateMsg, WatchMode, WatchOptions, watch};

const WITHIN: Duration = Duration::from_secs(1);

fn state(used: u64) -> String {
    format!("{{\"token_usage\": {{\"used\": {used}, \"total\": 1000}}, \"other\": [1, 2]}}\n")
}

/// Wait for a message that `want` accepts; return it and what came before it.
fn wait_for(
    rx: &Receiver<StateMsg>,
    what: &str,
    want: impl Fn(&StateMsg) -> bool,
) -> Vec<StateMsg> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while let Some(left) = WITHIN.checked_sub(start.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(m) => {
                let done = want(&m);
                seen.push(m);
                if done {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no {what} within {WITHIN:?}; saw {seen:?}");
}

fn loaded(used: u64) -> impl Fn(&StateMsg) -> bool {
    move |m| matches!(m, StateMsg::Loaded(v) if v.used == used)
}

fn replace_by_rename(path: &Path, text: &str) {
    let tmp = path.with_file_name(".state.json.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn fast(poll: bool) -> WatchOptions {
    WatchOptions {
        poll,
        poll_interval: Duration::from_millis(100),
        ..WatchOptions::default()
    }
}

fn exercise(poll: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, state(1)).unwrap();
    let (w, rx) = watch(path.clone(), fast(poll)).unwrap();
    assert_eq!(
        w.mode(),
        if poll {
            WatchMode::Polling
        } else {
            WatchMode::Native
        }
    );
    wait_for(&rx, "the first state", loaded(1));

    // Replaced by rename, as editors and `tokmon sync` do.
    replace_by_rename(&path, &state(2));
    wait_for(&rx, "the renamed-in state", loaded(2));

    // Truncated, then written after a pause long enough to be seen empty.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    f.write_all(state(3).as_bytes()).unwrap();
    drop(f);
    let seen = wait_for(&rx, "the rewritten state", loaded(3));
    assert!(
        !seen
            .iter()
            .any(|m| matches!(m, StateMsg::Loaded(v) if v.used != 3)),
        "a half-written file never shows as a state: {seen:?}"
    );
    assert_eq!(w.last_good().map(|v| v.used), Some(3));

    // Deleted, then created again.
    std::fs::remove_file(&path).unwrap();
    wait_for(&rx, "the deletion", |m| *m == StateMsg::Missing);
    std::fs::write(&path, state(4)).unwrap();
    wait_for(&rx, "the recreated state", loaded(4));

    // Garbage: a problem, and the last good state stays.
    std::fs::write(&path, "{\"token_usage\": ").unwrap();
    wait_for(
        &rx,
        "the problem",
        |m| matches!(m, StateMsg::Problem(p) if p.contains("state.json")),
    );
    assert_eq!(w.last_good().map(|v| v.used), Some(4));
    replace_by_rename(&path, &state(5));
    wait_for(&rx, "the repaired state", loaded(5));

    // Other files in the directory do not wake it.
    std::fs::write(dir.path().join("state.json.lock"), "").unwrap();
    std::fs::write(dir.path().join("unrelated"), "x").unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    drop(w);
}

#[test]
fn native_events() {
    exercise(false);
}

#[test]
fn polling() {
    exercise(true);
}

#[test]
fn a_missing_directory_falls_back_to_polling() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later").join("state.json");
    let (w, rx) = watch(path.clone(), fast(false)).unwrap();
    assert_eq!(w.mode(), WatchMode::Polling);
    wait_for(&rx, "missing", |m| *m == StateMsg::Missing);
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    std::fs::write(&path, state(7)).unwrap();
    wait_for(&rx, "the new file", loaded(7));
}

#[test]
fn a_sync_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let (_w, rx) = watch(path.clone(), fast(false)).unwrap();
    wait_for(&rx, "missing", |m| *m == StateMsg::Missing);
    let req = tokmon::state_file::SyncRequest::new(&path, 42);
    tokmon::state_file::sync(&req).unwrap();
    wait_for(&rx, "the synced state", loaded(42));
}

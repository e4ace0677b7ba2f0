//! Fault tests: a FIFO, a device or a directory given as every path argument (`--db`,
//! `--config`, import paths, `--follow`). Each is a clear error naming the path (exit 2),
//! returned at once: nothing blocks in open() and nothing is read forever. In a directory
//! that is walked, such entries are skipped and reported. (`--state` is tested with the
//! state file.)
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Sandbox, refused};

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo");
    assert!(ok.success());
}

/// The odd paths of one sandbox: a FIFO, a character device, a directory.
fn odd_paths(sb: &Sandbox) -> Vec<(PathBuf, &'static str)> {
    let fifo = sb.path("pipe.jsonl");
    mkfifo(&fifo);
    let dir = sb.path("adir");
    std::fs::create_dir_all(&dir).unwrap();
    vec![
        (fifo, "FIFO"),
        (PathBuf::from("/dev/zero"), "character device"),
        (dir, "directory"),
    ]
}

/// Refused with exit 2, the path and its kind named, well within the test's patience (a
/// blocked open would hang: the harness's timeout is the backstop, this the measure).
fn refused_fast(cmd: &mut assert_cmd::Command, path: &Path, kind: &str) {
    cmd.timeout(Duration::from_secs(20));
    let t = Instant::now();
    let out = cmd.output().expect("run tokmon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
    assert!(err.contains(&path.display().to_string()), "{cmd:?}: {err}");
    assert!(err.contains(kind), "{cmd:?} should say {kind}: {err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "{cmd:?} took {:?}",
        t.elapsed()
    );
}

#[test]
fn db_that_is_not_a_regular_file_is_refused_by_every_command() {
    let sb = Sandbox::new();
    for (p, kind) in odd_paths(&sb) {
        let db = p.to_str().unwrap();
        refused_fast(sb.cmd().args(["--db", db, "report"]), &p, kind);
        refused_fast(sb.cmd().args(["--db", db, "status", "--history"]), &p, kind);
        refused_fast(
            sb.cmd()
                .args(["--db", db, "record", "--model", "m", "--input", "1"]),
            &p,
            kind,
        );
        let log = sb.path("ok.jsonl");
        std::fs::write(&log, "{\"ts\":1,\"model\":\"m\",\"input_tokens\":1}\n").unwrap();
        refused_fast(sb.cmd().args(["--db", db, "import"]).arg(&log), &p, kind);
        refused_fast(sb.cmd().env("TOKMON_DB", db).arg("report"), &p, kind);
        // doctor reports every problem and goes on; it must not block on the database.
        let out = sb
            .cmd()
            .args(["--db", db, "doctor"])
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.code().is_some(), "doctor was killed (blocked?)");
        assert!(text.contains(kind), "doctor names the {kind}: {text}");
    }
}

#[test]
fn config_that_is_not_a_regular_file_is_refused() {
    let sb = Sandbox::new();
    for (p, kind) in odd_paths(&sb) {
        let c = p.to_str().unwrap();
        refused_fast(sb.cmd().args(["--config", c, "report"]), &p, kind);
        refused_fast(sb.cmd().env("TOKMON_CONFIG", c).arg("prices"), &p, kind);
    }
}

#[test]
fn import_path_that_is_not_a_regular_file_is_refused_and_nothing_is_created() {
    let sb = Sandbox::new();
    let db = sb.path("t.db");
    let fifo = sb.path("pipe.jsonl");
    mkfifo(&fifo);
    for (p, kind) in [
        (fifo.clone(), "FIFO"),
        (PathBuf::from("/dev/zero"), "character device"),
        (PathBuf::from("/dev/null"), "character device"),
    ] {
        refused_fast(
            sb.cmd().arg("--db").arg(&db).arg("import").arg(&p),
            &p,
            kind,
        );
        refused_fast(
            sb.cmd()
                .arg("--db")
                .arg(&db)
                .args(["import", "--follow"])
                .arg(&p),
            &p,
            kind,
        );
        refused_fast(
            sb.cmd()
                .arg("--db")
                .arg(&db)
                .args(["import", "--format", "jsonl"])
                .arg(&p),
            &p,
            kind,
        );
    }
    assert!(
        !db.exists(),
        "a refused import must not create the database"
    );
    refused(
        sb.cmd().arg("--db").arg(&db).arg("import").arg(&fifo),
        "not a regular file",
    );
}

#[test]
fn walked_directory_skips_and_reports_a_fifo_named_like_a_log() {
    let sb = Sandbox::new();
    let logs = sb.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("good.jsonl"),
        "{\"ts\":\"2025-01-01T00:00:00Z\",\"model\":\"m\",\"input_tokens\":7}\n",
    )
    .unwrap();
    mkfifo(&logs.join("stuck.jsonl"));
    let db = sb.path("t.db");
    let out = sb
        .cmd()
        .arg("--db")
        .arg(&db)
        .arg("import")
        .arg(&logs)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("stuck.jsonl") && err.contains("FIFO"),
        "the FIFO is reported: {err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("imported 1 event from 1 file"), "{stdout}");
}

/// An error message that cannot be written (stderr on a full device, or a terminal that went
/// away with its tmux session) still leaves with the error's own exit code, not a panic's 101.
#[test]
fn an_unwritable_stderr_keeps_the_exit_code() {
    let sb = Sandbox::new();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let out = plain_cmd(&sb)
        .args(["report", "--range", "bogus"])
        .stderr(full)
        .output()
        .expect("run tokmon");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// The status-line hook exits 0 even when its output cannot be written.
#[test]
fn the_statusline_exits_zero_with_unwritable_output() {
    let sb = Sandbox::new();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full")
    };
    let out = plain_cmd(&sb)
        .arg("statusline")
        .stdin(std::process::Stdio::null())
        .stdout(full())
        .stderr(full())
        .output()
        .expect("run tokmon");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// `tokmon` in the sandbox as a plain `std::process::Command`, whose output streams can be
/// pointed at any file.
fn plain_cmd(sb: &Sandbox) -> std::process::Command {
    let home = sb.path("");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tokmon"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"));
    c
}

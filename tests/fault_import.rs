//! Fault test: `tokmon import` killed with SIGKILL at random points, again and again; a final
//! import then leaves exactly the totals of one clean import (nothing lost, nothing twice).
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::{Sandbox, json};

fn totals(sb: &Sandbox, db: &std::path::Path) -> serde_json::Value {
    json(sb.cmd().arg("--db").arg(db).args([
        "report", "--range", "all", "--by", "model", "--format", "json",
    ]))
}

#[test]
fn kill_9_at_random_points_then_reimport_equals_a_clean_import() {
    let sb = Sandbox::new();
    let dir = sb.path("logs");
    std::fs::create_dir_all(&dir).unwrap();
    // Several files, so kills land between files as well as inside one.
    for f in 0..3u64 {
        let text: String = (0..6_000u64)
            .map(|i| {
                format!(
                    "{{\"ts\":\"2025-03-0{}T{:02}:{:02}:{:02}Z\",\"model\":\"m{}\",\"input_tokens\":{},\"output_tokens\":{}}}\n",
                    f + 1,
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60,
                    i % 5,
                    i + 1,
                    i % 7
                )
            })
            .collect();
        std::fs::write(dir.join(format!("part{f}.jsonl")), text).unwrap();
    }
    let clean = sb.path("clean.db");
    sb.cmd()
        .arg("--db")
        .arg(&clean)
        .arg("import")
        .arg(&dir)
        .assert()
        .success();
    let want = totals(&sb, &clean);

    let killed = sb.path("killed.db");
    let mut rng = fastrand::Rng::with_seed(0x7ea1_0001);
    for _ in 0..5 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tokmon"))
            .env("HOME", sb.dir.path())
            .env("XDG_DATA_HOME", sb.path(".local/share"))
            .env("XDG_CONFIG_HOME", sb.path(".config"))
            .arg("--db")
            .arg(&killed)
            .arg("import")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(10..500)));
        // SIGKILL: no destructor, no rollback by the process itself.
        let _ = child.kill();
        let _ = child.wait();
    }
    sb.cmd()
        .arg("--db")
        .arg(&killed)
        .arg("import")
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(totals(&sb, &killed)["totals"], want["totals"]);
    assert_eq!(totals(&sb, &killed)["groups"], want["groups"]);
    // And once more: nothing is added twice.
    sb.cmd()
        .arg("--db")
        .arg(&killed)
        .arg("import")
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicates::str::contains("imported 0 events"));
}

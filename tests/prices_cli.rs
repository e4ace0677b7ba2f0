//! `tokmon prices`: the command line, its output and exit codes.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

/// `tokmon` with a home of its own, so that no user config is read.
fn tokmon(home: &tempfile::TempDir) -> Command {
    let mut cmd = Command::cargo_bin("tokmon").unwrap();
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env_remove("TOKMON_CONFIG")
        .env_remove("TOKMON_DB")
        .env_remove("TOKMON_STATE");
    cmd
}

#[test]
fn a_dated_claude_name_shows_its_entry_and_prices_per_million() {
    let home = tempfile::tempdir().unwrap();
    tokmon(&home)
        .args(["prices", "claude-sonnet-4-5-20250929"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "entry        claude-sonnet-4-5-20250929\n",
        ))
        .stdout(predicate::str::contains("provider     anthropic\n"))
        .stdout(predicate::str::contains("matched by   exact\n"))
        .stdout(predicate::str::contains(
            "input        3.00 USD / 1M tokens\n",
        ))
        .stdout(predicate::str::contains(
            "output       15.00 USD / 1M tokens\n",
        ))
        .stdout(predicate::str::contains(
            "cache write  3.75 USD / 1M tokens\n",
        ))
        .stdout(predicate::str::contains(
            "cache read   0.30 USD / 1M tokens\n",
        ))
        .stdout(predicate::str::contains("source: LiteLLM"));
}

#[test]
fn a_prefixed_name_as_json() {
    let home = tempfile::tempdir().unwrap();
    let out = tokmon(&home)
        .args(["prices", "openai/gpt-4o", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["model"], "openai/gpt-4o");
    assert_eq!(v["known"], true);
    assert_eq!(v["key"], "gpt-4o");
    assert_eq!(v["provider"], "openai");
    assert_eq!(v["matched_by"], "provider prefix stripped");
    assert_eq!(v["input_per_mtok"], 2.5);
    assert_eq!(v["output_per_mtok"], 10.0);
    assert_eq!(v["cache_read_per_mtok"], 1.25);
    // No separate cache-write price for gpt-4o: writes are billed as input.
    assert_eq!(v["cache_write_per_mtok"], 2.5);
    assert!(v["source"].as_str().unwrap().contains("LiteLLM"));
}

#[test]
fn an_unknown_model_exits_1_and_says_its_cost_counts_as_0() {
    let home = tempfile::tempdir().unwrap();
    tokmon(&home)
        .args(["prices", "gpt-9"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "unknown model 'gpt-9': no price in the built-in table (LiteLLM",
        ))
        .stderr(predicate::str::contains("its cost counts as 0"));
}

#[test]
fn an_unknown_model_as_json_is_still_a_record() {
    let home = tempfile::tempdir().unwrap();
    let out = tokmon(&home)
        .args(["prices", "gpt-9", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["known"], false);
    assert!(v["key"].is_null());
}

#[test]
fn the_whole_table_lists_retired_and_local_models_and_its_source() {
    let home = tempfile::tempdir().unwrap();
    let out = tokmon(&home)
        .arg("prices")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("MODEL "), "{header}");
    assert!(header.ends_with("CACHE READ"), "{header}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("claude-sonnet-4-20250514"),
        [
            "claude-sonnet-4-20250514",
            "anthropic",
            "3.00",
            "15.00",
            "3.75",
            "0.30"
        ]
    );
    assert_eq!(
        row("ollama/*")[1..],
        ["local", "0.00", "0.00", "0.00", "0.00"]
    );
    assert!(row("gemini-1.5-pro")[1] == "google");
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("source: LiteLLM")
    );
}

#[test]
fn the_whole_table_as_json_and_csv() {
    let home = tempfile::tempdir().unwrap();
    let out = tokmon(&home)
        .args(["prices", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let models = v["models"].as_array().unwrap();
    assert!(models.len() > 300, "{}", models.len());
    assert!(
        models
            .iter()
            .any(|m| m["key"] == "claude-3-5-sonnet-20241022")
    );
    assert!(v["source"].as_str().unwrap().contains("MIT"));

    let out = tokmon(&home)
        .args(["prices", "--format", "csv"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "key,provider,input_per_mtok,output_per_mtok,cache_write_per_mtok,cache_read_per_mtok"
    );
    assert!(
        text.lines().any(|l| l == "gpt-4o,openai,2.5,10,2.5,1.25"),
        "no gpt-4o row"
    );
}

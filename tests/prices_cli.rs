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
            "entry            claude-sonnet-4-5-20250929\n",
        ))
        .stdout(predicate::str::contains("provider         anthropic\n"))
        .stdout(predicate::str::contains("matched by       exact\n"))
        .stdout(predicate::str::contains(
            "input            3.00 USD / 1M tokens\n",
        ))
        .stdout(predicate::str::contains(
            "output           15.00 USD / 1M tokens\n",
        ))
        .stdout(predicate::str::contains(
            "cache write 5m   3.75 USD / 1M tokens\n",
        ))
        .stdout(predicate::str::contains(
            "cache write 1h   6.00 USD / 1M tokens\n",
        ))
        .stdout(predicate::str::contains(
            "cache read       0.30 USD / 1M tokens\n",
        ))
        .stdout(predicate::str::contains(
            "long context     no separate rates: the same at any prompt size\n",
        ))
        .stdout(predicate::str::contains("source: LiteLLM"));
}

#[test]
fn a_model_with_a_long_context_tier_shows_every_rate_it_uses() {
    let home = tempfile::tempdir().unwrap();
    let out = tokmon(&home)
        .args(["prices", "gemini-2.5-pro"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for line in [
        "input            1.25 USD / 1M tokens\n",
        "output           10.00 USD / 1M tokens\n",
        "long context     a request whose prompt (input + cache write + cache read) exceeds 200,000 tokens is priced, every token, at:\n",
        "  input          2.50 USD / 1M tokens\n",
        "  output         15.00 USD / 1M tokens\n",
        "  cache write 5m 1.25 USD / 1M tokens (base rate: the table lists no long-context one)\n",
        "  cache read     0.25 USD / 1M tokens\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }

    let out = tokmon(&home)
        .args(["prices", "claude-sonnet-4-5@20250929", "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["key"], "vertex_ai/claude-sonnet-4-5@20250929");
    assert_eq!(v["cache_write_1h_per_mtok"], 6.0);
    let long = &v["long_context"];
    assert_eq!(long["prompt_above_tokens"], 200_000);
    assert_eq!(long["input_per_mtok"], 6.0);
    assert_eq!(long["output_per_mtok"], 22.5);
    assert_eq!(long["cache_write_per_mtok"], 7.5);
    assert_eq!(long["cache_write_1h_per_mtok"], 12.0);
    assert_eq!(long["cache_read_per_mtok"], 0.6);
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
    assert!(header.contains("CACHE READ"), "{header}");
    assert!(header.ends_with("ABOVE 200K IN/OUT"), "{header}");
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
            "0.30",
            "6.00",
            "6.00/22.50"
        ]
    );
    assert_eq!(
        row("ollama/*")[1..],
        ["local", "0.00", "0.00", "0.00", "0.00", "0.00", "-"]
    );
    assert_eq!(row("text-embedding-004")[1..4], ["google", "0.10", "0.00"]);
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
        "key,provider,input_per_mtok,output_per_mtok,cache_write_per_mtok,cache_read_per_mtok,\
         cache_write_1h_per_mtok,above_200k_input_per_mtok,above_200k_output_per_mtok,\
         above_200k_cache_write_per_mtok,above_200k_cache_read_per_mtok,\
         above_200k_cache_write_1h_per_mtok"
    );
    assert!(
        text.lines()
            .any(|l| l == "gpt-4o,openai,2.5,10,2.5,1.25,2.5,,,,,"),
        "no gpt-4o row"
    );
    assert!(
        text.lines()
            .any(|l| l == "gemini-2.5-pro,google,1.25,10,1.25,0.125,1.25,2.5,15,1.25,0.25,1.25"),
        "no gemini-2.5-pro row"
    );
}

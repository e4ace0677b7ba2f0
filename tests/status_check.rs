//! `tokmon status` with budgets: `--check` exits 0 or 3, JSON keys, and bad budget config.
//!
//! The binary reads the real clock, so usage is recorded a few minutes before now and the
//! budgets use rolling windows, which hold it whatever the date.

mod common;

use chrono::{Duration, Utc};
use common::{Sandbox, json};
use tokmon::store::native::{NewEvent, insert_events, open_rw};

/// A database with `tokens` recorded in three calls over the last 30 minutes.
fn usage_db(sb: &Sandbox, tokens: u64) -> std::path::PathBuf {
    let path = sb.path("usage.db");
    let mut conn = open_rw(&path).unwrap();
    let now = Utc::now();
    let events: Vec<NewEvent> = [30, 20, 5]
        .iter()
        .enumerate()
        .map(|(i, mins)| NewEvent {
            ts_ms: (now - Duration::minutes(*mins)).timestamp_millis(),
            provider: Some("openai".into()),
            model: "gpt-4o".into(),
            agent: Some("coder".into()),
            input_tokens: tokens / 3 + u64::from(i == 0) * (tokens % 3),
            cost_usd: Some(0.5),
            source: "test".into(),
            ..Default::default()
        })
        .collect();
    insert_events(&mut conn, &events).unwrap();
    path
}

fn config(sb: &Sandbox, text: &str) -> std::path::PathBuf {
    let p = sb.path("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

const BUDGETS: &str = r#"
[[budget]]
name = "day-tokens"
window = "24h"
limit_tokens = 1000

[[budget]]
name = "anthropic-only"
window = "7d"
provider = "anthropic"
limit_tokens = 10
"#;

fn status(sb: &Sandbox, db: &std::path::Path, cfg: &std::path::Path) -> assert_cmd::Command {
    let mut c = sb.cmd();
    c.arg("--db")
        .arg(db)
        .arg("--config")
        .arg(cfg)
        .arg("--state")
        .arg(sb.path("state.json"))
        .arg("status");
    c
}

#[test]
fn check_exits_0_below_the_warning_threshold() {
    let sb = Sandbox::new();
    let db = usage_db(&sb, 600);
    let cfg = config(&sb, BUDGETS);
    let out = status(&sb, &db, &cfg).arg("--check").assert().code(0);
    assert!(
        out.get_output().stdout.is_empty(),
        "silent when all is well"
    );
}

#[test]
fn check_exits_3_and_names_the_offending_budget() {
    let sb = Sandbox::new();
    let db = usage_db(&sb, 960);
    let cfg = config(&sb, BUDGETS);
    let out = status(&sb, &db, &cfg).arg("--check").assert().code(3);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("day-tokens: critical, 96.0% used"), "{text}");
    assert!(!text.contains("anthropic-only"), "{text}");
    // Critical is below exceeded: a check at that level passes.
    status(&sb, &db, &cfg)
        .args(["--check", "--level", "exceeded"])
        .assert()
        .code(0);
    status(&sb, &db, &cfg)
        .args(["--check", "--level", "critical"])
        .assert()
        .code(3);
}

#[test]
fn json_lists_every_budget_with_the_documented_keys() {
    let sb = Sandbox::new();
    let db = usage_db(&sb, 960);
    let cfg = config(&sb, BUDGETS);
    let v = json(status(&sb, &db, &cfg).args(["--format", "json"]));
    let budgets = v["budgets"].as_array().unwrap();
    let first = budgets[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "burn_rate_per_hour",
            "level",
            "limit_tokens",
            "limit_usd",
            "name",
            "percentage",
            "projected_exhaustion",
            "resets_at",
            "used_tokens",
            "used_usd",
            "window",
        ]
    );
    let day = budgets.iter().find(|b| b["name"] == "day-tokens").unwrap();
    assert_eq!(day["window"], "24h");
    assert_eq!(day["used_tokens"], 960);
    assert_eq!(day["used_usd"], 1.5);
    assert_eq!(day["percentage"], 96.0);
    assert_eq!(day["level"], "critical");
    assert!(day["resets_at"].is_null(), "rolling windows never reset");
    assert_eq!(day["burn_rate_per_hour"]["basis"], "last 60 min");
    assert_eq!(day["burn_rate_per_hour"]["tokens"], 960.0);
    assert!(day["projected_exhaustion"].is_string());
    let other = budgets
        .iter()
        .find(|b| b["name"] == "anthropic-only")
        .unwrap();
    assert_eq!(
        (other["used_tokens"].as_u64(), other["level"].as_str()),
        (Some(0), Some("ok"))
    );
    assert!(other["projected_exhaustion"].is_null());
}

#[test]
fn no_database_yet_means_nothing_used() {
    let sb = Sandbox::new();
    let cfg = config(&sb, BUDGETS);
    let db = sb.path("missing.db");
    status(&sb, &db, &cfg).arg("--check").assert().code(0);
    let v = json(status(&sb, &db, &cfg).args(["--format", "json"]));
    assert_eq!(v["budgets"][0]["used_tokens"], 0);
    assert!(!db.exists(), "status creates no database");
}

#[test]
fn bad_budget_config_exits_2_naming_file_budget_and_field() {
    let sb = Sandbox::new();
    let cfg = config(
        &sb,
        "[[budget]]\nname = \"team\"\nwindow = \"fortnight\"\nlimit_tokens = 5\n",
    );
    let out = status(&sb, &sb.path("x.db"), &cfg)
        .arg("--check")
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains(&cfg.display().to_string()), "{err}");
    assert!(
        err.contains("budget 'team'") && err.contains("field 'window'"),
        "{err}"
    );
    assert!(err.contains("fortnight"), "{err}");
}

fn state(sb: &Sandbox, used: u64, total: u64) {
    let text = format!(
        "{{\"token_usage\": {{\"used\": {used}, \"total\": {total}, \"sessions\": []}}, \"other\": 1}}"
    );
    std::fs::write(sb.path("state.json"), text).unwrap();
}

#[test]
fn the_quota_is_checked_like_any_budget() {
    let sb = Sandbox::new();
    let db = usage_db(&sb, 100);
    let cfg = config(&sb, BUDGETS);
    state(&sb, 500_000, 1_000_000);
    status(&sb, &db, &cfg).arg("--check").assert().code(0);
    state(&sb, 960_000, 1_000_000);
    let before = std::fs::read(sb.path("state.json")).unwrap();
    let out = status(&sb, &db, &cfg).arg("--check").assert().code(3);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.starts_with("quota: critical, 96.0% used"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    status(&sb, &db, &cfg)
        .args(["--check", "--level", "exceeded"])
        .assert()
        .code(0);
    assert_eq!(std::fs::read(sb.path("state.json")).unwrap(), before);
    // JSON: the quota keys, and the quota among the budgets, most urgent first.
    let v = json(status(&sb, &db, &cfg).args(["--format", "json"]));
    assert_eq!(
        (v["used"].as_u64(), v["level"].as_str()),
        (Some(960_000), Some("critical"))
    );
    let q = &v["budgets"][0];
    assert_eq!(
        (q["name"].as_str(), q["window"].as_str()),
        (Some("quota"), Some("manual"))
    );
    assert_eq!(
        (q["limit_tokens"].as_u64(), q["percentage"].as_f64()),
        (Some(1_000_000), Some(96.0))
    );
    assert!(q["used_usd"].is_null() && q["resets_at"].is_null());
    // Without --check: a table of the quota and every budget, exit 0 even when critical.
    let out = status(&sb, &db, &cfg).assert().code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for want in [
        "960,000",
        "BUDGET",
        "quota",
        "day-tokens",
        "anthropic-only",
        "only provider=anthropic",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
}

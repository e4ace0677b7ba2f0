//! The config examples of the README's `## Budgets` section load and pass every check.
//!
//! The examples live here as constants too, each checked for the quota rules of a tracker
//! in `formats.md`. When README.md has a `## Budgets` section with ```toml blocks, every
//! one of those blocks must load as well, so the README cannot drift into invalid config.

use chrono::Duration;
use tokmon::budget::{Budget, Thresholds, Window, compile_all};
use tokmon::config::Config;

/// Bot tracker: monthly token limits per provider, alerts at 90 / 95 / 100 %.
const BOT_TRACKER: &str = r#"
# Monthly token limits per provider, as the bot tracker keeps them:
# warning at 90 %, critical at 95 %, emergency at 100 % (tokmon says "exceeded").
[[budget]]
name = "openai-monthly"
window = "month"
provider = "openai"
limit_tokens = 1_000_000
thresholds = [90, 95, 100]

[[budget]]
name = "deepseek-monthly"
window = "month"
provider = "deepseek"
limit_tokens = 50_000
thresholds = [90, 95, 100]
"#;

/// Team service: monthly quota in tokens and in cost, warning 90 %, critical 100 %.
const TEAM_SERVICE: &str = r#"
# One monthly quota in tokens and in dollars; whichever is nearer its limit counts.
# Two levels, warning at 90 % and critical at 100 %: a full budget is also tokmon's
# third level, "exceeded", so `status --check --level critical` fires at 100 %.
[[budget]]
name = "team-monthly"
window = "month"
limit_tokens = 5_000_000
limit_usd = 250
thresholds = [90, 100]
"#;

/// The quota state file: its total is the limit, shown as the budget "quota".
const MANUAL_QUOTA: &str = r#"
# The state file's counter is always listed as the budget "quota":
# `used` of `total` tokens, warning at 90 %, critical at 95 %, exceeded at 100 %.
state = "/home/me/work/dashboard/state.json"

[sync]
default_total = 1_000_000   # the total written when `tokmon sync` creates the file
"#;

/// Subscription plans that count usage over a rolling 5 hours and 7 days.
const ROLLING_PLAN: &str = r#"
# Limits over the last 5 hours and the last 7 days, sliding with the clock.
[[budget]]
name = "plan-5h"
window = "5h"
model = "claude-*"
limit_tokens = 2_000_000

[[budget]]
name = "plan-7d"
window = "7d"
model = "claude-*"
limit_usd = 100
"#;

/// Calendar windows with their own reset points, and agent filters.
const CALENDAR: &str = r#"
tz = "Europe/Paris"   # calendar windows are cut in this zone

[[budget]]
name = "agents-daily"
window = "day"
reset_hour = 4                # 04:00 to 04:00
agent = ["coder", "review-*"]
limit_usd = 20

[[budget]]
name = "weekly"
window = "week"
reset_day = "friday"          # Friday 09:00 to Friday 09:00
reset_hour = 9
limit_tokens = 10_000_000

[[budget]]
name = "billing-cycle"
window = "month"
reset_day = 15                # 1 to 28
limit_usd = 500
thresholds = [75, 90, 100]
"#;

fn load(text: &str) -> (Config, Vec<Budget>) {
    let cfg = Config::parse(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    tokmon::commands::check_config(&cfg).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    let b = compile_all(&cfg.budgets).unwrap();
    (cfg, b)
}

/// The ```toml blocks of the README between `## Budgets` and the next `## ` heading.
fn readme_blocks() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut in_section = false;
    let mut block: Option<String> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        if block.is_none() && line.starts_with("## ") {
            in_section = line.trim_end() == "## Budgets";
            continue;
        }
        if !in_section {
            continue;
        }
        match &mut block {
            None if line.trim_start().starts_with("```toml") => block = Some(String::new()),
            Some(b) if line.trim_start().starts_with("```") => {
                out.push(std::mem::take(b));
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn readme_examples_load() {
    let blocks = readme_blocks();
    let examples: Vec<String> = if blocks.is_empty() {
        [
            BOT_TRACKER,
            TEAM_SERVICE,
            MANUAL_QUOTA,
            ROLLING_PLAN,
            CALENDAR,
        ]
        .map(String::from)
        .to_vec()
    } else {
        blocks
    };
    for e in &examples {
        load(e);
    }
}

#[test]
fn bot_tracker_rules() {
    let (_, b) = load(BOT_TRACKER);
    assert_eq!(b.len(), 2);
    for (x, limit, provider) in [(&b[0], 1_000_000, "openai"), (&b[1], 50_000, "deepseek")] {
        assert_eq!(x.window, Window::Month { day: 1, hour: 0 });
        assert_eq!(x.limit_tokens, Some(limit));
        assert_eq!(x.thresholds, Thresholds::default());
        assert!(x.filter.matches(Some(provider), Some("any-model"), None));
        assert!(!x.filter.matches(Some("other"), Some("any-model"), None));
    }
}

#[test]
fn team_service_rules() {
    let (_, b) = load(TEAM_SERVICE);
    let t = &b[0];
    assert_eq!(t.window, Window::Month { day: 1, hour: 0 });
    assert_eq!(
        (t.limit_tokens, t.limit_usd),
        (Some(5_000_000), Some(250.0))
    );
    assert_eq!(
        (
            t.thresholds.warning,
            t.thresholds.critical,
            t.thresholds.exceeded
        ),
        (90.0, 100.0, 100.0)
    );
    assert!(t.filter.is_empty());
}

#[test]
fn manual_quota_rules() {
    let (cfg, b) = load(MANUAL_QUOTA);
    assert!(b.is_empty());
    assert!(cfg.state.is_some());
    assert_eq!(cfg.sync.default_total, Some(1_000_000));
}

#[test]
fn rolling_plan_rules() {
    let (_, b) = load(ROLLING_PLAN);
    let spans: Vec<Option<Duration>> = b
        .iter()
        .map(|x| match x.window {
            Window::Rolling { span, .. } => Some(span),
            _ => None,
        })
        .collect();
    assert_eq!(spans, [Some(Duration::hours(5)), Some(Duration::days(7))]);
    assert_eq!(b[1].limit_usd, Some(100.0));
}

#[test]
fn calendar_rules() {
    let (cfg, b) = load(CALENDAR);
    assert_eq!(cfg.tz.as_deref(), Some("Europe/Paris"));
    assert_eq!(b[0].window, Window::Day { hour: 4 });
    assert_eq!(
        b[1].window,
        Window::Week {
            day: chrono::Weekday::Fri,
            hour: 9
        }
    );
    assert_eq!(b[2].window, Window::Month { day: 15, hour: 0 });
}

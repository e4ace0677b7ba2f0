//! The TOML config file. Nothing in it is required; every field has a default.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::error::{BadInput, bad_input};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Usage database (native or foreign).
    pub db: Option<PathBuf>,
    /// Quota state file.
    pub state: Option<PathBuf>,
    /// Force a source schema: native, bot, chat-agent, desktop, or the name of a `[[table]]`.
    pub schema: Option<String>,
    /// Time zone used to show times and to cut calendar ranges: `local`, `UTC`, an IANA
    /// name such as `Europe/Paris`, or a fixed offset such as `+08:00`.
    pub tz: Option<String>,
    /// Time zone of naive timestamps found in a foreign database (default UTC).
    pub foreign_tz: Option<String>,
    /// `auto`, `stored` or `calculate`.
    pub cost_mode: Option<String>,
    /// Theme name for the monitor.
    pub theme: Option<String>,
    /// Look for Claude Code and Codex logs where they write them (default true).
    pub discover: Option<bool>,
    /// More agent log paths to import (files or directories); with `discover = false`, the
    /// only ones.
    #[serde(default)]
    pub logs: Vec<PathBuf>,
    /// What the active 5-hour block is measured against: `max` (the largest past block), a
    /// token count (`880K`) or dollars (`$40`).
    pub block_limit: Option<String>,
    #[serde(default)]
    pub sync: SyncConfig,
    /// Mappings of other usage tables onto the event model.
    #[serde(default, rename = "table")]
    pub tables: Vec<CustomTable>,
    /// Budgets: `[[budget]]` tables as written; the budget module compiles and checks them.
    #[serde(default, rename = "budget")]
    pub budgets: Vec<BudgetSpec>,
}

/// One `[[budget]]` table as written in the config file. Compiled by the budget module
/// ([`crate::budget::compile_all`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Shown in tables, alerts and JSON; unique among budgets.
    pub name: Option<String>,
    /// `month`, `week`, `day`, or a rolling span such as `5h`, `24h`, `7d`, `2w`.
    pub window: Option<String>,
    /// Day the window starts: 1–28 for `month`, a weekday name for `week`.
    pub reset_day: Option<ResetDay>,
    /// Hour of the day (0–23, local time) at which a calendar window starts.
    pub reset_hour: Option<i64>,
    pub limit_tokens: Option<u64>,
    pub limit_usd: Option<f64>,
    /// Glob patterns; an event counts when its provider matches one of them.
    pub provider: Option<Patterns>,
    /// Glob patterns on the model name.
    pub model: Option<Patterns>,
    /// Glob patterns on the agent.
    pub agent: Option<Patterns>,
    /// Percentages of the limit: `[warning, critical, exceeded]`; missing levels are 100.
    pub thresholds: Option<Vec<f64>>,
}

/// `reset_day = 15` or `reset_day = "friday"`.
#[derive(Debug, Clone, PartialEq)]
pub enum ResetDay {
    Number(i64),
    Name(String),
}

impl<'de> Deserialize<'de> for ResetDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ResetDay;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a day of the month (1 to 28) or a weekday name such as \"monday\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ResetDay, E> {
                Ok(ResetDay::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ResetDay, E> {
                Ok(ResetDay::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ResetDay, E> {
                Ok(ResetDay::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `provider = "openai"` or `provider = ["openai", "azure-*"]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patterns(pub Vec<String>);

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Patterns;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a glob pattern or a list of glob patterns")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Patterns, E> {
                Ok(Patterns(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Patterns, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<String>()? {
                    out.push(p);
                }
                Ok(Patterns(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// How many sessions the state file keeps (default 100).
    pub session_cap: Option<usize>,
    /// The quota total written when `sync` creates a new state file.
    pub default_total: Option<u64>,
}

/// A usage table of some other tool, described column by column.
/// Every value is a column name of that table; they are validated as identifiers
/// and checked against the table before any query is built.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomTable {
    /// The name used with `--schema` (defaults to the table name).
    pub name: Option<String>,
    /// The table to read.
    pub table: String,
    /// A monotonically increasing integer key (default: `rowid`).
    pub id: Option<String>,
    pub timestamp: String,
    pub model: String,
    pub provider: Option<String>,
    pub agent: Option<String>,
    pub session: Option<String>,
    pub project: Option<String>,
    pub user: Option<String>,
    pub channel: Option<String>,
    pub operation: Option<String>,
    pub input_tokens: Option<String>,
    pub output_tokens: Option<String>,
    pub cache_creation_tokens: Option<String>,
    pub cache_read_tokens: Option<String>,
    pub cost_usd: Option<String>,
    /// Multiply the cost column by this to get USD (e.g. 0.01 for cents). Default 1.
    pub cost_scale: Option<f64>,
    pub duration_ms: Option<String>,
}

/// The smallest and largest `cost_scale`: from nano-dollars (1e-9) to thousands of dollars per
/// stored unit (1e3). Anything outside is surely a mistake, and would give costs that are not
/// shown exactly (or at all).
pub const COST_SCALE_RANGE: std::ops::RangeInclusive<f64> = 1e-9..=1e3;

/// Check a `cost_scale` against [`COST_SCALE_RANGE`]; the message names the value.
pub fn check_cost_scale(scale: f64) -> Result<(), BadInput> {
    if COST_SCALE_RANGE.contains(&scale) {
        Ok(())
    } else {
        let shown = if scale != 0.0 && !(1e-6..1e6).contains(&scale.abs()) {
            format!("{scale:e}")
        } else {
            format!("{scale}")
        };
        Err(BadInput(format!(
            "cost_scale = {shown} is out of range: use a number from 0.000000001 to 1000 \
             (what one stored cost unit is worth in USD, e.g. 0.01 for cents)"
        )))
    }
}

impl Config {
    /// Load the config file. `explicit` is a path given by `--config` or `TOKMON_CONFIG`:
    /// it must exist. Without it, the platform default is read if present.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<(Config, Option<PathBuf>)> {
        let path = match explicit {
            Some(p) => {
                if !p.exists() {
                    return Err(bad_input(format!(
                        "config file {} does not exist",
                        p.display()
                    )));
                }
                p.to_path_buf()
            }
            None => {
                let p = crate::paths::default_config_file();
                if !p.exists() {
                    return Ok((Config::default(), None));
                }
                p
            }
        };
        // A FIFO or a device would block the read or never end it.
        crate::regular::check_regular_or_missing(&path, "config file")?;
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            bad_input(format!(
                "config file {} is not UTF-8 text (byte {} is not valid UTF-8); save it as UTF-8",
                path.display(),
                e.utf8_error().valid_up_to() + 1
            ))
        })?;
        let cfg = Self::parse(&text)
            .map_err(|e| bad_input(format!("config file {}: {e}", path.display())))?;
        Ok((cfg, Some(path)))
    }

    /// The checks of the `[[table]]` mappings that need more than the types. The block limit
    /// and the budgets are checked by the modules that read them (see
    /// `commands::check_config`). The message names the table (the caller adds the file).
    pub fn validate_tables(&self) -> Result<(), BadInput> {
        for t in &self.tables {
            if let Some(scale) = t.cost_scale {
                check_cost_scale(scale).map_err(|why| {
                    let label = t.name.as_deref().unwrap_or(&t.table);
                    BadInput(format!("[[table]] '{label}': {why}"))
                })?;
            }
        }
        Ok(())
    }

    /// Parse config text; the error message carries the line and column.
    pub fn parse(text: &str) -> Result<Config, BadInput> {
        toml::from_str::<Config>(text).map_err(|e| BadInput(e.to_string().trim_end().to_string()))
    }
}

//! Command-line definitions. `tokmon` with no subcommand opens the monitor.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::Dimension;
pub use crate::domain::{CostMode, Level};
use crate::import::Format;
use crate::report::{Bucket, Grouping};

// The domain's enums as command-line values (their names as the core spells them).

impl ValueEnum for CostMode {
    fn value_variants<'a>() -> &'a [Self] {
        &[CostMode::Auto, CostMode::Stored, CostMode::Calculate]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            CostMode::Auto => "auto",
            CostMode::Stored => "stored",
            CostMode::Calculate => "calculate",
        }))
    }
}

impl ValueEnum for Level {
    fn value_variants<'a>() -> &'a [Self] {
        &[Level::Ok, Level::Warning, Level::Critical, Level::Exceeded]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.word()))
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "tokmon",
    version,
    about = "A terminal monitor for LLM token usage and cost",
    long_about = "A terminal monitor for LLM token usage and cost.\n\n\
        With no subcommand, opens the live monitor. Subcommands print to stdout for scripts."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub monitor: MonitorArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options that every subcommand understands.
#[derive(Debug, Clone, Args, Default)]
pub struct GlobalArgs {
    /// Usage database: tokmon's own, or a foreign tracker's (read-only). [env: TOKMON_DB]
    #[arg(
        long,
        global = true,
        env = "TOKMON_DB",
        value_name = "PATH",
        hide_env = true
    )]
    pub db: Option<PathBuf>,

    /// Quota state file (JSON). [env: TOKMON_STATE]
    #[arg(
        long,
        global = true,
        env = "TOKMON_STATE",
        value_name = "PATH",
        hide_env = true
    )]
    pub state: Option<PathBuf>,

    /// Config file (TOML). [env: TOKMON_CONFIG]
    #[arg(
        long,
        global = true,
        env = "TOKMON_CONFIG",
        value_name = "PATH",
        hide_env = true
    )]
    pub config: Option<PathBuf>,

    /// Force the database mapping instead of detecting it: native, bot, chat-agent,
    /// desktop, or the name of a [[table]] from the config file.
    #[arg(long, global = true, value_name = "SCHEMA")]
    pub schema: Option<String>,

    /// Time zone for showing times and cutting calendar ranges: local (default), UTC,
    /// an IANA name (Europe/Paris) or an offset (+08:00).
    #[arg(long, global = true, value_name = "TZ", allow_hyphen_values = true)]
    pub tz: Option<String>,

    /// How cost is counted: auto (stored cost when present and non-zero, else from prices),
    /// stored (only stored costs), calculate (always from prices).
    #[arg(long, global = true, value_enum, value_name = "MODE")]
    pub cost_mode: Option<CostMode>,

    /// Do not look for Claude Code and Codex logs (only the config's `logs` are imported).
    #[arg(long, global = true)]
    pub no_discover: bool,
}

/// Options of the live monitor (no subcommand).
#[derive(Debug, Clone, Args, Default)]
pub struct MonitorArgs {
    /// Run on a demo database and state file that a background writer keeps filling.
    #[arg(long)]
    pub demo: bool,

    /// Theme: default, light, high-contrast, mono, or a file name from the config directory.
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,

    /// Watch the state file by polling instead of file-system events (network file systems).
    #[arg(long)]
    pub poll: bool,

    /// Also import these agent logs and keep following them (see `tokmon import --follow`).
    #[arg(long, value_name = "PATH")]
    pub follow: Vec<PathBuf>,

    /// Capture the mouse (off by default: it breaks copy and paste in ssh and tmux).
    #[arg(long)]
    pub mouse: bool,

    /// Ring the terminal bell when a budget crosses a threshold.
    #[arg(long)]
    pub bell: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
    Csv,
}

/// Parsed once per run, so the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record one usage event into the native database.
    Record(RecordArgs),
    /// Print totals over a time range, grouped by a dimension or a time bucket.
    Report(ReportArgs),
    /// Show what a model name resolves to in the built-in price table.
    Prices(PricesArgs),
    /// Set the quota counter to the cumulative value another tool shows.
    Sync(SyncArgs),
    /// Show the quota counter and every budget.
    Status(StatusArgs),
    /// Import agent logs (Claude Code, Codex, JSONL, CSV) into the native database.
    Import(ImportArgs),
    /// Write a database of generated, realistic usage events (for trying and benchmarking).
    Demo(DemoArgs),
    /// One line for Claude Code's status line: session, today, 5-hour block, quota.
    /// Reads the hook's JSON on stdin; never fails (prints a marker on error, exits 0).
    Statusline,
    /// Say what tokmon finds and uses (database, state file, logs, watcher, config) and what
    /// to do about anything broken (exit 1 then).
    Doctor,
}

#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Model name, e.g. claude-sonnet-4-5 or openai/gpt-4o.
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub agent: Option<String>,
    #[arg(long)]
    pub provider: Option<String>,
    #[arg(long)]
    pub session: Option<String>,
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub channel: Option<String>,
    #[arg(long)]
    pub operation: Option<String>,
    /// Input (prompt) tokens.
    #[arg(
        long,
        value_name = "N",
        allow_hyphen_values = true,
        default_value = "0"
    )]
    pub input: String,
    /// Output (completion) tokens.
    #[arg(
        long,
        value_name = "N",
        allow_hyphen_values = true,
        default_value = "0"
    )]
    pub output: String,
    /// Cache-write (cache creation) tokens.
    #[arg(
        long,
        value_name = "N",
        allow_hyphen_values = true,
        default_value = "0"
    )]
    pub cache_write: String,
    /// Of the --cache-write tokens, how many were 1-hour cache writes (priced above 5-minute ones).
    #[arg(
        long = "cache-write-1h",
        value_name = "N",
        allow_hyphen_values = true,
        default_value = "0"
    )]
    pub cache_write_1h: String,
    /// Cache-read tokens.
    #[arg(
        long,
        value_name = "N",
        allow_hyphen_values = true,
        default_value = "0"
    )]
    pub cache_read: String,
    /// Cost in USD; without it, cost is computed from prices.
    #[arg(long, value_name = "USD", allow_hyphen_values = true)]
    pub cost: Option<String>,
    /// Duration of the call in milliseconds.
    #[arg(long, value_name = "MS", allow_hyphen_values = true)]
    pub duration_ms: Option<String>,
    /// When it happened (RFC 3339, 'YYYY-MM-DD HH:MM:SS' in --tz, unix seconds). Default: now.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// Free JSON metadata stored with the event.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// A unique key: recording the same key twice stores one event.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

/// What `report --by` groups by: a dimension of the event ([`Dimension::ALL`], by name), a
/// time bucket, or 5-hour blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Dim(Dimension),
    Hour,
    Day,
    Week,
    Month,
    /// 5-hour blocks of Claude Code usage (the window Claude subscriptions count).
    Block,
}

/// Every `--by` value, in the order `--help` lists them: the dimensions, then the rest.
const GROUP_BY: [GroupBy; Dimension::ALL.len() + 5] = {
    let mut all = [GroupBy::Block; Dimension::ALL.len() + 5];
    let mut i = 0;
    while i < Dimension::ALL.len() {
        all[i] = GroupBy::Dim(Dimension::ALL[i]);
        i += 1;
    }
    all[i] = GroupBy::Hour;
    all[i + 1] = GroupBy::Day;
    all[i + 2] = GroupBy::Week;
    all[i + 3] = GroupBy::Month;
    all
};

impl ValueEnum for GroupBy {
    fn value_variants<'a>() -> &'a [Self] {
        &GROUP_BY
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            GroupBy::Dim(d) => PossibleValue::new(d.name()),
            GroupBy::Hour => PossibleValue::new("hour"),
            GroupBy::Day => PossibleValue::new("day"),
            GroupBy::Week => PossibleValue::new("week"),
            GroupBy::Month => PossibleValue::new("month"),
            GroupBy::Block => PossibleValue::new("block")
                .help("5-hour blocks of Claude Code usage (the window Claude subscriptions count)"),
        })
    }
}

impl GroupBy {
    /// What the report groups by; `None` for `block` (5-hour blocks, see [`crate::blocks`]).
    pub fn grouping(self) -> Option<Grouping> {
        Some(match self {
            GroupBy::Dim(d) => Grouping::Dim(d),
            GroupBy::Hour => Grouping::Time(Bucket::Hour),
            GroupBy::Day => Grouping::Time(Bucket::Day),
            GroupBy::Week => Grouping::Time(Bucket::Week),
            GroupBy::Month => Grouping::Time(Bucket::Month),
            GroupBy::Block => return None,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// 1h, 24h, 7d, 30d, today, month, all, or FROM..TO (dates or RFC 3339 times; TO excluded).
    #[arg(
        long,
        default_value = "24h",
        value_name = "RANGE",
        allow_hyphen_values = true
    )]
    pub range: String,
    /// What to group by.
    #[arg(long, value_enum, default_value = "model")]
    pub by: GroupBy,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Answer from the database as it is, without importing what is new in the logs first.
    #[arg(long)]
    pub no_import: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PricesArgs {
    /// A model name to resolve; without it, the whole table is listed.
    pub model: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// The cumulative value shown by the other tool: 350000, 350,000, 350K, 1.5M, 35万,
    /// or a copied text such as "350,000 tokens used".
    #[arg(allow_hyphen_values = true)]
    pub value: String,
    /// What this sync is about (stored as the session's event text).
    #[arg(long)]
    pub note: Option<String>,
    /// Set the quota total (also used when the state file is created).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub total: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// List every sync kept in the database, newest first.
    #[arg(long)]
    pub history: bool,
    /// Exit 3 when a budget is at or above --level (default: warning).
    #[arg(long)]
    pub check: bool,
    /// The level that --check reacts to.
    #[arg(long, value_enum, default_value = "warning")]
    pub level: Level,
    /// Answer from the database as it is, without importing what is new in the logs first.
    #[arg(long)]
    pub no_import: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ImportFormat {
    #[default]
    Auto,
    ClaudeCode,
    Codex,
    Jsonl,
    Csv,
}

impl ImportFormat {
    /// The format `--format` forces, or `None` for auto-detection.
    pub fn forced(self) -> Option<Format> {
        match self {
            ImportFormat::Auto => None,
            ImportFormat::ClaudeCode => Some(Format::ClaudeCode),
            ImportFormat::Codex => Some(Format::Codex),
            ImportFormat::Jsonl => Some(Format::Jsonl),
            ImportFormat::Csv => Some(Format::Csv),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Files or directories (e.g. ~/.claude, ~/.codex/sessions, usage.csv). Without any:
    /// the Claude Code and Codex logs that discovery finds, and the config's `logs`.
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: ImportFormat,
    /// Keep watching the paths and import appended lines as they arrive.
    #[arg(long)]
    pub follow: bool,
    /// Any bad line is an error (exit 2) and nothing is imported from that file.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DemoSchema {
    #[default]
    Native,
    Bot,
    ChatAgent,
    Desktop,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// How many events to write.
    #[arg(
        long,
        default_value = "100000",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub rows: String,
    /// The database file to create (must not exist).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Which schema to write: native, or a foreign tracker's.
    #[arg(long = "as", value_enum, default_value = "native")]
    pub as_schema: DemoSchema,
    /// Spread the events over this many days before now.
    #[arg(long, default_value = "90", allow_hyphen_values = true)]
    pub days: u32,
    /// Seed of the generator (the same seed gives the same database).
    #[arg(long, default_value = "1", allow_hyphen_values = true)]
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--by` takes every dimension of the event by its name, then the time buckets and
    /// blocks, in that order (as `--help` lists them).
    #[test]
    fn by_takes_every_dimension_by_name() {
        let names: Vec<String> = GroupBy::value_variants()
            .iter()
            .filter_map(|g| g.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect();
        let mut expected: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
        expected.extend(["hour", "day", "week", "month", "block"]);
        assert_eq!(names, expected);
        for d in Dimension::ALL {
            let g = GroupBy::from_str(d.name(), false).unwrap();
            assert_eq!(g.grouping(), Some(Grouping::Dim(d)));
        }
        assert_eq!(GroupBy::from_str("block", false).unwrap().grouping(), None);
    }
}

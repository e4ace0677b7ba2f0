//! One module per subcommand. They print to stdout and never touch the terminal UI.

pub mod prices;
pub mod status;
pub mod statusline;
pub mod sync;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::cli::{CostMode, GlobalArgs};
use crate::config::Config;
use crate::error::bad_input;
use crate::timefmt::Zone;

/// What every command needs: the config and the resolved paths, zones and modes.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub config: Config,
    /// The config file that was read, if any.
    pub config_path: Option<PathBuf>,
    /// Usage database: flag, `TOKMON_DB`, config, platform default.
    pub db: PathBuf,
    /// Whether the database was named (flag, `TOKMON_DB` or config) rather than the default.
    pub db_named: bool,
    /// Whether agent logs are looked for (`--no-discover`, config `discover`).
    pub discover: bool,
    /// Quota state file: flag, `TOKMON_STATE`, config, platform default.
    pub state: PathBuf,
    /// Forced schema (`--schema` or config).
    pub schema: Option<String>,
    /// Zone for showing times and cutting calendar ranges.
    pub zone: Zone,
    /// Zone of naive timestamps in foreign databases.
    pub foreign_zone: Zone,
    pub cost_mode: CostMode,
    /// The clock, fixed once per command so every part agrees.
    pub now: DateTime<Utc>,
}

impl Ctx {
    /// Resolve everything from the global flags (which already include the environment).
    pub fn from_args(g: &GlobalArgs) -> anyhow::Result<Ctx> {
        let (config, config_path) = Config::load(g.config.as_deref())?;
        if let Some(path) = &config_path {
            check_config(&config)
                .map_err(|e| bad_input(format!("config file {}: {e}", path.display())))?;
        }
        let zone = match g.tz.as_deref().or(config.tz.as_deref()) {
            Some(s) => Zone::parse(s).map_err(|e| bad_input(e.0))?,
            None => Zone::Local,
        };
        let foreign_zone = match config.foreign_tz.as_deref() {
            Some(s) => {
                Zone::parse(s).map_err(|e| bad_input(format!("config foreign_tz: {}", e.0)))?
            }
            None => Zone::UTC,
        };
        let cost_mode = match (g.cost_mode, config.cost_mode.as_deref()) {
            (Some(m), _) => m,
            (None, Some(s)) => <CostMode as clap::ValueEnum>::from_str(s, true).map_err(|_| {
                bad_input(format!(
                    "config cost_mode = '{s}': use auto, stored or calculate"
                ))
            })?,
            (None, None) => CostMode::Auto,
        };
        Ok(Ctx {
            db_named: g.db.is_some() || config.db.is_some(),
            discover: !g.no_discover && config.discover.unwrap_or(true),
            db: g
                .db
                .clone()
                .or_else(|| config.db.clone())
                .unwrap_or_else(crate::paths::default_db),
            state: g
                .state
                .clone()
                .or_else(|| config.state.clone())
                .unwrap_or_else(crate::paths::default_state),
            schema: g.schema.clone().or_else(|| config.schema.clone()),
            zone,
            foreign_zone,
            cost_mode,
            now: Utc::now(),
            config,
            config_path,
        })
    }

    /// Open the usage database for reading (native or foreign). A foreign database gets a
    /// rollup cache in the platform cache directory.
    pub fn open_source(&self) -> anyhow::Result<crate::store::Source> {
        let mut source = crate::store::Source::open(
            &self.db,
            self.schema.as_deref(),
            &self.config,
            self.foreign_zone,
        )?;
        source.use_cache_dir(&crate::paths::cache_dir());
        Ok(source)
    }

    /// The agent logs of this run. Discovery applies only when no database was named (it feeds
    /// the default database) and is not turned off; the config's `logs` always apply.
    pub fn log_paths(&self) -> crate::discover::LogPaths {
        crate::discover::log_paths(self.discover && !self.db_named, &self.config.logs)
    }

    /// Import what is new in the logs before answering (see [`crate::discover::refresh`]).
    pub fn refresh_logs(&self) {
        let paths = self.log_paths().existing();
        crate::discover::refresh(&self.db, &paths, self.foreign_zone);
    }
}

pub mod budgets;
pub mod demo;
pub mod doctor;
pub mod import;
pub mod output;
pub mod record;
pub mod report;

/// The checks of a config that need more than its types, in the order a reader meets them:
/// the block limit, the `[[table]]` mappings, every budget's fields and unique budget names.
/// The message names the field (the caller adds the file).
pub fn check_config(cfg: &Config) -> Result<(), crate::error::BadInput> {
    if let Some(l) = &cfg.block_limit {
        crate::blocks::Limit::parse(l)?;
    }
    cfg.validate_tables()?;
    crate::budget::compile_all(&cfg.budgets)
        .map(|_| ())
        .map_err(|e| crate::error::BadInput(e.to_string()))
}

//! Where files live: command-line flag, then environment variable, then config file,
//! then the platform data / config directory.

use std::path::PathBuf;

use directories::ProjectDirs;

fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "tokmon")
}

/// The platform data directory (`~/.local/share/tokmon` on Linux).
pub fn data_dir() -> PathBuf {
    project_dirs()
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".tokmon"))
}

/// The platform config directory (`~/.config/tokmon` on Linux).
pub fn config_dir() -> PathBuf {
    project_dirs()
        .map(|d| d.config_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".tokmon"))
}

/// Default config file: `<config dir>/config.toml`.
pub fn default_config_file() -> PathBuf {
    config_dir().join("config.toml")
}

/// Default native database: `<data dir>/tokmon.db`.
pub fn default_db() -> PathBuf {
    data_dir().join("tokmon.db")
}

/// Default quota state file: `<data dir>/state.json`.
pub fn default_state() -> PathBuf {
    data_dir().join("state.json")
}

/// Rollup caches of foreign databases (never written beside them).
pub fn cache_dir() -> PathBuf {
    project_dirs()
        .map(|d| d.cache_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".tokmon/cache"))
}

/// Where the log file goes (never the screen).
pub fn log_dir() -> PathBuf {
    data_dir().join("logs")
}

/// A home-relative path for display.
pub fn display_path(p: &std::path::Path) -> String {
    let s = p.display().to_string();
    if let Some(home) = std::env::var_os("HOME").map(std::path::PathBuf::from)
        && !home.as_os_str().is_empty()
        && home != std::path::Path::new("/")
        && let Ok(rest) = p.strip_prefix(&home)
    {
        return format!("~/{}", rest.display());
    }
    s
}

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

/// A home-relative path for display (a PostgreSQL URL without its password).
pub fn display_path(p: &std::path::Path) -> String {
    if is_postgres_url(p) {
        return shown_db(p);
    }
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

/// Whether a `--db` value names a PostgreSQL database rather than a file. Any value that
/// starts with `postgres:` or `postgresql:` does (a malformed one is then refused as a URL,
/// never taken for a file name).
pub fn is_postgres_url(db: &std::path::Path) -> bool {
    let b = db.as_os_str().as_encoded_bytes();
    let starts = |p: &str| b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    starts("postgres:") || starts("postgresql:")
}

/// The URL with its password (in the user part or as a `password=` parameter) replaced by
/// `***`, for every message and log line.
pub fn redact_postgres_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => return "postgres:***".to_string(),
    };
    // The user part ends at the last '@' (a password may hold '/', '?' or '@' unescaped).
    let rest = match rest.rfind('@') {
        Some(at) => {
            let user = &rest[..at];
            match user.find(':') {
                Some(colon) => format!("{}:***{}", &user[..colon], &rest[at..]),
                None => rest.to_string(),
            }
        }
        None => rest.to_string(),
    };
    let Some(q) = rest.find('?') else {
        return format!("{scheme}{rest}");
    };
    let (path, query) = rest.split_at(q + 1);
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{scheme}{path}{}", params.join("&"))
}

/// How a database is shown in messages: a PostgreSQL URL without its password, a file path
/// as it is.
pub fn shown_db(db: &std::path::Path) -> String {
    if is_postgres_url(db) {
        redact_postgres_url(&db.to_string_lossy())
    } else {
        db.display().to_string()
    }
}

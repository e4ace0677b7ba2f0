//! Telling a PostgreSQL URL from a file path, and showing one without its password.

use std::path::Path;

/// Whether a `--db` value names a PostgreSQL database rather than a file. Any value that
/// starts with `postgres:` or `postgresql:` does (a malformed one is then refused as a URL,
/// never taken for a file name).
pub fn is_url(db: &Path) -> bool {
    let b = db.as_os_str().as_encoded_bytes();
    let starts = |p: &str| b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    starts("postgres:") || starts("postgresql:")
}

/// The URL with its password (in the user part or as a `password=` parameter) replaced by
/// `***`, for every message and log line.
pub fn redact(url: &str) -> String {
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
pub fn shown(db: &Path) -> String {
    if is_url(db) {
        redact(&db.to_string_lossy())
    } else {
        db.display().to_string()
    }
}

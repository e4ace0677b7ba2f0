//! The monitor's side of the quota state file, all through `crate::state_file`: the preview
//! shown while a value is typed (the same parser as `tokmon sync`), the sync on Enter (the
//! same function, so locking, atomic writes and history are the same), and the watcher that
//! feeds the gauge.

use std::path::{Path, PathBuf};

use super::quota::{Preview, Quota, QuotaMsg};
use crate::config::Config;
use crate::error::BadInput;
use crate::state_file::{self, StateMsg, StateView, SyncRequest, WatchOptions};
use crate::timefmt::{Zone, parse_stored_timestamp};

/// Why the sync dialog cannot sync, in the words `tokmon sync` would use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The typed value is not a token count.
    #[error(transparent)]
    Value(#[from] BadInput),
    /// The state file could not be written (the error with its causes, as `tokmon sync`
    /// prints it).
    #[error("{0}")]
    Write(String),
}

/// What syncing `input` would do, or why it cannot be read (the message `tokmon sync`
/// would print).
pub fn preview(input: &str, current: Option<&Quota>) -> Result<Preview, SyncError> {
    let view = StateView {
        used: current.map_or(0, |q| q.used),
        total: current.map(|q| q.total).filter(|t| *t > 0),
        ..Default::default()
    };
    let plan = state_file::preview(&view, input)?;
    Ok(Preview {
        value: plan.value,
        increment: if plan.unchanged { 0 } else { plan.increment },
        reset: plan.reset,
        total: plan.total,
    })
}

/// What a sync from the monitor needs besides the typed value.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    pub state: PathBuf,
    pub config: Config,
    pub zone: Zone,
}

/// Sync the counter to `input` with `tokmon sync`'s own function (the history goes beside the
/// state file, whatever database is monitored). Returns the line for the status bar and the
/// state after the sync, or the error as `tokmon sync` would say it.
pub fn sync(target: &SyncTarget, input: &str) -> Result<(String, Quota), SyncError> {
    let value = state_file::parse_sync_value(input)?;
    let mut req = SyncRequest::new(&target.state, value);
    if let Some(t) = target.config.sync.default_total.filter(|t| *t > 0) {
        req.default_total = t;
    }
    if let Some(cap) = target.config.sync.session_cap {
        req.session_cap = cap;
    }
    req.zone = target.zone;
    let out = state_file::sync(&req).map_err(|e| SyncError::Write(format!("{e:#}")))?;
    let text = crate::commands::sync::describe(&out)
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    Ok((text, quota_of(&out.view, &target.zone)))
}

/// The gauge's numbers from a state view.
pub fn quota_of(v: &StateView, zone: &Zone) -> Quota {
    Quota {
        used: v.used,
        total: v.total.unwrap_or(0),
        last_sync_ms: v
            .last_updated
            .as_deref()
            .and_then(|s| parse_stored_timestamp(s, zone)),
    }
}

fn quota_msg(m: StateMsg, zone: &Zone) -> QuotaMsg {
    match m {
        StateMsg::Loaded(v) => QuotaMsg::State(quota_of(&v, zone)),
        StateMsg::Missing => QuotaMsg::Missing,
        StateMsg::Problem(p) => QuotaMsg::Problem(p),
    }
}

/// Follow the state file; every reading becomes a [`QuotaMsg`] given to `tx`. `None` (and a
/// problem on the gauge) when the watcher cannot start.
pub fn watch(
    path: &Path,
    poll: bool,
    zone: Zone,
    tx: impl Fn(QuotaMsg) + Clone + Send + 'static,
) -> Option<state_file::StateWatcher> {
    let opts = WatchOptions {
        poll,
        ..Default::default()
    };
    let out = tx.clone();
    match state_file::watch_with(path.to_path_buf(), opts, move |m| {
        out(quota_msg(m, &zone));
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("cannot watch {}: {e}", path.display());
            tx(QuotaMsg::Problem(format!(
                "cannot watch {}: {e}",
                path.display()
            )));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_uses_the_sync_parser() {
        let q = Quota {
            used: 620_000,
            total: 1_000_000,
            last_sync_ms: None,
        };
        let p = preview("700K", Some(&q)).unwrap();
        assert_eq!((p.value, p.increment, p.reset), (700_000, 80_000, false));
        let p = preview("35万", Some(&q)).unwrap();
        assert_eq!((p.value, p.increment, p.reset), (350_000, 350_000, true));
        assert_eq!(preview("620,000", Some(&q)).unwrap().increment, 0);
        let e = preview("lots", Some(&q)).unwrap_err();
        assert_eq!(
            e.to_string(),
            state_file::parse_sync_value("lots").unwrap_err().0,
            "the message tokmon sync prints"
        );
        assert!(e.to_string().contains("lots"), "{e}");
    }

    #[test]
    fn sync_writes_the_state_file_and_history() {
        let dir = tempfile::tempdir().unwrap();
        let target = SyncTarget {
            state: dir.path().join("state.json"),
            config: Config::default(),
            zone: Zone::UTC,
        };
        let (text, q) = sync(&target, "700K").unwrap();
        assert!(text.contains("700,000"), "{text}");
        assert_eq!(q.used, 700_000);
        let (rows, _) = state_file::history::history_of(&target.state).unwrap();
        assert_eq!(rows.len(), 1);
        let e = sync(&target, "nope").unwrap_err();
        assert!(matches!(e, SyncError::Value(_)), "{e:?}");
        assert!(e.to_string().contains("nope"), "{e}");
        // A state file that is a directory cannot be written: said as tokmon sync says it.
        let target = SyncTarget {
            state: dir.path().to_path_buf(),
            ..target
        };
        let e = sync(&target, "700K").unwrap_err();
        assert!(matches!(e, SyncError::Write(_)), "{e:?}");
        assert!(
            e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
    }
}

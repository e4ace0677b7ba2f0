//! The monitor's side of the quota state file: the preview shown while a value is typed,
//! the sync on Enter, and the watcher that feeds the gauge.

use std::path::Path;

use super::quota::{Preview, Quota, QuotaMsg};

/// What syncing `input` would do, or why it cannot be read.
pub fn preview(input: &str, current: Option<&Quota>) -> Result<Preview, String> {
    let value = parse_value(input)?;
    let used = current.map_or(0, |q| q.used);
    let reset = value < used;
    Ok(Preview {
        value,
        increment: if reset { value } else { value - used },
        reset,
        total: current.map(|q| q.total),
    })
}

/// Interim reader of typed values (plain numbers with separators and K/M).
fn parse_value(input: &str) -> Result<u64, String> {
    let t: String = input
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | ' ' | '_'))
        .collect();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        _ => (&t[..], 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok((v * mult).round() as u64),
        _ => Err(format!(
            "cannot read '{}' as a token count: use 350000, 350,000, 350K or 1.5M",
            input.trim()
        )),
    }
}

/// Write a sync of `input` to the state file (same code as `tokmon sync`). Returns the
/// line for the status bar.
pub fn sync(_state: &Path, _db: &Path, input: &str) -> Result<String, String> {
    Err(format!(
        "cannot sync '{input}': the state file writer is not available in this build"
    ))
}

/// Read the state file once.
pub fn read(path: &Path) -> QuotaMsg {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return QuotaMsg::Missing,
        Err(e) => return QuotaMsg::Problem(format!("cannot read {}: {e}", path.display())),
    };
    let v: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return QuotaMsg::Problem(format!("{} is not valid JSON: {e}", path.display())),
    };
    let tu = &v["token_usage"];
    let num = |x: &serde_json::Value| x.as_u64().or_else(|| x.as_f64().map(|f| f.max(0.0) as u64));
    let last = tu["sessions"][0]["timestamp"]
        .as_str()
        .or(v["last_updated"].as_str())
        .and_then(|s| crate::timefmt::parse_stored_timestamp(s, &crate::timefmt::Zone::Local));
    QuotaMsg::State(Quota {
        used: num(&tu["used"]).unwrap_or(0),
        total: num(&tu["total"]).unwrap_or(0),
        last_sync_ms: last,
    })
}

/// Stops the watcher when dropped.
pub struct Watch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Watch the state file and send a reading whenever it changes (interim: by polling).
pub fn watch(
    path: std::path::PathBuf,
    _poll: bool,
    tx: tokio::sync::mpsc::UnboundedSender<super::app::Msg>,
) -> Watch {
    use std::sync::atomic::Ordering;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut last = None;
        let mut first = true;
        let mut sent: Option<QuotaMsg> = None;
        while !flag.load(Ordering::SeqCst) {
            let meta = std::fs::metadata(&path)
                .ok()
                .map(|m| (m.modified().ok(), m.len()));
            if first || meta != last {
                first = false;
                last = meta;
                let m = read(&path);
                if sent.as_ref() != Some(&m) && tx.send(super::app::Msg::Quota(m.clone())).is_err()
                {
                    return;
                }
                sent = Some(m);
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    });
    Watch { stop }
}

//! The monitor's tail thread, driven directly by a test (no screen).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use tokio::sync::mpsc::UnboundedReceiver;
use tokmon::config::Config;
use tokmon::timefmt::Zone;
use tokmon::tui::app::Msg;
use tokmon::tui::live::{Cmd, Tail, TailConfig};

/// A tail thread on `db` (a file or a `postgres://` URL) in UTC with the automatic cost mode,
/// as the monitor starts it: its thread, its command sender and its messages.
pub fn spawn_tail(
    db: impl Into<PathBuf>,
    config: Config,
    cache_dir: Option<PathBuf>,
) -> (JoinHandle<()>, Sender<Cmd>, UnboundedReceiver<Msg>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (cmds, cmd_rx) = std::sync::mpsc::channel();
    let thread = Tail::new(
        TailConfig {
            db: db.into(),
            schema: None,
            config,
            foreign_zone: Zone::UTC,
            zone: Zone::UTC,
            cost_mode: tokmon::cli::CostMode::Auto,
            quota_state: None,
            cache_dir,
        },
        cmd_rx,
        tx,
    )
    .spawn();
    (thread, cmds, rx)
}

/// The first of the tail's messages that `pick` accepts (others are dropped), or a panic
/// naming `what` after 20 s.
pub fn wait_for<T>(
    rx: &mut UnboundedReceiver<Msg>,
    what: &str,
    mut pick: impl FnMut(Msg) -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match rx.try_recv() {
            Ok(m) => {
                if let Some(t) = pick(m) {
                    return t;
                }
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
    panic!("timed out waiting for {what}");
}

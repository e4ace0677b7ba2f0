//! Terminal hygiene: one `restore()` used by the drop guard, the panic hook and the signal
//! handlers (SIGTERM, SIGHUP), so the terminal is given back in every case.

use std::io;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use tokio::sync::mpsc::UnboundedSender;

use super::app::Msg;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static MOUSE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();
/// Some thread of the monitor panicked: the loop must end and the process exit non-zero.
static PANICKED: AtomicBool = AtomicBool::new(false);
/// Wakes the event loop as soon as a panic happened.
static PANIC_WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// The exit code after a panic (what Rust uses for a panic on the main thread).
pub const PANIC_EXIT: u8 = 101;

/// Install the panic hook (once): whichever thread panics — the loop, the tail, the budget
/// evaluation, a watcher, an importer — the terminal is restored, the panic is recorded and
/// the event loop is woken so it ends; then the default report is printed on the restored
/// screen. Installed before any thread of the monitor starts.
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Recorded first, so the loop draws no frame over the shell after the restore.
            PANICKED.store(true, Ordering::SeqCst);
            restore();
            PANIC_WAKE.notify_one();
            tracing::error!("panic: {info}");
            previous(info);
        }));
    });
}

/// Whether a thread of the monitor has panicked.
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// Resolves once a panic is recorded (at once if one already was).
pub async fn panic_signal() {
    if panicked() {
        return;
    }
    PANIC_WAKE.notified().await;
}

/// Give the terminal back: cooked mode, main screen, cursor shown, no mouse capture.
/// Safe to call any number of times and from any thread.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let mut out = io::stdout();
    if MOUSE.swap(false, Ordering::SeqCst) {
        let _ = crossterm::execute!(out, DisableMouseCapture);
    }
    let _ = crossterm::execute!(
        out,
        crossterm::terminal::EndSynchronizedUpdate,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped.
pub struct Guard;

impl Guard {
    pub fn enter(mouse: bool) -> io::Result<Guard> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut out = io::stdout();
        crossterm::execute!(out, EnterAlternateScreen, EnableBracketedPaste)?;
        if mouse {
            crossterm::execute!(out, EnableMouseCapture)?;
            MOUSE.store(true, Ordering::SeqCst);
        }
        Ok(Guard)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// SIGTERM and SIGHUP (an ssh drop) end the loop like `q` does; the guard then restores.
pub fn forward_signals(tx: UnboundedSender<Msg>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        for kind in [SignalKind::terminate(), SignalKind::hangup()] {
            let tx = tx.clone();
            match signal(kind) {
                Ok(mut s) => {
                    tokio::spawn(async move {
                        if s.recv().await.is_some() {
                            tracing::info!(?kind, "signal: quitting");
                            let _ = tx.send(Msg::Quit);
                        }
                    });
                }
                Err(e) => tracing::warn!("cannot listen for {kind:?}: {e}"),
            }
        }
    }
    #[cfg(not(unix))]
    drop(tx);
}

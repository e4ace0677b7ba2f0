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
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
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

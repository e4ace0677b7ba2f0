//! The live monitor (`tokmon` with no subcommand).
//!
//! Threads: the tail owns the database and sends rows and snapshots; the state-file watcher
//! sends quota readings; the event loop (a single-threaded tokio runtime) waits for a key,
//! a message, a signal or a slow tick, updates the model, and draws only when something
//! changed, at most 20 frames a second.

pub mod agent_logs;
pub mod app;
pub mod breakpoints;
mod demo_mode;
pub mod export;
pub mod gaps;
pub mod keys;
pub mod live;
pub mod model;
pub mod pg_listen;
pub mod quota;
pub mod sync;
mod terminal;
pub mod theme;
pub mod ui;

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, MouseEventKind};
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::cli::MonitorArgs;
use crate::commands::Ctx;
use crate::error::bad_input;
use app::{Action, App, Effect, Msg, SystemClock};
use live::{Cmd, Tail, TailConfig};

/// Frames are at least this far apart (20 a second).
pub const FRAME: Duration = Duration::from_millis(50);
/// The slow tick: clocks on screen, sliding ranges, and re-reading the terminal size in
/// case a resize was missed (tmux sometimes does).
pub const TICK: Duration = Duration::from_secs(1);

/// Open the monitor. Refuses to start without a terminal on stdout.
pub fn run(ctx: &Ctx, args: &MonitorArgs) -> anyhow::Result<u8> {
    if !io::stdout().is_terminal() {
        return Err(bad_input(
            "the monitor needs a terminal on stdout; for scripts use `tokmon report` or `tokmon status`",
        ));
    }
    // A FIFO or a device as the database would block or fail behind the screen: refused now.
    if !args.demo {
        crate::regular::check_regular_or_missing(&ctx.db, "database")?;
    }
    let _log = init_logging();
    // Before any thread starts: a panic anywhere restores the terminal and ends the monitor.
    terminal::install_panic_hook();
    let no_color = theme::no_color_requested();
    let wanted = args.theme.as_deref().or(ctx.config.theme.as_deref());
    let user_themes = crate::paths::config_dir().join("themes");
    let themes = theme::Themes::load(wanted, Some(&user_themes), no_color)
        .map_err(|e| bad_input(e.to_string()))?;

    let demo = if args.demo {
        Some(demo_mode::Demo::start(ctx.now)?)
    } else {
        None
    };
    let (db, state) = match &demo {
        Some(d) => (d.db.clone(), d.state.clone()),
        None => (ctx.db.clone(), ctx.state.clone()),
    };
    tracing::info!(db = %crate::store::shown(&db), state = %state.display(), "monitor starting");
    let (msg_tx, msg_rx) = unbounded_channel();
    // Agent logs: `--follow PATH`, and what discovery finds (see `crate::discover`), are
    // imported into the monitored database at start and followed while it is shown (the same
    // code as `tokmon import --follow`); the active 5-hour block is watched for its gauge.
    let _agent_logs = agent_logs::Watchers::start(
        agent_logs::Setup {
            paths: log_paths(ctx, args, &db)?,
            db: db.clone(),
            config: ctx.config.clone(),
            schema: if args.demo { None } else { ctx.schema.clone() },
            foreign_zone: ctx.foreign_zone,
            cost_mode: ctx.cost_mode,
            cache_dir: Some(crate::paths::cache_dir()),
        },
        {
            let tx = msg_tx.clone();
            std::sync::Arc::new(move |m| tx.send(Msg::AgentLogs(m)).is_ok())
        },
    )?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
    let tail = Tail::new(
        TailConfig {
            db: if args.demo {
                db.clone()
            } else {
                ctx.db.clone()
            },
            schema: if args.demo { None } else { ctx.schema.clone() },
            config: ctx.config.clone(),
            foreign_zone: ctx.foreign_zone,
            zone: ctx.zone,
            cost_mode: ctx.cost_mode,
            // The quota's burn rate comes from the state file's own sync history.
            quota_state: Some(state.clone()),
            cache_dir: Some(crate::paths::cache_dir()),
        },
        cmd_rx,
        msg_tx.clone(),
    )
    .spawn();
    let quota_tx = msg_tx.clone();
    let watcher = sync::watch(&state, args.poll, ctx.zone, move |m| {
        let _ = quota_tx.send(Msg::Quota(m));
    });

    let mut app = App::new(
        db.clone(),
        state.clone(),
        themes,
        Arc::new(SystemClock),
        ctx.zone,
        ctx.cost_mode,
    );
    app.set_bell(args.bell);
    let first = app.load_request();
    let _ = cmd_tx.send(Cmd::Load(first));

    let guard = terminal::Guard::enter(args.mouse)?;
    let mut term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let mut ports = Ports {
        cmd_tx,
        msg_tx: msg_tx.clone(),
        target: sync::SyncTarget {
            state,
            config: ctx.config.clone(),
            zone: ctx.zone,
        },
        rt: rt.handle().clone(),
    };
    let result = rt.block_on(async {
        terminal::forward_signals(msg_tx.clone());
        run_loop(
            &mut term,
            &mut app,
            EventStream::new(),
            msg_rx,
            &mut |e| ports.apply(e),
            true,
        )
        .await
    });
    // Dropped, ratatui's terminal shows the cursor again and, when it cannot (the terminal
    // is gone: its window closed, the ssh link dropped), says so on stderr, which is that
    // terminal too: the failed write panics. The guard gives the terminal back (the cursor
    // included) instead.
    std::mem::forget(term);
    drop(guard);
    drop(ports);
    drop(watcher);
    let _ = tail.join();
    drop(demo);
    rt.shutdown_timeout(Duration::from_millis(100));
    if terminal::panicked() {
        // The terminal may be gone (its tmux session killed): not being able to say so is
        // no reason to panic on the way out.
        let _ = writeln!(
            std::io::stderr(),
            "tokmon: the monitor stopped after an internal error (reported above); the terminal was restored. \
             Please report it, with the log in {}",
            crate::paths::log_dir().display()
        );
        return Ok(terminal::PANIC_EXIT);
    }
    match result {
        Ok(()) => Ok(0),
        // The terminal gone (its window closed, the ssh link dropped) ends the monitor as
        // quitting does: reading or drawing fails then, and there is no one left to tell.
        Err(e) if terminal_gone(&e) => {
            tracing::info!("terminal gone: quitting ({e:#})");
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// An error of the terminal's own input or output that says it hung up (EIO).
fn terminal_gone(e: &anyhow::Error) -> bool {
    #[cfg(unix)]
    return e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EIO))
    });
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// The logs the monitor imports and follows: every `--follow` path (each must exist), then
/// the discovered and configured ones when the database is tokmon's own (or not there yet).
fn log_paths(
    ctx: &Ctx,
    args: &MonitorArgs,
    db: &std::path::Path,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    for p in &args.follow {
        crate::regular::check_log_path(p, "--follow")?;
    }
    let mut paths = args.follow.clone();
    if !args.demo && crate::discover::importable(db) {
        for p in ctx.log_paths().existing() {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    Ok(paths)
}

/// Logs go to a file in the data directory, never to the screen.
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = crate::paths::log_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let (writer, guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(&dir, "tokmon.log"));
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOKMON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Carries out effects for the real monitor.
struct Ports {
    cmd_tx: std::sync::mpsc::Sender<Cmd>,
    msg_tx: UnboundedSender<Msg>,
    target: sync::SyncTarget,
    rt: tokio::runtime::Handle,
}

impl Ports {
    fn apply(&mut self, e: Effect) {
        match e {
            Effect::Load(r) => {
                let _ = self.cmd_tx.send(Cmd::Load(r));
            }
            Effect::Reload(r) => {
                let _ = self.cmd_tx.send(Cmd::Reload(r));
            }
            Effect::Quota(q) => {
                let _ = self.cmd_tx.send(Cmd::Quota(q));
            }
            Effect::Export(export, dir) => {
                let tx = self.msg_tx.clone();
                self.rt.spawn_blocking(move || {
                    let r = export.write(&dir).map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Msg::Exported(r));
                });
            }
            Effect::Sync(value) => {
                let (target, tx) = (self.target.clone(), self.msg_tx.clone());
                self.rt.spawn_blocking(move || {
                    let r = sync::sync(&target, &value).map(|(text, quota)| {
                        // Show the new counter now; the watcher confirms it shortly.
                        let _ = tx.send(Msg::Quota(quota::QuotaMsg::State(quota)));
                        text
                    });
                    let _ = tx.send(Msg::SyncDone(r));
                });
            }
        }
    }
}

/// Apply one terminal event. Returns whether the screen changed; effects go to the outbox.
pub fn handle_event(app: &mut App, ev: Event) -> bool {
    let action = match ev {
        Event::Key(k) => app.handle_key(k),
        Event::Paste(s) => Some(Action::Paste(s)),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollDown => Some(Action::Down),
            MouseEventKind::ScrollUp => Some(Action::Up),
            _ => None,
        },
        Event::Resize(..) => return true,
        _ => None,
    };
    let Some(action) = action else {
        return false;
    };
    app.update(action)
}

/// The event loop, generic over the backend so tests run it on `TestBackend`. It sleeps
/// until a terminal event, a message, or the slow tick; then drains what is queued and
/// draws once if anything changed, no sooner than [`FRAME`] after the previous frame.
/// `real_terminal` wraps frames in synchronized output and lets the bell ring.
pub async fn run_loop<B, S>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut events: S,
    mut msgs: UnboundedReceiver<Msg>,
    fx: &mut dyn FnMut(Effect),
    real_terminal: bool,
) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = io::Result<Event>> + Unpin,
{
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut size = terminal.size()?;
    let mut msgs_open = true;
    let mut events_open = true;
    loop {
        let wait = last_draw.map_or(Duration::ZERO, |t| FRAME.saturating_sub(t.elapsed()));
        for e in app.take_effects() {
            fx(e);
        }
        if dirty && wait.is_zero() && !terminal::panicked() {
            let s = terminal.size()?;
            app.set_viewport(ratatui::layout::Rect::new(0, 0, s.width, s.height));
            draw(terminal, app, real_terminal)?;
            // One bell per new alert (a few at most); the count is cleared either way.
            let bells = app.take_bells().min(3) as usize;
            if bells > 0 && real_terminal {
                use std::io::Write;
                let _ = io::stdout()
                    .write_all(&b"\x07".repeat(bells))
                    .and_then(|()| io::stdout().flush());
            }
            dirty = false;
            last_draw = Some(Instant::now());
        }
        if app.should_quit() {
            return Ok(());
        }
        if terminal::panicked() {
            anyhow::bail!("a thread of the monitor panicked");
        }
        tokio::select! {
            // A panic in any thread (see `terminal::install_panic_hook`) ends the loop at once.
            () = terminal::panic_signal() => {}
            ev = events.next(), if events_open => match ev {
                Some(Ok(ev)) => dirty |= handle_event(app, ev),
                Some(Err(e)) => return Err(e.into()),
                None => events_open = false,
            },
            m = msgs.recv(), if msgs_open => match m {
                Some(m) => {
                    dirty |= app.on_msg(m);
                    while let Ok(m) = msgs.try_recv() {
                        dirty |= app.on_msg(m);
                    }
                }
                None => msgs_open = false,
            },
            _ = tick.tick() => {
                dirty |= app.on_tick();
                let now = terminal.size()?;
                if now != size {
                    size = now;
                    dirty = true;
                }
            }
            _ = tokio::time::sleep(wait), if dirty => {}
        }
    }
}

/// One frame, wrapped in synchronized output so the terminal never shows half of it.
fn draw<B>(terminal: &mut Terminal<B>, app: &App, real_terminal: bool) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    if real_terminal {
        let _ = crossterm::execute!(io::stdout(), crossterm::terminal::BeginSynchronizedUpdate);
    }
    let r = terminal.draw(|f| ui::draw(f, app));
    if real_terminal {
        let _ = crossterm::execute!(io::stdout(), crossterm::terminal::EndSynchronizedUpdate);
    }
    r?;
    Ok(())
}

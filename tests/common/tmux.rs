//! The real binary in a private tmux server (its own `-L` socket), killed on drop.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static N: AtomicUsize = AtomicUsize::new(0);

/// Whether tmux is installed (`.ci/run` installs it).
pub fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn shell_quote(p: &str) -> String {
    format!("'{}'", p.replace('\'', "'\\''"))
}

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Run `cmd` (a shell command line) in a `w`×`h` pane.
    pub fn start(cmd: &str, w: u16, h: u16) -> Tmux {
        let socket = format!(
            "tokmon-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let t = Tmux { socket };
        let out = t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            cmd,
        ]);
        assert!(out.status.success(), "tmux new-session failed: {out:?}");
        t
    }

    /// The monitor with its own home (and `env`, `NAME=value` pairs) on `db`; when it exits
    /// the pane says `EXITED <code>`.
    pub fn monitor(home: &Path, db: &str, env: &[(&str, &str)], w: u16, h: u16) -> Tmux {
        let home = shell_quote(&home.display().to_string());
        let extra: String = env
            .iter()
            .map(|(k, v)| format!("{k}={} ", shell_quote(v)))
            .collect();
        let cmd = format!(
            "env HOME={home} XDG_DATA_HOME={home}/data XDG_CONFIG_HOME={home}/config TOKMON_DB={db} \
             TOKMON_STATE={home}/state.json {extra}{bin} --tz UTC; echo EXITED $?; sleep 60",
            db = shell_quote(db),
            bin = shell_quote(env!("CARGO_BIN_EXE_tokmon")),
        );
        Tmux::start(&cmd, w, h)
    }

    pub fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    /// Type `s` as literal text (no key names).
    pub fn text(&self, s: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "t", "-l", s])
                .status
                .success()
        );
    }

    /// Poll the pane until `pred` holds (`limit` at most); the screen then.
    pub fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Look at the pane every millisecond until `pred` holds: how long that took, or `None`
    /// after `limit` (for measuring).
    pub fn poll(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if pred(&self.screen()) {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    /// Poll the pane until `pred` holds (15 s at most).
    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for(what, Duration::from_secs(15), pred)
    }

    pub fn wait_text(&self, text: &str) -> String {
        self.wait(text, |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The "N events" count of the monitor's header.
pub fn events_shown(screen: &str) -> Option<u64> {
    let first = screen.lines().next()?;
    let end = first.find(" events")?;
    let start = first[..end]
        .rfind(|c: char| !(c.is_ascii_digit() || c == ','))
        .map_or(0, |i| i + 1);
    first[start..end].replace(',', "").parse().ok()
}

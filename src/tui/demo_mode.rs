//! `tokmon --demo`: a fresh demo database with three weeks of history and a state file, in
//! the data directory, and a background writer that adds an event about every second.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::demo::{Flavor, Generator, generate};
use crate::store::native::{insert_events, open_rw};

const ROWS: u64 = 60_000;
const DAYS: u32 = 21;

pub struct Demo {
    pub db: PathBuf,
    pub state: PathBuf,
    stop: Arc<AtomicBool>,
    writer: Option<JoinHandle<()>>,
}

impl Demo {
    /// Create the demo files (replacing earlier ones) and start the writer.
    pub fn start(now: DateTime<Utc>) -> anyhow::Result<Demo> {
        let dir = crate::paths::data_dir().join("demo");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let db = dir.join("demo.db");
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", db.display()));
            if p.exists() {
                std::fs::remove_file(&p)
                    .with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        generate(&db, Flavor::Native, ROWS, DAYS, 7, now)?;
        let state = dir.join("state.json");
        std::fs::write(&state, state_json(now))?;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::Builder::new()
                .name("tokmon-demo".into())
                .spawn(move || {
                    if let Err(e) = write_forever(&db, &stop) {
                        tracing::warn!("demo writer stopped: {e:#}");
                    }
                })?
        };
        Ok(Demo {
            db,
            state,
            stop,
            writer: Some(writer),
        })
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn write_forever(db: &std::path::Path, stop: &AtomicBool) -> anyhow::Result<()> {
    let mut conn = open_rw(db)?;
    let mut g = Generator::new(Utc::now().timestamp_millis() as u64);
    let mut rng = fastrand::Rng::new();
    while !stop.load(Ordering::SeqCst) {
        // About one event a second, sometimes a quick burst.
        let pause = rng.u64(300..1700);
        let mut slept = 0;
        while slept < pause && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            slept += 100;
        }
        let e = g.event(Utc::now().timestamp_millis());
        insert_events(&mut conn, [&e])?;
    }
    Ok(())
}

fn state_json(now: DateTime<Utc>) -> String {
    let local = |mins: i64| {
        (now - chrono::Duration::minutes(mins))
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let v = serde_json::json!({
        "token_usage": {
            "used": 620000,
            "total": 1000000,
            "percentage": 62.0,
            "sessions": [
                {"timestamp": local(42), "tokens": 85000, "event": "manual sync",
                 "conversation_id": format!("manual-sync-{}", now.timestamp_millis() - 42 * 60_000),
                 "sync_type": "manual"},
                {"timestamp": local(300), "tokens": 15000, "event": "design review",
                 "conversation_id": "manual-1", "method": "manual"}
            ]
        },
        "status": {"text": "demo", "last_update": local(42)},
        "last_updated": (now - chrono::Duration::minutes(42)).with_timezone(&chrono::Local).format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    });
    serde_json::to_string_pretty(&v).expect("serialise demo state")
}

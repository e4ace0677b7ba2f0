//! Realistic generated usage: several agents, models, providers and sessions, spread over
//! days with busy working hours, quiet nights and bursts. Used by `tokmon --demo`, by
//! `tokmon demo --rows N --out PATH`, and by the benchmarks.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Timelike, Utc};
use rusqlite::{Connection, params};

use crate::error::bad_input;
use crate::store::native::{NewEvent, open_rw};

/// One kind of caller in the generated world.
struct AgentKind {
    name: &'static str,
    /// Relative share of all events.
    weight: u32,
    /// (model, provider, weight)
    models: &'static [(&'static str, &'static str, u32)],
    /// Typical input and output tokens of one call.
    input: u64,
    output: u64,
    /// Share of input that is read from the prompt cache, in percent.
    cache_pct: u64,
    /// This agent's tracker stores a cost with each row.
    stores_cost: bool,
    channel: &'static str,
}

const AGENTS: &[AgentKind] = &[
    AgentKind {
        name: "claude-code",
        weight: 30,
        models: &[
            ("claude-sonnet-4-5-20250929", "anthropic", 7),
            ("claude-haiku-4-5-20251001", "anthropic", 3),
        ],
        input: 4_000,
        output: 900,
        cache_pct: 85,
        stores_cost: false,
        channel: "cli",
    },
    AgentKind {
        name: "codex",
        weight: 18,
        models: &[("gpt-5", "openai", 6), ("gpt-5-mini", "openai", 4)],
        input: 6_000,
        output: 1_200,
        cache_pct: 60,
        stores_cost: false,
        channel: "cli",
    },
    AgentKind {
        name: "support-bot",
        weight: 25,
        models: &[("gpt-4o-mini", "openai", 8), ("gpt-4o", "openai", 2)],
        input: 1_200,
        output: 250,
        cache_pct: 0,
        stores_cost: true,
        channel: "web",
    },
    AgentKind {
        name: "rag-pipeline",
        weight: 12,
        models: &[
            ("gemini-2.5-flash", "google", 6),
            ("deepseek-chat", "deepseek", 4),
        ],
        input: 9_000,
        output: 400,
        cache_pct: 0,
        stores_cost: false,
        channel: "api",
    },
    AgentKind {
        name: "summarizer",
        weight: 10,
        models: &[
            ("mistral-small-latest", "mistral", 5),
            ("qwen-plus", "dashscope", 5),
        ],
        input: 3_000,
        output: 300,
        cache_pct: 0,
        stores_cost: false,
        channel: "cron",
    },
    AgentKind {
        name: "local-lab",
        weight: 5,
        models: &[("ollama/llama3.1:8b", "ollama", 1)],
        input: 800,
        output: 500,
        cache_pct: 0,
        stores_cost: false,
        channel: "local",
    },
];

const PROJECTS: &[&str] = &["tokmon", "webshop", "infra", "research"];
const USERS: &[&str] = &["ana", "bo", "chen", "dev-ci"];

/// Relative activity by local hour: quiet nights, busy working hours.
const HOURLY: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 19, 15, 18, 20, 19, 17, 14, 10, 8, 6, 5, 4, 3,
];

/// A seeded generator of events.
pub struct Generator {
    rng: fastrand::Rng,
    agent_total: u32,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            agent_total: AGENTS.iter().map(|a| a.weight).sum(),
        }
    }

    fn pick_agent(&mut self) -> &'static AgentKind {
        let mut r = self.rng.u32(0..self.agent_total);
        for a in AGENTS {
            if r < a.weight {
                return a;
            }
            r -= a.weight;
        }
        &AGENTS[0]
    }

    /// A token count around `typical`: skewed, sometimes much larger.
    fn around(&mut self, typical: u64) -> u64 {
        let f = 0.2 + self.rng.f64() * 1.6;
        let burst = if self.rng.u8(0..40) == 0 { 4.0 } else { 1.0 };
        ((typical as f64) * f * burst) as u64
    }

    /// One event at `ts_ms`. Sessions last about an hour per agent.
    pub fn event(&mut self, ts_ms: i64) -> NewEvent {
        let a = self.pick_agent();
        let total_w: u32 = a.models.iter().map(|m| m.2).sum();
        let mut r = self.rng.u32(0..total_w);
        let mut pick = a.models[0];
        for m in a.models {
            if r < m.2 {
                pick = *m;
                break;
            }
            r -= m.2;
        }
        let input_all = self.around(a.input);
        let cache_read = input_all * a.cache_pct / 100;
        let cache_write = if a.cache_pct > 0 && self.rng.u8(0..10) == 0 {
            input_all / 3
        } else {
            0
        };
        let input = input_all - cache_read;
        let output = self.around(a.output);
        let cost = a.stores_cost.then(|| {
            let (pi, po) = if pick.0 == "gpt-4o" {
                (2.5e-6, 1e-5)
            } else {
                (1.5e-7, 6e-7)
            };
            ((input as f64 * pi + output as f64 * po) * 1e6).round() / 1e6
        });
        let hour = ts_ms / 3_600_000;
        NewEvent {
            ts_ms,
            provider: Some(pick.1.into()),
            model: pick.0.into(),
            agent: Some(a.name.into()),
            session: Some(format!("{}-{:x}", a.name, hour)),
            project: Some(PROJECTS[self.rng.usize(0..PROJECTS.len())].into()),
            user: Some(USERS[self.rng.usize(0..USERS.len())].into()),
            channel: Some(a.channel.into()),
            operation: Some(if output > a.output { "tool" } else { "chat" }.into()),
            input_tokens: input,
            output_tokens: output,
            cache_creation_tokens: cache_write,
            cache_read_tokens: cache_read,
            cache_creation_1h_tokens: 0,
            cost_usd: cost,
            duration_ms: Some((output as f64 * 12.0 + self.rng.f64() * 400.0).round()),
            source: "demo".into(),
            unique_key: None,
            metadata: None,
        }
    }

    /// `n` timestamps between `from_ms` and `to_ms`, ascending, denser in working hours
    /// (UTC hours stand in for local ones) and with a few bursty days.
    pub fn timestamps(&mut self, n: u64, from_ms: i64, to_ms: i64) -> Vec<i64> {
        let span = to_ms.saturating_sub(from_ms).max(1);
        let mut out = Vec::with_capacity(n as usize);
        while (out.len() as u64) < n {
            let t = from_ms + self.rng.i64(0..span);
            // Floor division: times before 1970 are negative.
            let hour = t.div_euclid(3_600_000).rem_euclid(24) as usize;
            let day = t.div_euclid(86_400_000);
            let burst = if day.rem_euclid(11) == 3 { 2 } else { 1 };
            if self.rng.u32(0..20) < HOURLY[hour] * burst {
                out.push(t);
            }
        }
        out.sort_unstable();
        out
    }
}

/// The foreign schemas the generator can write (DDL as the trackers create them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Native,
    Bot,
    ChatAgent,
    Desktop,
}

const BOT_DDL: &str = "CREATE TABLE token_usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, model TEXT NOT NULL,
  input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL,
  user_id TEXT, request_type TEXT, metadata TEXT,
  timestamp DATETIME DEFAULT CURRENT_TIMESTAMP)";

const CHAT_AGENT_DDL: &str = "CREATE TABLE token_usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT, session_id INTEGER NOT NULL, message_id INTEGER,
  timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, chat_mode TEXT NOT NULL,
  model_name TEXT NOT NULL, agent_name TEXT, input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL, total_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL,
  duration_ms REAL, tool_calls TEXT, additional_info TEXT)";

const DESKTOP_DDL: &str = "CREATE TABLE token_usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  session_id TEXT, endpoint_name TEXT, model TEXT, operation_type TEXT, operation_detail TEXT,
  input_tokens INTEGER DEFAULT 0, output_tokens INTEGER DEFAULT 0,
  cache_creation_tokens INTEGER DEFAULT 0, cache_read_tokens INTEGER DEFAULT 0,
  context_tokens INTEGER DEFAULT 0, iteration INTEGER DEFAULT 0, channel TEXT, user_id TEXT,
  estimated_cost REAL DEFAULT 0)";

/// The most days `demo` spreads events over (100 years).
pub const MAX_DAYS: u32 = 36_500;
/// The most events `demo` writes in one database (their times are held in memory at once).
pub const MAX_ROWS: u64 = 100_000_000;

/// Write `rows` generated events over the `days` before `now` into a new database at `out`.
/// Returns the number of rows written. The file must not exist yet.
pub fn generate(
    out: &Path,
    flavor: Flavor,
    rows: u64,
    days: u32,
    seed: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    if days == 0 {
        return Err(bad_input(
            "invalid --days '0': spread events over at least one day",
        ));
    }
    if days > MAX_DAYS {
        return Err(bad_input(format!(
            "invalid --days '{days}': spread events over at most {MAX_DAYS} days (100 years)"
        )));
    }
    if rows > MAX_ROWS {
        return Err(bad_input(format!(
            "invalid --rows '{rows}': demo writes at most {MAX_ROWS} events"
        )));
    }
    if out.exists() {
        return Err(bad_input(format!(
            "{} already exists; demo writes a new database and never touches an existing file",
            out.display()
        )));
    }
    let to_ms = now.with_nanosecond(0).unwrap_or(now).timestamp_millis();
    let from_ms = to_ms - i64::from(days) * 86_400_000;
    let mut g = Generator::new(seed);
    let mut conn = match flavor {
        Flavor::Native => open_rw(out)?,
        _ => {
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let c = Connection::open(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            c.execute_batch(match flavor {
                Flavor::Bot => BOT_DDL,
                Flavor::ChatAgent => CHAT_AGENT_DDL,
                _ => DESKTOP_DDL,
            })?;
            c
        }
    };
    // Bulk load: indexes and triggers are dropped and made again at the end, and the rollup
    // is computed once, which is much faster than keeping them up to date row by row.
    let derived: Vec<(String, String, String)> = {
        let mut s = conn.prepare(
            "SELECT type, name, sql FROM sqlite_schema
             WHERE type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type",
        )?;
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    // The file is new: a crash mid-load leaves nothing worth keeping, so skip the journal
    // and give the index builds room.
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    let tx = conn.transaction()?;
    for (kind, name, _) in &derived {
        let kind = if kind == "index" { "INDEX" } else { "TRIGGER" };
        tx.execute_batch(&format!(
            "DROP {kind} {}",
            crate::store::mapping::quote(name)
        ))?;
    }
    let stamps = g.timestamps(rows, from_ms, to_ms);
    {
        let mut writer = RowWriter::new(&tx, flavor)?;
        for ts in stamps {
            let e = g.event(ts);
            writer.write(&e)?;
        }
    }
    for (_, _, sql) in &derived {
        tx.execute_batch(sql)?;
    }
    if flavor == Flavor::Native {
        crate::store::native::rebuild_rollup(&tx)?;
    }
    tx.commit()?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    if flavor == Flavor::Native {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.execute_batch("ANALYZE")?;
    Ok(rows)
}

/// Writes events into one of the schemas.
pub struct RowWriter<'c> {
    stmt: rusqlite::Statement<'c>,
    flavor: Flavor,
}

impl<'c> RowWriter<'c> {
    pub fn new(conn: &'c Connection, flavor: Flavor) -> anyhow::Result<RowWriter<'c>> {
        let native = crate::store::native::insert_sql(&[]);
        let sql = match flavor {
            Flavor::Native => &native,
            Flavor::Bot => {
                "INSERT INTO token_usage (provider, model, input_tokens, output_tokens, cost_usd, user_id,
                    request_type, metadata, timestamp) VALUES (?1,?2,?3,?4,?5,?6,?7,'{}',?8)"
            }
            Flavor::ChatAgent => {
                "INSERT INTO token_usage (session_id, timestamp, chat_mode, model_name, agent_name,
                    input_tokens, output_tokens, total_tokens, cost_usd, duration_ms)
                    VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
            }
            Flavor::Desktop => {
                "INSERT INTO token_usage (timestamp, session_id, endpoint_name, model, operation_type,
                    operation_detail, input_tokens, output_tokens, cache_creation_tokens,
                    cache_read_tokens, channel, user_id, estimated_cost)
                    VALUES (?1,?2,?3,?4,?5,'',?6,?7,?8,?9,?10,?11,0)"
            }
        };
        Ok(RowWriter {
            stmt: conn.prepare(sql)?,
            flavor,
        })
    }

    pub fn write(&mut self, e: &NewEvent) -> anyhow::Result<()> {
        let ts_text = || {
            DateTime::<Utc>::from_timestamp_millis(e.ts_ms)
                .unwrap_or_default()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let i = |n: u64| n as i64;
        match self.flavor {
            Flavor::Native => {
                let values = e.values()?;
                let values = values.iter().map(crate::store::native::sqlite_value);
                self.stmt.execute(rusqlite::params_from_iter(values))?
            }
            Flavor::Bot => self.stmt.execute(params![
                e.provider,
                e.model,
                i(e.input_tokens + e.cache_read_tokens + e.cache_creation_tokens),
                i(e.output_tokens),
                e.cost_usd,
                e.user,
                e.agent,
                ts_text(),
            ])?,
            Flavor::ChatAgent => {
                self.stmt.execute(params![
                    e.ts_ms / 3_600_000 % 1000,
                    ts_text(),
                    e.operation,
                    e.model,
                    e.agent,
                    i(e.input_tokens + e.cache_read_tokens + e.cache_creation_tokens),
                    i(e.output_tokens),
                    i(e.input_tokens
                        + e.cache_read_tokens
                        + e.cache_creation_tokens
                        + e.output_tokens),
                    e.cost_usd.unwrap_or(0.0),
                    e.duration_ms,
                ])?
            }
            Flavor::Desktop => self.stmt.execute(params![
                ts_text(),
                e.session.clone().unwrap_or_default(),
                e.provider,
                e.model,
                e.agent.clone().unwrap_or_else(|| "unknown".into()),
                i(e.input_tokens),
                i(e.output_tokens),
                i(e.cache_creation_tokens),
                i(e.cache_read_tokens),
                e.channel,
                e.user,
            ])?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_events() {
        let mut a = Generator::new(7);
        let mut b = Generator::new(7);
        for t in 0..50 {
            assert_eq!(a.event(t), b.event(t));
        }
    }

    #[test]
    fn timestamps_sorted_within_bounds() {
        let mut g = Generator::new(1);
        let ts = g.timestamps(1000, 0, 86_400_000 * 3);
        assert_eq!(ts.len(), 1000);
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        assert!(ts.iter().all(|t| (0..86_400_000 * 3).contains(t)));
    }
}

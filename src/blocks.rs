//! 5-hour blocks: the window Claude subscriptions are counted in, as ccusage and
//! claude-monitor count it.
//!
//! A block starts at the first event after the previous block ended, floored to the UTC
//! hour, and lasts 5 hours; the next event at or after its end starts the next block (so a gap
//! of more than 5 hours always does). The block holding `now` is the active one. Blocks count
//! Claude Code's events (agent `claude-code`).
//!
//! Every block boundary is a whole UTC hour, so a block is a whole number of 15-minute rollup
//! slices: blocks are found from per-slice sums (indexes and rollups, never a scan of the
//! events), and only the first and last event time of a block are read from the events.

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use crate::cost::cost_of;
use crate::domain::CostMode;
use crate::store::query::{AggQuery, SLICE_MS, Tokens};
use crate::store::{Dimension, Source};

/// How long a block lasts.
pub const BLOCK_MS: i64 = 5 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;
/// The agent whose events make blocks.
pub const BLOCK_AGENT: &str = "claude-code";

/// Usage at one instant (an event, or a slice of events starting there).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    pub ts_ms: i64,
    pub tokens: Tokens,
    pub cost_usd: f64,
}

/// One 5-hour block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    /// Start (a whole UTC hour) and end (start + 5 h), unix ms.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Times of the first and last event in the block.
    pub first_ms: i64,
    pub last_ms: i64,
    pub tokens: Tokens,
    pub cost_usd: f64,
    /// `now` lies in the block.
    pub active: bool,
}

/// Burn rate and projection of the active block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    pub tokens_per_minute: f64,
    pub cost_per_hour: f64,
    pub projected_tokens: u64,
    pub projected_cost: f64,
    pub remaining_ms: i64,
}

impl Block {
    /// The rate between the first and the last event, carried on to the block's end
    /// (as ccusage does). `None` for a block that is not active or has no duration yet.
    pub fn projection(&self, now_ms: i64) -> Option<Projection> {
        if !self.active {
            return None;
        }
        let remaining_ms = (self.end_ms - now_ms).max(0);
        let minutes = (self.last_ms - self.first_ms) as f64 / 60_000.0;
        if minutes <= 0.0 {
            return None;
        }
        let tpm = self.tokens.total() as f64 / minutes;
        let cpm = self.cost_usd / minutes;
        let left_min = remaining_ms as f64 / 60_000.0;
        Some(Projection {
            tokens_per_minute: tpm,
            cost_per_hour: cpm * 60.0,
            projected_tokens: self.tokens.total() + (tpm * left_min).round() as u64,
            projected_cost: self.cost_usd + cpm * left_min,
            remaining_ms,
        })
    }
}

/// The UTC hour holding `ms`.
pub fn floor_hour(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Group points (sorted by time) into blocks, starting a new chain at the first point.
pub fn group(
    points: &[Point],
    now_ms: i64,
) -> Result<Vec<Block>, crate::store::query::TokenOverflow> {
    let mut out: Vec<Block> = Vec::new();
    for p in points {
        match out.last_mut() {
            Some(b) if p.ts_ms < b.end_ms => {
                b.last_ms = b.last_ms.max(p.ts_ms);
                b.tokens.add(&p.tokens)?;
                b.cost_usd += p.cost_usd;
            }
            _ => {
                let start = floor_hour(p.ts_ms);
                out.push(Block {
                    start_ms: start,
                    end_ms: start + BLOCK_MS,
                    first_ms: p.ts_ms,
                    last_ms: p.ts_ms,
                    tokens: p.tokens,
                    cost_usd: p.cost_usd,
                    active: false,
                });
            }
        }
    }
    for b in &mut out {
        b.active = b.start_ms <= now_ms && now_ms < b.end_ms;
    }
    Ok(out)
}

/// Per-slice sums of the block agent's events in `[from, to)`, priced, sorted by time.
pub fn slices(
    source: &Source,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    mode: CostMode,
) -> anyhow::Result<Vec<Point>> {
    // Whole slices on the native store: the rollup rows of the block agent alone, in the
    // rollup's key order (no sort, and only a slice's worth of rows held at a time). Without
    // a start, from the rollup's first slice, when that is after 1970 (earlier slices were
    // cut differently, see `Source::aggregate`).
    if source.has_rollup && source.kind.is_native() && to_ms.is_none_or(|t| t % SLICE_MS == 0) {
        let first = match from_ms {
            Some(f) => native_rollup(source, f).then_some(f / SLICE_MS),
            None => first_slice(source)?.filter(|s| *s > 0),
        };
        if let Some(first) = first {
            let end = to_ms.map_or(i64::MAX, |t| t / SLICE_MS);
            return native_slices(source, first, end, mode);
        }
    }
    slices_aggregated(source, from_ms, to_ms, mode)
}

/// [`slices`] through a grouped read by agent (any source).
fn slices_aggregated(
    source: &Source,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    mode: CostMode,
) -> anyhow::Result<Vec<Point>> {
    let rows = source.aggregate(&AggQuery {
        from_ms,
        to_ms,
        by: Some(Dimension::Agent),
        bucket_ms: Some(SLICE_MS),
    })?;
    let mut by_slice: std::collections::BTreeMap<i64, Point> = Default::default();
    for r in rows {
        if r.key.as_deref() != Some(BLOCK_AGENT) {
            continue;
        }
        let Some(ts) = r.bucket_ms else { continue };
        let cost = cost_of(&r.sums, r.model.as_deref(), mode).usd;
        let p = by_slice.entry(ts).or_insert(Point {
            ts_ms: ts,
            ..Point::default()
        });
        p.tokens.add(&r.sums.all)?;
        p.cost_usd += cost;
    }
    Ok(by_slice.into_values().collect())
}

fn native_slices(
    source: &Source,
    first: i64,
    end: i64,
    mode: CostMode,
) -> anyhow::Result<Vec<Point>> {
    let mut out: Vec<Point> = Vec::new();
    native_rows(source, first, end, true, |row| {
        let ts = row.bucket_ms.unwrap_or(0) * SLICE_MS;
        let cost = cost_of(&row.sums, row.model.as_deref(), mode).usd;
        match out.last_mut() {
            Some(p) if p.ts_ms == ts => {
                p.tokens.add(&row.sums.all)?;
                p.cost_usd += cost;
            }
            _ => out.push(Point {
                ts_ms: ts,
                tokens: row.sums.all,
                cost_usd: cost,
            }),
        }
        Ok(())
    })?;
    Ok(out)
}

/// The native rollup's rows of the block agent in slices `[first, end)`, summed by model
/// (and by slice, in slice order, when `by_slice`; the slice number is the bucket), each
/// handed to `each` as it is read.
fn native_rows(
    source: &Source,
    first: i64,
    end: i64,
    by_slice: bool,
    mut each: impl FnMut(crate::store::AggRow) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // The column layout of a rollup read (see `agg_row`).
    let detail: Vec<String> = crate::store::query::PRICE_DETAIL_COLUMNS
        .iter()
        .map(|c| format!("SUM({c})"))
        .collect();
    let (bucket, group) = if by_slice {
        ("slice", "GROUP BY slice, model ORDER BY slice")
    } else {
        ("NULL", "GROUP BY model")
    };
    // Exact integer sums (SUM, not the float TOTAL); an overflow is refused, see `sum_error`.
    let mut stmt = source.conn().prepare_cached(&format!(
        "SELECT NULL, {bucket}, model, SUM(events), SUM(input_tokens), SUM(output_tokens),
                SUM(cache_creation_tokens), SUM(cache_read_tokens), TOTAL(stored_cost),
                TOTAL(positive_cost), SUM(uncosted_events), SUM(uncosted_input),
                SUM(uncosted_output), SUM(uncosted_cache_creation), SUM(uncosted_cache_read),
                {}
         FROM rollup_15m WHERE slice >= ?1 AND slice < ?2 AND agent = ?3 {group}",
        detail.join(", ")
    ))?;
    // SQLite's integer overflow of a sum is the token overflow it is.
    let sql_err = |e: rusqlite::Error| crate::store::query::sum_error(e.into());
    let mut rows = stmt
        .query(rusqlite::params![first, end, BLOCK_AGENT])
        .map_err(sql_err)?;
    while let Some(r) = rows.next().map_err(sql_err)? {
        each(crate::store::query::agg_row(r).map_err(sql_err)?)?;
    }
    Ok(())
}

/// The native rollup's first slice (`None`: no rows).
fn first_slice(source: &Source) -> anyhow::Result<Option<i64>> {
    Ok(source
        .conn()
        .prepare_cached("SELECT MIN(slice) FROM rollup_15m")?
        .query_row([], |r| r.get(0))?)
}

/// Whether the native rollup answers for whole slices from `from_ms` on (slice numbers of
/// 1970 and before are cut differently, see `Source::aggregate`).
fn native_rollup(source: &Source, from_ms: i64) -> bool {
    source.has_rollup && source.kind.is_native() && from_ms > 0 && from_ms % SLICE_MS == 0
}

/// Cost of the block agent's events from `from_ms` on (a slice boundary), straight from the
/// native rollup: its rows of that agent only, by model. `None` when the rollup cannot answer
/// (a foreign database, a start inside a slice): the caller reads it the general way.
pub fn agent_cost_since(
    source: &Source,
    from_ms: i64,
    mode: CostMode,
) -> anyhow::Result<Option<f64>> {
    if !native_rollup(source, from_ms) {
        return Ok(None);
    }
    let mut cost = 0.0;
    native_rows(source, from_ms / SLICE_MS, i64::MAX, false, |r| {
        cost += cost_of(&r.sums, r.model.as_deref(), mode).usd;
        Ok(())
    })?;
    Ok(Some(cost))
}

/// Let SQLite plan the statements of a connection that reads blocks without looking at the
/// values bound: with the `sqlite_stat4` that ANALYZE leaves, it would otherwise prepare a
/// statement again for every new value (the active block is found by one seek per block).
pub fn steady_plans(source: &Source) -> rusqlite::Result<()> {
    source.conn().set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// The first slice in `[first, end)` that holds events of the block agent: one seek on the
/// rollup's key.
fn next_slice(source: &Source, first: i64, end: i64) -> anyhow::Result<Option<i64>> {
    Ok(source
        .conn()
        .prepare_cached(
            "SELECT slice FROM rollup_15m WHERE slice >= ?1 AND slice < ?2 AND agent = ?3
             ORDER BY slice LIMIT 1",
        )?
        .query_row(rusqlite::params![first, end, BLOCK_AGENT], |r| r.get(0))
        .optional()?)
}

/// The exact first and last event time of the block agent in `[from, to)`.
fn event_bounds(source: &Source, from_ms: i64, to_ms: i64) -> anyhow::Result<Option<(i64, i64)>> {
    if source.empty {
        return Ok(None);
    }
    if let Some(pg) = &source.pg {
        return pg.agent_time_bounds(BLOCK_AGENT, from_ms, to_ms);
    }
    let m = &source.mapping;
    let sql = |order: &str| {
        format!(
            "SELECT {ts} FROM {table} WHERE {ts} >= ?1 AND {ts} < ?2 AND {agent} = ?3
             ORDER BY {ts} {order} LIMIT 1",
            ts = m.ts_sql(),
            table = crate::store::mapping::quote(&m.table),
            agent = m.dim_sql(Dimension::Agent),
        )
    };
    let one = |order: &str| -> anyhow::Result<Option<i64>> {
        Ok(source
            .conn()
            .prepare_cached(&sql(order))?
            .query_row(rusqlite::params![from_ms, to_ms, BLOCK_AGENT], |r| r.get(0))
            .optional()?)
    };
    Ok(one("ASC")?.zip(one("DESC")?))
}

/// Replace the slice-start times of a block by the times of its first and last event.
fn refine(source: &Source, b: &mut Block) -> anyhow::Result<()> {
    if let Some((first, last)) = event_bounds(source, b.start_ms, b.end_ms)? {
        b.first_ms = first;
        b.last_ms = last;
    }
    Ok(())
}

/// Every block that overlaps `[from, to)` (a block is found from its own start, which may lie
/// before `from`), oldest first.
pub fn blocks_in(
    source: &Source,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    now: DateTime<Utc>,
    mode: CostMode,
) -> anyhow::Result<Vec<Block>> {
    let now_ms = now.timestamp_millis();
    let points = slices(source, None, to_ms, mode)?;
    let mut out: Vec<Block> = group(&points, now_ms)?
        .into_iter()
        .filter(|b| from_ms.is_none_or(|f| b.end_ms > f))
        .collect();
    for b in &mut out {
        refine(source, b)?;
    }
    Ok(out)
}

/// A point of the slice list where a block surely starts: the first slice after more than
/// 5 hours without any (a slice holds events up to 15 minutes after its start).
/// Nothing before the window is later than its start.
fn chain_start(points: &[Point], window_from: i64) -> Option<usize> {
    let mut prev_end = window_from;
    let mut found = None;
    for (i, p) in points.iter().enumerate() {
        // Every earlier event is before `prev_end`, every event of `p` at or after its start.
        if p.ts_ms - prev_end >= BLOCK_MS {
            found = Some(i);
        }
        prev_end = p.ts_ms + SLICE_MS;
    }
    found
}

/// How far back the active block's chain is followed when the block agent was never quiet
/// for 5 hours: 8 days, as claude-monitor looks back (so a hook stays fast on any history).
pub const LOOKBACK_DAYS: i64 = 8;

/// The active block at `now`, if any: the chain of blocks is followed from the last quiet
/// stretch of over 5 hours in the last day (else in the last [`LOOKBACK_DAYS`], else from the
/// first event of those days).
pub fn active(
    source: &Source,
    now: DateTime<Utc>,
    mode: CostMode,
) -> anyhow::Result<Option<Block>> {
    let now_ms = now.timestamp_millis();
    let from = floor_hour(now_ms) - LOOKBACK_DAYS * 24 * HOUR_MS;
    if native_rollup(source, from) {
        return active_native(source, from, now_ms, mode);
    }
    active_from_slices(source, now_ms, mode)
}

/// [`active`] read from per-slice sums of the last day (else of the last [`LOOKBACK_DAYS`]).
fn active_from_slices(
    source: &Source,
    now_ms: i64,
    mode: CostMode,
) -> anyhow::Result<Option<Block>> {
    let to = floor_hour(now_ms) + HOUR_MS;
    for days in [1i64, LOOKBACK_DAYS] {
        let from = floor_hour(now_ms) - days * 24 * HOUR_MS;
        let points = slices(source, Some(from), Some(to), mode)?;
        if points
            .last()
            .is_none_or(|p| p.ts_ms + BLOCK_MS + SLICE_MS <= now_ms)
        {
            return Ok(None);
        }
        let start = chain_start(&points, from);
        if start.is_some() || days == LOOKBACK_DAYS {
            let i = start.unwrap_or(0);
            return finish(source, group(&points[i..], now_ms)?, now_ms);
        }
    }
    Ok(None)
}

/// [`active`] on the native store: the same blocks as [`group`] over the slices of
/// `[from, to)`, found by hopping from block to block (a block starts at the first slice at
/// or after the previous one's end: one seek on the rollup's key each), so only the starts
/// are read, never the rows of the days before; then the active block's own slices are summed.
fn active_native(
    source: &Source,
    from: i64,
    now_ms: i64,
    mode: CostMode,
) -> anyhow::Result<Option<Block>> {
    let to = floor_hour(now_ms) + HOUR_MS;
    let end_slice = to / SLICE_MS;
    let Some(first) = next_slice(source, from / SLICE_MS, end_slice)? else {
        return Ok(None);
    };
    let mut start = floor_hour(first * SLICE_MS);
    // Block starts are whole hours, so block ends are whole slices.
    while let Some(next) = next_slice(source, (start + BLOCK_MS) / SLICE_MS, end_slice)? {
        start = floor_hour(next * SLICE_MS);
    }
    if !(start <= now_ms && now_ms < start + BLOCK_MS) {
        return Ok(None);
    }
    let block_end = (start + BLOCK_MS).min(to) / SLICE_MS;
    let points = native_slices(source, start / SLICE_MS, block_end, mode)?;
    finish(source, group(&points, now_ms)?, now_ms)
}

fn finish(source: &Source, blocks: Vec<Block>, now_ms: i64) -> anyhow::Result<Option<Block>> {
    match blocks.into_iter().last() {
        Some(mut b) if b.start_ms <= now_ms && now_ms < b.end_ms => {
            refine(source, &mut b)?;
            Ok(Some(b))
        }
        _ => Ok(None),
    }
}

/// The largest block (by tokens and by cost) before the active one: the `max` limit.
pub fn largest(source: &Source, now: DateTime<Utc>, mode: CostMode) -> anyhow::Result<(u64, f64)> {
    let blocks = group(&slices(source, None, None, mode)?, now.timestamp_millis())?;
    Ok(blocks
        .iter()
        .filter(|b| !b.active)
        .fold((0, 0.0), |(t, c), b| {
            (t.max(b.tokens.total()), c.max(b.cost_usd))
        }))
}

/// What the active block is measured against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Tokens(u64),
    Usd(f64),
    /// The largest past block.
    Max,
}

impl Limit {
    /// `max`, a token count (`880000`, `880K`, `1.2M`), or dollars (`$40`, `40 usd`).
    pub fn parse(s: &str) -> Result<Limit, crate::error::BadInput> {
        let t = s.trim();
        let bad = || {
            crate::error::BadInput(format!(
                "block_limit = '{s}': use max, a token count (880000, 880K) or dollars ($40)"
            ))
        };
        if t.eq_ignore_ascii_case("max") {
            return Ok(Limit::Max);
        }
        let lower = t.to_ascii_lowercase();
        let usd = lower
            .strip_prefix('$')
            .or_else(|| lower.strip_suffix("usd"))
            .map(str::trim);
        if let Some(v) = usd {
            return match v.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 => Ok(Limit::Usd(x)),
                _ => Err(bad()),
            };
        }
        match crate::state_file::value::parse_sync_value(t) {
            Ok(n) if n > 0 => Ok(Limit::Tokens(n)),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn pt(s: &str, tokens: u64) -> Point {
        Point {
            ts_ms: ms(s),
            tokens: Tokens {
                events: 1,
                input: tokens,
                ..Tokens::default()
            },
            cost_usd: tokens as f64 / 1000.0,
        }
    }

    fn starts(b: &[Block]) -> Vec<String> {
        b.iter()
            .map(|b| {
                Utc.timestamp_millis_opt(b.start_ms)
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn start_is_floored_to_the_hour() {
        let b = group(&[pt("2025-03-01T10:47:12Z", 5)], 0).unwrap();
        assert_eq!(starts(&b), ["2025-03-01T10:00"]);
        assert_eq!(b[0].end_ms, ms("2025-03-01T15:00:00Z"));
        assert_eq!(b[0].first_ms, ms("2025-03-01T10:47:12Z"));
    }

    #[test]
    fn the_next_block_starts_at_the_first_event_after_the_end() {
        let pts = [
            pt("2025-03-01T10:47:00Z", 1),
            pt("2025-03-01T14:59:59Z", 2),
            pt("2025-03-01T15:00:00Z", 4),
            pt("2025-03-01T15:30:00Z", 8),
        ];
        let b = group(&pts, 0).unwrap();
        assert_eq!(starts(&b), ["2025-03-01T10:00", "2025-03-01T15:00"]);
        assert_eq!(b[0].tokens.total(), 3);
        assert_eq!(b[1].tokens.total(), 12);
        assert_eq!(b[1].tokens.events, 2);
    }

    #[test]
    fn a_gap_over_five_hours_starts_a_new_block() {
        // 09:10 → block 09:00–14:00; 14:20 is past its end: block 14:00; then over 5 h of
        // nothing, and 20:05 starts a block of its own floored to 20:00.
        let pts = [
            pt("2025-03-01T09:10:00Z", 1),
            pt("2025-03-01T14:20:00Z", 1),
            pt("2025-03-01T20:05:00Z", 1),
        ];
        assert_eq!(
            starts(&group(&pts, 0).unwrap()),
            ["2025-03-01T09:00", "2025-03-01T14:00", "2025-03-01T20:00"]
        );
    }

    #[test]
    fn a_block_across_midnight_stays_one_block() {
        let pts = [
            pt("2025-03-01T22:30:00Z", 10),
            pt("2025-03-01T23:59:00Z", 10),
            pt("2025-03-02T02:59:59Z", 10),
            pt("2025-03-02T03:00:00Z", 10),
        ];
        let b = group(&pts, 0).unwrap();
        assert_eq!(starts(&b), ["2025-03-01T22:00", "2025-03-02T03:00"]);
        assert_eq!(b[0].tokens.total(), 30);
    }

    #[test]
    fn blocks_are_utc_hours_across_a_dst_change() {
        // Europe/Paris went from +01:00 to +02:00 at 2025-03-30 01:00 UTC (02:00 local).
        let zone = crate::timefmt::Zone::parse("Europe/Paris").unwrap();
        let pts = [
            pt("2025-03-29T23:40:00Z", 1), // 00:40 local, +01:00
            pt("2025-03-30T04:10:00Z", 1), // 06:10 local, +02:00
        ];
        let b = group(&pts, 0).unwrap();
        assert_eq!(starts(&b), ["2025-03-29T23:00", "2025-03-30T04:00"]);
        // Five hours of real time, whatever the wall clock did.
        let local = |ms: i64| {
            zone.to_local(Utc.timestamp_millis_opt(ms).unwrap())
                .format("%H:%M %:z")
                .to_string()
        };
        assert_eq!(local(b[0].start_ms), "00:00 +01:00");
        assert_eq!(local(b[0].end_ms), "06:00 +02:00");
        assert_eq!(b[0].end_ms - b[0].start_ms, BLOCK_MS);
    }

    #[test]
    fn active_block_projection() {
        let pts = [
            pt("2025-03-01T10:00:00Z", 600),
            pt("2025-03-01T11:00:00Z", 600),
        ];
        let now = ms("2025-03-01T12:00:00Z");
        let b = group(&pts, now).unwrap();
        assert!(b[0].active);
        let p = b[0].projection(now).unwrap();
        // 1,200 tokens over 60 minutes = 20/min; 3 hours left: 1,200 + 3,600.
        assert_eq!(p.tokens_per_minute, 20.0);
        assert_eq!(p.projected_tokens, 4_800);
        assert_eq!(p.remaining_ms, 3 * HOUR_MS);
        assert!(!group(&pts, ms("2025-03-01T15:00:00Z")).unwrap()[0].active);
    }

    #[test]
    fn chain_starts_after_a_quiet_stretch() {
        let s = |t: &str| Point {
            ts_ms: ms(t),
            ..Point::default()
        };
        let from = ms("2025-03-01T00:00:00Z");
        // Quiet from the window start for more than 5 h: the first point starts a chain.
        assert_eq!(chain_start(&[s("2025-03-01T05:15:00Z")], from), Some(0));
        // Not quiet long enough before the first point, nor between the points.
        assert_eq!(
            chain_start(
                &[s("2025-03-01T01:00:00Z"), s("2025-03-01T05:00:00Z")],
                from
            ),
            None
        );
        assert_eq!(
            chain_start(
                &[s("2025-03-01T01:00:00Z"), s("2025-03-01T06:15:00Z")],
                from
            ),
            Some(1)
        );
    }

    /// A native database of Claude Code events at `times` (unix ms), with another agent's
    /// events in between.
    fn native_db(dir: &std::path::Path, times: &[i64]) -> Source {
        let db = dir.join("b.db");
        let mut conn = crate::store::native::open_rw(&db).unwrap();
        let events: Vec<crate::store::native::NewEvent> = times
            .iter()
            .enumerate()
            .flat_map(|(i, &ts)| {
                let e = |agent: &str, ts: i64| crate::store::native::NewEvent {
                    ts_ms: ts,
                    model: "claude-sonnet-4-5".into(),
                    agent: Some(agent.into()),
                    input_tokens: 1000 + i as u64,
                    output_tokens: 10,
                    source: "test".into(),
                    ..Default::default()
                };
                [e(BLOCK_AGENT, ts), e("codex", ts + 7 * 60_000)]
            })
            .collect();
        crate::store::native::insert_events(&mut conn, &events).unwrap();
        drop(conn);
        Source::open(
            &db,
            None,
            &crate::config::Config::default(),
            crate::timefmt::Zone::UTC,
        )
        .unwrap()
    }

    #[test]
    fn the_active_block_by_hops_is_the_one_by_slices() {
        let dir = tempfile::tempdir().unwrap();
        let base = ms("2025-03-01T00:00:00Z");
        let mut rng = fastrand::Rng::with_seed(7);
        // Ten days of replies: mostly minutes apart, sometimes hours (over and under 5 h).
        let mut times = Vec::new();
        let mut t = base + 37 * 60_000;
        while t < base + 10 * 24 * HOUR_MS {
            times.push(t);
            t += match rng.u32(0..20) {
                0 => rng.i64(4 * HOUR_MS..7 * HOUR_MS),
                1 => rng.i64(HOUR_MS..3 * HOUR_MS),
                _ => rng.i64(60_000..40 * 60_000),
            };
        }
        let src = native_db(dir.path(), &times);
        assert!(src.has_rollup);
        let mut active = 0;
        for k in 0..400 {
            let now_ms = base + 2 * 24 * HOUR_MS + k * 17 * 60_000 + 12_345;
            let from = floor_hour(now_ms) - LOOKBACK_DAYS * 24 * HOUR_MS;
            let fast = active_native(&src, from, now_ms, CostMode::Calculate).unwrap();
            let slow = active_from_slices(&src, now_ms, CostMode::Calculate).unwrap();
            assert_eq!(fast, slow, "now {now_ms}");
            active += usize::from(fast.is_some());
        }
        assert!(active > 100 && active < 400, "{active} active of 400");
        // Every slice (the largest block, `report --by block`) from the rollup's rows of the
        // agent alone, as from a grouped read of all agents.
        let end = Some(base + 6 * 24 * HOUR_MS);
        for (from, to) in [(None, None), (None, end), (Some(base + HOUR_MS), end)] {
            let fast = slices(&src, from, to, CostMode::Calculate).unwrap();
            let slow = slices_aggregated(&src, from, to, CostMode::Calculate).unwrap();
            assert!(fast.len() > 50);
            assert_eq!(fast, slow);
        }
        // Today's cost from the rollup's rows of the agent alone, as from a grouped read.
        let from = base + 5 * 24 * HOUR_MS + 45 * 60_000;
        let fast = agent_cost_since(&src, from, CostMode::Calculate)
            .unwrap()
            .unwrap();
        let rows = src
            .aggregate(&AggQuery {
                from_ms: Some(from),
                to_ms: None,
                by: Some(Dimension::Agent),
                bucket_ms: None,
            })
            .unwrap();
        let slow: f64 = rows
            .iter()
            .filter(|r| r.key.as_deref() == Some(BLOCK_AGENT))
            .map(|r| cost_of(&r.sums, r.model.as_deref(), CostMode::Calculate).usd)
            .sum();
        assert!(fast > 0.0);
        assert_eq!(fast, slow);
        // A start inside a slice is not the rollup's to answer.
        assert_eq!(
            agent_cost_since(&src, from + 1, CostMode::Calculate).unwrap(),
            None
        );
    }

    #[test]
    fn limits() {
        assert_eq!(Limit::parse("max"), Ok(Limit::Max));
        assert_eq!(Limit::parse("880K"), Ok(Limit::Tokens(880_000)));
        assert_eq!(Limit::parse("$40"), Ok(Limit::Usd(40.0)));
        assert_eq!(Limit::parse("12.5 USD"), Ok(Limit::Usd(12.5)));
        assert!(Limit::parse("lots").unwrap_err().0.contains("'lots'"));
        assert!(Limit::parse("$-3").is_err());
    }
}

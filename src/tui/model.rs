//! The numbers behind the screen for the selected range: per-agent and per-model totals with
//! cost, sparkline buckets, the current rate. They start from one snapshot of grouped queries
//! and are then updated row by row as the tail reads new events, never recomputed per change.

use std::collections::{BTreeMap, HashMap};

use crate::cost::cost_of;
use crate::domain::CostMode;
use crate::report::NONE_KEY;
use crate::store::query::{TokenOverflow, add_tokens};
use crate::store::{AggRow, EventRow, Sums};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How far back the "current rate" looks.
pub const RATE_WINDOW_MS: i64 = 5 * MINUTE_MS;

/// Never grow the sparkline past this many buckets (a row stamped far in the future).
const MAX_BUCKETS: usize = 4096;

/// The ranges the monitor offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeKind {
    Hour,
    Day,
    Week,
    Month,
    All,
}

impl RangeKind {
    pub const ALL: [RangeKind; 5] = [
        RangeKind::Hour,
        RangeKind::Day,
        RangeKind::Week,
        RangeKind::Month,
        RangeKind::All,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RangeKind::Hour => "1h",
            RangeKind::Day => "24h",
            RangeKind::Week => "7d",
            RangeKind::Month => "30d",
            RangeKind::All => "all",
        }
    }

    /// Length of a relative range; `None` for all time.
    pub fn span_ms(self) -> Option<i64> {
        match self {
            RangeKind::Hour => Some(HOUR_MS),
            RangeKind::Day => Some(DAY_MS),
            RangeKind::Week => Some(7 * DAY_MS),
            RangeKind::Month => Some(30 * DAY_MS),
            RangeKind::All => None,
        }
    }

    /// Sparkline bucket of a relative range (all time adapts to the data instead).
    pub fn bucket_ms(self) -> Option<i64> {
        match self {
            RangeKind::Hour => Some(MINUTE_MS),
            RangeKind::Day => Some(15 * MINUTE_MS),
            RangeKind::Week => Some(2 * HOUR_MS),
            RangeKind::Month => Some(12 * HOUR_MS),
            RangeKind::All => None,
        }
    }

    /// Start of the window at `now`: `now - span`, rounded down to a bucket boundary so the
    /// window only moves when a whole bucket expires.
    pub fn window_start(self, now_ms: i64) -> Option<i64> {
        let (span, b) = (self.span_ms()?, self.bucket_ms()?);
        Some((now_ms - span).div_euclid(b) * b)
    }

    pub fn next(self) -> RangeKind {
        let i = RangeKind::ALL.iter().position(|r| *r == self).unwrap_or(0);
        RangeKind::ALL[(i + 1) % RangeKind::ALL.len()]
    }

    pub fn prev(self) -> RangeKind {
        let i = RangeKind::ALL.iter().position(|r| *r == self).unwrap_or(0);
        RangeKind::ALL[(i + RangeKind::ALL.len() - 1) % RangeKind::ALL.len()]
    }
}

/// Bucket size for all time: whole days, about 120 buckets over the data's span.
pub fn adaptive_bucket_ms(first_ms: Option<i64>, now_ms: i64) -> i64 {
    let span = first_ms.map(|f| (now_ms - f).max(0)).unwrap_or(0);
    let days = (span / 120).div_euclid(DAY_MS) + 1;
    days * DAY_MS
}

/// What the tail thread is asked to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadRequest {
    /// Answers carry it back; older answers are dropped.
    pub generation: u64,
    pub range: RangeKind,
    pub now_ms: i64,
}

/// One consistent read of a range: grouped rows, and the id of the newest row they include.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub generation: u64,
    pub from_ms: Option<i64>,
    pub bucket_ms: i64,
    /// First bucket's start (all time: the oldest event's bucket).
    pub first_bucket_ms: i64,
    /// Grouped by agent × bucket × model, each with its provider: one read gives both
    /// tables, the sparkline and what a drill-down needs.
    pub rows: Vec<(AggRow, Option<String>)>,
    /// The last few minutes, by minute × model (for the rate).
    pub recent: Vec<AggRow>,
    /// Newest row id included.
    pub last_id: i64,
    /// Newest event time in the database.
    pub last_event_ms: Option<i64>,
}

/// Sums and cost of one table row (or of everything).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub sums: Sums,
    pub cost: f64,
}

impl Tally {
    /// Add sums in, or fail (and change nothing) when a token sum would pass
    /// [`crate::store::query::MAX_TOKENS`].
    fn try_add(&mut self, s: &Sums, cost: f64) -> Result<(), TokenOverflow> {
        self.sums.add(s)?;
        self.cost += cost;
        Ok(())
    }

    /// Add a part of [`Aggregates::total`]: every such part was first added to the total with
    /// [`Tally::try_add`], so no sum of parts can pass the maximum.
    fn add(&mut self, s: &Sums, cost: f64) {
        if self.sums.add(s).is_ok() {
            self.cost += cost;
        }
    }

    pub fn tokens(&self) -> u64 {
        self.sums.all.total()
    }
}

/// What the monitor can drill into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    Agent,
    Model,
    Provider,
}

impl Dim {
    /// The word for it on screen and in exports.
    pub fn word(self) -> &'static str {
        match self {
            Dim::Agent => "agent",
            Dim::Model => "model",
            Dim::Provider => "provider",
        }
    }

    fn slot(self) -> usize {
        match self {
            Dim::Agent => 0,
            Dim::Model => 1,
            Dim::Provider => 2,
        }
    }
}

/// A drill-down: only events whose `dim` is `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub dim: Dim,
    pub value: String,
}

/// Names seen in the range, each stored once; cells refer to them by number.
#[derive(Debug, Clone, Default)]
struct Names {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: String) -> u32 {
        if let Some(id) = self.ids.get(&name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s.as_str())
    }
}

/// The numbers of one agent × model × provider: its total and its buckets.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub tally: Tally,
    /// Tokens and cost per bucket, from the range's first bucket on.
    buckets: Vec<(u64, f64)>,
}

/// Add to bucket `ts_ms` of `buckets` (first bucket at `first`, each `size` long).
fn add_bucket(buckets: &mut Vec<(u64, f64)>, first: i64, size: i64, ts_ms: i64, t: u64, c: f64) {
    if ts_ms < first {
        return;
    }
    let idx = ((ts_ms - first) / size) as usize;
    if idx >= MAX_BUCKETS {
        return;
    }
    if idx >= buckets.len() {
        buckets.resize(idx + 1, (0, 0.0));
    }
    buckets[idx].0 += t;
    buckets[idx].1 += c;
}

/// The live aggregates of one range.
#[derive(Debug, Clone)]
pub struct Aggregates {
    pub range: RangeKind,
    pub from_ms: Option<i64>,
    pub bucket_ms: i64,
    pub first_bucket_ms: i64,
    /// Tokens and cost per bucket, from `first_bucket_ms` on.
    pub buckets: Vec<(u64, f64)>,
    pub agents: HashMap<String, Tally>,
    pub models: HashMap<String, Tally>,
    pub total: Tally,
    /// Tokens per minute start, for the last few minutes.
    recent: BTreeMap<i64, u64>,
    pub last_id: i64,
    pub last_event_ms: Option<i64>,
    /// Events whose model has no price (counted at $0).
    pub unpriced_events: u64,
    mode: CostMode,
    /// The same numbers by agent × model × provider (ids into `names`), for drill-downs.
    cells: HashMap<[u32; 3], Cell>,
    names: Names,
}

fn key_of(s: Option<&str>) -> String {
    match s {
        Some(v) if !v.trim().is_empty() => v.to_string(),
        _ => NONE_KEY.to_string(),
    }
}

impl Aggregates {
    /// Start from a snapshot read by the tail thread.
    /// Fails when the token sums pass [`crate::store::query::MAX_TOKENS`].
    pub fn from_snapshot(
        range: RangeKind,
        snap: &Snapshot,
        mode: CostMode,
    ) -> Result<Aggregates, TokenOverflow> {
        let mut a = Aggregates {
            range,
            from_ms: snap.from_ms,
            bucket_ms: snap.bucket_ms.max(1),
            first_bucket_ms: snap.first_bucket_ms,
            buckets: Vec::new(),
            agents: HashMap::new(),
            models: HashMap::new(),
            total: Tally::default(),
            recent: BTreeMap::new(),
            last_id: snap.last_id,
            last_event_ms: snap.last_event_ms,
            unpriced_events: 0,
            mode,
            cells: HashMap::new(),
            names: Names::default(),
        };
        for (row, provider) in &snap.rows {
            let c = cost_of(&row.sums, row.model.as_deref(), mode);
            // The total first: every other sum is a part of it.
            a.total.try_add(&row.sums, c.usd)?;
            a.add_to_cell(
                [
                    row.key.as_deref(),
                    row.model.as_deref(),
                    provider.as_deref(),
                ],
                row.bucket_ms,
                &row.sums,
                c.usd,
            );
            a.unpriced_events += c.unpriced_events;
            a.agents
                .entry(key_of(row.key.as_deref()))
                .or_default()
                .add(&row.sums, c.usd);
            a.models
                .entry(key_of(row.model.as_deref()))
                .or_default()
                .add(&row.sums, c.usd);
            if let Some(b) = row.bucket_ms {
                a.add_to_bucket(b, row.sums.all.total(), c.usd);
            }
        }
        for row in &snap.recent {
            if let Some(b) = row.bucket_ms {
                let t = a.recent.entry(b).or_default();
                *t = add_tokens(*t, row.sums.all.total())?;
            }
        }
        Ok(a)
    }

    fn add_to_bucket(&mut self, ts_ms: i64, tokens: u64, cost: f64) {
        let (first, size) = (self.first_bucket_ms, self.bucket_ms);
        add_bucket(&mut self.buckets, first, size, ts_ms, tokens, cost);
    }

    /// Count sums in the cell of (agent, model, provider), and in its bucket if it has one.
    fn add_to_cell(&mut self, keys: [Option<&str>; 3], ts_ms: Option<i64>, s: &Sums, cost: f64) {
        let id = keys.map(|k| self.names.id(key_of(k)));
        let (first, size) = (self.first_bucket_ms, self.bucket_ms);
        let cell = self.cells.entry(id).or_default();
        cell.tally.add(s, cost);
        if let Some(ts) = ts_ms {
            add_bucket(&mut cell.buckets, first, size, ts, s.all.total(), cost);
        }
    }

    /// The cells that pass every filter, leaving out filters on `except` (a table is not
    /// filtered by its own dimension, so the selected row stays among the others).
    fn cells_under<'a>(
        &'a self,
        filters: &[Filter],
        except: Option<Dim>,
    ) -> impl Iterator<Item = (&'a [u32; 3], &'a Cell)> + 'a {
        // A filter whose value was never seen matches nothing (`None`).
        let wanted: Vec<(usize, Option<u32>)> = filters
            .iter()
            .filter(|f| Some(f.dim) != except)
            .map(|f| (f.dim.slot(), self.names.ids.get(&f.value).copied()))
            .collect();
        self.cells
            .iter()
            .filter(move |(k, _)| wanted.iter().all(|(slot, id)| Some(k[*slot]) == *id))
    }

    /// Whether any filter applies to a view leaving out `except`.
    fn filtered(filters: &[Filter], except: Option<Dim>) -> bool {
        filters.iter().any(|f| Some(f.dim) != except)
    }

    /// Totals per value of `dim` under the filters (other than those on `dim` itself).
    pub fn table(&self, dim: Dim, filters: &[Filter]) -> HashMap<String, Tally> {
        if !Self::filtered(filters, Some(dim)) {
            match dim {
                Dim::Agent => return self.agents.clone(),
                Dim::Model => return self.models.clone(),
                Dim::Provider => {}
            }
        }
        let mut out: HashMap<String, Tally> = HashMap::new();
        for (k, cell) in self.cells_under(filters, Some(dim)) {
            let name = self.names.name(k[dim.slot()]);
            let t = out.entry(name.to_string()).or_default();
            t.add(&cell.tally.sums, cell.tally.cost);
        }
        out
    }

    /// The range's total under the filters.
    pub fn total_under(&self, filters: &[Filter]) -> Tally {
        if filters.is_empty() {
            return self.total;
        }
        let mut t = Tally::default();
        for (_, cell) in self.cells_under(filters, None) {
            t.add(&cell.tally.sums, cell.tally.cost);
        }
        t
    }

    /// [`Aggregates::series`] under the filters.
    pub fn series_under(&self, now_ms: i64, filters: &[Filter]) -> (Vec<u64>, Vec<f64>) {
        if filters.is_empty() {
            return self.series(now_ms);
        }
        let n = self.bucket_count(now_ms);
        let (mut tokens, mut cost) = (vec![0u64; n], vec![0f64; n]);
        for (_, cell) in self.cells_under(filters, None) {
            for (i, (t, c)) in cell.buckets.iter().take(n).enumerate() {
                tokens[i] += t;
                cost[i] += c;
            }
        }
        (tokens, cost)
    }

    /// Buckets from the first up to the one holding `now`.
    pub fn bucket_count(&self, now_ms: i64) -> usize {
        let last = if now_ms >= self.first_bucket_ms {
            (((now_ms - self.first_bucket_ms) / self.bucket_ms) as usize).min(MAX_BUCKETS - 1)
        } else {
            0
        };
        last + 1
    }

    /// Start of bucket `i`.
    pub fn bucket_start(&self, i: usize) -> i64 {
        self.first_bucket_ms + i as i64 * self.bucket_ms
    }

    /// The bucket holding `ts_ms` (clamped to the buckets up to `now`).
    pub fn bucket_of(&self, ts_ms: i64, now_ms: i64) -> usize {
        let i = (ts_ms - self.first_bucket_ms)
            .div_euclid(self.bucket_ms)
            .max(0) as usize;
        i.min(self.bucket_count(now_ms) - 1)
    }

    /// Fold newly committed rows in. Rows already counted (by id) or outside the range are
    /// skipped. Returns whether anything changed; fails when the token sums pass
    /// [`crate::store::query::MAX_TOKENS`] (the aggregates are then not to be shown).
    pub fn fold(&mut self, rows: &[EventRow]) -> Result<bool, TokenOverflow> {
        self.fold_rows(rows, false)
    }

    /// Fold rows in that were committed after rows with higher ids had been read (another
    /// program's writers on PostgreSQL): their ids are below the last one counted, and the
    /// tail sends each of them once. Otherwise as [`Aggregates::fold`].
    pub fn fold_late(&mut self, rows: &[EventRow]) -> Result<bool, TokenOverflow> {
        self.fold_rows(rows, true)
    }

    fn fold_rows(&mut self, rows: &[EventRow], late: bool) -> Result<bool, TokenOverflow> {
        let mut changed = false;
        for row in rows {
            if !late {
                if row.id <= self.last_id {
                    continue;
                }
                self.last_id = row.id;
            }
            if let Some(ts) = row.ts_ms {
                self.last_event_ms = Some(self.last_event_ms.map_or(ts, |l| l.max(ts)));
            }
            let in_range = match (self.from_ms, row.ts_ms) {
                (None, _) => true,
                (Some(f), Some(ts)) => ts >= f,
                (Some(_), None) => false,
            };
            if !in_range {
                continue;
            }
            let sums = Sums::of_event(row);
            let c = cost_of(&sums, row.model.as_deref(), self.mode);
            // The total first: every other sum is a part of it.
            sums.all.check()?;
            self.total.try_add(&sums, c.usd)?;
            self.add_to_cell(
                [
                    row.agent.as_deref(),
                    row.model.as_deref(),
                    row.provider.as_deref(),
                ],
                row.ts_ms,
                &sums,
                c.usd,
            );
            self.unpriced_events += c.unpriced_events;
            self.agents
                .entry(key_of(row.agent.as_deref()))
                .or_default()
                .add(&sums, c.usd);
            self.models
                .entry(key_of(row.model.as_deref()))
                .or_default()
                .add(&sums, c.usd);
            if let Some(ts) = row.ts_ms {
                self.add_to_bucket(ts, sums.all.total(), c.usd);
                let t = self
                    .recent
                    .entry(ts.div_euclid(MINUTE_MS) * MINUTE_MS)
                    .or_default();
                *t = add_tokens(*t, sums.all.total())?;
            }
            changed = true;
        }
        Ok(changed)
    }

    /// Forget minutes that no longer count towards the rate.
    pub fn prune(&mut self, now_ms: i64) {
        let keep_from = (now_ms - 2 * RATE_WINDOW_MS).div_euclid(MINUTE_MS) * MINUTE_MS;
        self.recent = self.recent.split_off(&keep_from);
    }

    /// Tokens per minute over the last [`RATE_WINDOW_MS`].
    pub fn rate_per_min(&self, now_ms: i64) -> f64 {
        let from = (now_ms - RATE_WINDOW_MS).div_euclid(MINUTE_MS) * MINUTE_MS;
        let sum: f64 = self.recent.range(from..).map(|(_, t)| *t as f64).sum();
        sum / (RATE_WINDOW_MS / MINUTE_MS) as f64
    }

    /// Sparkline values from the first bucket up to the one holding `now` (tokens, cost).
    pub fn series(&self, now_ms: i64) -> (Vec<u64>, Vec<f64>) {
        let n = self.bucket_count(now_ms);
        let mut tokens = Vec::with_capacity(n);
        let mut cost = Vec::with_capacity(n);
        for i in 0..n {
            let (t, c) = self.buckets.get(i).copied().unwrap_or((0, 0.0));
            tokens.push(t);
            cost.push(c);
        }
        (tokens, cost)
    }
}

/// Stretch or shrink `values` to exactly `width` bars. Each bar shows the average of the
/// buckets it covers, so bars covering one or two buckets stay comparable.
pub fn resample(values: &[u64], width: usize) -> Vec<u64> {
    let n = values.len();
    if width == 0 || n == 0 {
        return Vec::new();
    }
    (0..width)
        .map(|j| {
            let lo = j * n / width;
            let hi = ((j + 1) * n / width).max(lo + 1).min(n);
            let part = &values[lo..hi];
            part.iter().sum::<u64>() / part.len() as u64
        })
        .collect()
}

/// One row of a breakdown table.
#[derive(Debug, Clone, PartialEq)]
pub struct RowView {
    pub name: String,
    pub tally: Tally,
    /// Share of the table's tokens (0..1).
    pub share: f64,
}

impl RowView {
    /// Cache reads as a share of the prompt: read ÷ (input + read + write); `None` without
    /// any prompt tokens.
    pub fn cache_share(&self) -> Option<f64> {
        let s = &self.tally.sums.all;
        let prompt = s.input + s.cache_read + s.cache_write;
        (prompt > 0).then(|| s.cache_read as f64 / prompt as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, ts: i64, agent: &str, model: &str, input: u64) -> EventRow {
        EventRow {
            id,
            ts_ms: Some(ts),
            agent: Some(agent.into()),
            model: Some(model.into()),
            input_tokens: input,
            cost_usd: Some(0.5),
            ..Default::default()
        }
    }

    #[test]
    fn window_starts_on_bucket_boundaries() {
        let now = 10 * DAY_MS + 7 * MINUTE_MS + 30_000;
        assert_eq!(
            RangeKind::Hour.window_start(now),
            Some(10 * DAY_MS - HOUR_MS + 7 * MINUTE_MS)
        );
        assert_eq!(RangeKind::Day.window_start(now), Some(9 * DAY_MS));
        assert_eq!(RangeKind::All.window_start(now), None);
        assert_eq!(RangeKind::All.next(), RangeKind::Hour);
        assert_eq!(RangeKind::Hour.prev(), RangeKind::All);
    }

    #[test]
    fn folding_rows_updates_everything_once() {
        let snap = Snapshot {
            from_ms: Some(0),
            bucket_ms: MINUTE_MS,
            first_bucket_ms: 0,
            last_id: 10,
            ..Default::default()
        };
        let mut a = Aggregates::from_snapshot(RangeKind::Hour, &snap, CostMode::Stored).unwrap();
        let rows = [
            row(9, 1000, "x", "m", 5),
            row(11, 1000, "x", "m", 100),
            row(12, 61_000, "y", "m", 50),
            row(13, -5, "z", "m", 7),
        ];
        assert!(a.fold(&rows).unwrap());
        assert!(!a.fold(&rows).unwrap(), "already counted");
        assert_eq!(a.total.tokens(), 150);
        assert_eq!(a.total.cost, 1.0);
        assert_eq!(a.agents["x"].tokens(), 100);
        assert_eq!(a.models["m"].sums.all.events, 2);
        assert!(!a.agents.contains_key("z"), "before the range");
        assert_eq!(a.series(2 * MINUTE_MS).0, vec![100, 50, 0]);
        assert_eq!(a.last_id, 13);
        assert_eq!(a.rate_per_min(2 * MINUTE_MS), 30.0);
    }

    #[test]
    fn token_sums_past_the_maximum_are_refused() {
        let snap = Snapshot {
            from_ms: Some(0),
            bucket_ms: MINUTE_MS,
            first_bucket_ms: 0,
            ..Default::default()
        };
        let max = crate::store::query::MAX_TOKENS;
        let mut a = Aggregates::from_snapshot(RangeKind::Hour, &snap, CostMode::Stored).unwrap();
        assert!(a.fold(&[row(1, 1000, "x", "m", max)]).unwrap());
        assert_eq!(a.total.tokens(), max);
        assert!(a.fold(&[row(2, 2000, "y", "n", 1)]).is_err());
        let mut over = row(3, 1000, "x", "m", max);
        over.output_tokens = 1;
        let mut b = Aggregates::from_snapshot(RangeKind::Hour, &snap, CostMode::Stored).unwrap();
        assert!(b.fold(&[over]).is_err(), "one event past the maximum");
    }

    #[test]
    fn resample_fills_the_width() {
        assert_eq!(resample(&[2, 4, 6, 8], 2), vec![3, 7]);
        assert_eq!(resample(&[1, 2], 4), vec![1, 1, 2, 2]);
        assert_eq!(resample(&[1, 2, 3], 2), vec![1, 2]);
        assert!(resample(&[], 3).is_empty());
        assert_eq!(adaptive_bucket_ms(Some(0), 10 * DAY_MS), DAY_MS);
        assert_eq!(adaptive_bucket_ms(Some(0), 400 * DAY_MS), 4 * DAY_MS);
    }
}

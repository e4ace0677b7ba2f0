//! Reads: grouped totals over a time range, and the rows after a given id (the tail).

use std::collections::HashMap;

use rusqlite::params;

use super::Source;
use super::mapping::{Col, Dimension, quote};
use crate::domain::LONG_CONTEXT_TOKENS;

pub use crate::domain::{EventRow, MAX_TOKENS, TokenOverflow, TokenSplit, Tokens, add_tokens};

/// Sums over a set of events of one model, with what cost modes need: the stored costs,
/// and the tokens of the events that carry no positive stored cost (to be priced).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    pub all: Tokens,
    /// Sum of stored costs (NULL counted as 0).
    pub stored_cost: f64,
    /// Sum of stored costs that are positive.
    pub positive_cost: f64,
    /// Events without a positive stored cost, and their tokens.
    pub uncosted: Tokens,
}

impl Sums {
    /// Add `o` in; on a token overflow `self` is left unchanged.
    pub fn add(&mut self, o: &Sums) -> Result<(), TokenOverflow> {
        let mut all = self.all;
        all.add(&o.all)?;
        let mut uncosted = self.uncosted;
        uncosted.add(&o.uncosted)?;
        self.all = all;
        self.uncosted = uncosted;
        self.stored_cost += o.stored_cost;
        self.positive_cost += o.positive_cost;
        Ok(())
    }

    /// The sums of one event.
    pub fn of_event(e: &EventRow) -> Sums {
        let mut t = Tokens::of_request(
            e.input_tokens,
            e.output_tokens,
            e.cache_creation_tokens,
            e.cache_creation_1h_tokens,
            e.cache_read_tokens,
        );
        t.events = u64::from(!e.correction);
        // A correction is priced in the tier of the reply it corrects.
        t.long = if e.long_context {
            TokenSplit {
                input: t.input,
                output: t.output,
                cache_write: t.cache_write,
                cache_write_1h: t.cache_write_1h,
                cache_read: t.cache_read,
            }
        } else {
            TokenSplit::default()
        };
        let cost = e.cost_usd.unwrap_or(0.0);
        let positive = cost > 0.0;
        Sums {
            all: t,
            stored_cost: cost,
            positive_cost: if positive { cost } else { 0.0 },
            uncosted: if positive { Tokens::default() } else { t },
        }
    }
}

/// A grouped read over a time range `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggQuery {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Group by this dimension (besides the model, which is always kept for pricing).
    pub by: Option<Dimension>,
    /// Group by time buckets of this many milliseconds (bucket start = index × size).
    pub bucket_ms: Option<i64>,
}

/// Length of one rollup slice. Every UTC offset is a multiple of 15 minutes, so slices fold
/// exactly into local hours, days, weeks and months.
pub const SLICE_MS: i64 = 15 * 60 * 1000;

/// Slice number of rows whose time could not be read: counted for "all time" only.
pub const NO_TIME_SLICE: i64 = i64::MIN;

/// The native rollup table (see `migrations/0003_rollups.sql`).
pub const ROLLUP_TABLE: &str = "rollup_15m";

/// One group of an [`AggQuery`]: key (if grouped), bucket start (if bucketed), model.
#[derive(Debug, Clone, PartialEq)]
pub struct AggRow {
    pub key: Option<String>,
    pub bucket_ms: Option<i64>,
    pub model: Option<String>,
    pub sums: Sums,
}

impl Source {
    /// The SQL of an aggregate query, with `?1` = from and `?2` = to (unix ms).
    pub fn aggregate_sql(&self, q: &AggQuery) -> String {
        self.grouped_sql(q, None)
    }

    /// The SQL of an aggregate query, optionally grouped by a second dimension whose value
    /// comes last in each row (after the sums), so both readers share the column layout.
    /// Rows are also split by whether the stored cost is positive and whether the request is
    /// long-context: plain sums per group are cheaper for SQLite than conditional ones, and
    /// [`flagged_row`] rebuilds the cost-mode sums from the flags.
    fn grouped_sql(&self, q: &AggQuery, second: Option<Dimension>) -> String {
        let m = &self.mapping;
        let key = q.by.map(|d| m.dim_sql(d)).unwrap_or_else(|| "NULL".into());
        let (k2_inner, k2_out, k2_group) = match second {
            Some(d) => (format!(", {} AS k2", m.dim_sql(d)), ", k2", " k2,"),
            None => (String::new(), "", ""),
        };
        let bucket = q
            .bucket_ms
            .map(|b| format!("{} * {b}", floor_div_sql("t", b)))
            .unwrap_or_else(|| "NULL".into());
        let (rows, prefilter) = self.rows_in_range_sql(q);
        let mut filters: Vec<String> = prefilter.into_iter().collect();
        if q.from_ms.is_some() {
            filters.push(format!("{} >= ?1", m.ts_sql()));
        }
        if q.to_ms.is_some() {
            filters.push(format!("{} < ?2", m.ts_sql()));
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let inner_t = if q.bucket_ms.is_some() {
            m.ts_sql()
        } else {
            "NULL".into()
        };
        format!(
            "SELECT k, {bucket} AS b, m, c > 0 AS pos, lc, {count}, SUM(i), SUM(o),
                SUM(cw), SUM(cr), SUM(cw1h), TOTAL(c){k2_out}
             FROM (SELECT {key} AS k, {inner_t} AS t, {model} AS m, {i} AS i, {o} AS o,
                     {cw} AS cw, {cr} AS cr, {cw1h} AS cw1h, {long} AS lc, {c} AS c{k2_inner}{w}
                   FROM {rows} {filter})
             GROUP BY k,{k2_group} {bucket_expr} m, pos, lc",
            long = m.long_context_sql(),
            model = m.dim_sql(Dimension::Model),
            i = m.tokens_sql(&m.counts.input_tokens),
            o = m.tokens_sql(&m.counts.output_tokens),
            cw = m.tokens_sql(&m.counts.cache_creation_tokens),
            cr = m.tokens_sql(&m.counts.cache_read_tokens),
            cw1h = m.tokens_sql(&m.counts.cache_creation_1h_tokens),
            c = m.cost_sql(),
            bucket_expr = if q.bucket_ms.is_some() { "b," } else { "" },
            // Corrections (native store) add tokens but are no events.
            count = if self.has_corrections {
                "SUM(w)"
            } else {
                "COUNT(*)"
            },
            w = if self.has_corrections {
                ", corrects IS NULL AS w"
            } else {
                ""
            },
        )
    }

    /// The rows a range read looks at, and a cheap filter that spares reading the time of
    /// most rows outside the range. For a foreign table and a range with a start: a row whose
    /// time is written `YYYY-MM-DD…` is only read when its text lies between the dates two days
    /// before the start and three days after the end; every other row is read. When the table
    /// has an index on its timestamp column, the index finds those rows (the dated ones near the
    /// range, and the others by reading the index, which is small beside the table); otherwise
    /// the text comparison runs before the time is read. The caller still filters on the exact
    /// time, so the numbers are those of a full scan.
    ///
    /// Why that is exact: a time written `YYYY-MM-DD…` (any zone, any of the accepted forms) is
    /// within a day of its date, and such texts sort by date. Every other form (numbers,
    /// unpadded dates, leading spaces, …) is always read.
    fn rows_in_range_sql(&self, q: &AggQuery) -> (String, Option<String>) {
        let m = &self.mapping;
        let table = super::mapping::quote(&m.table);
        let Some(from) = q.from_ms.filter(|_| !m.ts_is_ms) else {
            return (table, None);
        };
        let day = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .filter(|d| d.len() == 10 && d.as_bytes()[0].is_ascii_digit())
        };
        const DAY_MS: i64 = 86_400_000;
        let ts = quote(&m.ts);
        let Some(lo) = day(from.saturating_sub(2 * DAY_MS)) else {
            return (table, None);
        };
        let hi = match q.to_ms.map(|t| day(t.saturating_add(3 * DAY_MS))) {
            None => String::new(),
            Some(Some(hi)) => format!(" AND {ts} < '{hi}'"),
            Some(None) => return (table, None),
        };
        let dated = format!("{ts} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'");
        match &self.ts_index {
            Some(index) => {
                let index = quote(index);
                (
                    format!(
                        "(SELECT * FROM {table} INDEXED BY {index} WHERE {ts} >= '{lo}'{hi} AND {dated}
                          UNION ALL
                          SELECT * FROM {table} INDEXED BY {index} WHERE NOT ({dated}))"
                    ),
                    None,
                )
            }
            None => (
                table,
                Some(format!(
                    "(({ts} >= '{lo}'{hi} AND {dated}) OR NOT ({dated}))"
                )),
            ),
        }
    }

    /// Grouped sums over a time range. On the native store, whole 15-minute slices are read
    /// from the rollup table and only the partial slices at the edges from the events.
    pub fn aggregate(&self, q: &AggQuery) -> anyhow::Result<Vec<AggRow>> {
        if let Some(pg) = &self.pg {
            return first_keys(pg.grouped(q, None)?);
        }
        if self.empty {
            return Ok(Vec::new());
        }
        if self.use_rollup(q) {
            return self.aggregate_with_rollup(q).map_err(sum_error);
        }
        if is_plain_all_time(q) {
            return self.aggregate_all_hashed(q).map_err(sum_error);
        }
        self.aggregate_scan(q)
    }

    /// An all-time read without time buckets, grouped in memory: SQLite hands over each row's
    /// normalised values (the same expressions as a scan) and the groups are summed in a hash
    /// map, which is cheaper than SQLite sorting every row for its GROUP BY. No timestamp is
    /// read, so every row counts, also one whose time cannot be read.
    pub fn aggregate_all_hashed(&self, q: &AggQuery) -> anyhow::Result<Vec<AggRow>> {
        if let Some(pg) = &self.pg {
            return first_keys(pg.grouped(q, None)?);
        }
        let rows = self.all_hashed(q, None)?;
        Ok(merge_rows(rows.into_iter().map(|(r, _)| r).collect())?)
    }

    /// [`Source::aggregate_all_hashed`], also grouped by `second` (its value with each row).
    fn all_hashed(
        &self,
        q: &AggQuery,
        second: Option<Dimension>,
    ) -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
        if self.empty {
            return Ok(Vec::new());
        }
        let m = &self.mapping;
        let dim = |d: Option<Dimension>| d.map(|d| m.dim_sql(d)).unwrap_or_else(|| "NULL".into());
        let sql = format!(
            "SELECT CAST({key} AS TEXT), CAST({model} AS TEXT), CAST({k2} AS TEXT), {sums} FROM {table}",
            key = dim(q.by),
            model = m.dim_sql(Dimension::Model),
            k2 = dim(second),
            sums = self.summed_columns_sql(),
            table = super::mapping::quote(&m.table),
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt.query([])?;
        let mut groups = HashGroups::<3>::default();
        while let Some(r) = rows.next()? {
            groups.add_row(None, r, 0)?;
        }
        let rows = groups
            .groups
            .into_iter()
            .map(|g| {
                let sums = g.sums()?;
                let [key, model, k2] = g.texts;
                let row = AggRow {
                    key,
                    bucket_ms: None,
                    model,
                    sums,
                };
                Ok((row, k2))
            })
            .collect::<Result<Vec<_>, TokenOverflow>>()?;
        Ok(rows)
    }

    /// The summed columns as [`HashGroups::add_row`] reads them: four token counts, the
    /// stored cost, whether the row is an event (corrections in the native store add
    /// tokens but are no events), the 1-hour cache writes and the long-context flag. A
    /// foreign table has no flag: NULL there, and the row's prompt is measured in memory
    /// from the token counts already read (the same rule as [`Mapping::long_context_sql`],
    /// without SQLite normalising every count twice).
    pub(super) fn summed_columns_sql(&self) -> String {
        let m = &self.mapping;
        let long = match m.long_context {
            Col::Absent if !m.trusted => "NULL".to_string(),
            _ => m.long_context_sql(),
        };
        format!(
            "{i}, {o}, {cw}, {cr}, {c}, {w}, {cw1h}, {long}",
            cw1h = m.tokens_sql(&m.counts.cache_creation_1h_tokens),
            w = if self.has_corrections {
                "corrects IS NULL"
            } else {
                "1"
            },
            i = m.tokens_sql(&m.counts.input_tokens),
            o = m.tokens_sql(&m.counts.output_tokens),
            cw = m.tokens_sql(&m.counts.cache_creation_tokens),
            cr = m.tokens_sql(&m.counts.cache_read_tokens),
            c = m.cost_sql(),
        )
    }

    /// Whether the rollup can answer without first being built: the native table always
    /// can, a foreign database's cache once rows have been folded into it.
    pub fn rollup_ready(&self) -> bool {
        self.has_rollup || self.cache.as_ref().is_some_and(|c| c.borrow().is_warm())
    }

    /// Whether to read through the rollup. One that is not built yet is built first, unless
    /// the answer needs no time (all time, no buckets) or the caller builds it elsewhere (the
    /// monitor, behind its first numbers).
    fn use_rollup(&self, q: &AggQuery) -> bool {
        let build_now = !self.defer_cache_build && !is_plain_all_time(q);
        self.rollup_serves(q) && (self.rollup_ready() || build_now)
    }

    /// The rollup keeps model, agent and provider, in whole slices.
    fn rollup_serves(&self, q: &AggQuery) -> bool {
        (self.has_rollup || self.cache.is_some())
            && matches!(
                q.by,
                None | Some(Dimension::Model | Dimension::Agent | Dimension::Provider)
            )
            && q.bucket_ms.is_none_or(|b| b > 0 && b % SLICE_MS == 0)
    }

    fn aggregate_with_rollup(&self, q: &AggQuery) -> anyhow::Result<Vec<AggRow>> {
        let rows = self.with_rollup(q, None)?;
        Ok(rows.into_iter().map(|(r, _)| r).collect())
    }

    /// Whole slices from the rollup, partial slices at the edges from the events; grouped
    /// by `second` too when asked (its value comes with each row).
    fn with_rollup(
        &self,
        q: &AggQuery,
        second: Option<Dimension>,
    ) -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
        let scan = |q: &AggQuery| -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
            match second {
                Some(d) => self.aggregate_two_scan(q, d),
                None => Ok(self
                    .aggregate_scan(q)?
                    .into_iter()
                    .map(|r| (r, None))
                    .collect()),
            }
        };
        if let Some(cache) = &self.cache
            && let Err(e) = cache.borrow_mut().refresh(self)
        {
            tracing::warn!("rollup cache refresh failed, scanning instead: {e:#}");
            return scan(q);
        }
        // Whole slices [first, end) come from the rollup; the rest from the events.
        let mut first = q
            .from_ms
            .map(|f| f.div_euclid(SLICE_MS) + i64::from(f.rem_euclid(SLICE_MS) != 0));
        // Rollup slices were cut with SQLite's integer division, which truncates towards zero:
        // slice 0 also holds the 15 minutes before 1970, and every earlier slice is one off.
        // When there are any such slices, events before slice 1 are read from the events.
        if self.rollup_has_early_slices()? {
            first = Some(first.map_or(1, |a| a.max(1)));
        }
        let end = q.to_ms.map(|t| t.div_euclid(SLICE_MS));
        if let (Some(a), Some(b)) = (first, end)
            && a >= b
        {
            return scan(q);
        }
        let mut rows = self.rollup_rows(q, first, end, second)?;
        if let Some(a) = first
            && q.from_ms.is_none_or(|f| f < a * SLICE_MS)
        {
            rows.extend(scan(&AggQuery {
                to_ms: Some(a * SLICE_MS),
                ..q.clone()
            })?);
        }
        if let (Some(t), Some(b)) = (q.to_ms, end)
            && b * SLICE_MS < t
        {
            rows.extend(scan(&AggQuery {
                from_ms: Some(b * SLICE_MS),
                ..q.clone()
            })?);
        }
        Ok(match second {
            Some(_) => merge_two(rows)?,
            None => merge_rows(rows.into_iter().map(|(r, _)| r).collect())?
                .into_iter()
                .map(|r| (r, None))
                .collect(),
        })
    }

    /// Whether the rollup holds slices at or before 1970-01-01T00:00Z (slice number 0 or less,
    /// rows without a readable time aside). One seek on the rollup's primary key.
    fn rollup_has_early_slices(&self) -> anyhow::Result<bool> {
        let sql =
            format!("SELECT EXISTS (SELECT 1 FROM {ROLLUP_TABLE} WHERE slice > ?1 AND slice <= 0)");
        let no_time = NO_TIME_SLICE;
        let found: bool = match &self.cache {
            Some(cache) => cache
                .borrow()
                .conn
                .prepare_cached(&sql)?
                .query_row([no_time], |r| r.get(0))?,
            None => self
                .conn()
                .prepare_cached(&sql)?
                .query_row([no_time], |r| r.get(0))?,
        };
        Ok(found)
    }

    fn rollup_rows(
        &self,
        q: &AggQuery,
        first: Option<i64>,
        end: Option<i64>,
        second: Option<Dimension>,
    ) -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
        // The cache keeps a missing model as '' (the native table has none missing).
        let model = if self.has_rollup {
            "model"
        } else {
            "NULLIF(model, '')"
        };
        let column = |d: Option<Dimension>| match d {
            Some(Dimension::Agent) => "NULLIF(agent, '')",
            Some(Dimension::Provider) => "NULLIF(provider, '')",
            Some(Dimension::Model) => model,
            _ => "NULL",
        };
        let key = column(q.by);
        // The second key comes last, after the sums.
        let (k2, k2_group) = match second {
            Some(d) => (format!(", {} AS k2", column(Some(d))), ", k2"),
            None => (String::new(), ""),
        };
        let no_time = NO_TIME_SLICE;
        let bucket = q
            .bucket_ms
            .map(|b| {
                let start = format!("(slice * {SLICE_MS})");
                format!(
                    "CASE WHEN slice = {no_time} THEN NULL ELSE {} * {b} END",
                    floor_div_sql(&start, b)
                )
            })
            .unwrap_or_else(|| "NULL".into());
        let detail = PRICE_DETAIL_COLUMNS
            .iter()
            .map(|c| format!("SUM({c})"))
            .collect::<Vec<_>>()
            .join(", ");
        // Rows whose time could not be read belong to "all time" only, as in a scan.
        let sql = format!(
            "SELECT {key} AS k, {bucket} AS b, {model} AS m, SUM(events), SUM(input_tokens), SUM(output_tokens),
                SUM(cache_creation_tokens), SUM(cache_read_tokens), TOTAL(stored_cost), TOTAL(positive_cost),
                SUM(uncosted_events), SUM(uncosted_input), SUM(uncosted_output),
                SUM(uncosted_cache_creation), SUM(uncosted_cache_read), {detail}{k2}
             FROM {ROLLUP_TABLE} WHERE (slice >= ?1 AND slice < ?2) OR (?3 AND slice = {no_time})
             GROUP BY k, b, m{k2_group}"
        );
        let all_time = q.from_ms.is_none() && q.to_ms.is_none();
        let bind = params![
            first.unwrap_or(no_time + 1),
            end.unwrap_or(i64::MAX),
            all_time
        ];
        let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(AggRow, Option<String>)> {
            let k2 = match second {
                Some(_) => r.get(r.as_ref().column_count() - 1)?,
                None => None,
            };
            Ok((agg_row(r)?, k2))
        };
        let rows = match &self.cache {
            Some(cache) => {
                let cache = cache.borrow();
                let mut stmt = cache.conn.prepare_cached(&sql)?;
                stmt.query_map(bind, read)?.collect::<Result<Vec<_>, _>>()?
            }
            None => {
                let mut stmt = self.conn().prepare_cached(&sql)?;
                stmt.query_map(bind, read)?.collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(rows)
    }

    /// Like [`Source::aggregate`], grouped by `q.by` and also by `second`: each row comes
    /// with its value of `second` (NULL as `None`). Budgets use it to filter on two
    /// dimensions (say provider and agent) besides the model; the monitor to drill down.
    /// Read from the rollup when both dimensions are kept there, else from the events.
    pub fn aggregate_two(
        &self,
        q: &AggQuery,
        second: Dimension,
    ) -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
        if let Some(pg) = &self.pg {
            return pg.grouped(q, Some(second));
        }
        if self.empty {
            return Ok(Vec::new());
        }
        if self.use_rollup(q)
            && matches!(
                second,
                Dimension::Model | Dimension::Agent | Dimension::Provider
            )
        {
            return self.with_rollup(q, Some(second)).map_err(sum_error);
        }
        if is_plain_all_time(q) {
            return Ok(merge_two(self.all_hashed(q, Some(second))?)?);
        }
        self.aggregate_two_scan(q, second)
    }

    /// [`Source::aggregate_two`] read from the events.
    pub fn aggregate_two_scan(
        &self,
        q: &AggQuery,
        second: Dimension,
    ) -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
        if let Some(pg) = &self.pg {
            return pg.grouped(q, Some(second));
        }
        if self.empty {
            return Ok(Vec::new());
        }
        self.aggregate_two_rows(q, second).map_err(sum_error)
    }

    fn aggregate_two_rows(
        &self,
        q: &AggQuery,
        second: Dimension,
    ) -> anyhow::Result<Vec<(AggRow, Option<String>)>> {
        let sql = self.grouped_sql(q, Some(second));
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let bounds = [q.from_ms.unwrap_or(i64::MIN), q.to_ms.unwrap_or(i64::MAX)];
        let n = if q.to_ms.is_some() {
            2
        } else {
            usize::from(q.from_ms.is_some())
        };
        let mut rows = stmt.query(rusqlite::params_from_iter(&bounds[..n]))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((
                flagged_row(r)?,
                r.get::<_, Option<String>>(FLAGGED_COLUMNS)?,
            ));
        }
        Ok(merge_two(out)?)
    }

    /// Grouped sums read from the events themselves.
    pub fn aggregate_scan(&self, q: &AggQuery) -> anyhow::Result<Vec<AggRow>> {
        if let Some(pg) = &self.pg {
            return first_keys(pg.grouped(q, None)?);
        }
        if self.empty {
            return Ok(Vec::new());
        }
        self.aggregate_scan_rows(q).map_err(sum_error)
    }

    fn aggregate_scan_rows(&self, q: &AggQuery) -> anyhow::Result<Vec<AggRow>> {
        let sql = self.aggregate_sql(q);
        let mut stmt = self.conn().prepare_cached(&sql)?;
        // Bind only the parameters the SQL uses (`?2` alone still counts as two).
        let bounds = [q.from_ms.unwrap_or(i64::MIN), q.to_ms.unwrap_or(i64::MAX)];
        let n = if q.to_ms.is_some() {
            2
        } else {
            usize::from(q.from_ms.is_some())
        };
        let rows = stmt
            .query_map(rusqlite::params_from_iter(&bounds[..n]), flagged_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(merge_rows(rows)?)
    }

    /// The SQL that reads whole events after an id, in id order, in [`EventRow::read`]'s
    /// column order.
    fn events_sql(&self) -> String {
        let m = &self.mapping;
        let dims = Dimension::ALL.map(|d| m.dim_sql(d));
        let counts = m.counts.each().map(|(_, c)| m.tokens_sql(c));
        format!(
            "SELECT {id}, {ts}, {dims}, {counts}, {c}, {dur}, {correction}, {long}
             FROM {table} WHERE {id} > ?1 ORDER BY {id} LIMIT ?2",
            id = m.id_sql(),
            ts = m.ts_sql(),
            dims = dims.join(", "),
            counts = counts.join(", "),
            long = m.long_context_sql(),
            c = m.cost_sql(),
            dur = m.duration_sql(),
            correction = if self.has_corrections {
                "corrects IS NOT NULL"
            } else {
                "0"
            },
            table = super::mapping::quote(&m.table),
        )
    }

    /// Up to `limit` events with an id above `after_id`, oldest id first.
    pub fn events_after(&self, after_id: i64, limit: usize) -> anyhow::Result<Vec<EventRow>> {
        if let Some(pg) = &self.pg {
            return pg.events_after(after_id, limit);
        }
        if self.empty {
            return Ok(Vec::new());
        }
        self.events_after_rows(after_id, limit).map_err(sum_error)
    }

    fn events_after_rows(&self, after_id: i64, limit: usize) -> anyhow::Result<Vec<EventRow>> {
        let sql = self.events_sql();
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt
            .query_map(params![after_id, limit as i64], |r| {
                let e = EventRow::read(&SqliteRow(r))?;
                // One event's counts must add up within MAX_TOKENS too.
                checked(Sums::of_event(&e).all)?;
                Ok(e)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The largest id in the table (0 when empty).
    pub fn max_id(&self) -> anyhow::Result<i64> {
        if let Some(pg) = &self.pg {
            return pg.max_id();
        }
        if self.empty {
            return Ok(0);
        }
        let sql = format!(
            "SELECT COALESCE(MAX({}), 0) FROM {}",
            self.mapping.id_sql(),
            super::mapping::quote(&self.mapping.table)
        );
        Ok(self.conn().query_row(&sql, [], |r| r.get(0))?)
    }

    /// Number of rows in the table.
    pub fn row_count(&self) -> anyhow::Result<u64> {
        if let Some(pg) = &self.pg {
            return pg.row_count();
        }
        if self.empty {
            return Ok(0);
        }
        let sql = format!(
            "SELECT COUNT(*) FROM {}",
            super::mapping::quote(&self.mapping.table)
        );
        Ok(self.conn().query_row(&sql, [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Earliest and latest event time (unix ms). Two subqueries, so that each can be answered
    /// from the ends of the time index instead of a scan.
    /// A foreign database with a built rollup cache answers from the cache.
    pub fn time_bounds(&self) -> anyhow::Result<Option<(i64, i64)>> {
        if let Some(pg) = &self.pg {
            return pg.time_bounds();
        }
        if self.empty {
            return Ok(None);
        }
        if let Some(cache) = &self.cache
            && self.rollup_ready()
        {
            let mut cache = cache.borrow_mut();
            match cache.refresh(self) {
                Ok(()) => return Ok(cache.time_bounds()),
                Err(e) => tracing::warn!("rollup cache refresh failed, scanning instead: {e:#}"),
            }
        }
        let sql = format!(
            "SELECT (SELECT MIN({ts}) FROM {t}), (SELECT MAX({ts}) FROM {t})",
            ts = self.mapping.ts_sql(),
            t = super::mapping::quote(&self.mapping.table)
        );
        let (a, b): (Option<i64>, Option<i64>) = self
            .conn()
            .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(a.zip(b))
    }
}

/// A SQLite row read as an event's columns (see [`EventRow::read`]).
struct SqliteRow<'a, 'r>(&'a rusqlite::Row<'r>);

impl crate::domain::event::ReadRow for SqliteRow<'_, '_> {
    type Error = rusqlite::Error;
    fn id(&self, i: usize) -> rusqlite::Result<i64> {
        self.0.get(i)
    }
    fn time(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.0.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.0.get(i)
    }
    fn count(&self, i: usize) -> rusqlite::Result<u64> {
        token_sum(self.0, i)
    }
    fn amount(&self, i: usize) -> rusqlite::Result<Option<f64>> {
        self.0.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        self.0.get(i)
    }
}

/// The summed columns of the rollup table, in order.
pub const ROLLUP_SUM_COLUMNS: [&str; 12] = [
    "events",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "stored_cost",
    "positive_cost",
    "uncosted_events",
    "uncosted_input",
    "uncosted_output",
    "uncosted_cache_creation",
    "uncosted_cache_read",
];

/// The price-detail columns of the rollup table (migration 0006), in order: of all events and
/// of the uncosted ones, the 1-hour cache writes and the long-context requests' tokens.
pub const PRICE_DETAIL_COLUMNS: [&str; 12] = [
    "cache_creation_1h_tokens",
    "long_input",
    "long_output",
    "long_cache_creation",
    "long_cache_creation_1h",
    "long_cache_read",
    "uncosted_cache_creation_1h",
    "uncosted_long_input",
    "uncosted_long_output",
    "uncosted_long_cache_creation",
    "uncosted_long_cache_creation_1h",
    "uncosted_long_cache_read",
];

/// Rows summed in memory by `N` text parts (NULL kept apart from ''), an optional time slice
/// and the sign of the stored cost, as a GROUP BY would, without SQLite sorting every row.
pub(super) struct HashGroups<const N: usize> {
    index: HashMap<Vec<u8>, usize, foldhash::fast::RandomState>,
    pub groups: Vec<HashGroup<N>>,
    probe: Vec<u8>,
}

impl<const N: usize> Default for HashGroups<N> {
    fn default() -> Self {
        HashGroups {
            index: HashMap::default(),
            groups: Vec::new(),
            probe: Vec::with_capacity(128),
        }
    }
}

/// One group of [`HashGroups`].
pub(super) struct HashGroup<const N: usize> {
    pub slice: Option<i64>,
    pub texts: [Option<String>; N],
    pub positive: bool,
    /// The rows of long-context requests (priced at the long-context rates).
    pub long: bool,
    events: u64,
    /// Input, output, cache write, cache read, 1-hour cache write.
    tokens: [i128; 5],
    cost: Neumaier,
}

impl<const N: usize> HashGroup<N> {
    /// The sums of the group, as [`flagged_row`] makes them from a GROUP BY row: exact, or
    /// [`TokenOverflow`] when one passes [`MAX_TOKENS`] (a negative sum counts as 0, as there).
    pub fn sums(&self) -> Result<Sums, TokenOverflow> {
        let u = |n: i128| -> Result<u64, TokenOverflow> {
            u64::try_from(n.max(0))
                .ok()
                .filter(|v| *v <= MAX_TOKENS)
                .ok_or(TokenOverflow)
        };
        let mut tokens = Tokens {
            events: self.events,
            input: u(self.tokens[0])?,
            output: u(self.tokens[1])?,
            cache_write: u(self.tokens[2])?,
            cache_read: u(self.tokens[3])?,
            cache_write_1h: u(self.tokens[4])?,
            long: TokenSplit::default(),
        };
        if self.long {
            tokens.long = TokenSplit {
                input: tokens.input,
                output: tokens.output,
                cache_write: tokens.cache_write,
                cache_write_1h: tokens.cache_write_1h,
                cache_read: tokens.cache_read,
            };
        }
        tokens.check()?;
        let cost = self.cost.value();
        Ok(Sums {
            all: tokens,
            stored_cost: cost,
            positive_cost: if self.positive { cost } else { 0.0 },
            uncosted: if self.positive {
                Tokens::default()
            } else {
                tokens
            },
        })
    }
}

impl<const N: usize> HashGroups<N> {
    /// Add one row: columns `first .. first + N` are the text parts (text or NULL), then the
    /// columns of [`Source::summed_columns_sql`].
    pub fn add_row(
        &mut self,
        slice: Option<i64>,
        r: &rusqlite::Row<'_>,
        first: usize,
    ) -> rusqlite::Result<()> {
        let cost = real_ref(r.get_ref(first + N + 4)?);
        let positive = cost.is_some_and(|c| c > 0.0);
        let mut tokens = [0i128; 5];
        for (i, n) in tokens.iter_mut().enumerate() {
            // The 1-hour writes come after the cost and the event flag.
            let col = if i < 4 { first + N + i } else { first + N + 6 };
            *n = int_ref(r.get_ref(col)?);
        }
        let long = match r.get_ref(first + N + 7)? {
            rusqlite::types::ValueRef::Null => {
                tokens[0] + tokens[2] + tokens[3] > i128::from(LONG_CONTEXT_TOKENS)
            }
            flag => int_ref(flag) != 0,
        };
        self.probe.clear();
        match slice {
            None => self.probe.push(0),
            Some(s) => {
                self.probe.push(1);
                self.probe.extend_from_slice(&s.to_le_bytes());
            }
        }
        for i in 0..N {
            push_key_part(&mut self.probe, text_ref(r.get_ref(first + i)?));
        }
        self.probe.push(u8::from(positive));
        self.probe.push(u8::from(long));
        let at = match self.index.get(self.probe.as_slice()) {
            Some(&at) => at,
            None => {
                let mut texts: [Option<String>; N] = std::array::from_fn(|_| None);
                for (i, t) in texts.iter_mut().enumerate() {
                    *t = text_ref(r.get_ref(first + i)?)
                        .map(|b| String::from_utf8_lossy(b).into_owned());
                }
                self.groups.push(HashGroup {
                    slice,
                    texts,
                    positive,
                    long,
                    events: 0,
                    tokens: [0; 5],
                    cost: Neumaier::default(),
                });
                self.index.insert(self.probe.clone(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let is_event = int_ref(r.get_ref(first + N + 5)?) != 0;
        let g = &mut self.groups[at];
        g.events += u64::from(is_event);
        for (sum, n) in g.tokens.iter_mut().zip(tokens) {
            *sum += n;
        }
        if let Some(c) = cost {
            g.cost.add(c);
        }
        Ok(())
    }
}

/// A compensated float sum (Kahan-Babuska-Neumaier), as SQLite's `TOTAL` computes it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Neumaier {
    sum: f64,
    err: f64,
}

impl Neumaier {
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.err += (self.sum - t) + x;
        } else {
            self.err += (x - t) + self.sum;
        }
        self.sum = t;
    }

    pub fn value(&self) -> f64 {
        self.sum + self.err
    }
}

fn text_ref(v: rusqlite::types::ValueRef<'_>) -> Option<&[u8]> {
    match v {
        rusqlite::types::ValueRef::Text(t) => Some(t),
        _ => None,
    }
}

fn real_ref(v: rusqlite::types::ValueRef<'_>) -> Option<f64> {
    match v {
        rusqlite::types::ValueRef::Real(f) => Some(f),
        rusqlite::types::ValueRef::Integer(i) => Some(i as f64),
        _ => None,
    }
}

fn int_ref(v: rusqlite::types::ValueRef<'_>) -> i128 {
    match v {
        rusqlite::types::ValueRef::Integer(i) => i128::from(i),
        rusqlite::types::ValueRef::Real(f) => f as i128,
        _ => 0,
    }
}

/// One part of a group key: absent, or the length and the bytes, so parts cannot run together.
fn push_key_part(buf: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => buf.push(0),
        Some(b) => {
            buf.push(1);
            buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
            buf.extend_from_slice(b);
        }
    }
}

/// The rows of a grouped read without its second key.
fn first_keys(rows: Vec<(AggRow, Option<String>)>) -> anyhow::Result<Vec<AggRow>> {
    Ok(rows.into_iter().map(|(r, _)| r).collect())
}

/// All time, no time buckets: every row counts (also rows whose time cannot be read), so no
/// timestamp needs to be read.
pub fn is_plain_all_time(q: &AggQuery) -> bool {
    q.from_ms.is_none() && q.to_ms.is_none() && q.bucket_ms.is_none()
}

impl Tokens {
    /// The price-detail values of these tokens, in [`PRICE_DETAIL_COLUMNS`] order (six).
    pub fn detail(&self) -> [u64; 6] {
        let l = &self.long;
        [
            self.cache_write_1h,
            l.input,
            l.output,
            l.cache_write,
            l.cache_write_1h,
            l.cache_read,
        ]
    }

    pub(super) fn set_detail(&mut self, d: [u64; 6]) {
        self.cache_write_1h = d[0];
        self.long = TokenSplit {
            input: d[1],
            output: d[2],
            cache_write: d[3],
            cache_write_1h: d[4],
            cache_read: d[5],
        };
    }
}

/// One result row of a rollup query: key, bucket, model, then the twelve sums of a rollup row
/// and its twelve price-detail sums. Sums above [`MAX_TOKENS`] are refused ([`TokenOverflow`]).
pub fn agg_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AggRow> {
    let u = |i: usize| token_sum(r, i);
    let detail = |from: usize| -> rusqlite::Result<[u64; 6]> {
        let mut d = [0; 6];
        for (k, v) in d.iter_mut().enumerate() {
            *v = u(from + k)?;
        }
        Ok(d)
    };
    let mut all = Tokens {
        events: u(3)?,
        input: u(4)?,
        output: u(5)?,
        cache_write: u(6)?,
        cache_read: u(7)?,
        ..Tokens::default()
    };
    all.set_detail(detail(15)?);
    let mut uncosted = Tokens {
        events: u(10)?,
        input: u(11)?,
        output: u(12)?,
        cache_write: u(13)?,
        cache_read: u(14)?,
        ..Tokens::default()
    };
    uncosted.set_detail(detail(21)?);
    let all = checked(all)?;
    let uncosted = checked(uncosted)?;
    Ok(AggRow {
        key: r.get(0)?,
        bucket_ms: r.get(1)?,
        model: r.get(2)?,
        sums: Sums {
            all,
            stored_cost: r.get(8)?,
            positive_cost: r.get(9)?,
            uncosted,
        },
    })
}

/// Number of columns of a scan row (see [`flagged_row`]); a second key comes after them.
pub(super) const FLAGGED_COLUMNS: usize = 12;

/// One row of a scan: key, bucket, model, positive-cost flag, long-context flag, then count,
/// five token sums (input, output, cache write, cache read, 1-hour cache write) and the cost
/// sum of the events on that side of the flags.
pub fn flagged_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AggRow> {
    let u = |i: usize| token_sum(r, i);
    let positive = r.get::<_, Option<bool>>(3)?.unwrap_or(false);
    let long = r.get::<_, Option<bool>>(4)?.unwrap_or(false);
    let mut tokens = Tokens {
        events: u(5)?,
        input: u(6)?,
        output: u(7)?,
        cache_write: u(8)?,
        cache_read: u(9)?,
        cache_write_1h: u(10)?,
        long: TokenSplit::default(),
    };
    if long {
        tokens.long = TokenSplit {
            input: tokens.input,
            output: tokens.output,
            cache_write: tokens.cache_write,
            cache_write_1h: tokens.cache_write_1h,
            cache_read: tokens.cache_read,
        };
    }
    let tokens = checked(tokens)?;
    let cost: f64 = r.get(11)?;
    Ok(AggRow {
        key: r.get(0)?,
        bucket_ms: r.get(1)?,
        model: r.get(2)?,
        sums: Sums {
            all: tokens,
            stored_cost: cost,
            positive_cost: if positive { cost } else { 0.0 },
            uncosted: if positive { Tokens::default() } else { tokens },
        },
    })
}

/// SQL for `expr` divided by the positive constant `by`, rounded down (SQLite's `/` rounds
/// towards zero, which puts times before 1970 in the bucket after theirs).
pub fn floor_div_sql(expr: &str, by: i64) -> String {
    format!("(CASE WHEN {expr} >= 0 THEN {expr} / {by} ELSE ({expr} + 1) / {by} - 1 END)")
}

/// Add up rows that share key, bucket, model and second key.
pub(super) fn merge_two(
    rows: Vec<(AggRow, Option<String>)>,
) -> Result<Vec<(AggRow, Option<String>)>, TokenOverflow> {
    type TwoKey = (Option<String>, Option<i64>, Option<String>, Option<String>);
    let mut merged: HashMap<TwoKey, Sums> = HashMap::new();
    for (r, k2) in rows {
        merged
            .entry((r.key, r.bucket_ms, r.model, k2))
            .or_default()
            .add(&r.sums)?;
    }
    Ok(merged
        .into_iter()
        .map(|((key, bucket_ms, model, k2), sums)| {
            (
                AggRow {
                    key,
                    bucket_ms,
                    model,
                    sums,
                },
                k2,
            )
        })
        .collect())
}

/// Add up rows that share key, bucket and model.
pub fn merge_rows(rows: Vec<AggRow>) -> Result<Vec<AggRow>, TokenOverflow> {
    type GroupKey = (Option<String>, Option<i64>, Option<String>);
    let mut merged: HashMap<GroupKey, Sums> = HashMap::new();
    for r in rows {
        merged
            .entry((r.key, r.bucket_ms, r.model))
            .or_default()
            .add(&r.sums)?;
    }
    Ok(merged
        .into_iter()
        .map(|((key, bucket_ms, model), sums)| AggRow {
            key,
            bucket_ms,
            model,
            sums,
        })
        .collect())
}

/// SQLite's own "integer overflow" of `SUM()`, and a reader's overflow, as a
/// [`TokenOverflow`]; other errors unchanged.
pub fn sum_error(e: anyhow::Error) -> anyhow::Error {
    let overflowed = match e.downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(_, Some(msg))) => msg.contains("integer overflow"),
        Some(rusqlite::Error::UserFunctionError(inner)) => inner.is::<TokenOverflow>(),
        _ => false,
    };
    if overflowed { TokenOverflow.into() } else { e }
}

/// A token sum read from SQL, exactly: an integer (a negative one, from negative counts a
/// writer stored, counts as 0), NULL as 0, or a real that holds a whole number below 2^53
/// (a column holding reals). A real beyond that is a sum that overflowed: refused.
pub(super) fn token_sum(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    use rusqlite::types::ValueRef;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match r.get_ref(i)? {
        ValueRef::Integer(n) => Ok(n.max(0) as u64),
        ValueRef::Null => Ok(0),
        ValueRef::Real(f) if f.is_finite() && f < EXACT => Ok(f.max(0.0) as u64),
        ValueRef::Real(_) => Err(overflow()),
        other => Err(rusqlite::Error::InvalidColumnType(
            i,
            format!("token sum {i}"),
            other.data_type(),
        )),
    }
}

/// [`TokenOverflow`] as a row reader's error.
fn overflow() -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(TokenOverflow))
}

/// Tokens read from SQL, checked against [`MAX_TOKENS`].
fn checked(t: Tokens) -> rusqlite::Result<Tokens> {
    t.check().map_err(|_| overflow())?;
    Ok(t)
}

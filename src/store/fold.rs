//! The rollup rows of the events an import writes, summed in memory while the rollup
//! triggers are off (see `native::Inserter::defer_rollup`), and folded into `rollup_15m` at
//! once before the commit: one upsert per touched rollup row instead of a `GROUP BY` over the
//! new events. The sums are those of `native::rollup_select` column for column: integer sums
//! (an overflow is an error, as SQLite's `SUM`), and the costs summed as SQLite's `TOTAL`
//! sums them (Kahan-Babuska-Neumaier).

use std::collections::HashMap;

use rusqlite::Connection;

use super::query::{PRICE_DETAIL_COLUMNS, ROLLUP_SUM_COLUMNS, SLICE_MS};

/// How many summed columns a rollup row has: [`ROLLUP_SUM_COLUMNS`] then
/// [`PRICE_DETAIL_COLUMNS`].
const SUMS: usize = ROLLUP_SUM_COLUMNS.len() + PRICE_DETAIL_COLUMNS.len();
/// Where the two costs are among the summed columns (`stored_cost`, `positive_cost`).
const STORED_COST: usize = 5;
const POSITIVE_COST: usize = 6;

/// One stored row as the rollup sees it (the values as written to `events`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<'a> {
    pub ts_ms: i64,
    pub model: &'a str,
    /// `None` is stored as NULL, and rolled up as ''.
    pub agent: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub input: i64,
    pub output: i64,
    pub cache_write: i64,
    pub cache_read: i64,
    /// Of the cache writes, the 1-hour ones (as stored: at most `cache_write`).
    pub cache_write_1h: i64,
    pub cost: Option<f64>,
    pub long_context: bool,
    /// A correction row (no event of its own).
    pub correction: bool,
}

impl Row<'_> {
    /// The row's part of each summed column (costs apart), as `native::rollup_select`
    /// computes it: `uncosted` when the stored cost is not positive (NULL included),
    /// `long` for a long-context row.
    fn parts(&self) -> [i64; SUMS] {
        let events = i64::from(!self.correction);
        let uncosted = !self.cost.is_some_and(|c| c > 0.0);
        let long = self.long_context;
        let u = |v: i64| if uncosted { v } else { 0 };
        let l = |v: i64| if long { v } else { 0 };
        let ul = |v: i64| if uncosted && long { v } else { 0 };
        [
            events,
            self.input,
            self.output,
            self.cache_write,
            self.cache_read,
            0, // stored_cost
            0, // positive_cost
            u(events),
            u(self.input),
            u(self.output),
            u(self.cache_write),
            u(self.cache_read),
            // PRICE_DETAIL_COLUMNS
            self.cache_write_1h,
            l(self.input),
            l(self.output),
            l(self.cache_write),
            l(self.cache_write_1h),
            l(self.cache_read),
            u(self.cache_write_1h),
            ul(self.input),
            ul(self.output),
            ul(self.cache_write),
            ul(self.cache_write_1h),
            ul(self.cache_read),
        ]
    }
}

/// A sum of reals as SQLite's `TOTAL` makes it (Kahan-Babuska-Neumaier).
#[derive(Debug, Default, Clone, Copy)]
struct Total {
    sum: f64,
    err: f64,
}

impl Total {
    fn add(&mut self, r: f64) {
        let s = self.sum;
        let t = s + r;
        if s.abs() > r.abs() {
            self.err += (s - t) + r;
        } else {
            self.err += (r - t) + s;
        }
        self.sum = t;
    }

    fn value(&self) -> f64 {
        if self.err.is_finite() {
            self.sum + self.err
        } else {
            self.sum
        }
    }
}

#[derive(Debug, Default)]
struct Sums {
    ints: [i64; SUMS],
    stored: Total,
    positive: Total,
}

/// The dimensions of a rollup row besides its slice: model, agent, provider ('' for none).
type Dims = (String, String, String);

/// Small keys hashed fast (not exposed to anyone's choice of keys: the writer's own rows).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// A row whose count would take its 15-minute sum past what SQLite's integers hold: bad input
/// naming the count (the import stops and its open transaction is not saved).
fn too_large_sum(row: &Row, column: usize, count: i64, slice: i64) -> anyhow::Error {
    let name = ROLLUP_SUM_COLUMNS
        .iter()
        .chain(PRICE_DETAIL_COLUMNS.iter())
        .nth(column)
        .copied()
        .unwrap_or("a token count");
    crate::error::bad_input(format!(
        "{name} {count} of model {} would take the sum of the 15 minutes from {} past {}, \
         the largest tokmon can hold; the import stopped without saving it (fix the log line, \
         then import again)",
        row.model,
        slice_start(slice),
        i64::MAX
    ))
}

/// When the 15 minutes of `slice` start, as the messages say it.
fn slice_start(slice: i64) -> String {
    chrono::DateTime::from_timestamp_millis(slice.saturating_mul(SLICE_MS))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("slice {slice}"))
}

/// Summed rollup rows, by slice and dimensions.
#[derive(Debug, Default)]
pub(super) struct Fold {
    dims: Vec<Dims>,
    /// Hash of the dimensions → their index in `dims` (the first of that hash).
    by_dims: FastMap<i64, usize>,
    rows: FastMap<(i64, usize), Sums>,
    /// The slice and dimensions of the last row added, with where its sums are: the rows of
    /// an import come in runs of the same ones.
    last: Option<(i64, usize)>,
}

fn dims_hash(model: &str, agent: &str, provider: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [model, agent, provider] {
        for b in part.as_bytes().iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h as i64
}

impl Fold {
    fn dims_index(&mut self, model: &str, agent: &str, provider: &str) -> usize {
        let same = |d: &Dims| d.0 == model && d.1 == agent && d.2 == provider;
        if let Some((_, i)) = self.last
            && same(&self.dims[i])
        {
            return i;
        }
        let hash = dims_hash(model, agent, provider);
        if let Some(&i) = self.by_dims.get(&hash) {
            if same(&self.dims[i]) {
                return i;
            }
            // Another set of the same hash (never seen in practice): looked for in order.
            if let Some(i) = self.dims.iter().position(same) {
                return i;
            }
        }
        self.dims
            .push((model.to_string(), agent.to_string(), provider.to_string()));
        let i = self.dims.len() - 1;
        self.by_dims.entry(hash).or_insert(i);
        i
    }

    /// Add one written row.
    pub(super) fn add(&mut self, row: &Row) -> anyhow::Result<()> {
        // As SQL's `ts / 900000` (truncated toward zero), which is what the triggers store.
        let slice = row.ts_ms / SLICE_MS;
        let d = self.dims_index(
            row.model,
            row.agent.unwrap_or(""),
            row.provider.unwrap_or(""),
        );
        self.last = Some((slice, d));
        let sums = self.rows.entry((slice, d)).or_default();
        let parts = row.parts();
        // Checked before anything is added, so a refused row leaves the sums as they were.
        if let Some(i) = (0..SUMS).find(|&i| sums.ints[i].checked_add(parts[i]).is_none()) {
            return Err(too_large_sum(row, i, parts[i], slice));
        }
        for (sum, part) in sums.ints.iter_mut().zip(parts) {
            *sum += part;
        }
        if let Some(c) = row.cost {
            sums.stored.add(c);
            if c > 0.0 {
                sums.positive.add(c);
            }
        }
        Ok(())
    }

    /// Add the sums to `rollup_15m` (inside the caller's transaction).
    /// A sum that the stored one and this fold's no longer fit in SQLite's integers is bad
    /// input naming it: the caller's transaction is then not to be committed.
    pub(super) fn write(self, conn: &Connection) -> anyhow::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let columns: Vec<&str> = ROLLUP_SUM_COLUMNS
            .iter()
            .chain(PRICE_DETAIL_COLUMNS.iter())
            .copied()
            .collect();
        let marks: Vec<String> = (5..5 + columns.len()).map(|i| format!("?{i}")).collect();
        let add: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect();
        // SQLite makes a whole-number sum that overflows a real, silently: each written row
        // says which of its integer sums (all but the costs) is not one any more, if any.
        let not_whole: Vec<String> = columns
            .iter()
            .enumerate()
            .filter(|(i, _)| ![STORED_COST, POSITIVE_COST].contains(i))
            .map(|(_, c)| format!("WHEN typeof({c}) != 'integer' THEN '{c}'"))
            .collect();
        let mut stmt = conn.prepare(&format!(
            "INSERT INTO rollup_15m (slice, model, agent, provider, {})
             VALUES (?1, ?2, ?3, ?4, {})
             ON CONFLICT (slice, model, agent, provider) DO UPDATE SET {}
             RETURNING CASE {} END",
            columns.join(", "),
            marks.join(", "),
            add.join(", "),
            not_whole.join(" ")
        ))?;
        // In key order: the rollup is a table without rowid, kept in that order.
        let mut rows: Vec<((i64, usize), Sums)> = self.rows.into_iter().collect();
        rows.sort_unstable_by(|a, b| {
            let (x, y) = (&self.dims[a.0.1], &self.dims[b.0.1]);
            (a.0.0, &x.0, &x.1, &x.2).cmp(&(b.0.0, &y.0, &y.1, &y.2))
        });
        for ((slice, d), sums) in rows {
            let (model, agent, provider) = &self.dims[d];
            stmt.raw_bind_parameter(1, slice)?;
            stmt.raw_bind_parameter(2, model)?;
            stmt.raw_bind_parameter(3, agent)?;
            stmt.raw_bind_parameter(4, provider)?;
            for (i, v) in sums.ints.iter().enumerate() {
                let at = 5 + i;
                match i {
                    STORED_COST => stmt.raw_bind_parameter(at, sums.stored.value())?,
                    POSITIVE_COST => stmt.raw_bind_parameter(at, sums.positive.value())?,
                    _ => stmt.raw_bind_parameter(at, v)?,
                }
            }
            let mut written = stmt.raw_query();
            let overflowed: Option<String> = match written.next()? {
                Some(r) => r.get(0)?,
                None => None,
            };
            if let Some(column) = overflowed {
                return Err(crate::error::bad_input(format!(
                    "the sum of {column} of model {model} for the 15 minutes from {} would pass \
                     {}, the largest tokmon can hold, with what is stored already; the import \
                     stopped and nothing of it was saved (fix the log line, then import again)",
                    slice_start(slice),
                    i64::MAX
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_columns_are_where_the_sums_say() {
        assert_eq!(ROLLUP_SUM_COLUMNS[STORED_COST], "stored_cost");
        assert_eq!(ROLLUP_SUM_COLUMNS[POSITIVE_COST], "positive_cost");
    }

    /// The costs are summed as SQLite's `TOTAL` sums them, whatever their order.
    #[test]
    fn costs_sum_as_sqlite_total() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (i INTEGER PRIMARY KEY, c REAL)")
            .unwrap();
        let costs = [0.1, 1e16, 0.2, -1e16, 0.3, 3.0e-5, 7.25, 1.0 / 3.0];
        let mut total = Total::default();
        for c in costs {
            conn.execute("INSERT INTO t (c) VALUES (?1)", [c]).unwrap();
            total.add(c);
        }
        let sqlite: f64 = conn
            .query_row("SELECT TOTAL(c) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(total.value().to_bits(), sqlite.to_bits());
    }

    #[test]
    fn an_overflowing_sum_is_an_error() {
        let mut f = Fold::default();
        let row = Row {
            ts_ms: 0,
            model: "m",
            agent: None,
            provider: None,
            input: i64::MAX,
            output: 0,
            cache_write: 0,
            cache_read: 0,
            cache_write_1h: 0,
            cost: None,
            long_context: false,
            correction: false,
        };
        f.add(&row).unwrap();
        let err = f.add(&row).unwrap_err();
        assert!(err.is::<crate::error::BadInput>(), "{err:#}");
        assert_eq!(
            err.to_string(),
            format!(
                "input_tokens {} of model m would take the sum of the 15 minutes from \
                 1970-01-01T00:00:00Z past {}, the largest tokmon can hold; the import stopped \
                 without saving it (fix the log line, then import again)",
                i64::MAX,
                i64::MAX
            )
        );
        // The refused row left the sums as they were.
        let sums = &f.rows[&(0, 0)];
        assert_eq!(sums.ints[1], i64::MAX);
        assert_eq!(sums.ints[0], 1);
    }
}

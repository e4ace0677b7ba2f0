//! Grouped totals over a range: the numbers behind `tokmon report`.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use serde::Serialize;

use crate::cost::cost_of;
use crate::domain::CostMode;
use crate::range::TimeRange;
use crate::store::query::{AggQuery, AggRow, Sums, TokenOverflow, Tokens};
use crate::store::{Dimension, Source};
use crate::timefmt::{Zone, from_ms};

/// The key shown for a missing dimension value.
pub const NONE_KEY: &str = "(none)";

/// Calendar buckets for `--by hour|day|week|month`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    Week,
    Month,
}

/// What a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Dim(Dimension),
    Time(Bucket),
}

/// Every time zone offset is a multiple of 15 minutes, so 15-minute UTC slices fold exactly
/// into local hours, days, weeks and months.
pub use crate::store::query::SLICE_MS;

/// Totals of a group (or of the whole report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    pub events: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_tokens: u64,
    pub cache_read_tokens: u64,
    pub total_tokens: u64,
    pub cost_usd: f64,
}

impl Totals {
    /// Add a group's sums in; on a token overflow `self` is left unchanged.
    fn add(&mut self, s: &Sums, cost: f64) -> Result<(), TokenOverflow> {
        let mut t = Tokens {
            events: self.events,
            input: self.input_tokens,
            output: self.output_tokens,
            cache_write: self.cache_creation_tokens,
            cache_read: self.cache_read_tokens,
            ..Tokens::default()
        };
        t.add(&s.all)?;
        self.events = t.events;
        self.input_tokens = t.input;
        self.output_tokens = t.output;
        self.cache_creation_tokens = t.cache_write;
        self.cache_read_tokens = t.cache_read;
        self.total_tokens = t.total();
        self.cost_usd += cost;
        Ok(())
    }
}

/// The largest cost shown: 2^53 cents, about $90 trillion, the most dollars an f64 holds to the
/// cent. A larger (or not finite) cost comes from a wrong stored cost or `cost_scale`, and is
/// refused rather than shown rounded, saturated or as null.
pub const MAX_USD: f64 = 9_007_199_254_740_992.0 / 100.0;

/// `usd` if it is a cost tokmon shows exactly; else an error that says why.
pub fn check_usd(usd: f64) -> anyhow::Result<f64> {
    if usd.is_finite() && usd.abs() <= MAX_USD {
        Ok(usd)
    } else {
        Err(anyhow::anyhow!(
            "costs add up to {usd:e} USD, beyond the $90,071,992,547,409.92 that tokmon shows to \
             the cent: a stored cost (or the cost_scale of a [[table]]) is wrong"
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub key: String,
    #[serde(flatten)]
    pub totals: Totals,
    /// Start of a time bucket (unix ms), for ordering.
    #[serde(skip)]
    pub start_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub range: TimeRange,
    pub grouping: Grouping,
    pub totals: Totals,
    pub groups: Vec<Group>,
    /// Models without a price whose events had to be priced (cost counted as 0), with the
    /// number of such events.
    pub unpriced: BTreeMap<String, u64>,
}

/// The label and start of the local calendar bucket holding a UTC instant.
pub fn bucket_of(ms: i64, bucket: Bucket, zone: &Zone) -> (String, i64) {
    let local = zone.to_local(from_ms(ms)).naive_local();
    let d = local.date();
    let (label, start) = match bucket {
        Bucket::Hour => (
            format!("{} {:02}:00", d.format("%Y-%m-%d"), local.hour()),
            d.and_time(NaiveTime::from_hms_opt(local.hour(), 0, 0).expect("valid hour")),
        ),
        Bucket::Day => (d.format("%Y-%m-%d").to_string(), d.and_time(NaiveTime::MIN)),
        Bucket::Week => {
            let w = d.iso_week();
            let monday = NaiveDate::from_isoywd_opt(w.year(), w.week(), chrono::Weekday::Mon)
                .expect("valid ISO week");
            (
                format!("{}-W{:02}", w.year(), w.week()),
                monday.and_time(NaiveTime::MIN),
            )
        }
        Bucket::Month => (
            d.format("%Y-%m").to_string(),
            NaiveDate::from_ymd_opt(d.year(), d.month(), 1)
                .expect("valid month")
                .and_time(NaiveTime::MIN),
        ),
    };
    (label, zone.from_local(start).timestamp_millis())
}

/// Build a report from a source.
pub fn build(
    source: &Source,
    range: TimeRange,
    grouping: Grouping,
    mode: CostMode,
    zone: &Zone,
) -> anyhow::Result<Report> {
    let q = AggQuery {
        from_ms: range.from_ms(),
        to_ms: range.to_ms(),
        by: match grouping {
            Grouping::Dim(Dimension::Model) | Grouping::Time(_) => None,
            Grouping::Dim(d) => Some(d),
        },
        bucket_ms: matches!(grouping, Grouping::Time(_)).then_some(SLICE_MS),
    };
    let rows = source.aggregate(&q)?;
    fold(rows, range, grouping, mode, zone)
}

/// Fold grouped rows (one per key × slice × model) into report groups.
pub fn fold(
    rows: Vec<AggRow>,
    range: TimeRange,
    grouping: Grouping,
    mode: CostMode,
    zone: &Zone,
) -> anyhow::Result<Report> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    let mut totals = Totals::default();
    let mut unpriced: BTreeMap<String, u64> = BTreeMap::new();
    let mut label_cache: HashMap<i64, (String, i64)> = HashMap::new();
    for row in rows {
        let costed = cost_of(&row.sums, row.model.as_deref(), mode);
        if costed.unpriced_events > 0 {
            let name = row.model.clone().unwrap_or_else(|| NONE_KEY.into());
            *unpriced.entry(name).or_default() += costed.unpriced_events;
        }
        let (key, start) = match grouping {
            Grouping::Dim(Dimension::Model) => (row.model.clone(), None),
            Grouping::Dim(_) => (row.key.clone(), None),
            Grouping::Time(b) => match row.bucket_ms {
                Some(ms) => {
                    let (label, start) = label_cache
                        .entry(ms)
                        .or_insert_with(|| bucket_of(ms, b, zone))
                        .clone();
                    (Some(label), Some(start))
                }
                None => (None, None),
            },
        };
        let key = key.unwrap_or_else(|| NONE_KEY.into());
        totals.add(&row.sums, costed.usd)?;
        groups
            .entry(key.clone())
            .or_insert_with(|| Group {
                key,
                totals: Totals::default(),
                start_ms: start,
            })
            .totals
            .add(&row.sums, costed.usd)?;
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    match grouping {
        Grouping::Time(_) => {
            groups.sort_by_key(|g| (g.start_ms.unwrap_or(i64::MAX), g.key.clone()))
        }
        Grouping::Dim(_) => groups.sort_by(|a, b| {
            b.totals
                .total_tokens
                .cmp(&a.totals.total_tokens)
                .then_with(|| a.key.cmp(&b.key))
        }),
    }
    check_usd(totals.cost_usd)?;
    for g in &groups {
        check_usd(g.totals.cost_usd)?;
    }
    Ok(Report {
        range,
        grouping,
        totals,
        groups,
        unpriced,
    })
}

//! Where a budget stands: usage read from a source, then percentage, level, burn rate and
//! projection worked out by pure functions (so they can be tested with a fixed clock).

use chrono::{DateTime, Duration, Utc};

use super::config::{Budget, Filter, Thresholds, Window};
use super::window::{Bounds, window_bounds};
use super::{Level, QUOTA_NAME};
use crate::cost::cost_of;
use crate::domain::CostMode;
use crate::store::query::add_tokens;
use crate::store::{AggQuery, AggRow, Dimension, Source};
use crate::timefmt::{Zone, from_ms};

/// The burn rate looks this far back first.
pub const RECENT: Duration = Duration::minutes(60);
/// Fewer events than this anywhere give no burn rate.
pub const MIN_EVENTS: u64 = 3;
/// The recent events must be spread over at least this long (a single burst is no rate).
pub const MIN_RECENT_SPREAD: Duration = Duration::minutes(10);
/// The fallback, "window so far", needs the window to have run at least this long.
pub const MIN_WINDOW_ELAPSED: Duration = Duration::minutes(30);
/// Quota syncs older than this are not used for its burn rate.
pub const QUOTA_RATE_LOOKBACK: Duration = Duration::hours(24);
/// Projections further out than this are not shown as a date.
const HORIZON_CAP: Duration = Duration::days(3650);

const MINUTE_MS: i64 = 60_000;

/// Usage of one budget, filtered, as read from a source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// In the current window.
    pub tokens: u64,
    pub usd: f64,
    pub events: u64,
    /// Events that had to be priced but whose model has no price (counted as $0).
    pub unpriced_events: u64,
    /// Rolling windows: end of the oldest time slice in the window that holds usage (its
    /// usage is all older than this).
    pub oldest_ms: Option<i64>,
    /// Over the last [`RECENT`] (whatever the window).
    pub recent: Recent,
}

/// Usage over the last hour, with the first and last minute that saw an event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recent {
    pub tokens: u64,
    pub usd: f64,
    pub events: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// What a burn rate was measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The last 60 minutes.
    LastHour,
    /// The window from its start to now (this long).
    WindowSoFar(Duration),
    /// Quota syncs over this long (this many syncs).
    Syncs { span: Duration, count: usize },
}

impl Basis {
    /// `last 60 min`, `window so far (3h 12m)`, `4 syncs over 5h 10m`.
    pub fn text(&self) -> String {
        let d = |x: &Duration| crate::numfmt::duration(x.num_seconds());
        match self {
            Basis::LastHour => format!("last {} min", RECENT.num_minutes()),
            Basis::WindowSoFar(x) => format!("window so far ({})", d(x)),
            Basis::Syncs { span, count } => format!("{count} syncs over {}", d(span)),
        }
    }
}

/// Consumption per hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnRate {
    pub tokens_per_hour: f64,
    /// `None` where no cost is known (the quota counter).
    pub usd_per_hour: Option<f64>,
    pub basis: Basis,
}

/// Which limit a projection is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Tokens,
    Usd,
}

/// When the limit will be reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Projection {
    /// Already reached (100 % of a limit).
    Reached,
    /// At the burn rate, the limit (the first one, if there are two) is reached then.
    At { at: DateTime<Utc>, limit: LimitKind },
    /// At the burn rate, not before the window resets (a rolling window: not within its span).
    NotBeforeReset,
    /// The burn rate is zero, or so low that the date would mean nothing.
    NotAtThisRate,
    /// No burn rate: too little data.
    TooLittleData,
    /// Nothing to run out of (a quota with a total of 0).
    NoLimit,
}

/// Where one budget (or the quota) stands.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetStatus {
    pub name: String,
    /// `month`, `week`, `day`, `5h`, … or `manual` for the quota.
    pub window: String,
    /// True for the state file's quota.
    pub is_quota: bool,
    /// The filter as written (`provider=openai`), empty for none.
    pub filter: String,
    /// The window's first instant (`None` for the quota).
    pub window_start: Option<DateTime<Utc>>,
    /// When a calendar window starts over; `None` for rolling windows and the quota.
    pub resets_at: Option<DateTime<Utc>>,
    /// Rolling windows: their span.
    pub rolling_span: Option<Duration>,
    /// Rolling windows: when the oldest usage in the window has aged out of it, at the latest
    /// (measured in one-minute slices, 15 minutes for spans over a day).
    pub frees_at: Option<DateTime<Utc>>,
    pub used_tokens: u64,
    /// `None` for the quota (a counter of tokens only).
    pub used_usd: Option<f64>,
    pub limit_tokens: Option<u64>,
    pub limit_usd: Option<f64>,
    /// The larger of the token and the USD percentage.
    pub percentage: f64,
    pub level: Level,
    pub thresholds: Thresholds,
    pub burn: Option<BurnRate>,
    pub projection: Projection,
    pub unpriced_events: u64,
    /// The clock the status was worked out with.
    pub now: DateTime<Utc>,
}

impl BudgetStatus {
    /// The projected time, as JSON shows it: the projected instant, `now` when the limit is
    /// already reached, else none.
    pub fn projected_exhaustion(&self) -> Option<DateTime<Utc>> {
        match self.projection {
            Projection::At { at, .. } => Some(at),
            Projection::Reached => Some(self.now),
            _ => None,
        }
    }

    /// Order for lists: most urgent first (level, then percentage, then the nearest
    /// projected exhaustion, then name).
    pub fn urgency_cmp(&self, o: &BudgetStatus) -> std::cmp::Ordering {
        let far = DateTime::<Utc>::MAX_UTC;
        o.level
            .cmp(&self.level)
            .then(o.percentage.total_cmp(&self.percentage))
            .then(
                self.projected_exhaustion()
                    .unwrap_or(far)
                    .cmp(&o.projected_exhaustion().unwrap_or(far)),
            )
            .then(self.name.cmp(&o.name))
    }
}

/// The quota counter of the state file, as a budget of its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaInput {
    pub used: u64,
    pub total: u64,
    /// Past syncs (any order), for a burn rate. May be empty.
    pub syncs: Vec<SyncPoint>,
    /// Thresholds of the quota (default 90 / 95 / 100).
    pub thresholds: Thresholds,
}

pub use crate::state_file::history::SyncPoint;

// ---------------------------------------------------------------------------------------
// Reading usage

/// The extra dimensions a filter needs besides the model (which is always grouped).
fn filter_dims(f: &Filter) -> Vec<Dimension> {
    let mut d = Vec::new();
    if !f.provider.is_empty() {
        d.push(Dimension::Provider);
    }
    if !f.agent.is_empty() {
        d.push(Dimension::Agent);
    }
    d
}

/// Rows of a query grouped by the filter's dimensions, keeping those the filter accepts.
fn filtered_rows(source: &Source, mut q: AggQuery, f: &Filter) -> anyhow::Result<Vec<AggRow>> {
    let dims = filter_dims(f);
    q.by = dims.first().copied();
    let rows: Vec<(AggRow, Option<String>)> = match dims.get(1) {
        Some(second) => source.aggregate_two(&q, *second)?,
        None => source
            .aggregate(&q)?
            .into_iter()
            .map(|r| (r, None))
            .collect(),
    };
    let value = |d: Dimension, row: &AggRow, k2: &Option<String>| -> Option<String> {
        if dims.first() == Some(&d) {
            row.key.clone()
        } else if dims.get(1) == Some(&d) {
            k2.clone()
        } else {
            None
        }
    };
    Ok(rows
        .into_iter()
        .filter(|(row, k2)| {
            f.matches(
                value(Dimension::Provider, row, k2).as_deref(),
                row.model.as_deref(),
                value(Dimension::Agent, row, k2).as_deref(),
            )
        })
        .map(|(row, _)| row)
        .collect())
}

/// Time slices used to find when the oldest usage leaves a rolling window.
fn rolling_slice_ms(span: Duration) -> i64 {
    if span <= Duration::hours(24) {
        MINUTE_MS
    } else {
        15 * MINUTE_MS
    }
}

/// Read a budget's usage in its window, and over the last hour.
pub fn measure(
    source: &Source,
    budget: &Budget,
    bounds: &Bounds,
    now: DateTime<Utc>,
    mode: CostMode,
) -> anyhow::Result<Usage> {
    let now_ms = now.timestamp_millis();
    let slice = match budget.window {
        Window::Rolling { span, .. } => Some(rolling_slice_ms(span)),
        _ => None,
    };
    let mut u = Usage::default();
    let q = AggQuery {
        from_ms: Some(bounds.start.timestamp_millis()),
        to_ms: Some(now_ms),
        bucket_ms: slice,
        ..Default::default()
    };
    for row in filtered_rows(source, q, &budget.filter)? {
        let c = cost_of(&row.sums, row.model.as_deref(), mode);
        u.tokens = add_tokens(u.tokens, row.sums.all.total())?;
        u.usd += c.usd;
        u.events = add_tokens(u.events, row.sums.all.events)?;
        u.unpriced_events += c.unpriced_events;
        if let (Some(b), Some(size)) = (row.bucket_ms, slice)
            && row.sums.all.events > 0
        {
            let end = b + size;
            u.oldest_ms = Some(u.oldest_ms.map_or(end, |o: i64| o.min(end)));
        }
    }
    let q = AggQuery {
        from_ms: Some((now - RECENT).timestamp_millis()),
        to_ms: Some(now_ms),
        bucket_ms: Some(MINUTE_MS),
        ..Default::default()
    };
    let r = &mut u.recent;
    for row in filtered_rows(source, q, &budget.filter)? {
        if row.sums.all.events == 0 {
            continue;
        }
        r.tokens = add_tokens(r.tokens, row.sums.all.total())?;
        r.usd += cost_of(&row.sums, row.model.as_deref(), mode).usd;
        r.events = add_tokens(r.events, row.sums.all.events)?;
        if let Some(b) = row.bucket_ms {
            r.first_ms = Some(r.first_ms.map_or(b, |x: i64| x.min(b)));
            r.last_ms = Some(r.last_ms.map_or(b, |x: i64| x.max(b)));
        }
    }
    crate::report::check_usd(u.usd)?;
    crate::report::check_usd(u.recent.usd)?;
    Ok(u)
}

// ---------------------------------------------------------------------------------------
// Pure assessment

fn per_hour(amount: f64, over: Duration) -> f64 {
    amount * 3_600_000.0 / over.num_milliseconds().max(1) as f64
}

/// The burn rate of a budget's usage: the last hour when it holds enough events spread out
/// enough, else the window so far when that is long enough, else none.
pub fn burn_rate(usage: &Usage, bounds: &Bounds, now: DateTime<Utc>) -> Option<BurnRate> {
    let r = &usage.recent;
    let spread = match (r.first_ms, r.last_ms) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    if r.events >= MIN_EVENTS && spread >= MIN_RECENT_SPREAD.num_milliseconds() {
        return Some(BurnRate {
            tokens_per_hour: per_hour(r.tokens as f64, RECENT),
            usd_per_hour: Some(per_hour(r.usd, RECENT)),
            basis: Basis::LastHour,
        });
    }
    let elapsed = now - bounds.start;
    if usage.events >= MIN_EVENTS && elapsed >= MIN_WINDOW_ELAPSED {
        return Some(BurnRate {
            tokens_per_hour: per_hour(usage.tokens as f64, elapsed),
            usd_per_hour: Some(per_hour(usage.usd, elapsed)),
            basis: Basis::WindowSoFar(elapsed),
        });
    }
    None
}

/// When `left` runs out at `rate` per hour (`None` for a zero rate or a silly date).
fn time_to(left: f64, rate: f64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if rate <= 0.0 || !rate.is_finite() {
        return None;
    }
    let secs = left / rate * 3600.0;
    if secs > HORIZON_CAP.num_seconds() as f64 {
        return None;
    }
    now.checked_add_signed(Duration::milliseconds((secs * 1000.0).ceil() as i64))
}

/// The projection from usage, limits and a rate. `horizon`: the projection is only shown
/// when it falls before this instant (a reset, or the end of a rolling span).
#[allow(clippy::too_many_arguments)]
pub fn project(
    used_tokens: u64,
    used_usd: f64,
    limit_tokens: Option<u64>,
    limit_usd: Option<f64>,
    rate: Option<&BurnRate>,
    horizon: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Projection {
    if limit_tokens.is_none() && limit_usd.is_none() {
        return Projection::NoLimit;
    }
    let reached =
        limit_tokens.is_some_and(|l| used_tokens >= l) || limit_usd.is_some_and(|l| used_usd >= l);
    if reached {
        return Projection::Reached;
    }
    let Some(rate) = rate else {
        return Projection::TooLittleData;
    };
    let by_tokens = limit_tokens.and_then(|l| {
        time_to((l - used_tokens) as f64, rate.tokens_per_hour, now)
            .map(|at| (at, LimitKind::Tokens))
    });
    let by_usd = limit_usd.and_then(|l| {
        rate.usd_per_hour
            .and_then(|r| time_to(l - used_usd, r, now))
            .map(|at| (at, LimitKind::Usd))
    });
    let first = match (by_tokens, by_usd) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    };
    match first {
        None => Projection::NotAtThisRate,
        Some((at, _)) if horizon.is_some_and(|h| at >= h) => Projection::NotBeforeReset,
        Some((at, limit)) => Projection::At { at, limit },
    }
}

fn pct(used: f64, limit: f64) -> f64 {
    if limit > 0.0 {
        // Multiplying first keeps exact shares exact (950 of 1000 is 95.0, not 94.999…).
        used * 100.0 / limit
    } else {
        0.0
    }
}

/// Where a budget stands, from its usage.
pub fn assess(budget: &Budget, bounds: &Bounds, usage: &Usage, now: DateTime<Utc>) -> BudgetStatus {
    let span = match budget.window {
        Window::Rolling { span, .. } => Some(span),
        _ => None,
    };
    let percentage = budget
        .limit_tokens
        .map(|l| pct(usage.tokens as f64, l as f64))
        .into_iter()
        .chain(budget.limit_usd.map(|l| pct(usage.usd, l)))
        .fold(0.0, f64::max);
    let burn = burn_rate(usage, bounds, now);
    let horizon = bounds
        .resets_at
        .or(span.and_then(|s| now.checked_add_signed(s)));
    let projection = project(
        usage.tokens,
        usage.usd,
        budget.limit_tokens,
        budget.limit_usd,
        burn.as_ref(),
        horizon,
        now,
    );
    BudgetStatus {
        name: budget.name.clone(),
        window: budget.window.label(),
        is_quota: false,
        filter: budget.filter_text.clone(),
        window_start: Some(bounds.start),
        resets_at: bounds.resets_at,
        rolling_span: span,
        frees_at: span.and_then(|s| {
            usage
                .oldest_ms
                .and_then(|o| from_ms(o).checked_add_signed(s))
        }),
        used_tokens: usage.tokens,
        used_usd: Some(usage.usd),
        limit_tokens: budget.limit_tokens,
        limit_usd: budget.limit_usd,
        percentage,
        level: budget.thresholds.level_of(percentage),
        thresholds: budget.thresholds,
        burn,
        projection,
        unpriced_events: usage.unpriced_events,
        now,
    }
}

/// The burn rate of the quota from its recent syncs: the increments after the first sync of
/// the last 24 hours, over the time from that sync to the latest. Needs [`MIN_EVENTS`] syncs
/// spread over at least [`MIN_WINDOW_ELAPSED`].
pub fn quota_burn_rate(syncs: &[SyncPoint], now: DateTime<Utc>) -> Option<BurnRate> {
    let mut recent: Vec<&SyncPoint> = syncs
        .iter()
        .filter(|s| s.at <= now && now - s.at <= QUOTA_RATE_LOOKBACK)
        .collect();
    if recent.len() < MIN_EVENTS as usize {
        return None;
    }
    recent.sort_by_key(|s| s.at);
    let (first, last) = (recent[0].at, recent[recent.len() - 1].at);
    let span = last - first;
    if span < MIN_WINDOW_ELAPSED {
        return None;
    }
    // A rate is an estimate: summed as a float, so that no increments can overflow it.
    let added: f64 = recent[1..].iter().map(|s| s.increment as f64).sum();
    Some(BurnRate {
        tokens_per_hour: per_hour(added, span),
        usd_per_hour: None,
        basis: Basis::Syncs {
            span,
            count: recent.len(),
        },
    })
}

/// Where the state file's quota stands, as a budget named `quota`.
pub fn assess_quota(q: &QuotaInput, now: DateTime<Utc>) -> BudgetStatus {
    let limit = (q.total > 0).then_some(q.total);
    let percentage = pct(q.used as f64, q.total as f64);
    let burn = quota_burn_rate(&q.syncs, now);
    BudgetStatus {
        name: QUOTA_NAME.into(),
        window: "manual".into(),
        is_quota: true,
        filter: String::new(),
        window_start: None,
        resets_at: None,
        rolling_span: None,
        frees_at: None,
        used_tokens: q.used,
        used_usd: None,
        limit_tokens: limit,
        limit_usd: None,
        percentage,
        level: if limit.is_some() {
            q.thresholds.level_of(percentage)
        } else {
            Level::Ok
        },
        thresholds: q.thresholds,
        projection: project(q.used, 0.0, limit, None, burn.as_ref(), None, now),
        burn,
        unpriced_events: 0,
        now,
    }
}

/// Where every budget and the quota stand, most urgent first.
///
/// `source` is `None` when there is no database yet: budgets then show 0 used.
pub fn evaluate_all(
    budgets: &[Budget],
    source: Option<&Source>,
    quota: Option<&QuotaInput>,
    zone: &Zone,
    mode: CostMode,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<BudgetStatus>> {
    let mut out = Vec::with_capacity(budgets.len() + 1);
    for b in budgets {
        let bounds = window_bounds(&b.window, now, zone);
        let usage = match source {
            Some(s) => measure(s, b, &bounds, now, mode)?,
            None => Usage::default(),
        };
        out.push(assess(b, &bounds, &usage, now));
    }
    if let Some(q) = quota {
        out.push(assess_quota(q, now));
    }
    out.sort_by(|a, b| a.urgency_cmp(b));
    Ok(out)
}

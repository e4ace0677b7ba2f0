//! The domain types every layer shares, below the store, the pricing and the front ends:
//! the dimensions of an event, token counts, how cost is counted and how close a limit is.
//! Nothing here knows the command line, the database or the screen.

use serde::Serialize;

pub mod event;

pub use event::{Dimension, EventRow, NewEvent};

/// How cost is counted: `auto` (stored cost when present and non-zero, else from prices),
/// `stored` (only stored costs), `calculate` (always from prices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CostMode {
    #[default]
    Auto,
    Stored,
    Calculate,
}

/// How close a counter or a budget is to its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Ok,
    Warning,
    Critical,
    Exceeded,
}

/// The one threshold ladder: warning at 90 %, critical at 95 %, exceeded at 100 % (budgets
/// may set their own; the quota counter always uses these).
pub const LADDER_PERCENT: [u8; 3] = [90, 95, 100];

/// [`LADDER_PERCENT`] as the percentages budgets compare against.
pub const DEFAULT_THRESHOLDS: [f64; 3] = [
    LADDER_PERCENT[0] as f64,
    LADDER_PERCENT[1] as f64,
    LADDER_PERCENT[2] as f64,
];

impl Level {
    /// `ok`, `warning`, `critical`, `exceeded`.
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
            Level::Exceeded => "exceeded",
        }
    }

    /// The level of `used` against `total` on [`LADDER_PERCENT`], decided on exact integers
    /// so 89.999 % is not rounded up into a warning; `None` without a positive total.
    pub fn of_counts(used: u64, total: u64) -> Option<Level> {
        if total == 0 {
            return None;
        }
        let (u, t) = (u128::from(used) * 100, u128::from(total));
        let [warning, critical, exceeded] = LADDER_PERCENT.map(u128::from);
        Some(if u >= t * exceeded {
            Level::Exceeded
        } else if u >= t * critical {
            Level::Critical
        } else if u >= t * warning {
            Level::Warning
        } else {
            Level::Ok
        })
    }
}

/// A request whose prompt (input + cache read + cache write) has more tokens than this is
/// priced, every token of it, at its model's long-context tier (`*_above_200k_tokens`).
pub const LONG_CONTEXT_TOKENS: u64 = 200_000;

/// True when a request with these token counts is priced at the long-context tier.
pub fn is_long_context(input: u64, cache_write: u64, cache_read: u64) -> bool {
    input.saturating_add(cache_write).saturating_add(cache_read) > LONG_CONTEXT_TOKENS
}

/// The most tokens tokmon counts exactly, in one event or in any sum: 9,223,372,036,854,775,807
/// (`i64::MAX`, the largest integer SQLite stores). A larger count or sum is refused with
/// [`TokenOverflow`], never wrapped, saturated or rounded.
pub const MAX_TOKENS: u64 = i64::MAX as u64;

/// A token count or sum above [`MAX_TOKENS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "token counts add up to more than 9,223,372,036,854,775,807, the most tokmon counts exactly; \
     the database holds impossible token counts (narrow the range, or remove those events)"
)]
pub struct TokenOverflow;

/// `a + b`, if it is at most [`MAX_TOKENS`].
pub fn add_tokens(a: u64, b: u64) -> Result<u64, TokenOverflow> {
    a.checked_add(b)
        .filter(|s| *s <= MAX_TOKENS)
        .ok_or(TokenOverflow)
}

/// Token counts of a set of events. Every field and the [`Tokens::total`] are at most
/// [`MAX_TOKENS`]: [`Tokens::add`] and the readers refuse anything else.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tokens {
    pub events: u64,
    pub input: u64,
    pub output: u64,
    pub cache_write: u64,
    pub cache_read: u64,
    /// Of `cache_write`, the 1-hour cache writes (priced above 5-minute ones).
    pub cache_write_1h: u64,
    /// Of all the above, the tokens of long-context requests (prompt above
    /// [`LONG_CONTEXT_TOKENS`]), priced at the long-context rates.
    pub long: TokenSplit,
}

/// Token counts by what they are priced as.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenSplit {
    pub input: u64,
    pub output: u64,
    pub cache_write: u64,
    /// Of `cache_write`, the 1-hour writes.
    pub cache_write_1h: u64,
    pub cache_read: u64,
}

impl TokenSplit {
    /// `self + o`, field by field, if every sum is at most [`MAX_TOKENS`].
    pub fn checked_add(&self, o: &TokenSplit) -> Result<TokenSplit, TokenOverflow> {
        Ok(TokenSplit {
            input: add_tokens(self.input, o.input)?,
            output: add_tokens(self.output, o.output)?,
            cache_write: add_tokens(self.cache_write, o.cache_write)?,
            cache_write_1h: add_tokens(self.cache_write_1h, o.cache_write_1h)?,
            cache_read: add_tokens(self.cache_read, o.cache_read)?,
        })
    }
}

impl Tokens {
    /// All four token counts together.
    pub fn total(&self) -> u64 {
        // Exact whenever `check` passes, which every reader and `add` make sure of.
        self.checked_total().unwrap_or(u64::MAX)
    }

    /// The tokens of one request, with what its price needs.
    pub fn of_request(
        input: u64,
        output: u64,
        cache_write: u64,
        cache_write_1h: u64,
        cache_read: u64,
    ) -> Tokens {
        let split = TokenSplit {
            input,
            output,
            cache_write,
            cache_write_1h: cache_write_1h.min(cache_write),
            cache_read,
        };
        let long = is_long_context(input, cache_write, cache_read);
        Tokens {
            events: 1,
            input,
            output,
            cache_write,
            cache_read,
            cache_write_1h: split.cache_write_1h,
            long: if long { split } else { TokenSplit::default() },
        }
    }

    /// All four token counts together, if that is at most [`MAX_TOKENS`].
    pub fn checked_total(&self) -> Result<u64, TokenOverflow> {
        let t = add_tokens(self.input, self.output)?;
        let t = add_tokens(t, self.cache_write)?;
        add_tokens(t, self.cache_read)
    }

    /// Every count and the total are at most [`MAX_TOKENS`] (the 1-hour writes and the
    /// long-context split too).
    pub fn check(&self) -> Result<(), TokenOverflow> {
        let l = &self.long;
        let parts = [self.events, self.cache_write_1h, l.cache_write_1h];
        if parts.iter().any(|v| *v > MAX_TOKENS) {
            return Err(TokenOverflow);
        }
        let t = add_tokens(l.input, l.output)?;
        let t = add_tokens(t, l.cache_write)?;
        add_tokens(t, l.cache_read)?;
        self.checked_total().map(|_| ())
    }

    /// Add `o` in, or leave `self` unchanged and fail when a sum would pass [`MAX_TOKENS`].
    pub fn add(&mut self, o: &Tokens) -> Result<(), TokenOverflow> {
        let sum = Tokens {
            events: add_tokens(self.events, o.events)?,
            input: add_tokens(self.input, o.input)?,
            output: add_tokens(self.output, o.output)?,
            cache_write: add_tokens(self.cache_write, o.cache_write)?,
            cache_read: add_tokens(self.cache_read, o.cache_read)?,
            cache_write_1h: add_tokens(self.cache_write_1h, o.cache_write_1h)?,
            long: self.long.checked_add(&o.long)?,
        };
        sum.check()?;
        *self = sum;
        Ok(())
    }
}

//! Cost of grouped sums under a cost mode.

use crate::domain::CostMode;
use crate::pricing;
use crate::store::query::Sums;

/// The cost of one model's sums, and how many events had no price to use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Costed {
    pub usd: f64,
    /// Events whose cost had to be computed but whose model has no price (counted as 0).
    pub unpriced_events: u64,
}

/// Cost of `sums` (all events of one `model`) under `mode`.
///
/// * `stored`: only stored costs.
/// * `calculate`: every event priced from the table.
/// * `auto`: stored cost where positive, the rest priced from the table.
pub fn cost_of(sums: &Sums, model: Option<&str>, mode: CostMode) -> Costed {
    let price = || model.and_then(pricing::resolve).map(|r| r.price);
    match mode {
        CostMode::Stored => Costed {
            usd: sums.stored_cost,
            unpriced_events: 0,
        },
        CostMode::Calculate => match price() {
            Some(p) => Costed {
                usd: p.cost(&sums.all),
                unpriced_events: 0,
            },
            None => Costed {
                usd: 0.0,
                unpriced_events: sums.all.events,
            },
        },
        CostMode::Auto => {
            if sums.uncosted.events == 0 {
                return Costed {
                    usd: sums.positive_cost,
                    unpriced_events: 0,
                };
            }
            match price() {
                Some(p) => Costed {
                    usd: sums.positive_cost + p.cost(&sums.uncosted),
                    unpriced_events: 0,
                },
                None => Costed {
                    usd: sums.positive_cost,
                    unpriced_events: sums.uncosted.events,
                },
            }
        }
    }
}

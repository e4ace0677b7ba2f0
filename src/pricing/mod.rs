//! Model prices, per token in USD. (Interim table: replaced by the generated one.)

use crate::store::query::Tokens;

/// USD per token.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_write: f64,
    pub cache_read: f64,
}

impl Price {
    /// Cost of a set of tokens at this price.
    pub fn cost(&self, t: &Tokens) -> f64 {
        t.input as f64 * self.input
            + t.output as f64 * self.output
            + t.cache_write as f64 * self.cache_write
            + t.cache_read as f64 * self.cache_read
    }
}

/// What a model name resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The table entry's name.
    pub key: &'static str,
    pub provider: &'static str,
    pub price: Price,
    /// How the name was matched: "exact", "provider prefix stripped", "date suffix stripped", …
    pub matched_by: &'static str,
}

const TABLE: &[(&str, &str, Price)] = &[
    (
        "gpt-4o",
        "openai",
        Price {
            input: 2.5e-6,
            output: 1e-5,
            cache_write: 0.0,
            cache_read: 1.25e-6,
        },
    ),
    (
        "claude-sonnet-4-5",
        "anthropic",
        Price {
            input: 3e-6,
            output: 1.5e-5,
            cache_write: 3.75e-6,
            cache_read: 3e-7,
        },
    ),
];

/// Resolve a model name to a price.
pub fn resolve(model: &str) -> Option<Resolved> {
    let name = model.trim().to_ascii_lowercase();
    let name = name.rsplit('/').next().unwrap_or(&name).to_string();
    TABLE
        .iter()
        .find(|(k, _, _)| *k == name)
        .map(|(k, p, price)| Resolved {
            key: k,
            provider: p,
            price: *price,
            matched_by: "exact",
        })
}

//! `tokmon prices [MODEL]`: what a model name resolves to in the built-in price table, or the
//! whole table.
//!
//! Prices are shown per million tokens (USD), the unit providers publish. A name the table does
//! not know is reported on stderr and exits 1: its usage is counted at a cost of 0 elsewhere.

use serde_json::{Value, json};

use crate::cli::{OutputFormat, PricesArgs};
use crate::commands::Ctx;
use crate::commands::output::{self, Csv, Output};
use crate::error::{exit, is_broken_pipe};
use crate::pricing::{self, Resolved};

/// Run the command; returns the exit code.
pub fn run(_ctx: &Ctx, args: &PricesArgs) -> anyhow::Result<u8> {
    let result = match args.model.as_deref() {
        Some(model) => one(model, args.format),
        None => output::emit(args.format, &List(pricing::all().collect())).map(|()| exit::OK),
    };
    // A reader that stops early (`tokmon prices | head`) is not a failure.
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(exit::OK),
        other => other,
    }
}

/// USD per million tokens, rounded to a nano-dollar so that binary fractions print cleanly
/// (1.25e-6 per token shows as 1.25, not 1.2499999999999998).
fn per_mtok(per_token: f64) -> f64 {
    (per_token * 1e15).round() / 1e9
}

/// A per-1M price for people: at least two decimals, more only where they matter.
fn human(per_token: f64) -> String {
    let s = format!("{:.6}", per_mtok(per_token));
    let trimmed = s.trim_end_matches('0');
    let decimals = trimmed.split_once('.').map_or(0, |(_, d)| d.len());
    if decimals < 2 {
        format!("{:.2}", per_mtok(per_token))
    } else {
        trimmed.to_string()
    }
}

const PRICE_FIELDS: [&str; 5] = [
    "input_per_mtok",
    "output_per_mtok",
    "cache_write_per_mtok",
    "cache_read_per_mtok",
    "cache_write_1h_per_mtok",
];

fn prices_of(r: &Resolved) -> [f64; 5] {
    let p = r.price;
    [
        p.input,
        p.output,
        p.cache_write,
        p.cache_read,
        p.cache_write_1h,
    ]
    .map(per_mtok)
}

/// The long-context rates of a model with a tier, in [`PRICE_FIELDS`] order.
fn long_prices_of(r: &Resolved) -> Option<[f64; 5]> {
    let p = r.price;
    p.long?;
    let l = p.long_rates();
    Some(
        [
            l.input,
            l.output,
            l.cache_write,
            l.cache_read,
            l.cache_write_1h,
        ]
        .map(per_mtok),
    )
}

/// CSV columns of the long-context rates (empty for a model without a tier).
const LONG_FIELDS: [&str; 5] = [
    "above_200k_input_per_mtok",
    "above_200k_output_per_mtok",
    "above_200k_cache_write_per_mtok",
    "above_200k_cache_read_per_mtok",
    "above_200k_cache_write_1h_per_mtok",
];

fn long_cells(r: &Resolved) -> [String; 5] {
    match long_prices_of(r) {
        Some(rates) => rates.map(|v| v.to_string()),
        None => Default::default(),
    }
}

/// The long-context tier as JSON: the threshold and the rates used (null without a tier).
fn long_json(r: &Resolved) -> Value {
    match long_prices_of(r) {
        Some(rates) => {
            let mut obj = json!({"prompt_above_tokens": pricing::LONG_CONTEXT_TOKENS});
            for (field, v) in PRICE_FIELDS.iter().zip(rates) {
                obj[*field] = json!(v);
            }
            obj
        }
        None => Value::Null,
    }
}

/// The rows of `tokmon prices MODEL` that show its rates: base, then the long-context tier.
fn rate_rows(p: &pricing::Price) -> Vec<(&'static str, String)> {
    let usd = |v: f64| format!("{} USD / 1M tokens", human(v));
    let mut rows = vec![
        ("input", usd(p.input)),
        ("output", usd(p.output)),
        ("cache write 5m", usd(p.cache_write)),
        ("cache write 1h", usd(p.cache_write_1h)),
        ("cache read", usd(p.cache_read)),
    ];
    let Some(tier) = p.long else {
        rows.push((
            "long context",
            "no separate rates: the same at any prompt size".into(),
        ));
        return rows;
    };
    rows.push((
        "long context",
        format!(
            "a request whose prompt (input + cache write + cache read) exceeds {} tokens is priced, every token, at:",
            crate::numfmt::thousands(pricing::LONG_CONTEXT_TOKENS)
        ),
    ));
    let l = p.long_rates();
    let listed = |v: f64, own: Option<f64>| match own {
        Some(_) => usd(v),
        None => format!(
            "{} (base rate: the table lists no long-context one)",
            usd(v)
        ),
    };
    rows.extend([
        ("  input", listed(l.input, tier.input)),
        ("  output", listed(l.output, tier.output)),
        ("  cache write 5m", listed(l.cache_write, tier.cache_write)),
        (
            "  cache write 1h",
            listed(l.cache_write_1h, tier.cache_write_1h),
        ),
        ("  cache read", listed(l.cache_read, tier.cache_read)),
    ]);
    rows
}

/// One model name and what it resolves to.
struct One<'a> {
    model: &'a str,
    resolved: Option<Resolved>,
}

impl Output for One<'_> {
    fn table(&self) -> anyhow::Result<String> {
        let Some(r) = &self.resolved else {
            return Ok(String::new());
        };
        let mut rows = vec![
            ("model", self.model.to_string()),
            ("entry", r.key.to_string()),
            ("provider", r.provider.to_string()),
            ("matched by", r.matched_by.to_string()),
        ];
        rows.extend(rate_rows(&r.price));
        Ok(output::fields(&rows, 16) + &format!("source: {}\n", pricing::source_note()))
    }

    fn json(&self) -> anyhow::Result<Value> {
        let resolved = &self.resolved;
        let mut obj = json!({
            "model": self.model,
            "known": resolved.is_some(),
            "key": resolved.as_ref().map(|r| r.key),
            "provider": resolved.as_ref().map(|r| r.provider),
            "matched_by": resolved.as_ref().map(|r| r.matched_by),
        });
        let prices = resolved.as_ref().map(prices_of);
        for (i, field) in PRICE_FIELDS.iter().enumerate() {
            obj[*field] = prices.map_or(Value::Null, |p| json!(p[i]));
        }
        obj["long_context"] = resolved.as_ref().map_or(Value::Null, long_json);
        obj["source"] = json!(pricing::source_note());
        Ok(obj)
    }

    fn csv(&self) -> anyhow::Result<Csv> {
        let mut out = Csv::new(
            ["model", "known", "key", "provider", "matched_by"]
                .into_iter()
                .chain(PRICE_FIELDS)
                .chain(LONG_FIELDS),
        );
        let mut row = vec![self.model.to_string(), self.resolved.is_some().to_string()];
        match &self.resolved {
            Some(r) => {
                row.extend([r.key, r.provider, r.matched_by].map(String::from));
                row.extend(prices_of(r).map(|v| v.to_string()));
                row.extend(long_cells(r));
            }
            None => row.extend(std::iter::repeat_n(String::new(), 13)),
        }
        out.row(row);
        Ok(out)
    }
}

fn one(model: &str, format: OutputFormat) -> anyhow::Result<u8> {
    let resolved = pricing::resolve(model);
    let known = resolved.is_some();
    output::emit(format, &One { model, resolved })?;
    if known {
        return Ok(exit::OK);
    }
    crate::error::tell!(
        "tokmon: unknown model '{model}': no price in the built-in table ({}); its cost counts as 0",
        pricing::source_note()
    );
    Ok(exit::FAILURE)
}

/// The whole price table.
struct List(Vec<Resolved>);

impl Output for List {
    fn table(&self) -> anyhow::Result<String> {
        let mut t = output::new(
            &[
                "MODEL",
                "PROVIDER",
                "INPUT",
                "OUTPUT",
                "CACHE WRITE",
                "CACHE READ",
                "CACHE WRITE 1H",
                "ABOVE 200K IN/OUT",
            ],
            2,
        );
        for r in &self.0 {
            let p = r.price;
            let long = match p.long {
                Some(_) => {
                    let l = p.long_rates();
                    format!("{}/{}", human(l.input), human(l.output))
                }
                None => "-".into(),
            };
            t.add_row(vec![
                r.key.to_string(),
                r.provider.to_string(),
                human(p.input),
                human(p.output),
                human(p.cache_write),
                human(p.cache_read),
                human(p.cache_write_1h),
                long,
            ]);
        }
        Ok(format!(
            "{}\n\n\
             Prices in USD per 1M tokens. A cache price the source does not list is the input price; \
             a 1-hour cache-write price it does not list is the 5-minute one.\n\
             ABOVE 200K: the rates of every token of a request whose prompt (input + cache write + cache read) \
             exceeds 200,000 tokens; `tokmon prices MODEL` shows all of them.\n\
             source: {}\n",
            output::render_table(&t),
            pricing::source_note()
        ))
    }

    fn json(&self) -> anyhow::Result<Value> {
        let models: Vec<Value> = self
            .0
            .iter()
            .map(|r| {
                let mut obj = json!({"key": r.key, "provider": r.provider});
                for (field, v) in PRICE_FIELDS.iter().zip(prices_of(r)) {
                    obj[*field] = json!(v);
                }
                obj["long_context"] = long_json(r);
                obj
            })
            .collect();
        Ok(json!({"source": pricing::source_note(), "models": models}))
    }

    fn csv(&self) -> anyhow::Result<Csv> {
        let mut out = Csv::new(
            ["key", "provider"]
                .into_iter()
                .chain(PRICE_FIELDS)
                .chain(LONG_FIELDS),
        );
        for r in &self.0 {
            let mut row = vec![r.key.to_string(), r.provider.to_string()];
            row.extend(prices_of(r).map(|v| v.to_string()));
            row.extend(long_cells(r));
            out.row(row);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_mtok_prints_binary_fractions_cleanly() {
        assert_eq!(per_mtok(1.25e-6), 1.25);
        assert_eq!(per_mtok(3.75e-6), 3.75);
        assert_eq!(per_mtok(5e-9), 0.005);
    }

    #[test]
    fn human_keeps_two_decimals_and_no_more_than_needed() {
        assert_eq!(human(3e-6), "3.00");
        assert_eq!(human(3e-7), "0.30");
        assert_eq!(human(1.875e-8), "0.01875");
        assert_eq!(human(0.0), "0.00");
    }
}

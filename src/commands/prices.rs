//! `tokmon prices [MODEL]`: what a model name resolves to in the built-in price table, or the
//! whole table.
//!
//! Prices are shown per million tokens (USD), the unit providers publish. A name the table does
//! not know is reported on stderr and exits 1: its usage is counted at a cost of 0 elsewhere.

use std::io::Write;

use serde_json::{Value, json};

use crate::cli::{OutputFormat, PricesArgs};
use crate::commands::Ctx;
use crate::error::{exit, is_broken_pipe};
use crate::pricing::{self, Resolved};

/// Run the command; returns the exit code.
pub fn run(_ctx: &Ctx, args: &PricesArgs) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    let result = match args.model.as_deref() {
        Some(model) => one(&mut out, model, args.format),
        None => list(&mut out, args.format).map(|()| exit::OK),
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

const PRICE_FIELDS: [&str; 4] = [
    "input_per_mtok",
    "output_per_mtok",
    "cache_write_per_mtok",
    "cache_read_per_mtok",
];

fn prices_of(r: &Resolved) -> [f64; 4] {
    let p = r.price;
    [p.input, p.output, p.cache_write, p.cache_read].map(per_mtok)
}

fn one(out: &mut impl Write, model: &str, format: OutputFormat) -> anyhow::Result<u8> {
    let resolved = pricing::resolve(model);
    match format {
        OutputFormat::Table => {
            if let Some(r) = &resolved {
                let p = r.price;
                let rows = [
                    ("model", model.to_string()),
                    ("entry", r.key.to_string()),
                    ("provider", r.provider.to_string()),
                    ("matched by", r.matched_by.to_string()),
                    ("input", format!("{} USD / 1M tokens", human(p.input))),
                    ("output", format!("{} USD / 1M tokens", human(p.output))),
                    (
                        "cache write",
                        format!("{} USD / 1M tokens", human(p.cache_write)),
                    ),
                    (
                        "cache read",
                        format!("{} USD / 1M tokens", human(p.cache_read)),
                    ),
                ];
                for (label, value) in rows {
                    writeln!(out, "{label:<12} {value}")?;
                }
                writeln!(out, "source: {}", pricing::source_note())?;
            }
        }
        OutputFormat::Json => {
            let mut obj = json!({
                "model": model,
                "known": resolved.is_some(),
                "key": resolved.as_ref().map(|r| r.key),
                "provider": resolved.as_ref().map(|r| r.provider),
                "matched_by": resolved.as_ref().map(|r| r.matched_by),
            });
            let prices = resolved.as_ref().map(prices_of);
            for (i, field) in PRICE_FIELDS.iter().enumerate() {
                obj[*field] = prices.map_or(Value::Null, |p| json!(p[i]));
            }
            obj["source"] = json!(pricing::source_note());
            serde_json::to_writer_pretty(&mut *out, &obj)?;
            writeln!(out)?;
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            let mut header = vec!["model", "known", "key", "provider", "matched_by"];
            header.extend(PRICE_FIELDS);
            w.write_record(&header)?;
            let mut row = vec![model.to_string(), resolved.is_some().to_string()];
            match &resolved {
                Some(r) => {
                    row.extend([r.key, r.provider, r.matched_by].map(String::from));
                    row.extend(prices_of(r).map(|v| v.to_string()));
                }
                None => row.extend(std::iter::repeat_n(String::new(), 7)),
            }
            w.write_record(&row)?;
            w.flush()?;
        }
    }
    out.flush()?;
    if resolved.is_some() {
        return Ok(exit::OK);
    }
    eprintln!(
        "tokmon: unknown model '{model}': no price in the built-in table ({}); its cost counts as 0",
        pricing::source_note()
    );
    Ok(exit::FAILURE)
}

fn list(out: &mut impl Write, format: OutputFormat) -> anyhow::Result<()> {
    let rows: Vec<Resolved> = pricing::all().collect();
    match format {
        OutputFormat::Table => {
            let header = [
                "MODEL",
                "PROVIDER",
                "INPUT",
                "OUTPUT",
                "CACHE WRITE",
                "CACHE READ",
            ];
            let cells: Vec<[String; 6]> = rows
                .iter()
                .map(|r| {
                    let p = r.price;
                    [
                        r.key.to_string(),
                        r.provider.to_string(),
                        human(p.input),
                        human(p.output),
                        human(p.cache_write),
                        human(p.cache_read),
                    ]
                })
                .collect();
            let mut width = header.map(str::len);
            for row in &cells {
                for (w, cell) in width.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            let line = |cells: [&str; 6]| {
                let mut s = format!(
                    "{:<w0$}  {:<w1$}",
                    cells[0],
                    cells[1],
                    w0 = width[0],
                    w1 = width[1]
                );
                for (cell, w) in cells[2..].iter().zip(&width[2..]) {
                    s.push_str(&format!("  {cell:>w$}"));
                }
                s
            };
            writeln!(out, "{}", line(header))?;
            for row in &cells {
                writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
            }
            writeln!(out)?;
            writeln!(
                out,
                "Prices in USD per 1M tokens. A cache price the source does not list is the input price."
            )?;
            writeln!(out, "source: {}", pricing::source_note())?;
        }
        OutputFormat::Json => {
            let models: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let mut obj = json!({"key": r.key, "provider": r.provider});
                    for (field, v) in PRICE_FIELDS.iter().zip(prices_of(r)) {
                        obj[*field] = json!(v);
                    }
                    obj
                })
                .collect();
            let doc = json!({"source": pricing::source_note(), "models": models});
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)?;
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            let mut header = vec!["key", "provider"];
            header.extend(PRICE_FIELDS);
            w.write_record(&header)?;
            for r in &rows {
                let mut row = vec![r.key.to_string(), r.provider.to_string()];
                row.extend(prices_of(r).map(|v| v.to_string()));
                w.write_record(&row)?;
            }
            w.flush()?;
        }
    }
    out.flush()?;
    Ok(())
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

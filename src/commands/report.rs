//! `tokmon report`: totals over a range, grouped, as a table, JSON or CSV.

use serde_json::json;

use crate::cli::{OutputFormat, ReportArgs};
use crate::commands::{Ctx, table};
use crate::error::bad_input;
use crate::numfmt::{percent, thousands, usd};
use crate::range::parse_range;
use crate::report::{Report, Totals, build};

pub fn run(ctx: &Ctx, args: &ReportArgs) -> anyhow::Result<u8> {
    let range = parse_range(&args.range, &ctx.zone, ctx.now).map_err(|e| bad_input(e.0))?;
    let source = ctx.open_source()?;
    let report = build(&source, range, args.by.into(), ctx.cost_mode, &ctx.zone)?;
    let out = match args.format {
        OutputFormat::Table => to_table(&report, ctx),
        OutputFormat::Json => serde_json::to_string_pretty(&to_json(&report, ctx.now))? + "\n",
        OutputFormat::Csv => to_csv(&report)?,
    };
    crate::error::emit(&out)?;
    if args.format != OutputFormat::Table
        && let Some(w) = unpriced_warning(&report)
    {
        eprintln!("tokmon: {w}");
    }
    Ok(0)
}

fn round_usd(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn totals_json(t: &Totals) -> serde_json::Value {
    json!({
        "events": t.events,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "cache_creation_tokens": t.cache_creation_tokens,
        "cache_read_tokens": t.cache_read_tokens,
        "total_tokens": t.total_tokens,
        "cost_usd": round_usd(t.cost_usd),
    })
}

/// `{"range": {"from", "to"}, "totals": {…}, "groups": [{"key", …}]}`.
/// A range open at the end is shown as ending `now`.
pub fn to_json(r: &Report, now: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = r
        .groups
        .iter()
        .map(|g| {
            let mut v = json!({"key": g.key});
            if let (Some(o), serde_json::Value::Object(t)) =
                (v.as_object_mut(), totals_json(&g.totals))
            {
                o.extend(t);
            }
            v
        })
        .collect();
    json!({
        "range": {
            "from": r.range.from.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "to": r.range.to.unwrap_or(now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "totals": totals_json(&r.totals),
        "groups": groups,
    })
}

const COLUMNS: [&str; 7] = [
    "events",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "total_tokens",
    "cost_usd",
];

fn to_csv(r: &Report) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["key"];
    header.extend(COLUMNS);
    w.write_record(&header)?;
    for g in &r.groups {
        let t = &g.totals;
        w.write_record([
            g.key.clone(),
            t.events.to_string(),
            t.input_tokens.to_string(),
            t.output_tokens.to_string(),
            t.cache_creation_tokens.to_string(),
            t.cache_read_tokens.to_string(),
            t.total_tokens.to_string(),
            round_usd(t.cost_usd).to_string(),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn unpriced_warning(r: &Report) -> Option<String> {
    if r.unpriced.is_empty() {
        return None;
    }
    let events: u64 = r.unpriced.values().sum();
    let names: Vec<String> = r
        .unpriced
        .iter()
        .map(|(m, n)| format!("{m} ({})", thousands(*n)))
        .collect();
    Some(format!(
        "{} events of models without a price counted at $0: {} (see `tokmon prices MODEL`)",
        thousands(events),
        names.join(", ")
    ))
}

fn to_table(r: &Report, ctx: &Ctx) -> String {
    let by = match r.grouping {
        crate::report::Grouping::Dim(d) => d.name().to_uppercase(),
        crate::report::Grouping::Time(b) => format!("{b:?}").to_uppercase(),
    };
    let mut t = table::new(
        &[
            &by,
            "EVENTS",
            "INPUT",
            "OUTPUT",
            "CACHE WRITE",
            "CACHE READ",
            "TOTAL",
            "COST",
            "SHARE",
        ],
        1,
    );
    let whole = r.totals.total_tokens as f64;
    let row = |key: &str, x: &Totals| {
        vec![
            key.to_string(),
            thousands(x.events),
            thousands(x.input_tokens),
            thousands(x.output_tokens),
            thousands(x.cache_creation_tokens),
            thousands(x.cache_read_tokens),
            thousands(x.total_tokens),
            usd(x.cost_usd),
            percent(x.total_tokens as f64, whole),
        ]
    };
    for g in &r.groups {
        t.add_row(row(&g.key, &g.totals));
    }
    t.add_row(row("TOTAL", &r.totals));
    let fmt_t = |x: Option<chrono::DateTime<chrono::Utc>>, open: &str| {
        x.map(|t| {
            ctx.zone
                .to_local(t)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        })
        .unwrap_or_else(|| open.to_string())
    };
    let mut out = table::render(&t);
    out.push('\n');
    let mode = clap::ValueEnum::to_possible_value(&ctx.cost_mode)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    out.push_str(&format!(
        "\nRange: {} .. {} ({}), cost mode: {mode}\n",
        fmt_t(r.range.from, "beginning"),
        fmt_t(r.range.to, "now"),
        ctx.zone.name(),
    ));
    if let Some(w) = unpriced_warning(r) {
        out.push_str(&format!("Note: {w}\n"));
    }
    out
}

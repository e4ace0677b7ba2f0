//! `tokmon report`: totals over a range, grouped, as a table, JSON or CSV.

use serde_json::{Value, json};

use crate::cli::{OutputFormat, ReportArgs};
use crate::commands::Ctx;
use crate::commands::output::{self as table, Csv, Output};
use crate::error::bad_input;
use crate::numfmt::{percent, thousands, usd};
use crate::range::parse_range;
use crate::report::{Report, Totals, build};

pub fn run(ctx: &Ctx, args: &ReportArgs) -> anyhow::Result<u8> {
    let range = parse_range(&args.range, &ctx.zone, ctx.now).map_err(|e| bad_input(e.0))?;
    if !args.no_import {
        ctx.refresh_logs();
    }
    let source = ctx.open_source()?;
    let Some(grouping) = args.by.grouping() else {
        return blocks_report(ctx, &source, range, args.format);
    };
    let report = build(&source, range, grouping, ctx.cost_mode, &ctx.zone)?;
    table::emit(
        args.format,
        &ReportOut {
            report: &report,
            ctx,
        },
    )?;
    Ok(0)
}

/// A grouped report, in every format.
struct ReportOut<'a> {
    report: &'a Report,
    ctx: &'a Ctx,
}

impl Output for ReportOut<'_> {
    fn table(&self) -> anyhow::Result<String> {
        Ok(to_table(self.report, self.ctx))
    }

    fn json(&self) -> anyhow::Result<Value> {
        Ok(to_json(self.report, self.ctx.now))
    }

    fn csv(&self) -> anyhow::Result<Csv> {
        Ok(to_csv(self.report))
    }

    /// Models without a price (the table says so in a `Note:` line of its own).
    fn note(&self) -> Option<String> {
        unpriced_warning(self.report)
    }
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

fn to_csv(r: &Report) -> Csv {
    let mut out = Csv::new(["key"].into_iter().chain(COLUMNS));
    for g in &r.groups {
        let t = &g.totals;
        out.row([
            crate::text::printable_string(&g.key),
            t.events.to_string(),
            t.input_tokens.to_string(),
            t.output_tokens.to_string(),
            t.cache_creation_tokens.to_string(),
            t.cache_read_tokens.to_string(),
            t.total_tokens.to_string(),
            round_usd(t.cost_usd).to_string(),
        ]);
    }
    out
}

fn unpriced_warning(r: &Report) -> Option<String> {
    if r.unpriced.is_empty() {
        return None;
    }
    let events: u64 = r.unpriced.values().sum();
    let names: Vec<String> = r
        .unpriced
        .iter()
        .map(|(m, n)| format!("{} ({})", crate::text::printable(m), thousands(*n)))
        .collect();
    Some(format!(
        "{} events of models without a price counted at $0: {} (see `tokmon prices MODEL`)",
        thousands(events),
        names.join(", ")
    ))
}

/// The table columns of a group's totals.
const HEADERS: [&str; 7] = [
    "EVENTS",
    "INPUT",
    "OUTPUT",
    "CACHE WRITE",
    "CACHE READ",
    "TOTAL",
    "COST",
];

fn to_table(r: &Report, ctx: &Ctx) -> String {
    let by = match r.grouping {
        crate::report::Grouping::Dim(d) => d.name().to_uppercase(),
        crate::report::Grouping::Time(b) => format!("{b:?}").to_uppercase(),
    };
    let mut header = vec![by.as_str()];
    header.extend(HEADERS);
    header.push("SHARE");
    let mut t = table::new(&header, 1);
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
        t.add_row(table::printable_row(row(&g.key, &g.totals)));
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
    let mut out = table::render_table(&t);
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

/// `--by block`: the 5-hour blocks overlapping the range, with burn rate and projection for
/// the active one.
fn blocks_report(
    ctx: &Ctx,
    source: &crate::store::Source,
    range: crate::range::TimeRange,
    format: OutputFormat,
) -> anyhow::Result<u8> {
    let blocks = crate::blocks::blocks_in(
        source,
        range.from_ms(),
        range.to_ms(),
        ctx.now,
        ctx.cost_mode,
    )?;
    table::emit(
        format,
        &BlocksOut {
            blocks: &blocks,
            range,
            ctx,
        },
    )?;
    Ok(0)
}

/// The 5-hour blocks of a range, in every format.
struct BlocksOut<'a> {
    blocks: &'a [crate::blocks::Block],
    range: crate::range::TimeRange,
    ctx: &'a Ctx,
}

impl Output for BlocksOut<'_> {
    fn table(&self) -> anyhow::Result<String> {
        Ok(blocks_table(self.blocks, self.ctx))
    }

    fn json(&self) -> anyhow::Result<Value> {
        let now_ms = self.ctx.now.timestamp_millis();
        let list: Vec<Value> = self.blocks.iter().map(|b| block_json(b, now_ms)).collect();
        Ok(json!({
            "range": {
                "from": self.range.from.map(rfc3339),
                "to": rfc3339(self.range.to.unwrap_or(self.ctx.now)),
            },
            "blocks": list,
        }))
    }

    fn csv(&self) -> anyhow::Result<Csv> {
        Ok(blocks_csv(self.blocks, self.ctx.now.timestamp_millis()))
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn ms_rfc3339(ms: i64) -> String {
    rfc3339(crate::timefmt::from_ms(ms))
}

fn block_json(b: &crate::blocks::Block, now_ms: i64) -> serde_json::Value {
    let p = b.projection(now_ms);
    json!({
        "start": ms_rfc3339(b.start_ms),
        "end": ms_rfc3339(b.end_ms),
        "first_event": ms_rfc3339(b.first_ms),
        "last_event": ms_rfc3339(b.last_ms),
        "active": b.active,
        "events": b.tokens.events,
        "input_tokens": b.tokens.input,
        "output_tokens": b.tokens.output,
        "cache_creation_tokens": b.tokens.cache_write,
        "cache_read_tokens": b.tokens.cache_read,
        "total_tokens": b.tokens.total(),
        "cost_usd": round_usd(b.cost_usd),
        "remaining_minutes": b.active.then(|| (b.end_ms - now_ms).max(0) / 60_000),
        "burn_rate": p.map(|p| json!({
            "tokens_per_minute": p.tokens_per_minute.round(),
            "cost_per_hour": round_usd(p.cost_per_hour),
        })),
        "projection": p.map(|p| json!({
            "total_tokens": p.projected_tokens,
            "cost_usd": round_usd(p.projected_cost),
        })),
    })
}

fn blocks_csv(blocks: &[crate::blocks::Block], now_ms: i64) -> Csv {
    let mut header = vec!["start", "end", "active"];
    header.extend(COLUMNS);
    header.extend([
        "remaining_minutes",
        "tokens_per_minute",
        "cost_per_hour",
        "projected_tokens",
        "projected_cost_usd",
    ]);
    let mut out = Csv::new(header);
    for b in blocks {
        let p = b.projection(now_ms);
        let opt = |v: Option<String>| v.unwrap_or_default();
        out.row([
            ms_rfc3339(b.start_ms),
            ms_rfc3339(b.end_ms),
            b.active.to_string(),
            b.tokens.events.to_string(),
            b.tokens.input.to_string(),
            b.tokens.output.to_string(),
            b.tokens.cache_write.to_string(),
            b.tokens.cache_read.to_string(),
            b.tokens.total().to_string(),
            round_usd(b.cost_usd).to_string(),
            opt(b
                .active
                .then(|| ((b.end_ms - now_ms).max(0) / 60_000).to_string())),
            opt(p.map(|p| p.tokens_per_minute.round().to_string())),
            opt(p.map(|p| round_usd(p.cost_per_hour).to_string())),
            opt(p.map(|p| p.projected_tokens.to_string())),
            opt(p.map(|p| round_usd(p.projected_cost).to_string())),
        ]);
    }
    out
}

fn blocks_table(blocks: &[crate::blocks::Block], ctx: &Ctx) -> String {
    let local = |ms: i64| {
        ctx.zone
            .to_local(crate::timefmt::from_ms(ms))
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let mut header = vec!["START", "END"];
    header.extend(HEADERS);
    header.push("");
    let mut t = table::new(&header, 2);
    for b in blocks {
        t.add_row(vec![
            local(b.start_ms),
            local(b.end_ms),
            thousands(b.tokens.events),
            thousands(b.tokens.input),
            thousands(b.tokens.output),
            thousands(b.tokens.cache_write),
            thousands(b.tokens.cache_read),
            thousands(b.tokens.total()),
            usd(b.cost_usd),
            if b.active {
                "ACTIVE".into()
            } else {
                String::new()
            },
        ]);
    }
    let mut out = if blocks.is_empty() {
        "No Claude Code usage in this range (5-hour blocks count Claude Code's events).\n".into()
    } else {
        table::render_table(&t) + "\n"
    };
    let now_ms = ctx.now.timestamp_millis();
    if let Some(b) = blocks.iter().find(|b| b.active) {
        out.push_str(&format!(
            "\nActive block: {} left (ends {})",
            crate::numfmt::duration((b.end_ms - now_ms) / 1000),
            local(b.end_ms)
        ));
        match b.projection(now_ms) {
            Some(p) => out.push_str(&format!(
                ", burn rate {} tokens/min ({}/h), projected {} tokens, {}\n",
                thousands(p.tokens_per_minute.round() as u64),
                usd(p.cost_per_hour),
                thousands(p.projected_tokens),
                usd(p.projected_cost)
            )),
            None => out.push('\n'),
        }
    }
    out.push_str(&format!(
        "Blocks: 5 hours from the first event, floored to the UTC hour; times in {}.\n",
        ctx.zone.name()
    ));
    out
}

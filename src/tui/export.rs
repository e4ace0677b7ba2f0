//! `e` in the monitor: what the screen shows — range, drill-downs, both tables, the total
//! and the buckets — written to a CSV and a JSON file side by side.
//!
//! The CSV has one row per item with a `section` column (`total`, the two tables' dimensions,
//! `bucket`); the range and the filter repeat on every row so each row reads on its own.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use super::model::{Dim, Filter, RangeKind, RowView, Tally};
use crate::cli::OutputFormat;
use crate::commands::output::{self, Csv, Output};
use crate::timefmt::{Zone, from_ms};

/// The numbers of one screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub now_ms: i64,
    pub zone: Zone,
    pub range: RangeKind,
    /// Start of the range (`None`: all time).
    pub from_ms: Option<i64>,
    pub bucket_ms: i64,
    pub filters: Vec<Filter>,
    pub total: Tally,
    /// The two tables, left then right, with the dimension each groups by.
    pub tables: Vec<(Dim, Vec<RowView>)>,
    /// Start, tokens and cost of each bucket, oldest first.
    pub buckets: Vec<(i64, u64, f64)>,
}

const CSV_HEADER: [&str; 15] = [
    "range",
    "filter",
    "section",
    "name",
    "bucket_start",
    "events",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "total_tokens",
    "cost_usd",
    "share",
    "cache_share",
    "bucket_ms",
];

impl Export {
    fn time(&self, ms: i64) -> String {
        self.zone.to_local(from_ms(ms)).to_rfc3339()
    }

    /// `agent=claude-code;model=gpt-5`, empty without drill-downs.
    pub fn filter_text(&self) -> String {
        self.filters
            .iter()
            .map(|f| format!("{}={}", f.dim.word(), f.value))
            .collect::<Vec<_>>()
            .join(";")
    }

    fn tally_json(t: &Tally) -> Value {
        let s = &t.sums.all;
        json!({
            "events": s.events,
            "input_tokens": s.input,
            "output_tokens": s.output,
            "cache_creation_tokens": s.cache_write,
            "cache_read_tokens": s.cache_read,
            "total_tokens": s.total(),
            "cost_usd": t.cost,
        })
    }

    fn to_json(&self) -> Value {
        let tables: serde_json::Map<String, Value> = self
            .tables
            .iter()
            .map(|(dim, rows)| {
                let rows: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        let mut v = json!({ "name": r.name });
                        if let (Some(o), Value::Object(t)) =
                            (v.as_object_mut(), Self::tally_json(&r.tally))
                        {
                            o.extend(t);
                            o.insert("share".into(), json!(r.share));
                            o.insert("cache_share".into(), json!(r.cache_share()));
                        }
                        v
                    })
                    .collect();
                (format!("{}s", dim.word()), Value::Array(rows))
            })
            .collect();
        json!({
            "generated_at": self.time(self.now_ms),
            "range": self.range.label(),
            "from": self.from_ms.map(|f| self.time(f)),
            "to": self.time(self.now_ms),
            "bucket_ms": self.bucket_ms,
            "filter": self.filters.iter().map(|f| json!({
                "dimension": f.dim.word(),
                "value": f.value,
            })).collect::<Vec<_>>(),
            "total": Self::tally_json(&self.total),
            "tables": tables,
            "buckets": self.buckets.iter().map(|(start, tokens, cost)| json!({
                "start": self.time(*start),
                "tokens": tokens,
                "cost_usd": cost,
            })).collect::<Vec<_>>(),
        })
    }

    /// The CSV document: one row per item, every row of the same width.
    fn to_csv(&self) -> Csv {
        let mut out = Csv::new(CSV_HEADER);
        let range = self.range.label();
        let filter = self.filter_text();
        let tally_cells = |t: &Tally| {
            let s = &t.sums.all;
            vec![
                s.events.to_string(),
                s.input.to_string(),
                s.output.to_string(),
                s.cache_write.to_string(),
                s.cache_read.to_string(),
                s.total().to_string(),
                t.cost.to_string(),
            ]
        };
        let mut record = |section: &str, name: &str, start: String, cells: Vec<String>| {
            let mut rec = vec![
                range.to_string(),
                filter.clone(),
                section.to_string(),
                name.to_string(),
                start,
            ];
            rec.extend(cells);
            rec.resize(CSV_HEADER.len(), String::new());
            out.row(rec);
        };
        record("total", "", String::new(), tally_cells(&self.total));
        for (dim, rows) in &self.tables {
            for r in rows {
                let mut cells = tally_cells(&r.tally);
                cells.push(r.share.to_string());
                cells.push(r.cache_share().map(|c| c.to_string()).unwrap_or_default());
                record(dim.word(), &r.name, String::new(), cells);
            }
        }
        for (start, tokens, cost) in &self.buckets {
            let mut cells = vec![String::new(); 5];
            cells.push(tokens.to_string());
            cells.push(cost.to_string());
            cells.extend([String::new(), String::new(), self.bucket_ms.to_string()]);
            record("bucket", "", self.time(*start), cells);
        }
        out
    }

    /// Write `tokmon-<local time>.csv` and `.json` into `dir` (created if needed; a
    /// number is added when files of that name exist). Returns the two paths.
    pub fn write(&self, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let stamp = self
            .zone
            .to_local(from_ms(self.now_ms))
            .format("%Y%m%d-%H%M%S")
            .to_string();
        let free = |stem: &str| {
            ["csv", "json"]
                .iter()
                .all(|ext| !dir.join(format!("{stem}.{ext}")).exists())
        };
        let mut stem = format!("tokmon-{stamp}");
        let mut n = 2;
        while !free(&stem) {
            stem = format!("tokmon-{stamp}-{n}");
            n += 1;
        }
        let csv_path = dir.join(format!("{stem}.csv"));
        let json_path = dir.join(format!("{stem}.json"));
        for (path, format) in [
            (&csv_path, OutputFormat::Csv),
            (&json_path, OutputFormat::Json),
        ] {
            let text = output::render(format, self)?;
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(vec![csv_path, json_path])
    }
}

/// The export's two files are the output layer's CSV and JSON; the screen is its table.
impl Output for Export {
    fn table(&self) -> anyhow::Result<String> {
        anyhow::bail!("the monitor's export is written as CSV and JSON only")
    }

    fn json(&self) -> anyhow::Result<Value> {
        Ok(self.to_json())
    }

    fn csv(&self) -> anyhow::Result<Csv> {
        Ok(self.to_csv())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Tokens;
    use crate::store::query::Sums;

    fn tally(events: u64, input: u64, output: u64, write: u64, read: u64, cost: f64) -> Tally {
        Tally {
            sums: Sums {
                all: Tokens {
                    events,
                    input,
                    output,
                    cache_write: write,
                    cache_read: read,
                    ..Default::default()
                },
                ..Default::default()
            },
            cost,
        }
    }

    fn row(name: &str, t: Tally, share: f64) -> RowView {
        RowView {
            name: name.into(),
            tally: t,
            share,
        }
    }

    /// 2025-11-18T12:00:00Z
    const NOW: i64 = 1_763_467_200_000;

    /// An export with names that need CSV quoting, a row without any prompt tokens (no cache
    /// share), two drill-downs and a zone east of UTC.
    fn sample(from_ms: Option<i64>, filters: Vec<Filter>) -> Export {
        Export {
            now_ms: NOW,
            zone: Zone::Fixed(chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap()),
            range: RangeKind::Day,
            from_ms,
            bucket_ms: 3_600_000,
            filters,
            total: tally(7, 1_000, 250, 30, 4_000, 0.1 + 0.2),
            tables: vec![
                (
                    Dim::Agent,
                    vec![
                        row("claude-code", tally(5, 900, 200, 30, 4_000, 0.25), 0.9),
                        row("bot, \"quoted\"", tally(2, 100, 50, 0, 0, 0.05), 0.1),
                    ],
                ),
                (
                    Dim::Provider,
                    vec![
                        row("研究助手", tally(6, 1_000, 200, 30, 4_000, 0.3), 0.96),
                        row("empty", tally(1, 0, 50, 0, 0, 0.0), 0.04),
                    ],
                ),
            ],
            buckets: vec![
                (NOW - 7_200_000, 3_000, 0.125),
                (NOW - 3_600_000, 2_280, 0.175),
            ],
        }
    }

    #[test]
    fn csv_and_json_byte_for_byte() {
        let filters = vec![
            Filter {
                dim: Dim::Agent,
                value: "claude-code".into(),
            },
            Filter {
                dim: Dim::Model,
                value: "gpt-5;x=y".into(),
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        for (name, e) in [
            ("export_drilled", sample(Some(NOW - 86_400_000), filters)),
            ("export_all_time", sample(None, Vec::new())),
        ] {
            let paths = e.write(dir.path()).unwrap();
            let read = |p: &Path| std::fs::read_to_string(p).unwrap();
            let (csv, json) = (read(&paths[0]), read(&paths[1]));
            assert!(csv.ends_with(",3600000\n") && json.ends_with("}\n"));
            insta::assert_snapshot!(name, format!("{csv}--- json ---\n{json}"));
            assert!(
                output::render(OutputFormat::Table, &e).is_err(),
                "no table form"
            );
        }
    }
}

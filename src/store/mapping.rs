//! How a usage table's columns map onto tokmon's event model, and the SQL built from it.
//!
//! Column names come from a fixed list (the built-in trackers) or from the config file; the
//! latter are validated as plain identifiers and checked against the table before they are
//! quoted into SQL.

use crate::config::CustomTable;
use crate::error::bad_input;

pub use crate::domain::Dimension;
use crate::domain::event::{Counts, Dims};

/// SQL that is 1 when a request with these token columns is long-context, else 0.
pub fn long_context_sql(input: &str, cache_write: &str, cache_read: &str) -> String {
    format!(
        "({input} + {cache_write} + {cache_read} > {})",
        crate::pricing::LONG_CONTEXT_TOKENS
    )
}

/// Where a field comes from: a column, or nowhere (always NULL / 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Col {
    Column(String),
    #[default]
    Absent,
}

impl Col {
    fn named(name: &str) -> Col {
        Col::Column(name.to_string())
    }
    fn opt(name: &Option<String>) -> Col {
        name.as_deref().map(Col::named).unwrap_or(Col::Absent)
    }
}

/// A quoted identifier. Only called on names that passed [`valid_identifier`].
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Plain SQL identifiers only: letters, digits, underscore; not starting with a digit.
pub fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}

/// The mapping of one table onto the event model.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub table: String,
    /// Monotonically increasing integer key used to tail new rows.
    pub id: String,
    /// The timestamp column. For the native store it holds unix ms; elsewhere any form.
    pub ts: String,
    /// True when `ts` already holds unix milliseconds (native store).
    pub ts_is_ms: bool,
    pub dims: Dims<Col>,
    /// The token counts (of the cache writes, the 1-hour ones are priced apart).
    pub counts: Counts<Col>,
    /// 1 for the rows of a long-context request. Absent: computed from the row's own tokens.
    pub long_context: Col,
    pub cost: Col,
    pub cost_scale: f64,
    pub duration_ms: Col,
    /// Values of the agent column that mean "no agent" (besides NULL and '').
    pub agent_none_values: Vec<String>,
    /// True when the columns are known to be clean (native): no casts or clamps needed.
    pub trusted: bool,
}

impl Mapping {
    /// tokmon's own `events` table.
    pub fn native() -> Mapping {
        Mapping {
            table: "events".into(),
            id: "id".into(),
            ts: "ts".into(),
            ts_is_ms: true,
            dims: Dims::from_fn(Col::named),
            counts: Counts::from_fn(Col::named),
            long_context: Col::named("long_context"),
            cost: Col::named("cost_usd"),
            cost_scale: 1.0,
            duration_ms: Col::named("duration_ms"),
            agent_none_values: vec![],
            trusted: true,
        }
    }

    fn foreign(table: &str, ts: &str, model: &str) -> Mapping {
        Mapping {
            table: table.into(),
            id: "id".into(),
            ts: ts.into(),
            ts_is_ms: false,
            dims: Dims {
                model: Col::named(model),
                ..Dims::default()
            },
            counts: Counts {
                input_tokens: Col::named("input_tokens"),
                output_tokens: Col::named("output_tokens"),
                ..Counts::default()
            },
            long_context: Col::Absent,
            cost: Col::Absent,
            cost_scale: 1.0,
            duration_ms: Col::Absent,
            agent_none_values: vec![],
            trusted: false,
        }
    }

    /// Bot tracker: provider + model + request_type (formats.md §1).
    pub fn bot() -> Mapping {
        let mut m = Mapping {
            cost: Col::named("cost_usd"),
            ..Mapping::foreign("token_usage", "timestamp", "model")
        };
        m.dims.provider = Col::named("provider");
        m.dims.agent = Col::named("request_type");
        m.dims.user = Col::named("user_id");
        m
    }

    /// Chat agent tracker: chat_mode / model_name / agent_name (formats.md §2).
    pub fn chat_agent() -> Mapping {
        let mut m = Mapping {
            cost: Col::named("cost_usd"),
            duration_ms: Col::named("duration_ms"),
            ..Mapping::foreign("token_usage", "timestamp", "model_name")
        };
        m.dims.agent = Col::named("agent_name");
        m.dims.operation = Col::named("chat_mode");
        m.dims.session = Col::named("session_id");
        m
    }

    /// Desktop assistant tracker: endpoint_name and cache columns (formats.md §3).
    /// Missing context is stored as '' and the agent as 'unknown': both read as none.
    pub fn desktop() -> Mapping {
        let mut m = Mapping {
            cost: Col::named("estimated_cost"),
            agent_none_values: vec!["unknown".into()],
            ..Mapping::foreign("token_usage", "timestamp", "model")
        };
        m.dims.provider = Col::named("endpoint_name");
        m.dims.agent = Col::named("operation_type");
        m.dims.operation = Col::named("operation_detail");
        m.dims.session = Col::named("session_id");
        m.dims.user = Col::named("user_id");
        m.dims.channel = Col::named("channel");
        m.counts.cache_creation_tokens = Col::named("cache_creation_tokens");
        m.counts.cache_read_tokens = Col::named("cache_read_tokens");
        m
    }

    /// The team service's `ai_usage` table in PostgreSQL (formats.md §4): cost in cents, and
    /// rows with `cached = true` (cache-hit markers) are no events. Read by `store::pg`, which
    /// writes its SQL itself; this mapping names the columns.
    pub fn ai_usage() -> Mapping {
        let mut m = Mapping {
            id: "id".into(),
            cost: Col::named("cost"),
            cost_scale: 0.01,
            ..Mapping::foreign("ai_usage", "timestamp", "model")
        };
        m.dims.provider = Col::named("provider");
        m.dims.user = Col::named("user_id");
        m.dims.project = Col::named("project_id");
        m.counts.input_tokens = Col::named("prompt_tokens");
        m.counts.output_tokens = Col::named("completion_tokens");
        m
    }

    /// A table described in the config file. Every name must be a plain identifier.
    pub fn custom(t: &CustomTable) -> anyhow::Result<Mapping> {
        let label = t.name.clone().unwrap_or_else(|| t.table.clone());
        let check = |field: &str, v: &str| -> anyhow::Result<()> {
            if valid_identifier(v) {
                Ok(())
            } else {
                Err(bad_input(format!(
                    "config [[table]] '{label}': {field} = '{v}' is not a plain column name (letters, digits, _)"
                )))
            }
        };
        check("table", &t.table)?;
        let mut m = Mapping::foreign(&t.table, &t.timestamp, &t.model);
        m.id = t.id.clone().unwrap_or_else(|| "rowid".into());
        m.dims.provider = Col::opt(&t.provider);
        m.dims.agent = Col::opt(&t.agent);
        m.dims.session = Col::opt(&t.session);
        m.dims.project = Col::opt(&t.project);
        m.dims.user = Col::opt(&t.user);
        m.dims.channel = Col::opt(&t.channel);
        m.dims.operation = Col::opt(&t.operation);
        m.counts.input_tokens = Col::opt(&t.input_tokens);
        m.counts.output_tokens = Col::opt(&t.output_tokens);
        m.counts.cache_creation_tokens = Col::opt(&t.cache_creation_tokens);
        m.counts.cache_read_tokens = Col::opt(&t.cache_read_tokens);
        m.cost = Col::opt(&t.cost_usd);
        m.duration_ms = Col::opt(&t.duration_ms);
        if let Some(scale) = t.cost_scale {
            crate::config::check_cost_scale(scale)
                .map_err(|why| bad_input(format!("config [[table]] '{label}': {why}")))?;
            m.cost_scale = scale;
        }
        for (field, name) in m.named_columns() {
            if name != "rowid" {
                check(field, name)?;
            }
        }
        Ok(m)
    }

    /// Every column the mapping reads, with the field it feeds.
    pub fn named_columns(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("id", self.id.as_str()), ("timestamp", self.ts.as_str())];
        let dims = Dimension::ALL.map(|d| (d.name(), self.dim_col(d)));
        let rest = [
            ("long_context", &self.long_context),
            ("cost_usd", &self.cost),
            ("duration_ms", &self.duration_ms),
        ];
        let cols = dims.into_iter().chain(self.counts.each()).chain(rest);
        for (f, c) in cols {
            if let Col::Column(n) = c {
                out.push((f, n.as_str()));
            }
        }
        out
    }

    pub fn dim_col(&self, d: Dimension) -> &Col {
        self.dims.get(d)
    }

    /// SQL for a dimension: text, NULL when missing or empty.
    pub fn dim_sql(&self, d: Dimension) -> String {
        match self.dim_col(d) {
            Col::Absent => "NULL".into(),
            Col::Column(c) if self.trusted => quote(c),
            Col::Column(c) => {
                let mut e = format!("NULLIF(CAST({} AS TEXT), '')", quote(c));
                if d == Dimension::Agent {
                    for v in &self.agent_none_values {
                        // Values come from the built-in mappings only, never from users.
                        e = format!("NULLIF({e}, '{}')", v.replace('\'', "''"));
                    }
                }
                e
            }
        }
    }

    /// SQL for a token count: an integer, never NULL, never negative.
    pub fn tokens_sql(&self, c: &Col) -> String {
        match c {
            Col::Absent => "0".into(),
            Col::Column(c) if self.trusted => quote(c),
            Col::Column(c) => format!("MAX(COALESCE(CAST({} AS INTEGER), 0), 0)", quote(c)),
        }
    }

    /// SQL that is 1 for a row of a long-context request: the stored flag, or else the row's
    /// own prompt (input + cache write + cache read) above the threshold.
    pub fn long_context_sql(&self) -> String {
        match &self.long_context {
            Col::Column(c) => quote(c),
            Col::Absent => long_context_sql(
                &self.tokens_sql(&self.counts.input_tokens),
                &self.tokens_sql(&self.counts.cache_creation_tokens),
                &self.tokens_sql(&self.counts.cache_read_tokens),
            ),
        }
    }

    /// The columns of tokmon's first schema (before migrations added the price detail).
    pub fn native_first() -> Mapping {
        let mut m = Mapping {
            long_context: Col::Absent,
            ..Mapping::native()
        };
        m.counts.cache_creation_1h_tokens = Col::Absent;
        m
    }

    /// SQL for the stored cost in USD, NULL when unknown.
    pub fn cost_sql(&self) -> String {
        match &self.cost {
            Col::Absent => "NULL".into(),
            Col::Column(c) if self.trusted => quote(c),
            Col::Column(c) if self.cost_scale == 1.0 => format!("CAST({} AS REAL)", quote(c)),
            Col::Column(c) => format!("(CAST({} AS REAL) * {:e})", quote(c), self.cost_scale),
        }
    }

    /// SQL for the event time as unix milliseconds.
    pub fn ts_sql(&self) -> String {
        if self.ts_is_ms {
            quote(&self.ts)
        } else {
            format!("{}({})", super::TS_FUNCTION, quote(&self.ts))
        }
    }

    pub fn duration_sql(&self) -> String {
        match &self.duration_ms {
            Col::Absent => "NULL".into(),
            Col::Column(c) => format!("CAST({} AS REAL)", quote(c)),
        }
    }

    pub fn id_sql(&self) -> String {
        if self.id == "rowid" {
            "rowid".into()
        } else {
            quote(&self.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(valid_identifier("token_usage"));
        assert!(valid_identifier("_x1"));
        assert!(!valid_identifier("1x"));
        assert!(!valid_identifier("a b"));
        assert!(!valid_identifier("x\"; DROP TABLE y; --"));
        assert!(!valid_identifier(""));
    }

    /// A `[[table]]` in the config maps every declared field that is usage or a dimension:
    /// a field declared in `domain::event` but missing from `CustomTable` (or not mapped by
    /// `Mapping::custom`) fails here.
    #[test]
    fn a_config_table_maps_every_declared_field() {
        let mut keys: Vec<&str> = Dimension::ALL
            .iter()
            .map(|d| d.name())
            .filter(|n| *n != "model")
            .collect();
        let counts = crate::domain::event::COUNT_COLUMNS;
        keys.extend(counts.iter().filter(|c| !crate::domain::event::is_part(c)));
        keys.extend(["cost_usd", "duration_ms"]);
        let mut toml = String::from("table = \"t\"\ntimestamp = \"at\"\nmodel = \"m\"\n");
        for k in &keys {
            toml.push_str(&format!("{k} = \"c_{k}\"\n"));
        }
        let t: CustomTable = toml::from_str(&toml).unwrap();
        let m = Mapping::custom(&t).unwrap();
        let named = m.named_columns();
        for k in keys {
            let want = format!("c_{k}");
            assert!(
                named.iter().any(|(f, c)| *f == k && *c == want),
                "{k} is not mapped: {named:?}"
            );
        }
    }

    #[test]
    fn custom_rejects_injection() {
        let t = CustomTable {
            table: "usage".into(),
            timestamp: "ts".into(),
            model: "model; DROP TABLE usage".into(),
            ..Default::default()
        };
        let err = Mapping::custom(&t).unwrap_err().to_string();
        assert!(err.contains("model; DROP TABLE usage"), "{err}");
    }
}

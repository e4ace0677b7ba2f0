//! Generic usage files whose fields are the names of tokmon's event model: JSONL (one object
//! per line) and CSV (a header row, then one event per row).
//!
//! Fields: `ts` (or `timestamp`; RFC 3339, `YYYY-MM-DD HH:MM:SS` in the naive zone, or unix
//! seconds / milliseconds) and `model` are required; `provider`, `agent`, `session`,
//! `project`, `user`, `channel`, `operation` are optional text; `input_tokens`,
//! `output_tokens`, `cache_creation_tokens`, `cache_read_tokens` are whole numbers ≥ 0 (at
//! least one of them, or `cost_usd`, must be present); `cost_usd` and `duration_ms` are numbers
//! ≥ 0; `metadata` is a JSON object (or JSON text); `unique_key` makes the event idempotent.
//! Without `unique_key`, the key is a hash of the line, so importing the same line again adds
//! nothing. Other fields are ignored.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{LineError, LineParser, short_hash};
use crate::domain::event::{COUNT_COLUMNS, Counts, Dimension, is_part};
use crate::store::native::NewEvent;
use crate::timefmt::{Zone, epoch_number_to_ms, parse_stored_timestamp};

/// The token fields of the event model that are usage of their own (not a part of another).
pub static TOKEN_FIELDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| COUNT_COLUMNS.into_iter().filter(|c| !is_part(c)).collect());

/// One field's value, as found in the file.
enum Cell<'a> {
    Text(&'a str),
    Json(&'a Value),
}

impl Cell<'_> {
    /// The value as text: strings as they are, numbers and booleans printed, JSON as JSON.
    fn text(&self) -> Option<String> {
        match self {
            Cell::Text(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Cell::Json(Value::Null) => None,
            Cell::Json(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Cell::Json(v) => Some(v.to_string()),
        }
    }
}

fn whole(name: &'static str, c: Option<Cell>) -> Result<Option<u64>, LineError> {
    let Some(t) = c.as_ref().and_then(Cell::text) else {
        return Ok(None);
    };
    if let Ok(n) = t.parse::<u64>()
        && n <= i64::MAX as u64
    {
        return Ok(Some(n));
    }
    if t.starts_with('-') {
        Err(LineError::negative(name, t))
    } else {
        Err(LineError::NotWhole {
            field: name,
            value: t,
        })
    }
}

fn amount(name: &'static str, c: Option<Cell>) -> Result<Option<f64>, LineError> {
    let Some(t) = c.as_ref().and_then(Cell::text) else {
        return Ok(None);
    };
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
        Ok(x) if x < 0.0 => Err(LineError::negative(name, t)),
        _ => Err(LineError::NotNumber {
            field: name,
            value: t,
        }),
    }
}

fn timestamp(c: Option<Cell>, zone: &Zone) -> Result<i64, LineError> {
    if let Some(Cell::Json(Value::Number(n))) = &c {
        return n
            .as_f64()
            .and_then(epoch_number_to_ms)
            .ok_or_else(|| LineError::BadEpoch(n.clone()));
    }
    let Some(t) = c.as_ref().and_then(Cell::text) else {
        return Err(LineError::Missing("ts"));
    };
    parse_stored_timestamp(&t, zone).ok_or(LineError::BadTime {
        field: "ts",
        text: t,
        hint: ": use RFC 3339, 'YYYY-MM-DD HH:MM:SS' or unix seconds",
    })
}

/// Build an event from named fields. `hash_source` stands in for a missing `unique_key`.
fn event<'a>(
    get: impl Fn(&str) -> Option<Cell<'a>>,
    zone: &Zone,
    prefix: &str,
    hash_source: &[u8],
    source: &str,
) -> Result<NewEvent, LineError> {
    let ts = timestamp(get("ts").or_else(|| get("timestamp")), zone)?;
    let model = get("model")
        .and_then(|c| c.text())
        .ok_or(LineError::Missing("model"))?;
    let mut any = false;
    let counts = Counts::try_from_fn(|col| {
        if !TOKEN_FIELDS.contains(&col) {
            return Ok(0);
        }
        let n = whole(col, get(col))?;
        any |= n.is_some();
        Ok(n.unwrap_or(0))
    })?;
    let cost = amount("cost_usd", get("cost_usd"))?;
    if !any && cost.is_none() {
        return Err(LineError::NoUsage(format!(
            "none of {}, cost_usd",
            TOKEN_FIELDS.join(", ")
        )));
    }
    let metadata = match get("metadata") {
        None | Some(Cell::Json(Value::Null)) => None,
        Some(Cell::Json(v @ (Value::Object(_) | Value::Array(_)))) => Some(v.to_string()),
        Some(c) => match c.text() {
            None => None,
            Some(t) => {
                let v: Value = serde_json::from_str(&t).map_err(LineError::BadMetadata)?;
                Some(v.to_string())
            }
        },
    };
    let mut e = NewEvent {
        ts_ms: ts,
        model,
        cost_usd: cost,
        duration_ms: amount("duration_ms", get("duration_ms"))?,
        source: source.into(),
        unique_key: Some(
            get("unique_key")
                .and_then(|c| c.text())
                .unwrap_or_else(|| format!("{prefix}:{}", short_hash(&[hash_source]))),
        ),
        metadata,
        ..Default::default()
    };
    e.set_counts(counts);
    for d in Dimension::ALL {
        if d != Dimension::Model {
            e.set_dim(d, get(d.name()).and_then(|c| c.text()));
        }
    }
    Ok(e)
}

pub(crate) struct JsonlParser {
    zone: Zone,
}

impl JsonlParser {
    pub(crate) fn new(zone: Zone) -> JsonlParser {
        JsonlParser { zone }
    }
}

impl LineParser for JsonlParser {
    fn parse(
        &mut self,
        line: &[u8],
        _line_no: u64,
        _offset: u64,
    ) -> Result<Option<NewEvent>, LineError> {
        let v: Value = serde_json::from_slice(line).map_err(LineError::NotJson)?;
        let Value::Object(o) = &v else {
            return Err(LineError::NotAnObject);
        };
        event(
            |k| o.get(k).map(Cell::Json),
            &self.zone,
            "jsonl",
            line,
            super::Format::Jsonl.source(),
        )
        .map(Some)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CsvState {
    header: Option<Vec<String>>,
}

pub(crate) struct CsvParser {
    zone: Zone,
    columns: Option<HashMap<String, usize>>,
    st: CsvState,
}

impl CsvParser {
    pub(crate) fn new(zone: Zone, state: Option<&str>) -> CsvParser {
        let st: CsvState = state
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let columns = st.header.as_ref().map(|h| index(h));
        CsvParser { zone, columns, st }
    }
}

fn index(header: &[String]) -> HashMap<String, usize> {
    header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
        .collect()
}

fn read_record(line: &[u8]) -> Result<csv::StringRecord, LineError> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let mut rec = csv::StringRecord::new();
    match r.read_record(&mut rec) {
        Ok(true) => Ok(rec),
        Ok(false) => Err(LineError::EmptyRecord),
        Err(e) => Err(LineError::NotCsv(e)),
    }
}

impl LineParser for CsvParser {
    fn parse(
        &mut self,
        line: &[u8],
        _line_no: u64,
        offset: u64,
    ) -> Result<Option<NewEvent>, LineError> {
        let rec = read_record(line)?;
        if offset == 0 || self.columns.is_none() {
            // The header row.
            let header: Vec<String> = rec.iter().map(str::to_string).collect();
            let cols = index(&header);
            let has_ts = cols.contains_key("ts") || cols.contains_key("timestamp");
            if !has_ts || !cols.contains_key("model") {
                return Err(LineError::NoHeader(header.join(",")));
            }
            self.columns = Some(cols);
            self.st.header = Some(header);
            return Ok(None);
        }
        let cols = self.columns.as_ref().expect("header read");
        let get = |k: &str| cols.get(k).and_then(|i| rec.get(*i)).map(Cell::Text);
        event(get, &self.zone, "csv", line, super::Format::Csv.source()).map(Some)
    }

    fn state(&self) -> Option<String> {
        serde_json::to_string(&self.st).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_fields() {
        let mut p = JsonlParser::new(Zone::UTC);
        let e = p
            .parse(br#"{"ts":"2025-01-02T03:04:05Z","model":"gpt-4o","agent":"bot","input_tokens":10,"output_tokens":"5","cost_usd":0.01,"metadata":{"a":1}}"#, 1, 0)
            .unwrap()
            .unwrap();
        assert_eq!((e.input_tokens, e.output_tokens), (10, 5));
        assert_eq!(e.agent.as_deref(), Some("bot"));
        assert_eq!(e.metadata.as_deref(), Some(r#"{"a":1}"#));
        assert!(e.unique_key.unwrap().starts_with("jsonl:"));
        let e = p
            .parse(
                br#"{"ts":1735787045,"model":"m","input_tokens":1,"unique_key":"k1"}"#,
                1,
                0,
            )
            .unwrap()
            .unwrap();
        assert_eq!(e.ts_ms, 1_735_787_045_000);
        assert_eq!(e.unique_key.as_deref(), Some("k1"));
        assert!(
            p.parse(br#"{"ts":1735787045,"model":"m"}"#, 1, 0)
                .unwrap_err()
                .to_string()
                .starts_with("missing usage")
        );
        assert!(
            p.parse(br#"{"ts":1735787045,"model":"m","output_tokens":-2}"#, 1, 0)
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(
            p.parse(br#"{"model":"m","output_tokens":2}"#, 1, 0)
                .unwrap_err()
                .to_string()
                .contains("missing ts")
        );
    }

    #[test]
    fn csv_rows() {
        let mut p = CsvParser::new(Zone::UTC, None);
        assert!(
            p.parse(b"ts,model,input_tokens,metadata", 1, 0)
                .unwrap()
                .is_none()
        );
        let e = p
            .parse(br#"2025-01-02 03:04:05,m,7,"{""k"":""v""}""#, 2, 30)
            .unwrap()
            .unwrap();
        assert_eq!(e.input_tokens, 7);
        assert_eq!(e.metadata.as_deref(), Some(r#"{"k":"v"}"#));
        // Resuming after the header keeps the columns.
        let mut q = CsvParser::new(Zone::UTC, p.state().as_deref());
        assert_eq!(
            q.parse(b"2025-01-02 03:04:05,m,9,", 3, 60)
                .unwrap()
                .unwrap()
                .input_tokens,
            9
        );
        let mut bad = CsvParser::new(Zone::UTC, None);
        assert!(bad.parse(b"a,b,c", 1, 0).is_err());
    }
}

//! Why a log line was not read: each parser's reasons, as one type. The text of each is what
//! the import summary shows for a bad line.

use serde_json::{Number, Value};

use crate::timefmt::{Zone, parse_stored_timestamp};

/// A line that could not be read as usage.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("not a JSON object")]
    NotAnObject,
    /// A field that must be an object is something else.
    #[error("{0} is not an object")]
    FieldNotAnObject(&'static str),
    #[error("not CSV: {0}")]
    NotCsv(#[source] csv::Error),
    #[error("empty record")]
    EmptyRecord,
    /// A CSV file whose first row does not name the required columns (the row, joined).
    #[error("the first row must be a header naming at least ts and model (found: {0})")]
    NoHeader(String),
    /// A required field is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// No field carries usage; says which were looked for.
    #[error("missing usage: {0}")]
    NoUsage(String),
    /// A time that cannot be read; `hint` says which forms can.
    #[error("cannot read {field} '{text}'{hint}")]
    BadTime {
        field: &'static str,
        text: String,
        hint: &'static str,
    },
    /// A number that is no time in seconds or milliseconds.
    #[error("cannot read ts {0}")]
    BadEpoch(Number),
    #[error("negative {field} {value}")]
    Negative { field: String, value: String },
    #[error("{field} '{value}' is not a whole number")]
    NotWhole { field: &'static str, value: String },
    /// A JSON value that is no whole number.
    #[error("{field} is not a whole number: {value}")]
    NotWholeJson { field: String, value: Value },
    #[error("{field} '{value}' is not a number")]
    NotNumber { field: &'static str, value: String },
    #[error("metadata is not JSON ({0})")]
    BadMetadata(#[source] serde_json::Error),
    #[error("invalid costUSD {0}")]
    BadCost(f64),
}

impl LineError {
    /// A negative count or amount.
    pub fn negative(field: impl Into<String>, value: impl ToString) -> LineError {
        LineError::Negative {
            field: field.into(),
            value: value.to_string(),
        }
    }
}

/// A log line's `timestamp` (RFC 3339, read as UTC), or why it cannot be read.
pub(crate) fn utc_timestamp(t: Option<&str>) -> Result<i64, LineError> {
    let t = t.ok_or(LineError::Missing("timestamp"))?;
    parse_stored_timestamp(t, &Zone::UTC).ok_or_else(|| LineError::BadTime {
        field: "timestamp",
        text: t.into(),
        hint: "",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reason reads as the parsers wrote it when they returned text.
    #[test]
    fn reasons_read_as_before() {
        let json = serde_json::from_str::<Value>("{x").unwrap_err();
        let cases: Vec<(LineError, String)> = vec![
            (
                LineError::NotJson(json),
                "not JSON: key must be a string at line 1 column 2".into(),
            ),
            (LineError::NotAnObject, "not a JSON object".into()),
            (
                LineError::FieldNotAnObject("last_token_usage"),
                "last_token_usage is not an object".into(),
            ),
            (LineError::EmptyRecord, "empty record".into()),
            (
                LineError::NoHeader("a,b".into()),
                "the first row must be a header naming at least ts and model (found: a,b)".into(),
            ),
            (LineError::Missing("model"), "missing model".into()),
            (
                LineError::NoUsage("none of x, cost_usd".into()),
                "missing usage: none of x, cost_usd".into(),
            ),
            (
                LineError::BadTime {
                    field: "ts",
                    text: "x".into(),
                    hint: ": use RFC 3339",
                },
                "cannot read ts 'x': use RFC 3339".into(),
            ),
            (
                LineError::BadTime {
                    field: "timestamp",
                    text: "y".into(),
                    hint: "",
                },
                "cannot read timestamp 'y'".into(),
            ),
            (
                LineError::BadEpoch(Number::from(-5)),
                "cannot read ts -5".into(),
            ),
            (
                LineError::negative("output_tokens", -2),
                "negative output_tokens -2".into(),
            ),
            (
                LineError::NotWhole {
                    field: "input_tokens",
                    value: "1.5".into(),
                },
                "input_tokens '1.5' is not a whole number".into(),
            ),
            (
                LineError::NotWholeJson {
                    field: "u.input_tokens".into(),
                    value: Value::from("a"),
                },
                "u.input_tokens is not a whole number: \"a\"".into(),
            ),
            (
                LineError::NotNumber {
                    field: "cost_usd",
                    value: "x".into(),
                },
                "cost_usd 'x' is not a number".into(),
            ),
            (LineError::BadCost(f64::NAN), "invalid costUSD NaN".into()),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text, "{err:?}");
        }
    }

    #[test]
    fn log_timestamps_are_utc_or_a_reason() {
        assert_eq!(utc_timestamp(Some("1970-01-01T00:00:01Z")).unwrap(), 1000);
        let text = |t| utc_timestamp(t).unwrap_err().to_string();
        assert_eq!(text(None), "missing timestamp");
        assert_eq!(text(Some("soon")), "cannot read timestamp 'soon'");
    }
}

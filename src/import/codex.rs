//! Codex CLI session files (`~/.codex/sessions/YYYY/MM/DD/rollout-….jsonl`).
//!
//! Each line is `{"timestamp", "type", "payload"}`. Usage comes from `event_msg` lines whose
//! `payload.type` is `token_count`: `payload.info.last_token_usage` is the usage of the last
//! model call and `payload.info.total_token_usage` the running total of the session. When the
//! per-call part is missing it is the difference of successive running totals. The model is
//! that of the latest `turn_context` line (or one named in the `token_count` itself).
//!
//! Codex (like the OpenAI API) counts cached input inside `input_tokens` and reasoning inside
//! `output_tokens`, so an event stores `input = input_tokens - cached_input_tokens`,
//! `cache_read = cached_input_tokens`, `output = output_tokens`; the reasoning part and
//! `total_tokens` are kept in `metadata`.
//!
//! Unique key: `codex:<session id>:t<running totals>`. The running totals only grow within a
//! session, so each call has its own key; the same session file copied or rotated elsewhere
//! gives the same keys (added once), and a `token_count` repeated with unchanged totals (Codex
//! sometimes emits one twice) is counted once. Without running totals the key falls back to
//! the byte offset of the line in its file.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FileInfo, LineParser};
use crate::store::native::NewEvent;
use crate::timefmt::{Zone, parse_stored_timestamp};

/// The model assumed when a session never names one (early Codex builds wrote no
/// `turn_context` model; they ran gpt-5). Marked `model_assumed` in the metadata.
const FALLBACK_MODEL: &str = "gpt-5";

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Raw {
    input: u64,
    cached: u64,
    output: u64,
    reasoning: u64,
    total: u64,
}

impl Raw {
    fn minus(self, prev: Option<Raw>) -> Raw {
        let p = prev.unwrap_or_default();
        Raw {
            input: self.input.saturating_sub(p.input),
            cached: self.cached.saturating_sub(p.cached),
            output: self.output.saturating_sub(p.output),
            reasoning: self.reasoning.saturating_sub(p.reasoning),
            total: self.total.saturating_sub(p.total),
        }
    }

    fn is_zero(&self) -> bool {
        self.input == 0 && self.cached == 0 && self.output == 0 && self.reasoning == 0
    }
}

/// What is carried from line to line (and stored with the offset to resume).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    session: Option<String>,
    model: Option<String>,
    cwd: Option<String>,
    total: Option<Raw>,
}

pub(crate) struct Parser {
    info: FileInfo,
    st: State,
}

impl Parser {
    pub(crate) fn new(info: FileInfo, state: Option<&str>) -> Parser {
        let st = state
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        Parser { info, st }
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn field(u: &Value, names: &[&str], what: &str) -> Result<u64, String> {
    for name in names {
        match u.get(*name) {
            None | Some(Value::Null) => continue,
            Some(v) => {
                return match (v.as_u64(), v.as_i64()) {
                    (Some(n), _) => Ok(n),
                    (None, Some(n)) => Err(format!("negative {what}.{name} {n}")),
                    _ => Err(format!("{what}.{name} is not a whole number: {v}")),
                };
            }
        }
    }
    Ok(0)
}

fn raw(v: Option<&Value>, what: &str) -> Result<Option<Raw>, String> {
    let Some(u) = v.filter(|u| !u.is_null()) else {
        return Ok(None);
    };
    if !u.is_object() {
        return Err(format!("{what} is not an object"));
    }
    let mut r = Raw {
        input: field(u, &["input_tokens"], what)?,
        cached: field(u, &["cached_input_tokens", "cache_read_input_tokens"], what)?,
        output: field(u, &["output_tokens"], what)?,
        reasoning: field(u, &["reasoning_output_tokens"], what)?,
        total: field(u, &["total_tokens"], what)?,
    };
    if r.total == 0 {
        r.total = r.input + r.output;
    }
    Ok(Some(r))
}

impl LineParser for Parser {
    fn parse(
        &mut self,
        line: &[u8],
        _line_no: u64,
        offset: u64,
    ) -> Result<Option<NewEvent>, String> {
        let head: Head = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
        let kind = head.kind.as_deref().unwrap_or("");
        if !matches!(kind, "session_meta" | "turn_context" | "event_msg") {
            return Ok(None);
        }
        let v: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
        let payload = v.get("payload").unwrap_or(&Value::Null);
        match kind {
            "session_meta" => {
                if let Some(id) = text(payload, "id") {
                    self.st.session = Some(id);
                }
                if let Some(cwd) = text(payload, "cwd") {
                    self.st.cwd = Some(cwd);
                }
                Ok(None)
            }
            "turn_context" => {
                if let Some(m) = text(payload, "model") {
                    self.st.model = Some(m);
                }
                if let Some(cwd) = text(payload, "cwd") {
                    self.st.cwd = Some(cwd);
                }
                Ok(None)
            }
            _ if payload.get("type").and_then(Value::as_str) == Some("token_count") => {
                self.token_count(&v, payload, offset)
            }
            _ => Ok(None),
        }
    }

    fn state(&self) -> Option<String> {
        serde_json::to_string(&self.st).ok()
    }
}

impl Parser {
    fn token_count(
        &mut self,
        v: &Value,
        payload: &Value,
        offset: u64,
    ) -> Result<Option<NewEvent>, String> {
        let info = match payload.get("info") {
            None | Some(Value::Null) => return Ok(None),
            Some(i) => i,
        };
        let last = raw(info.get("last_token_usage"), "last_token_usage")?;
        let total = raw(info.get("total_token_usage"), "total_token_usage")?;
        let Some(delta) = last.or_else(|| total.map(|t| t.minus(self.st.total))) else {
            return Err(
                "missing usage: token_count has neither last_token_usage nor total_token_usage"
                    .into(),
            );
        };
        let ts = match v.get("timestamp").and_then(Value::as_str) {
            Some(t) => parse_stored_timestamp(t, &Zone::UTC)
                .ok_or_else(|| format!("cannot read timestamp '{t}'"))?,
            None => return Err("missing timestamp".into()),
        };
        if total.is_some() {
            self.st.total = total;
        }
        if delta.is_zero() {
            return Ok(None);
        }
        if let Some(m) = text(info, "model").or_else(|| text(payload, "model")) {
            self.st.model = Some(m);
        }
        let (model, assumed) = match &self.st.model {
            Some(m) => (m.clone(), false),
            None => (FALLBACK_MODEL.to_string(), true),
        };
        let session = self
            .st
            .session
            .clone()
            .unwrap_or_else(|| self.info.stem.clone());
        let key = match total {
            Some(t) => format!(
                "codex:{session}:t{}/{}/{}/{}",
                t.input, t.cached, t.output, t.reasoning
            ),
            None => format!("codex:{session}:o{offset}"),
        };
        let cached = delta.cached.min(delta.input);
        let mut meta = serde_json::Map::new();
        meta.insert("reasoning_output_tokens".into(), delta.reasoning.into());
        meta.insert("total_tokens".into(), delta.total.into());
        if assumed {
            meta.insert("model_assumed".into(), true.into());
        }
        Ok(Some(NewEvent {
            ts_ms: ts,
            provider: Some("openai".into()),
            model,
            agent: Some("codex".into()),
            session: Some(session),
            project: self.st.cwd.clone(),
            input_tokens: delta.input - cached,
            output_tokens: delta.output,
            cache_creation_tokens: 0,
            cache_read_tokens: cached,
            cost_usd: None,
            source: super::Format::Codex.source().into(),
            unique_key: Some(key),
            metadata: Some(Value::Object(meta).to_string()),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> Parser {
        Parser::new(
            FileInfo {
                key: "/c/rollout-x.jsonl".into(),
                stem: "rollout-x".into(),
                project_dir: None,
            },
            None,
        )
    }

    fn tc(last: Option<(u64, u64, u64, u64)>, total: (u64, u64, u64, u64)) -> Vec<u8> {
        let u = |(i, c, o, r): (u64, u64, u64, u64)| {
            serde_json::json!({"input_tokens": i, "cached_input_tokens": c, "output_tokens": o,
                "reasoning_output_tokens": r, "total_tokens": i + o})
        };
        let mut info = serde_json::json!({"total_token_usage": u(total)});
        if let Some(l) = last {
            info["last_token_usage"] = u(l);
        }
        serde_json::json!({"timestamp": "2025-10-01T10:00:00.000Z", "type": "event_msg",
            "payload": {"type": "token_count", "info": info}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn maps_and_derives() {
        let mut p = parser();
        let meta = br#"{"timestamp":"2025-10-01T09:59:00Z","type":"session_meta","payload":{"id":"sess-1","cwd":"/w/app"}}"#;
        assert!(p.parse(meta, 1, 0).unwrap().is_none());
        let ctx = br#"{"timestamp":"2025-10-01T09:59:01Z","type":"turn_context","payload":{"model":"gpt-5-codex","cwd":"/w/app"}}"#;
        assert!(p.parse(ctx, 2, 10).unwrap().is_none());
        let e = p
            .parse(&tc(Some((1000, 800, 50, 20)), (1000, 800, 50, 20)), 3, 20)
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.input_tokens, e.cache_read_tokens, e.output_tokens),
            (200, 800, 50)
        );
        assert_eq!(e.model, "gpt-5-codex");
        assert_eq!(e.session.as_deref(), Some("sess-1"));
        assert_eq!(e.project.as_deref(), Some("/w/app"));
        // Without last_token_usage: the difference of running totals.
        let e = p
            .parse(&tc(None, (1500, 1000, 80, 30)), 4, 30)
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.input_tokens, e.cache_read_tokens, e.output_tokens),
            (300, 200, 30)
        );
        // The same totals again: nothing new.
        assert!(
            p.parse(&tc(None, (1500, 1000, 80, 30)), 5, 40)
                .unwrap()
                .is_none()
        );
        // Resuming from the stored state gives the same answer.
        let mut q = Parser::new(p.info.clone(), p.state().as_deref());
        let e = q
            .parse(&tc(None, (1600, 1000, 90, 30)), 6, 50)
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.input_tokens, e.cache_read_tokens, e.output_tokens),
            (100, 0, 10)
        );
        assert_eq!(
            e.unique_key.as_deref(),
            Some("codex:sess-1:t1600/1000/90/30")
        );
    }

    #[test]
    fn bad_usage() {
        let mut p = parser();
        let line = br#"{"timestamp":"2025-10-01T10:00:00Z","type":"event_msg","payload":{"type":"token_count","info":{"last_token_usage":{"input_tokens":-5}}}}"#;
        assert!(p.parse(line, 1, 0).unwrap_err().contains("negative"));
        let null_info = br#"{"timestamp":"2025-10-01T10:00:00Z","type":"event_msg","payload":{"type":"token_count","info":null}}"#;
        assert!(p.parse(null_info, 2, 0).unwrap().is_none());
        let e = p
            .parse(&tc(Some((10, 0, 1, 0)), (10, 0, 1, 0)), 3, 0)
            .unwrap()
            .unwrap();
        assert_eq!(e.model, FALLBACK_MODEL);
        assert!(e.metadata.unwrap().contains("model_assumed"));
    }
}

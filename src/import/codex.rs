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
//! A subagent session (its `session_meta` names a `thread_spawn` parent) begins by replaying
//! the parent's history, `token_count` lines included, all stamped with the second the
//! subagent was made. As ccusage tells them apart: when the file's first 16 KiB mention
//! `thread_spawn` and its first two usage-carrying `token_count` lines fall in the same second,
//! the `token_count` lines of that second at the start of the file are the parent's: they only
//! set the running totals, and counting starts at the first line of another second. While
//! such a file has one usage line only, it is not read past it (the next import decides).
//!
//! Unique key: `codex:<session id>:t<running totals>`. The running totals only grow within a
//! session, so each call has its own key; the same session file copied or rotated elsewhere
//! gives the same keys (added once), and a `token_count` repeated with unchanged totals (Codex
//! sometimes emits one twice) is counted once. Without running totals the key falls back to
//! the byte offset of the line in its file.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FileInfo, LineError, LineParser, utc_timestamp};
use crate::store::native::NewEvent;

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
    /// The second (`YYYY-MM-DDTHH:MM:SS`) of replayed parent lines still being skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replay: Option<String>,
    /// Whether the file was checked for a replayed parent history.
    #[serde(default)]
    fork_checked: bool,
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

fn field(u: &Value, names: &[&str], what: &str) -> Result<u64, LineError> {
    for name in names {
        match u.get(*name) {
            None | Some(Value::Null) => continue,
            Some(v) => {
                return match (v.as_u64(), v.as_i64()) {
                    (Some(n), _) => Ok(n),
                    (None, Some(n)) => Err(LineError::negative(format!("{what}.{name}"), n)),
                    _ => Err(LineError::NotWholeJson {
                        field: format!("{what}.{name}"),
                        value: v.clone(),
                    }),
                };
            }
        }
    }
    Ok(0)
}

fn raw(v: Option<&Value>, what: &'static str) -> Result<Option<Raw>, LineError> {
    let Some(u) = v.filter(|u| !u.is_null()) else {
        return Ok(None);
    };
    if !u.is_object() {
        return Err(LineError::FieldNotAnObject(what));
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
    ) -> Result<Option<NewEvent>, LineError> {
        let head: Head = serde_json::from_slice(line).map_err(LineError::NotJson)?;
        let kind = head.kind.as_deref().unwrap_or("");
        if !matches!(kind, "session_meta" | "turn_context" | "event_msg") {
            return Ok(None);
        }
        let v: Value = serde_json::from_slice(line).map_err(LineError::NotJson)?;
        let payload = v.get("payload").unwrap_or(&Value::Null);
        match kind {
            "session_meta" => {
                // A subagent's file also holds its parent's session_meta: the first one is
                // the file's own.
                if self.st.session.is_none()
                    && let Some(id) = text(payload, "id")
                {
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

    fn read_limit(&mut self, path: &std::path::Path) -> std::io::Result<Option<u64>> {
        if !self.needs_fork_check() {
            return Ok(None);
        }
        let mut head = Vec::with_capacity(SUBAGENT_SNIFF);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open(path)?, SUBAGENT_SNIFF as u64),
            &mut head,
        )?;
        let fork = if memchr::memmem::find(&head, b"thread_spawn").is_none() {
            Fork::No
        } else {
            detect_fork(&std::fs::read(path)?)
        };
        self.set_fork(&fork);
        Ok(match fork {
            Fork::Undecided(at) => Some(at),
            _ => None,
        })
    }
}

/// What the start of a Codex file says about a replayed parent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fork {
    /// Nothing to skip.
    No,
    /// Skip the leading `token_count` lines of this second.
    Replay(String),
    /// A subagent file with at most one usage line so far: read no further than this
    /// offset (that of the usage line), and look again next time.
    Undecided(u64),
}

/// How many bytes of a file's start are searched for `thread_spawn` (as ccusage does).
const SUBAGENT_SNIFF: usize = 16 * 1024;

/// Check the complete lines of `bytes` (a whole file from its start) for a replayed parent
/// history (see the module comment).
pub(crate) fn detect_fork(bytes: &[u8]) -> Fork {
    let head = &bytes[..bytes.len().min(SUBAGENT_SNIFF)];
    if memchr::memmem::find(head, b"thread_spawn").is_none() {
        return Fork::No;
    }
    let mut first: Option<(String, u64)> = None;
    let mut offset = 0u64;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let at = offset;
        offset += line.len() as u64;
        if !line.ends_with(b"\n") {
            break;
        }
        if memchr::memmem::find(line, b"token_count").is_none() {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let payload = v.get("payload").unwrap_or(&Value::Null);
        let info = payload.get("info").unwrap_or(&Value::Null);
        let has_usage = ["last_token_usage", "total_token_usage"]
            .iter()
            .any(|k| info.get(*k).is_some_and(|u| !u.is_null()));
        if v.get("type").and_then(Value::as_str) != Some("event_msg")
            || payload.get("type").and_then(Value::as_str) != Some("token_count")
            || !has_usage
        {
            continue;
        }
        let Some(second) = timestamp_second(&v) else {
            continue;
        };
        match first {
            None => first = Some((second, at)),
            Some((f, _)) => {
                return if f == second {
                    Fork::Replay(f)
                } else {
                    Fork::No
                };
            }
        }
    }
    match first {
        Some((_, at)) => Fork::Undecided(at),
        // No usage line yet: read on, and look again next time.
        None => Fork::Undecided(u64::MAX),
    }
}

/// The first 19 characters of a line's timestamp (to the second).
fn timestamp_second(v: &Value) -> Option<String> {
    v.get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.get(..19))
        .map(str::to_string)
}

impl Parser {
    /// Whether the file still has to be checked for a replayed parent history.
    pub(crate) fn needs_fork_check(&self) -> bool {
        !self.st.fork_checked
    }

    /// Take the result of [`detect_fork`] (only a decided one is kept).
    pub(crate) fn set_fork(&mut self, fork: &Fork) {
        match fork {
            Fork::No => self.st.fork_checked = true,
            Fork::Replay(second) => {
                self.st.fork_checked = true;
                self.st.replay = Some(second.clone());
            }
            Fork::Undecided(_) => {}
        }
    }

    fn token_count(
        &mut self,
        v: &Value,
        payload: &Value,
        offset: u64,
    ) -> Result<Option<NewEvent>, LineError> {
        let info = match payload.get("info") {
            None | Some(Value::Null) => return Ok(None),
            Some(i) => i,
        };
        let last = raw(info.get("last_token_usage"), "last_token_usage")?;
        let total = raw(info.get("total_token_usage"), "total_token_usage")?;
        let Some(delta) = last.or_else(|| total.map(|t| t.minus(self.st.total))) else {
            return Err(LineError::NoUsage(
                "token_count has neither last_token_usage nor total_token_usage".into(),
            ));
        };
        let ts = utc_timestamp(v.get("timestamp").and_then(Value::as_str))?;
        if total.is_some() {
            self.st.total = total;
        }
        if let Some(second) = &self.st.replay {
            if timestamp_second(v).as_deref() == Some(second.as_str()) {
                // The parent's replayed history: it only moves the running totals.
                return Ok(None);
            }
            self.st.replay = None;
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
        assert_eq!(
            p.parse(line, 1, 0).unwrap_err().to_string(),
            "negative last_token_usage.input_tokens -5"
        );
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

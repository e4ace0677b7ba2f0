//! Claude Code session logs: `projects/<project>/<session>.jsonl` (and deeper, e.g. subagent
//! files), one JSON object per line.
//!
//! Only lines with `message.usage` become events. Claude Code writes a reply on several lines
//! (one per content block while streaming: input and cache counts repeat, `output_tokens`
//! grows) and again in other files (resumed or forked sessions, subagents). A reply is
//! `message.id` + `requestId`, or `message.id` alone when the line has no `requestId`
//! (third-party endpoints, some Claude Code paths); its unique key is `cc:<message.id>:<requestId>`
//! or `cc:<message.id>`. It counts once, at the time of its first line, with the largest value
//! seen for each count: lines of one read are merged, and a line read later that has more makes
//! the store add a correction (see `store::native::Inserter`). A line without `message.id` gets
//! `cc:line:<hash of file, line number and line>`: counted once per place it appears.
//! `<synthetic>` replies (interruptions, API errors) without tokens are not usage.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{FileInfo, LineError, LineParser, short_hash, utc_timestamp};
use crate::store::native::NewEvent;

mod scan;

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Line<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "sessionId")]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "requestId")]
    request_id: Option<Cow<'a, str>>,
    #[serde(rename = "costUSD")]
    cost_usd: Option<f64>,
    #[serde(borrow)]
    cwd: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<MessageField<'a>>,
}

/// `message` is an object on the lines that matter; anything else is skipped without
/// buffering it (an untagged enum would copy the whole message, content and all).
#[cfg_attr(test, derive(Debug, PartialEq))]
enum MessageField<'a> {
    Object(Message<'a>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = MessageField<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a message")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Message::deserialize(MapAccessDeserializer::new(map)).map(MessageField::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MessageField::Other)
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Message<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    usage: Option<Usage<'a>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Usage<'a> {
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_creation_input_tokens: Option<i64>,
    cache_read_input_tokens: Option<i64>,
    cache_creation: Option<CacheCreation>,
    #[serde(borrow)]
    speed: Option<Cow<'a, str>>,
    #[serde(borrow)]
    service_tier: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct CacheCreation {
    ephemeral_5m_input_tokens: Option<i64>,
    ephemeral_1h_input_tokens: Option<i64>,
}

pub(crate) struct Parser {
    info: FileInfo,
}

impl Parser {
    pub(crate) fn new(info: FileInfo) -> Parser {
        Parser { info }
    }
}

static USAGE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));
static ASSISTANT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"assistant"));

/// Most bytes of a log are prompts and tool results. A line that looks like one JSON object
/// (`{` … `}`) and mentions neither `"usage"` nor `assistant` is no usage line: it is skipped
/// without being parsed. Anything else (a broken line included) is parsed.
fn cannot_carry_usage(line: &[u8]) -> bool {
    let t = line.trim_ascii();
    t.first() == Some(&b'{')
        && t.last() == Some(&b'}')
        && USAGE.find(line).is_none()
        && ASSISTANT.find(line).is_none()
}

fn count(name: &str, v: Option<i64>) -> Result<u64, LineError> {
    match v {
        None => Ok(0),
        Some(n) if n < 0 => Err(LineError::negative(name, n)),
        Some(n) => Ok(n as u64),
    }
}

fn non_empty<'a>(s: &'a Option<Cow<'a, str>>) -> Option<&'a str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `parts` written into `buf`'s allocation (a new one when there is none, or it is too short).
fn refill(buf: Option<String>, parts: &[&str]) -> String {
    let mut s = buf.unwrap_or_default();
    s.clear();
    for p in parts {
        s.push_str(p);
    }
    s
}

impl LineParser for Parser {
    fn parse(
        &mut self,
        line: &[u8],
        line_no: u64,
        offset: u64,
    ) -> Result<Option<NewEvent>, LineError> {
        let mut ev = NewEvent::default();
        Ok(self
            .parse_into(line, line_no, offset, &mut ev)?
            .then_some(ev))
    }

    fn parse_into(
        &mut self,
        line: &[u8],
        line_no: u64,
        _offset: u64,
        out: &mut NewEvent,
    ) -> Result<bool, LineError> {
        if cannot_carry_usage(line) {
            return Ok(false);
        }
        // One UTF-8 check of the whole line rather than one per string serde_json hands out
        // (`from_slice` checks each); the result and any error are the same. A line that is
        // not UTF-8 is read as before (its skipped strings need not be). Most lines are read
        // by `scan`, the others by serde_json (see `scan` for which).
        let l: Line = match std::str::from_utf8(line) {
            Ok(text) => scan::scan(text).map_or_else(|| serde_json::from_str(text), Ok),
            Err(_) => serde_json::from_slice(line),
        }
        .map_err(LineError::NotJson)?;
        let msg = match l.message {
            Some(MessageField::Object(m)) => m,
            _ => return Ok(false),
        };
        let synthetic = msg.model.as_deref() == Some("<synthetic>");
        if synthetic && msg.usage.is_none() {
            return Ok(false);
        }
        let Some(usage) = msg.usage else {
            // An assistant reply without usage cannot be counted; other lines carry none.
            return if l.kind.as_deref() == Some("assistant") {
                Err(LineError::Missing("message.usage"))
            } else {
                Ok(false)
            };
        };
        let input = count("input_tokens", usage.input_tokens)?;
        let output = count("output_tokens", usage.output_tokens)?;
        let cache_write = count(
            "cache_creation_input_tokens",
            usage.cache_creation_input_tokens,
        )?;
        let cache_read = count("cache_read_input_tokens", usage.cache_read_input_tokens)?;
        let (w5m, w1h) = match &usage.cache_creation {
            Some(c) => (
                Some(count(
                    "cache_creation.ephemeral_5m_input_tokens",
                    c.ephemeral_5m_input_tokens,
                )?),
                Some(count(
                    "cache_creation.ephemeral_1h_input_tokens",
                    c.ephemeral_1h_input_tokens,
                )?),
            ),
            None => (None, None),
        };
        if usage.input_tokens.is_none() && usage.output_tokens.is_none() {
            return Err(LineError::NoUsage(
                "message.usage has neither input_tokens nor output_tokens".into(),
            ));
        }
        let model = non_empty(&msg.model).unwrap_or("unknown");
        // Claude Code writes `<synthetic>` replies (interruptions, API errors) with zero usage:
        // nothing to count, and they would only clutter the per-model view. ccusage counts
        // their tokens in its totals, so one that carries tokens is kept.
        if model == "<synthetic>" && input + output + cache_write + cache_read == 0 {
            return Ok(false);
        }
        let ts = utc_timestamp(non_empty(&l.timestamp))?;
        let cost = match l.cost_usd {
            Some(c) if !c.is_finite() || c < 0.0 => return Err(LineError::BadCost(c)),
            c => c,
        };
        // The text fields go into the buffers of what `out` held (see `LineParser::parse_into`).
        let old = std::mem::take(out);
        let key = match (non_empty(&msg.id), non_empty(&l.request_id)) {
            (Some(m), Some(r)) => refill(old.unique_key, &["cc:", m, ":", r]),
            (Some(m), None) => refill(old.unique_key, &["cc:", m]),
            (None, _) => refill(
                old.unique_key,
                &[
                    "cc:line:",
                    &short_hash(&[self.info.key.as_bytes(), &line_no.to_le_bytes(), line]),
                ],
            ),
        };
        let metadata = metadata(
            old.metadata,
            w5m,
            w1h,
            non_empty(&usage.speed),
            non_empty(&usage.service_tier),
        );
        *out = NewEvent {
            ts_ms: ts,
            provider: Some(refill(old.provider, &["anthropic"])),
            model: refill(Some(old.model), &[model]),
            agent: Some(refill(old.agent, &["claude-code"])),
            session: Some(refill(
                old.session,
                &[non_empty(&l.session_id).unwrap_or(&self.info.stem)],
            )),
            // The working directory the user knows, not the encoded folder name.
            project: non_empty(&l.cwd)
                .or(self.info.project_dir.as_deref())
                .map(|p| refill(old.project, &[p])),
            input_tokens: input,
            output_tokens: output,
            cache_creation_tokens: cache_write,
            cache_read_tokens: cache_read,
            cache_creation_1h_tokens: w1h.unwrap_or(0),
            cost_usd: cost,
            source: refill(Some(old.source), &[super::Format::ClaudeCode.source()]),
            unique_key: Some(key),
            metadata,
            ..Default::default()
        };
        Ok(true)
    }
}

/// The parts of a Claude Code usage line that the event columns do not hold: the split of
/// cache writes into 5-minute and 1-hour parts (priced differently), and the speed tier.
/// Written as serde_json writes the same object (keys in this order), without building one.
fn metadata(
    buf: Option<String>,
    w5m: Option<u64>,
    w1h: Option<u64>,
    speed: Option<&str>,
    tier: Option<&str>,
) -> Option<String> {
    let speed = speed.filter(|s| *s != "standard");
    let tier = tier.filter(|t| *t != "standard");
    if w5m.is_none() && w1h.is_none() && speed.is_none() && tier.is_none() {
        return None;
    }
    let mut m = buf.unwrap_or_else(|| String::with_capacity(72));
    m.clear();
    let field = |m: &mut String, key: &str| {
        m.push(if m.is_empty() { '{' } else { ',' });
        m.push('"');
        m.push_str(key);
        m.push_str("\":");
    };
    for (key, v) in [
        ("cache_creation_5m_tokens", w5m),
        ("cache_creation_1h_tokens", w1h),
    ] {
        if let Some(v) = v {
            field(&mut m, key);
            push_decimal(&mut m, v);
        }
    }
    for (key, v) in [("speed", speed), ("service_tier", tier)] {
        if let Some(v) = v {
            field(&mut m, key);
            m.push_str(&serde_json::Value::from(v).to_string());
        }
    }
    m.push('}');
    Some(m)
}

/// `n` in decimal, as `{n}` formats it (without the formatting machinery).
fn push_decimal(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[i..] {
        s.push(char::from(*d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> Parser {
        Parser::new(FileInfo {
            key: "/x/projects/p/s.jsonl".into(),
            stem: "s".into(),
            project_dir: Some("p".into()),
        })
    }

    #[test]
    fn usage_line() {
        let line = br#"{"type":"assistant","timestamp":"2025-11-18T21:39:51.578Z","sessionId":"S","requestId":"req_1","costUSD":0.5,"message":{"id":"msg_1","model":"claude-sonnet-4-5","role":"assistant","content":[{"type":"text","text":"hi \"there\""}],"usage":{"input_tokens":3,"output_tokens":10,"cache_creation_input_tokens":300,"cache_read_input_tokens":7,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},"speed":"fast"}}}"#;
        let e = parser().parse(line, 1, 0).unwrap().unwrap();
        assert_eq!(e.unique_key.as_deref(), Some("cc:msg_1:req_1"));
        assert_eq!(
            (
                e.input_tokens,
                e.output_tokens,
                e.cache_creation_tokens,
                e.cache_read_tokens
            ),
            (3, 10, 300, 7)
        );
        assert_eq!(e.cost_usd, Some(0.5));
        assert_eq!(e.session.as_deref(), Some("S"));
        assert_eq!(e.project.as_deref(), Some("p"));
        // With a `cwd`, the project is the working directory.
        let with_cwd = String::from_utf8_lossy(line).replace(
            r#""sessionId":"S","#,
            r#""sessionId":"S","cwd":"/home/dev/proj","#,
        );
        let e = parser().parse(with_cwd.as_bytes(), 2, 0).unwrap().unwrap();
        assert_eq!(e.project.as_deref(), Some("/home/dev/proj"));
        let m: serde_json::Value = serde_json::from_str(e.metadata.as_deref().unwrap()).unwrap();
        assert_eq!(m["cache_creation_1h_tokens"], 200);
        assert_eq!(m["cache_creation_5m_tokens"], 100);
        assert_eq!(m["speed"], "fast");
    }

    #[test]
    fn other_lines_and_bad_lines() {
        let mut p = parser();
        assert!(
            p.parse(
                br#"{"type":"user","message":{"role":"user","content":"hi"}}"#,
                1,
                0
            )
            .unwrap()
            .is_none()
        );
        assert!(
            p.parse(br#"{"type":"summary","summary":"x"}"#, 1, 0)
                .unwrap()
                .is_none()
        );
        let err = p.parse(b"{not json", 1, 0).unwrap_err();
        assert!(matches!(err, LineError::NotJson(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("not JSON: key must be a string")
        );
        let neg = br#"{"type":"assistant","timestamp":"2025-11-18T21:39:51Z","message":{"usage":{"input_tokens":-1,"output_tokens":1}}}"#;
        assert_eq!(
            p.parse(neg, 1, 0).unwrap_err().to_string(),
            "negative input_tokens -1"
        );
        let no_usage = br#"{"type":"assistant","timestamp":"2025-11-18T21:39:51Z","message":{"id":"m","content":[]}}"#;
        assert_eq!(
            p.parse(no_usage, 1, 0).unwrap_err().to_string(),
            "missing message.usage"
        );
        let synthetic = br#"{"type":"assistant","timestamp":"2025-11-18T21:39:51Z","message":{"model":"<synthetic>","usage":{"input_tokens":0,"output_tokens":0}}}"#;
        assert!(p.parse(synthetic, 1, 0).unwrap().is_none());
    }

    /// The metadata text is what serde_json writes for the same object.
    #[test]
    fn metadata_as_serde_json_writes_it() {
        let cases = [
            (Some(1), Some(0), Some("fast"), Some("priority")),
            (Some(20_000), None, None, None),
            (None, Some(7), Some("standard"), Some("x\"y\\z\u{1}é")),
            (None, None, None, Some("standard")),
            (None, None, Some("s"), None),
        ];
        for (w5m, w1h, speed, tier) in cases {
            let mut o = serde_json::Map::new();
            if let Some(v) = w5m {
                o.insert("cache_creation_5m_tokens".into(), v.into());
            }
            if let Some(v) = w1h {
                o.insert("cache_creation_1h_tokens".into(), v.into());
            }
            if let Some(s) = speed.filter(|s| *s != "standard") {
                o.insert("speed".into(), s.into());
            }
            if let Some(t) = tier.filter(|t| *t != "standard") {
                o.insert("service_tier".into(), t.into());
            }
            let want = (!o.is_empty()).then(|| serde_json::Value::Object(o).to_string());
            assert_eq!(metadata(None, w5m, w1h, speed, tier), want);
            let dirty = Some("left from another line".to_string());
            assert_eq!(metadata(dirty, w5m, w1h, speed, tier), want);
        }
    }

    /// Parsing into an event that held another line's values gives the event `parse` gives:
    /// nothing of the other line is left in it.
    #[test]
    fn parse_into_a_used_event_leaves_nothing_of_it() {
        let used = || NewEvent {
            ts_ms: 9,
            model: "old-model-with-a-long-name".into(),
            agent: Some("a".into()),
            provider: Some("p".into()),
            session: Some("s".into()),
            project: Some("x".repeat(100)),
            user: Some("u".into()),
            channel: Some("c".into()),
            operation: Some("o".into()),
            input_tokens: 1,
            output_tokens: 2,
            cache_creation_tokens: 3,
            cache_read_tokens: 4,
            cache_creation_1h_tokens: 3,
            cost_usd: Some(1.0),
            duration_ms: Some(2.0),
            source: "s".into(),
            unique_key: Some("k".into()),
            metadata: Some("{}".into()),
        };
        let lines: [&[u8]; 3] = [
            br#"{"type":"assistant","timestamp":"2025-11-18T21:39:51.578Z","sessionId":"S","requestId":"req_1","cwd":"/w","message":{"id":"msg_1","model":"claude-sonnet-4-5","usage":{"input_tokens":3,"output_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":1,"ephemeral_1h_input_tokens":0}}}}"#,
            // No session, project, request id nor metadata: taken from the file, or none.
            br#"{"type":"assistant","timestamp":"2025-11-18T21:39:51Z","message":{"id":"m","usage":{"input_tokens":1,"output_tokens":1}}}"#,
            br#"{"type":"assistant","timestamp":"2025-11-18T21:39:51Z","message":{"usage":{"input_tokens":1,"output_tokens":1}}}"#,
        ];
        let mut no_project = parser();
        no_project.info.project_dir = None;
        for p in [&mut parser(), &mut no_project] {
            for line in lines {
                let want = p.parse(line, 1, 0).unwrap().unwrap();
                let mut ev = used();
                assert!(p.parse_into(line, 1, 0, &mut ev).unwrap());
                assert_eq!(ev, want);
            }
        }
        // No event: `parse_into` says so.
        let user = br#"{"type":"user","message":{"role":"user","content":"hi"}}"#;
        assert!(!parser().parse_into(user, 1, 0, &mut used()).unwrap());
    }

    #[test]
    fn decimals_as_format_writes_them() {
        for n in [0, 7, 10, 99, 100, 4047, 1_000_000, u64::MAX] {
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    /// A line that is not UTF-8 is read as before: fine when only skipped strings are
    /// broken, a bad line (serde_json's reason) when a string that is used is.
    #[test]
    fn lines_that_are_not_utf8() {
        let mut p = parser();
        let with_ff = |text: &str| -> Vec<u8> {
            text.bytes()
                .map(|b| if b == b'~' { 0xff } else { b })
                .collect()
        };
        let good = with_ff(
            r#"{"type":"assistant","timestamp":"2025-11-18T21:39:51Z","message":{"id":"m","content":"~","usage":{"input_tokens":1,"output_tokens":1}}}"#,
        );
        let e = p.parse(&good, 1, 0).unwrap().unwrap();
        assert_eq!(e.unique_key.as_deref(), Some("cc:m"));
        let bad = with_ff(
            r#"{"type":"assistant","timestamp":"2025-11-18T21:39:51Z","message":{"id":"m~","usage":{"input_tokens":1,"output_tokens":1}}}"#,
        );
        let err = p.parse(&bad, 1, 0).unwrap_err();
        let want = serde_json::from_slice::<Line>(&bad).err().unwrap();
        assert_eq!(err.to_string(), format!("not JSON: {want}"));
        assert!(err.to_string().contains("invalid unicode"), "{err}");
    }

    #[test]
    fn missing_ids_key_by_place() {
        let mut p = parser();
        let line = br#"{"type":"assistant","timestamp":"2025-11-18T21:39:51Z","message":{"usage":{"input_tokens":1,"output_tokens":1}}}"#;
        let a = p.parse(line, 1, 0).unwrap().unwrap().unique_key.unwrap();
        let b = p.parse(line, 2, 0).unwrap().unwrap().unique_key.unwrap();
        assert!(a.starts_with("cc:line:"));
        assert_ne!(a, b);
        assert_eq!(a, p.parse(line, 1, 0).unwrap().unwrap().unique_key.unwrap());
    }
}

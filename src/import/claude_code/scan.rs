//! Claude Code lines read in one pass over their bytes, without serde's machinery (which
//! was about half of a reader thread's time).
//!
//! [`scan`] gives the [`Line`] that `serde_json::from_str` gives, or `None`: then the caller
//! parses the line with serde_json, which gives the line or the error. So `None` is always
//! safe, and this reader says `None` for every line that is not JSON and for everything it
//! leaves to serde_json: a control character anywhere (tabs and newlines between tokens
//! included), a `\u` escape in a string that is kept or in a key of the fields read, a count
//! that is not a plain non-negative integer that fits, a cost, a field given twice, an array
//! or a scalar where an object is read, nesting deeper than [`MAX_DEPTH`].

use std::borrow::Cow;

use super::{CacheCreation, Line, Message, MessageField, Usage};

/// Deeper values are left to serde_json (whose own limit for the fields read is 128).
const MAX_DEPTH: u32 = 100;

/// The fields of one Claude Code line, or `None` (see the module's comment).
pub(super) fn scan(text: &str) -> Option<Line<'_>> {
    let b = text.as_bytes();
    // No control character anywhere: then whitespace is only ' ', and a string ends at its
    // first unescaped '"' with nothing in it to refuse.
    if has_control(b) {
        return None;
    }
    let mut c = Cursor { text, b, i: 0 };
    let line = Line {
        kind: None,
        timestamp: None,
        session_id: None,
        request_id: None,
        cost_usd: None,
        cwd: None,
        message: None,
    };
    const KEYS: &[&[u8]] = &[
        b"type",
        b"timestamp",
        b"sessionId",
        b"requestId",
        b"costUSD",
        b"cwd",
        b"message",
    ];
    c.ws();
    // `null` at the top is no `Line` to serde: left to it.
    let line = c.fields(KEYS, 0, line, |c, line, field| {
        match field {
            0 => line.kind = c.text_or_null()?,
            1 => line.timestamp = c.text_or_null()?,
            2 => line.session_id = c.text_or_null()?,
            3 => line.request_id = c.text_or_null()?,
            // A cost is a float: read by serde_json, whose rounding it keeps.
            4 => c.null()?,
            5 => line.cwd = c.text_or_null()?,
            _ => line.message = c.message()?,
        }
        Some(())
    })??;
    c.ws();
    (c.i == b.len()).then_some(line)
}

/// Any byte below 0x20 (a control character, or whitespace other than ' ').
fn has_control(b: &[u8]) -> bool {
    // Not short-circuiting, so that it is compiled to wide compares.
    b.chunks(64)
        .any(|chunk| chunk.iter().fold(false, |any, &c| any | (c < 0x20)))
}

/// The fields of one object seen so far: serde refuses a field given twice.
struct Seen(u8);

impl Seen {
    fn first(&mut self, field: u8) -> Option<()> {
        let bit = 1 << field;
        (self.0 & bit == 0).then(|| self.0 |= bit)
    }
}

struct Cursor<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skip spaces (the only whitespace left: see [`has_control`]).
    fn ws(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek()? == byte).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// The string that starts here (at its '"'): the range of its text between the quotes,
    /// and whether it holds escapes (checked to be valid ones).
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        let start = self.i + 1;
        let mut j = start;
        let mut escapes = false;
        loop {
            j += memchr::memchr2(b'"', b'\\', self.b.get(j..)?)?;
            if self.b[j] == b'"' {
                self.i = j + 1;
                return Some((start, j, escapes));
            }
            escapes = true;
            match *self.b.get(j + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => j += 2,
                b'u' => {
                    let hex = self.b.get(j + 2..j + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    j += 6;
                }
                _ => return None,
            }
        }
    }

    /// An object (the cursor at its '{' or before it), each field's value read by `field`
    /// given the key (without escapes: a key with one is left to serde_json).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let (start, end, escapes) = self.string()?;
            if escapes {
                return None;
            }
            self.eat(b':')?;
            self.ws();
            let b = self.b;
            field(self, &b[start..end])?;
            if !self.more(b'}')? {
                return Some(());
            }
        }
    }

    /// After an element of an array or object: `true` past a ',' (another element follows),
    /// `false` past `close`.
    fn more(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = self.peek()?;
        self.i += 1;
        match c {
            b',' => Some(true),
            c if c == close => Some(false),
            _ => None,
        }
    }

    /// Any JSON value, checked as serde_json checks a value it ignores.
    fn skip(&mut self, depth: u32) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.object(|c, _| c.skip(depth + 1))
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    if !self.more(b']')? {
                        return Some(());
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' => {
                self.i += 1;
                self.number()
            }
            b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// The rest of a number after its sign: `0` or a digit run not starting with `0`, then
    /// an optional fraction and exponent, each with at least one digit.
    fn number(&mut self) -> Option<()> {
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn null(&mut self) -> Option<()> {
        self.literal(b"null")
    }

    /// A string field: `null` or a string; its text borrowed from the line, or unescaped
    /// when it has escapes other than `\u`.
    fn text_or_null(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.peek()? == b'n' {
            return self.null().map(|()| None);
        }
        if self.peek()? != b'"' {
            return None;
        }
        let (start, end, escapes) = self.string()?;
        let raw = &self.text[start..end];
        if !escapes {
            return Some(Some(Cow::Borrowed(raw)));
        }
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(k) = rest.find('\\') {
            out.push_str(&rest[..k]);
            // [`Cursor::string`] saw a valid escape after each backslash.
            out.push(match rest.as_bytes().get(k + 1)? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                // `\u`: serde_json decodes it (surrogate pairs, and refusing lone ones).
                _ => return None,
            });
            rest = &rest[k + 2..];
        }
        out.push_str(rest);
        Some(Some(Cow::Owned(out)))
    }

    /// A count: `null` or a plain integer from 0 to `i64::MAX`.
    fn count_or_null(&mut self) -> Option<Option<i64>> {
        match self.peek()? {
            b'n' => self.null().map(|()| None),
            b'0'..=b'9' => {
                let start = self.i;
                self.number()?;
                let digits = &self.text[start..self.i];
                // A fraction or an exponent: serde refuses it for an integer.
                if !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok().map(Some)
            }
            // A negative count is read by serde_json (`-0` is a float to it).
            _ => None,
        }
    }

    /// `null`, or an object (serde would also read an array as the fields in order: left to
    /// it) whose fields named in `keys` are read by `read`, given the value and the key's
    /// place in `keys` (each field at most once, as serde allows), the others skipped as
    /// values `depth` deep.
    fn fields<T>(
        &mut self,
        keys: &[&[u8]],
        depth: u32,
        mut value: T,
        mut read: impl FnMut(&mut Self, &mut T, usize) -> Option<()>,
    ) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            return self.null().map(|()| None);
        }
        if self.peek()? != b'{' {
            return None;
        }
        let mut seen = Seen(0);
        self.object(|c, key| match keys.iter().position(|k| *k == key) {
            Some(field) => {
                seen.first(field as u8)?;
                read(c, &mut value, field)
            }
            None => c.skip(depth),
        })?;
        Some(Some(value))
    }

    /// `message`: `null`, or an object read as [`Message`]. Other values are left to
    /// serde_json.
    fn message(&mut self) -> Option<Option<MessageField<'a>>> {
        let m = Message {
            id: None,
            model: None,
            usage: None,
        };
        let m = self.fields(&[b"id", b"model", b"usage"], 1, m, |c, m, field| {
            match field {
                0 => m.id = c.text_or_null()?,
                1 => m.model = c.text_or_null()?,
                _ => m.usage = c.usage()?,
            }
            Some(())
        })?;
        Some(m.map(MessageField::Object))
    }

    fn usage(&mut self) -> Option<Option<Usage<'a>>> {
        let u = Usage {
            input_tokens: None,
            output_tokens: None,
            cache_creation_input_tokens: None,
            cache_read_input_tokens: None,
            cache_creation: None,
            speed: None,
            service_tier: None,
        };
        const KEYS: &[&[u8]] = &[
            b"input_tokens",
            b"output_tokens",
            b"cache_creation_input_tokens",
            b"cache_read_input_tokens",
            b"cache_creation",
            b"speed",
            b"service_tier",
        ];
        self.fields(KEYS, 2, u, |c, u, field| {
            match field {
                0 => u.input_tokens = c.count_or_null()?,
                1 => u.output_tokens = c.count_or_null()?,
                2 => u.cache_creation_input_tokens = c.count_or_null()?,
                3 => u.cache_read_input_tokens = c.count_or_null()?,
                4 => u.cache_creation = c.cache_creation()?,
                5 => u.speed = c.text_or_null()?,
                _ => u.service_tier = c.text_or_null()?,
            }
            Some(())
        })
    }

    fn cache_creation(&mut self) -> Option<Option<CacheCreation>> {
        let cc = CacheCreation {
            ephemeral_5m_input_tokens: None,
            ephemeral_1h_input_tokens: None,
        };
        const KEYS: &[&[u8]] = &[b"ephemeral_5m_input_tokens", b"ephemeral_1h_input_tokens"];
        self.fields(KEYS, 3, cc, |c, cc, field| {
            let n = c.count_or_null()?;
            match field {
                0 => cc.ephemeral_5m_input_tokens = n,
                _ => cc.ephemeral_1h_input_tokens = n,
            }
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of every shape the readers meet, and some they should not.
    const LINES: &[&str] = &[
        r#"{"parentUuid":null,"cwd":"/home/dev/p","sessionId":"s-1","version":"2.0.14","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"a \"quoted\" \\ word\nnext é ✓ \u00e9 \ud83d\ude00"},{"type":"tool_use","input":{"n":[1,-2.5e3,0.0,true,false,null,{}],"s":[]}}],"stop_reason":null,"usage":{"input_tokens":41,"cache_creation_input_tokens":0,"cache_read_input_tokens":131525,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":7},"output_tokens":813,"service_tier":"standard","speed":"fast"}},"requestId":"req_1","type":"assistant","uuid":"u","timestamp":"2025-10-18T07:48:34.426Z"}"#,
        r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","content":"lines\nof output","is_error":false}]},"timestamp":"2025-10-18T07:48:35Z","sessionId":"s-1"}"#,
        r#"{"type":"summary","summary":"x","leafUuid":"l"}"#,
        r#" { "type" : "assistant" , "timestamp" : "2025-10-18T07:48:34Z" , "message" : { "usage" : { "input_tokens" : 1 , "output_tokens" : 2 } } } "#,
        r#"{"type":"assistant","cwd":"C:\\Users\\dev\\p\/q\t","message":{"id":null,"model":null,"usage":{"input_tokens":null,"output_tokens":3,"cache_creation":null,"speed":null}},"requestId":null,"costUSD":null}"#,
        r#"{"type":"assistant","costUSD":0.25,"message":{"usage":{"input_tokens":1,"output_tokens":2}}}"#,
        r#"{"type":"assistant","message":{"usage":{"input_tokens":-1,"output_tokens":2}}}"#,
        r#"{"type":"assistant","message":{"usage":{"input_tokens":1.0,"output_tokens":2e2}}}"#,
        r#"{"type":"assistant","message":{"usage":{"input_tokens":9223372036854775807,"output_tokens":9223372036854775808}}}"#,
        r#"{"type":"assistant","type":"user","message":{"usage":{"input_tokens":1}}}"#,
        r#"{"type":"assistant","message":{"usage":[1,2,3,4,null,"fast","standard"]}}"#,
        r#"{"type":"assistant","message":"text"}"#,
        r#"{"type":"assistant","message":["a",{"b":1}]}"#,
        r#"{"type":"assistant","message":null,"sessionId":"caf\u00e9"}"#,
        r#"{"typ\u0065":"assistant","message":{"model":"m","usage":{"input_tokens":1,"output_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":1,"ephemeral_5m_input_tokens":2}}}}"#,
        r#"{"type":"assistant","message":{"id":"m","content":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"usage":{"output_tokens":0}}}"#,
        "{\"type\":\"assistant\",\t\"message\":{\"usage\":{\"input_tokens\":1}}}",
        r#"{}"#,
        r#"[]"#,
    ];

    /// What serde_json reads, for comparison.
    fn by_serde(text: &str) -> Option<Line<'_>> {
        serde_json::from_str(text).ok()
    }

    /// Small deterministic pseudo-random numbers (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// One random edit: a byte removed, inserted, replaced, or a span repeated.
    fn mutate(line: &[u8], rng: &mut Rng) -> Vec<u8> {
        const BYTES: &[u8] = b"{}[]\",:\\ 0123456789-+.eEtrufalsn\tu/\x01x\xc3\xa9";
        let mut v = line.to_vec();
        for _ in 0..1 + rng.below(2) {
            let at = rng.below(v.len() + 1);
            match rng.below(4) {
                0 if at < v.len() => {
                    v.remove(at);
                }
                1 => v.insert(at, BYTES[rng.below(BYTES.len())]),
                2 if at < v.len() => v[at] = BYTES[rng.below(BYTES.len())],
                _ => {
                    let end = (at + 1 + rng.below(12)).min(v.len());
                    let span = v[at.min(end)..end].to_vec();
                    v.splice(at..at, span);
                }
            }
        }
        v
    }

    /// Whatever the line, `scan` gives serde_json's `Line` or leaves the line to it: never
    /// a line that serde_json refuses, never other values.
    #[test]
    fn scan_reads_what_serde_reads_or_nothing() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut read, mut refused_by_both, mut tried) = (0, 0, 0);
        let mut check = |text: &str| {
            tried += 1;
            match (scan(text), by_serde(text)) {
                (Some(fast), Some(slow)) => {
                    assert_eq!(fast, slow, "{text}");
                    read += 1;
                }
                (Some(fast), None) => {
                    panic!("scan read a line serde_json refuses: {text}\n{fast:?}")
                }
                (None, None) => refused_by_both += 1,
                (None, Some(_)) => {}
            }
        };
        for line in LINES {
            check(line);
            for _ in 0..4000 {
                let v = mutate(line.as_bytes(), &mut rng);
                if let Ok(text) = std::str::from_utf8(&v) {
                    check(text);
                }
            }
        }
        // Neither side is idle: many lines are read, many refused.
        eprintln!("{read} read, {refused_by_both} refused, of {tried}");
        assert!(read > tried / 8, "{read} of {tried} read");
        assert!(
            refused_by_both > tried / 8,
            "{refused_by_both} of {tried} refused"
        );
    }

    /// The usual lines take the fast way; the unusual ones are left to serde_json.
    #[test]
    fn which_lines_are_left_to_serde() {
        let read: Vec<bool> = LINES.iter().map(|l| scan(l).is_some()).collect();
        assert_eq!(
            read,
            [
                true, true, true, true, true, false, false, false, false, false, false, false,
                false, false, false, true, false, true, false
            ]
        );
        // A backslash escape other than `\u` in a kept string is read here.
        let cwd = scan(LINES[4]).and_then(|l| l.cwd).unwrap();
        assert_eq!(cwd, "C:\\Users\\dev\\p/q\t");
        // Deeper than MAX_DEPTH: left to serde_json.
        let deep = format!(
            r#"{{"type":"user","x":{}{}}}"#,
            "[".repeat(MAX_DEPTH as usize + 1),
            "]".repeat(MAX_DEPTH as usize + 1)
        );
        assert!(scan(&deep).is_none() && by_serde(&deep).is_some());
    }
}

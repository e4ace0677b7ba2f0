//! Time ranges: `1h`, `24h`, `7d`, `30d`, `today`, `month`, `all`, or `FROM..TO`.

use chrono::{DateTime, Duration, Utc};

use crate::error::BadInput;
use crate::timefmt::{Zone, parse_user_time};

/// A half-open range `[from, to)`; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn from_ms(&self) -> Option<i64> {
        self.from.map(|t| t.timestamp_millis())
    }
    pub fn to_ms(&self) -> Option<i64> {
        self.to.map(|t| t.timestamp_millis())
    }
    pub fn contains_ms(&self, ms: i64) -> bool {
        self.from_ms().is_none_or(|f| ms >= f) && self.to_ms().is_none_or(|t| ms < t)
    }
}

const HELP: &str = "use 1h, 24h, 7d, 30d (any number of h, d or w), today, month, all, or FROM..TO \
                    with dates (2025-11-01) or RFC 3339 times; TO is excluded";

/// Parse a range as `report --range` takes it. Relative ranges end now; `today` and `month`
/// start at local midnight / the first of the month in `zone`.
pub fn parse_range(s: &str, zone: &Zone, now: DateTime<Utc>) -> Result<TimeRange, BadInput> {
    let t = s.trim();
    let bad = |why: &str| BadInput(format!("invalid range '{s}': {why}"));
    match t.to_ascii_lowercase().as_str() {
        "all" => {
            return Ok(TimeRange {
                from: None,
                to: None,
            });
        }
        "today" => {
            return Ok(TimeRange {
                from: Some(zone.start_of_day(now)),
                to: None,
            });
        }
        "month" => {
            return Ok(TimeRange {
                from: Some(zone.start_of_month(now)),
                to: None,
            });
        }
        _ => {}
    }
    if let Some((a, b)) = t.split_once("..") {
        let from = if a.trim().is_empty() {
            None
        } else {
            Some(parse_user_time(a, zone, now).map_err(|e| bad(&e.0))?)
        };
        let to = if b.trim().is_empty() {
            None
        } else {
            Some(parse_user_time(b, zone, now).map_err(|e| bad(&e.0))?)
        };
        if let (Some(f), Some(to)) = (from, to)
            && f >= to
        {
            return Err(bad("FROM must be before TO"));
        }
        return Ok(TimeRange { from, to });
    }
    let dur = parse_span(t).map_err(|e| match e {
        SpanError::NotASpan => bad(HELP),
        SpanError::TooLong => bad(&format!("{TOO_LONG}; use 'all' for everything")),
    })?;
    let from = now
        .checked_sub_signed(dur)
        .ok_or_else(|| bad("it reaches back before the earliest time tokmon can compute with; use 'all' for everything"))?;
    Ok(TimeRange {
        from: Some(from),
        to: None,
    })
}

/// The longest relative span (a `--range` such as `7d`, a rolling budget window): 1,000 years.
/// Longer ones are refused rather than reaching past the dates tokmon can compute with.
pub const MAX_SPAN_DAYS: i64 = 365_250;

/// What is wrong with a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanError {
    /// Not a number followed by m, h, d or w.
    NotASpan,
    /// Longer than [`MAX_SPAN_DAYS`].
    TooLong,
}

/// The message for a span over [`MAX_SPAN_DAYS`].
pub const TOO_LONG: &str = "a span can be at most 1000 years (365250d)";

/// `5h`, `24h`, `7d`, `2w` (also `90m` for minutes) as a duration of at most
/// [`MAX_SPAN_DAYS`].
pub fn parse_span(t: &str) -> Result<Duration, SpanError> {
    let t = t.trim();
    let unit = t.chars().last().ok_or(SpanError::NotASpan)?;
    let number = &t[..t.len() - unit.len_utf8()];
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpanError::NotASpan);
    }
    let minutes_per_unit: i64 = match unit.to_ascii_lowercase() {
        'm' => 1,
        'h' => 60,
        'd' => 24 * 60,
        'w' => 7 * 24 * 60,
        _ => return Err(SpanError::NotASpan),
    };
    // Digits only, so a failed parse is a number too large for i64.
    let n: i64 = digits.parse().map_err(|_| SpanError::TooLong)?;
    if n == 0 {
        return Err(SpanError::NotASpan);
    }
    match n.checked_mul(minutes_per_unit) {
        Some(m) if m <= MAX_SPAN_DAYS * 24 * 60 => Ok(Duration::minutes(m)),
        _ => Err(SpanError::TooLong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn ranges() {
        let now = at("2025-11-18T21:39:51Z");
        let z = Zone::UTC;
        assert_eq!(
            parse_range("1h", &z, now).unwrap().from,
            Some(at("2025-11-18T20:39:51Z"))
        );
        assert_eq!(
            parse_range("7d", &z, now).unwrap().from,
            Some(at("2025-11-11T21:39:51Z"))
        );
        assert_eq!(
            parse_range("today", &z, now).unwrap().from,
            Some(at("2025-11-18T00:00:00Z"))
        );
        assert_eq!(
            parse_range("month", &z, now).unwrap().from,
            Some(at("2025-11-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("all", &z, now).unwrap(),
            TimeRange {
                from: None,
                to: None
            }
        );
        let r = parse_range("2025-11-01..2025-11-02", &z, now).unwrap();
        assert_eq!(r.from, Some(at("2025-11-01T00:00:00Z")));
        assert_eq!(r.to, Some(at("2025-11-02T00:00:00Z")));
        assert!(r.contains_ms(at("2025-11-01T23:59:59Z").timestamp_millis()));
        assert!(!r.contains_ms(at("2025-11-02T00:00:00Z").timestamp_millis()));
        for bad in [
            "",
            "0h",
            "-1h",
            "yesterday",
            "2025-11-02..2025-11-01",
            "x..y",
        ] {
            let e = parse_range(bad, &z, now).unwrap_err();
            assert!(e.0.contains(bad), "{e:?}");
        }
    }

    #[test]
    fn today_in_zone() {
        let now = at("2025-11-18T21:39:51Z");
        let z = Zone::parse("+08:00").unwrap();
        assert_eq!(
            parse_range("today", &z, now).unwrap().from,
            Some(at("2025-11-18T16:00:00Z"))
        );
    }
}

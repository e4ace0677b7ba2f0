//! Time zones and the timestamp forms found in usage databases and on the command line.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, Local, LocalResult, NaiveDate, NaiveDateTime,
    NaiveTime, Offset, TimeZone, Utc,
};

use crate::error::{BadInput, bad_input};

/// A time zone chosen by the user: the machine's local zone, an IANA zone or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Zone {
    #[default]
    Local,
    Named(chrono_tz::Tz),
    Fixed(FixedOffset),
}

impl Zone {
    pub const UTC: Zone = Zone::Named(chrono_tz::Tz::UTC);

    /// Parse `local`, `UTC`, `Z`, an IANA name (`Asia/Shanghai`) or an offset (`+08:00`, `-0530`).
    pub fn parse(s: &str) -> Result<Zone, BadInput> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(Zone::UTC);
        }
        if let Some(off) = parse_offset(t) {
            return Ok(Zone::Fixed(off));
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            BadInput(format!(
                "unknown time zone '{s}': use local, UTC, an IANA name such as Europe/Paris, or an offset such as +08:00"
            ))
        })
    }

    /// Display name of the zone.
    pub fn name(&self) -> String {
        match self {
            Zone::Local => iana_time_zone::get_timezone().unwrap_or_else(|_| "local".into()),
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(o) => o.to_string(),
        }
    }

    /// The UTC offset in force at a UTC instant.
    pub fn offset_at(&self, utc: DateTime<Utc>) -> FixedOffset {
        match self {
            Zone::Local => Local.offset_from_utc_datetime(&utc.naive_utc()).fix(),
            Zone::Named(tz) => tz.offset_from_utc_datetime(&utc.naive_utc()).fix(),
            Zone::Fixed(o) => *o,
        }
    }

    /// A UTC instant shown as wall-clock time in this zone. Instants within a day of chrono's
    /// limits are moved a day inwards, so that the local time always exists.
    pub fn to_local(&self, utc: DateTime<Utc>) -> DateTime<FixedOffset> {
        let utc = utc.clamp(
            DateTime::<Utc>::MIN_UTC + Duration::days(1),
            DateTime::<Utc>::MAX_UTC - Duration::days(1),
        );
        utc.with_timezone(&self.offset_at(utc))
    }

    /// A wall-clock time in this zone as a UTC instant. In a gap (spring forward) the time
    /// after the gap is used; in an overlap (fall back) the earlier instant.
    pub fn from_local(&self, naive: NaiveDateTime) -> DateTime<Utc> {
        fn pick<T: TimeZone>(
            r: LocalResult<DateTime<T>>,
            tz: &T,
            naive: NaiveDateTime,
        ) -> DateTime<Utc> {
            match r {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
                LocalResult::None => {
                    // Skip forward through the gap, one minute at a time (gaps are short).
                    let mut n = naive;
                    for _ in 0..240 {
                        let Some(next) = n.checked_add_signed(Duration::minutes(1)) else {
                            break;
                        };
                        n = next;
                        if let Some(t) = tz.from_local_datetime(&n).earliest() {
                            return t.with_timezone(&Utc);
                        }
                    }
                    Utc.from_utc_datetime(&naive)
                }
            }
        }
        match self {
            Zone::Local => pick(Local.from_local_datetime(&naive), &Local, naive),
            Zone::Named(tz) => pick(tz.from_local_datetime(&naive), tz, naive),
            Zone::Fixed(o) => pick(o.from_local_datetime(&naive), o, naive),
        }
    }

    /// Midnight at the start of the local day that contains `utc`.
    pub fn start_of_day(&self, utc: DateTime<Utc>) -> DateTime<Utc> {
        let d = self.to_local(utc).date_naive();
        self.from_local(d.and_time(NaiveTime::MIN))
    }

    /// Midnight at the start of the local month that contains `utc`.
    pub fn start_of_month(&self, utc: DateTime<Utc>) -> DateTime<Utc> {
        let d = self.to_local(utc).date_naive();
        let first = d.with_day(1).unwrap_or(d);
        self.from_local(first.and_time(NaiveTime::MIN))
    }
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// Unix milliseconds of a UTC instant.
pub fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A UTC instant from unix milliseconds (clamped to chrono's range).
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The earliest instant a timestamp may name: 0001-01-01T00:00:00Z (unix ms).
pub const MIN_MS: i64 = -62_135_596_800_000;
/// The latest instant a timestamp may name: 9999-12-31T23:59:59.999Z (unix ms).
pub const MAX_MS: i64 = 253_402_300_799_999;

/// Unix ms within years 1 to 9999: times outside are not readable times (a typo or garbage),
/// and keeping them out keeps every calendar computation far from chrono's limits.
fn in_years(ms: i64) -> Option<i64> {
    (MIN_MS..=MAX_MS).contains(&ms).then_some(ms)
}

/// A unix time given as a number: seconds, milliseconds or microseconds, told apart by size.
pub fn epoch_number_to_ms(n: f64) -> Option<i64> {
    if !n.is_finite() {
        return None;
    }
    let a = n.abs();
    let ms = if a >= 1e14 {
        n / 1000.0
    } else if a >= 1e11 {
        n
    } else {
        n * 1000.0
    };
    if ms.abs() > 8.64e15 {
        return None;
    }
    in_years(ms.round() as i64)
}

/// Parse a timestamp as usage databases store it, returning unix milliseconds.
///
/// Accepts `YYYY-MM-DD HH:MM:SS`, the same with `T`, with or without fractions, with or
/// without a zone (`Z`, `+08:00`, `+0800`), a bare date, and unix seconds or milliseconds
/// written as text. Naive forms are read in `naive_zone` (UTC unless configured).
/// Impossible dates (2025-02-30) and times outside years 1 to 9999 are not readable: `None`.
pub fn parse_stored_timestamp(s: &str, naive_zone: &Zone) -> Option<i64> {
    parse_stored_any_year(s, naive_zone).and_then(in_years)
}

fn parse_stored_any_year(s: &str, naive_zone: &Zone) -> Option<i64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    // The common case first: SQLite's CURRENT_TIMESTAMP form.
    if let Some(ms) = fast_utc_ms(t.as_bytes()) {
        return Some(match naive_zone {
            Zone::Named(chrono_tz::Tz::UTC) => ms,
            z => z.from_local(from_ms(ms).naive_utc()).timestamp_millis(),
        });
    }
    // Then agent logs' form (`…T…Z`, ms): in UTC whatever the naive zone.
    if let Some(ms) = fast_rfc3339_z_ms(t.as_bytes()) {
        return Some(ms);
    }
    if t.len() >= 9 && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return t.parse::<f64>().ok().and_then(epoch_number_to_ms);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    // Zone-bearing forms that RFC 3339 refuses: space separator, `+0800`, ` UTC`.
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Some(dt.timestamp_millis());
        }
    }
    let (body, utc_suffix) = match t.strip_suffix('Z').or_else(|| t.strip_suffix(" UTC")) {
        Some(b) => (b, true),
        None => (t, false),
    };
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(body, fmt) {
            let zone = if utc_suffix { Zone::UTC } else { *naive_zone };
            return Some(zone.from_local(n).timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(body, "%Y-%m-%d") {
        let zone = if utc_suffix { Zone::UTC } else { *naive_zone };
        return Some(
            zone.from_local(d.and_time(NaiveTime::MIN))
                .timestamp_millis(),
        );
    }
    None
}

/// `YYYY-MM-DD HH:MM:SS` (SQLite's CURRENT_TIMESTAMP) read as UTC without allocating.
pub fn fast_utc_ms(b: &[u8]) -> Option<i64> {
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b' ' && b[10] != b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's method.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the form agent logs write, as
/// [`DateTime::parse_from_rfc3339`] reads it (the fraction cut to ms), without its general
/// parser. `None` for any other form, and for a leap second (left to chrono).
fn fast_rfc3339_z_ms(b: &[u8]) -> Option<i64> {
    let (body, rest) = b.split_at_checked(19)?;
    if body[10] != b'T' || body[17..] == *b"60" {
        return None;
    }
    let frac_ms = match rest.strip_suffix(b"Z")? {
        [] => 0,
        [b'.', digits @ ..]
            if (1..=9).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) =>
        {
            digits
                .iter()
                .chain([b'0'; 3].iter())
                .take(3)
                .fold(0, |ms, d| ms * 10 + i64::from(d - b'0'))
        }
        _ => return None,
    };
    Some(fast_utc_ms(body)? + frac_ms)
}

/// Days in month `m` (1..=12) of the proleptic Gregorian year `y`.
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parse a time typed by the user (`--at`, range bounds): RFC 3339, `YYYY-MM-DD HH:MM[:SS]`
/// or `YYYY-MM-DD` in `zone`, unix seconds or milliseconds, or `now`.
pub fn parse_user_time(
    s: &str,
    zone: &Zone,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, BadInput> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    parse_stored_timestamp(t, zone)
        .filter(|_| t.len() >= 9)
        .map(from_ms)
        .ok_or_else(|| {
            let date = t.get(..10).filter(|d| {
                d.bytes()
                    .enumerate()
                    .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
            });
            let why = match date {
                Some(d) if NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() => {
                    format!("there is no date {d} in the calendar")
                }
                Some(d) if !("0001-01-01"..="9999-12-31").contains(&d) => {
                    "use a time in the years 1 to 9999".to_string()
                }
                _ => "use RFC 3339 (2025-11-18T21:39:51Z), 'YYYY-MM-DD HH:MM:SS', 'YYYY-MM-DD', unix seconds, or 'now'".to_string(),
            };
            BadInput(format!("cannot read time '{s}': {why}"))
        })
}

/// Convenience for callers that want an `anyhow` error.
pub fn parse_user_time_anyhow(
    s: &str,
    zone: &Zone,
    now: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    parse_user_time(s, zone, now).map_err(|e| bad_input(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    /// The fast path for agent logs' times reads what chrono's RFC 3339 parser reads, and
    /// leaves every other form to it.
    #[test]
    fn log_times_read_as_chrono_reads_them() {
        let cases = [
            "2025-11-18T21:39:51Z",
            "1969-12-31T23:59:59.5Z",
            "0001-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999999999Z",
            "2024-02-29T12:00:00.1Z",
            "2023-02-29T12:00:00.1Z",
            "2025-04-31T00:00:00Z",
            "2025-11-18T24:00:00Z",
            "2025-11-18T21:60:00Z",
            "2016-12-31T23:59:60.25Z",
            "2025-11-18T21:39:51.1234567891Z",
            "2025-11-18T21:39:51.Z",
            "2025-11-18t21:39:51.5z",
            "2025-11-18 21:39:51.5Z",
            "2025-11-18T21:39:51.5+02:00",
            "2025-11-18T21:39:51.-5Z",
            "2025-1-18T21:39:51Z",
            "+2025-11-18T21:39:51Z",
        ];
        for s in cases {
            let fast = fast_rfc3339_z_ms(s.as_bytes());
            let chrono = DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.timestamp_millis());
            // Never a time chrono reads otherwise (or refuses): any other form goes on to
            // chrono as before.
            if let Some(ms) = fast {
                assert_eq!(Some(ms), chrono, "{s}");
            }
            if let Some(ms) = chrono {
                assert_eq!(parse_stored_timestamp(s, &Zone::UTC), in_years(ms), "{s}");
            }
        }
        for digits in 0..=9 {
            let s = format!(
                "2025-09-07T09:42:42{}{}Z",
                if digits > 0 { "." } else { "" },
                &"860123456"[..digits]
            );
            assert_eq!(fast_rfc3339_z_ms(s.as_bytes()), Some(utc(&s)), "{s}");
        }
    }

    #[test]
    fn stored_forms() {
        let z = Zone::UTC;
        let want = utc("2025-11-18T21:39:51Z");
        for s in [
            "2025-11-18 21:39:51",
            "2025-11-18T21:39:51",
            "2025-11-18T21:39:51Z",
            "2025-11-18T21:39:51+00:00",
            "2025-11-19T05:39:51+08:00",
            "2025-11-19 05:39:51+0800",
            "1763501991",
            "1763501991000",
        ] {
            assert_eq!(parse_stored_timestamp(s, &z), Some(want), "{s}");
        }
        assert_eq!(
            parse_stored_timestamp("2025-11-18T21:39:51.578123", &z),
            Some(want + 578)
        );
        assert_eq!(parse_stored_timestamp("", &z), None);
        assert_eq!(parse_stored_timestamp("yesterday", &z), None);
    }

    #[test]
    fn fast_parser_agrees_with_chrono() {
        for s in [
            "2025-11-18 21:39:51",
            "1999-12-31 23:59:59",
            "2024-02-29 00:00:00",
            "2025-01-01T00:00:00",
        ] {
            let chrono = NaiveDateTime::parse_from_str(&s.replace('T', " "), "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp_millis();
            assert_eq!(fast_utc_ms(s.as_bytes()), Some(chrono), "{s}");
        }
        assert_eq!(fast_utc_ms(b"2025-13-18 21:39:51"), None);
        assert_eq!(fast_utc_ms(b"2025-11-18 21:39:5x"), None);
        assert_eq!(fast_utc_ms(b"2025-11-18 21:39:51.5"), None);
    }

    #[test]
    fn impossible_dates_are_unreadable() {
        let z = Zone::UTC;
        for s in [
            "2025-02-30 10:00:00",
            "2026-02-29 00:00:00",
            "2025-04-31T00:00:00",
            "2025-02-30",
            "2025-02-30T10:00:00Z",
            "0000-12-31 23:59:59",
            "10000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_stored_timestamp(s, &z), None, "{s}");
        }
        assert_eq!(
            parse_stored_timestamp("2024-02-29 12:00:00", &z),
            Some(utc("2024-02-29T12:00:00Z"))
        );
        assert_eq!(fast_utc_ms(b"2000-02-29 00:00:00"), Some(951_782_400_000));
        assert_eq!(fast_utc_ms(b"1900-02-29 00:00:00"), None);
        let now = from_ms(0);
        let e = parse_user_time("2025-02-30 10:00:00", &z, now).unwrap_err();
        assert!(e.0.contains("no date 2025-02-30"), "{e:?}");
    }

    #[test]
    fn extreme_instants_have_a_local_time() {
        for z in [
            Zone::parse("-11:00").unwrap(),
            Zone::parse("+14:00").unwrap(),
        ] {
            for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
                let _ = z.to_local(t).naive_local();
                let _ = z.start_of_day(t);
                let _ = z.start_of_month(t);
            }
        }
    }

    #[test]
    fn naive_in_configured_zone() {
        let z = Zone::parse("+08:00").unwrap();
        assert_eq!(
            parse_stored_timestamp("2025-11-19 05:39:51", &z),
            Some(utc("2025-11-18T21:39:51Z"))
        );
    }

    #[test]
    fn zones() {
        assert_eq!(Zone::parse("utc").unwrap(), Zone::UTC);
        assert!(matches!(
            Zone::parse("Europe/Paris").unwrap(),
            Zone::Named(_)
        ));
        assert!(matches!(Zone::parse("-05:30").unwrap(), Zone::Fixed(_)));
        assert!(Zone::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn user_times() {
        let now = from_ms(utc("2025-11-18T00:00:00Z"));
        let z = Zone::UTC;
        assert_eq!(parse_user_time("now", &z, now).unwrap(), now);
        assert_eq!(
            to_ms(parse_user_time("2025-01-02", &z, now).unwrap()),
            utc("2025-01-02T00:00:00Z")
        );
        assert!(parse_user_time("tomorrow-ish", &z, now).is_err());
        assert!(parse_user_time("12", &z, now).is_err());
        assert!(parse_user_time("1763501991", &z, now).is_ok());
    }
}

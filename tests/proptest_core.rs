//! Property tests (issue #16): the timestamp parser, range parsing, budget windows and the
//! token arithmetic never panic, and round-trip where they can. A few hundred cases each.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use tokmon::budget::config::{RollingLabel, Window};
use tokmon::budget::window::window_bounds;
use tokmon::range::{MAX_SPAN_DAYS, parse_range, parse_span};
use tokmon::store::query::{MAX_TOKENS, Tokens, add_tokens};
use tokmon::timefmt::{MAX_MS, MIN_MS, Zone, parse_stored_timestamp, parse_user_time};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(300)
}

/// Any instant chrono can hold.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (DateTime::<Utc>::MIN_UTC.timestamp_millis()..=DateTime::<Utc>::MAX_UTC.timestamp_millis())
        .prop_map(|ms| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default())
}

/// Zones, including far offsets either way.
fn zone() -> impl Strategy<Value = Zone> {
    prop_oneof![
        Just(Zone::UTC),
        Just(Zone::parse("-11:00").unwrap()),
        Just(Zone::parse("+14:00").unwrap()),
        Just(Zone::parse("Europe/Paris").unwrap()),
        Just(Zone::parse("America/St_Johns").unwrap()),
    ]
}

/// Timestamp-like text: digits, separators and zone pieces in any order.
fn stamp_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,5}",
        Just("-".to_string()),
        Just(":".to_string()),
        Just(" ".to_string()),
        Just("T".to_string()),
        Just("Z".to_string()),
        Just(".".to_string()),
        Just("+".to_string()),
        Just(" UTC".to_string()),
    ];
    proptest::collection::vec(piece, 0..14).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stored_timestamps_never_panic(s in prop_oneof![stamp_text(), any::<String>()], z in zone()) {
        if let Some(ms) = parse_stored_timestamp(&s, &z) {
            prop_assert!((MIN_MS..=MAX_MS).contains(&ms), "{s} -> {ms}");
        }
    }

    #[test]
    fn stored_timestamps_round_trip(ms in MIN_MS..=MAX_MS) {
        let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
        // The SQLite form (whole seconds) and RFC 3339 with milliseconds.
        let secs = t.format("%Y-%m-%d %H:%M:%S").to_string();
        prop_assert_eq!(parse_stored_timestamp(&secs, &Zone::UTC), Some(ms.div_euclid(1000) * 1000));
        let rfc = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        prop_assert_eq!(parse_stored_timestamp(&rfc, &Zone::UTC), Some(ms));
        let plus8 = t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        prop_assert_eq!(parse_stored_timestamp(&plus8, &Zone::UTC), Some(ms));
    }

    #[test]
    fn impossible_days_are_never_read(y in 1i32..=9999, m in 1u32..=12, d in 29u32..=31) {
        let text = format!("{y:04}-{m:02}-{d:02} 12:00:00");
        let real = chrono::NaiveDate::from_ymd_opt(y, m, d).is_some();
        prop_assert_eq!(parse_stored_timestamp(&text, &Zone::UTC).is_some(), real, "{}", text);
    }

    #[test]
    fn user_times_never_panic(s in prop_oneof![stamp_text(), any::<String>()], z in zone(), now in instant()) {
        let _ = parse_user_time(&s, &z, now);
    }

    #[test]
    fn ranges_never_panic(
        s in prop_oneof![
            "[+-]?[0-9]{1,22}[mhdwMHDWx]?",
            (stamp_text(), stamp_text()).prop_map(|(a, b)| format!("{a}..{b}")),
            any::<String>(),
        ],
        z in zone(),
        now in instant(),
    ) {
        if let Ok(r) = parse_range(&s, &z, now)
            && let (Some(f), Some(t)) = (r.from, r.to)
        {
            prop_assert!(f < t);
        }
    }

    #[test]
    fn spans_round_trip(n in 1i64..=MAX_SPAN_DAYS * 24 * 60, unit in prop_oneof![Just('m'), Just('h'), Just('d'), Just('w')]) {
        let per = match unit { 'm' => 1, 'h' => 60, 'd' => 1440, _ => 10080 };
        let text = format!("{}{unit}", n / per + 1);
        let minutes = (n / per + 1) * per;
        let got = parse_span(&text);
        if minutes <= MAX_SPAN_DAYS * 1440 {
            prop_assert_eq!(got, Ok(Duration::minutes(minutes)));
            // A relative range of that span ends now and starts that long before.
            let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            let r = parse_range(&text, &Zone::UTC, now).unwrap();
            prop_assert_eq!(r.from, Some(now - Duration::minutes(minutes)));
        } else {
            prop_assert!(got.is_err());
        }
    }

    #[test]
    fn budget_windows_never_panic_and_contain_now(
        kind in 0u8..4,
        hour in 0u32..24,
        day in 1u32..=28,
        span_min in 1i64..=MAX_SPAN_DAYS * 1440,
        z in zone(),
        now in instant(),
    ) {
        let w = match kind {
            0 => Window::Day { hour },
            1 => Window::Week { day: chrono::Weekday::Wed, hour },
            2 => Window::Month { day, hour },
            _ => Window::Rolling {
                span: Duration::minutes(span_min),
                label: RollingLabel { n: span_min, unit: 'm' },
            },
        };
        let b = window_bounds(&w, now, &z);
        prop_assert!(b.start <= now, "{w:?} {b:?}");
        if let Some(r) = b.resets_at {
            prop_assert!(r > b.start, "{w:?} {b:?}");
        }
        // Away from chrono's limits, a calendar window holds now and ends after it.
        let year = now.format("%Y").to_string().parse::<i64>().unwrap_or(0);
        if (2..9998).contains(&year) && !matches!(w, Window::Rolling { .. }) {
            prop_assert!(b.resets_at.is_some_and(|r| r > now), "{w:?} {b:?} {now}");
        }
    }

    #[test]
    fn token_sums_are_exact_or_refused(a in any::<u64>(), b in any::<u64>(), c in 0u64..=MAX_TOKENS, d in 0u64..=MAX_TOKENS) {
        let exact = u128::from(a) + u128::from(b);
        match add_tokens(a, b) {
            Ok(s) => prop_assert_eq!(u128::from(s), exact),
            Err(_) => prop_assert!(exact > u128::from(MAX_TOKENS)),
        }
        let mut t = Tokens { events: 1, input: c, ..Default::default() };
        let before = t;
        let o = Tokens { events: 1, output: d, cache_read: d / 2, ..Default::default() };
        let want = u128::from(c) + u128::from(d) + u128::from(d / 2);
        match t.add(&o) {
            Ok(()) => {
                prop_assert_eq!(u128::from(t.total()), want);
                prop_assert_eq!(t.events, 2);
            }
            Err(_) => {
                prop_assert!(want > u128::from(MAX_TOKENS));
                prop_assert_eq!(t, before, "unchanged on refusal");
            }
        }
    }
}

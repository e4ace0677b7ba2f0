//! Where a budget's window begins and when it starts over.
//!
//! Calendar windows are cut in the user's zone: dates are stepped as local dates and turned
//! into instants with [`Zone::from_local`], so a DST change moves the instant, never the
//! wall-clock time (a reset hour that falls in a spring-forward gap starts right after it).

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, Utc};

use super::config::Window;
use crate::timefmt::Zone;

/// The current window of a budget at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// First instant inside the window.
    pub start: DateTime<Utc>,
    /// When a calendar window ends and the next one begins; `None` for rolling windows,
    /// which never reset (usage leaves them as it ages past the span instead).
    pub resets_at: Option<DateTime<Utc>>,
}

fn at_hour(zone: &Zone, d: NaiveDate, hour: u32) -> DateTime<Utc> {
    let t = NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN);
    zone.from_local(d.and_time(t))
}

/// One calendar step of a window kind, forwards or backwards (`None` past the calendar's end).
type Step = fn(NaiveDate, bool) -> Option<NaiveDate>;

/// The window of `w` that contains `now`: `[start, resets_at)`. Never panics: at the far ends
/// of the calendar (beyond what chrono can represent) the window is cut short at the limit.
pub fn window_bounds(w: &Window, now: DateTime<Utc>, zone: &Zone) -> Bounds {
    let today = zone.to_local(now).date_naive();
    // Each calendar kind: the window start on or before `today`, and how to step one window.
    let (start_day, step): (Option<NaiveDate>, Step) = match *w {
        Window::Rolling { span, .. } => {
            return Bounds {
                start: now
                    .checked_sub_signed(span)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
                resets_at: None,
            };
        }
        Window::Day { .. } => (Some(today), |d, fwd| {
            if fwd {
                d.checked_add_days(Days::new(1))
            } else {
                d.checked_sub_days(Days::new(1))
            }
        }),
        Window::Week { day, .. } => {
            let back =
                (7 + today.weekday().num_days_from_monday() - day.num_days_from_monday()) % 7;
            (
                today.checked_sub_days(Days::new(u64::from(back))),
                |d, fwd| {
                    if fwd {
                        d.checked_add_days(Days::new(7))
                    } else {
                        d.checked_sub_days(Days::new(7))
                    }
                },
            )
        }
        Window::Month { day, .. } => {
            // `day` is at most 28 (checked with the config), so it exists in every month.
            let this = NaiveDate::from_ymd_opt(today.year(), today.month(), day.clamp(1, 28));
            let d = match this {
                Some(t) if t > today => t.checked_sub_months(Months::new(1)),
                other => other,
            };
            (d, |d, fwd| {
                if fwd {
                    d.checked_add_months(Months::new(1))
                } else {
                    d.checked_sub_months(Months::new(1))
                }
            })
        }
    };
    let hour = match *w {
        Window::Day { hour } | Window::Week { hour, .. } | Window::Month { hour, .. } => hour,
        Window::Rolling { .. } => 0,
    };
    let Some(mut start_day) = start_day else {
        return Bounds {
            start: DateTime::<Utc>::MIN_UTC,
            resets_at: None,
        };
    };
    // Before the reset hour on the reset day, the previous window is still running.
    if at_hour(zone, start_day, hour) > now {
        match step(start_day, false) {
            Some(d) => start_day = d,
            None => {
                return Bounds {
                    start: DateTime::<Utc>::MIN_UTC,
                    resets_at: Some(at_hour(zone, start_day, hour)),
                };
            }
        }
    }
    Bounds {
        start: at_hour(zone, start_day, hour),
        resets_at: step(start_day, true).map(|d| at_hour(zone, d, hour)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::config::RollingLabel;
    use chrono::{Duration, Weekday};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn b(w: Window, now: &str, zone: &Zone) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
        let x = window_bounds(&w, at(now), zone);
        (x.start, x.resets_at)
    }

    #[test]
    fn month_across_its_first_instant() {
        let z = Zone::UTC;
        let m = Window::Month { day: 1, hour: 0 };
        assert_eq!(
            b(m, "2025-11-30T23:59:59.999Z", &z),
            (at("2025-11-01T00:00:00Z"), Some(at("2025-12-01T00:00:00Z")))
        );
        assert_eq!(
            b(m, "2025-12-01T00:00:00Z", &z),
            (at("2025-12-01T00:00:00Z"), Some(at("2026-01-01T00:00:00Z")))
        );
        // In a zone east of UTC the month starts the evening before, in UTC terms.
        let sh = Zone::parse("Asia/Shanghai").unwrap();
        assert_eq!(
            b(m, "2025-11-30T15:59:59Z", &sh).0,
            at("2025-10-31T16:00:00Z")
        );
        assert_eq!(
            b(m, "2025-11-30T16:00:00Z", &sh),
            (at("2025-11-30T16:00:00Z"), Some(at("2025-12-31T16:00:00Z")))
        );
    }

    #[test]
    fn month_with_reset_day_and_hour() {
        let z = Zone::UTC;
        let m = Window::Month { day: 15, hour: 6 };
        assert_eq!(
            b(m, "2025-11-15T05:59:59Z", &z),
            (at("2025-10-15T06:00:00Z"), Some(at("2025-11-15T06:00:00Z")))
        );
        assert_eq!(
            b(m, "2025-11-15T06:00:00Z", &z),
            (at("2025-11-15T06:00:00Z"), Some(at("2025-12-15T06:00:00Z")))
        );
        // Before the 15th in January: the window began in December of the year before.
        assert_eq!(
            b(m, "2026-01-03T00:00:00Z", &z).0,
            at("2025-12-15T06:00:00Z")
        );
    }

    #[test]
    fn week_start() {
        let z = Zone::UTC;
        let w = Window::Week {
            day: Weekday::Mon,
            hour: 0,
        };
        // 2025-11-16 is a Sunday, 2025-11-17 a Monday.
        assert_eq!(
            b(w, "2025-11-16T23:59:59Z", &z),
            (at("2025-11-10T00:00:00Z"), Some(at("2025-11-17T00:00:00Z")))
        );
        assert_eq!(
            b(w, "2025-11-17T00:00:00Z", &z),
            (at("2025-11-17T00:00:00Z"), Some(at("2025-11-24T00:00:00Z")))
        );
        let fri9 = Window::Week {
            day: Weekday::Fri,
            hour: 9,
        };
        assert_eq!(
            b(fri9, "2025-11-21T08:59:00Z", &z).0,
            at("2025-11-14T09:00:00Z")
        );
        assert_eq!(
            b(fri9, "2025-11-21T09:00:00Z", &z).0,
            at("2025-11-21T09:00:00Z")
        );
    }

    #[test]
    fn day_with_reset_hour_and_dst() {
        let z = Zone::UTC;
        let d = Window::Day { hour: 4 };
        assert_eq!(
            b(d, "2025-11-18T03:00:00Z", &z),
            (at("2025-11-17T04:00:00Z"), Some(at("2025-11-18T04:00:00Z")))
        );
        // Paris falls back on 2025-10-26: that day lasts 25 hours.
        let paris = Zone::parse("Europe/Paris").unwrap();
        let midnight = Window::Day { hour: 0 };
        assert_eq!(
            b(midnight, "2025-10-26T12:00:00Z", &paris),
            (at("2025-10-25T22:00:00Z"), Some(at("2025-10-26T23:00:00Z")))
        );
        // Spring forward on 2025-03-30: 02:00 does not exist, the window starts at 03:00 CEST.
        let two = Window::Day { hour: 2 };
        assert_eq!(
            b(two, "2025-03-30T12:00:00Z", &paris).0,
            at("2025-03-30T01:00:00Z")
        );
    }

    #[test]
    fn far_ends_of_the_calendar_do_not_panic() {
        let z = Zone::parse("-11:00").unwrap();
        let windows = [
            Window::Rolling {
                span: Duration::days(365_250),
                label: RollingLabel {
                    n: 365_250,
                    unit: 'd',
                },
            },
            Window::Day { hour: 23 },
            Window::Week {
                day: Weekday::Sun,
                hour: 23,
            },
            Window::Month { day: 28, hour: 23 },
            Window::Month { day: 31, hour: 0 },
        ];
        for w in windows {
            for now in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
                let b = window_bounds(&w, now, &z);
                assert!(b.resets_at.is_none_or(|r| r > b.start), "{w:?} {b:?}");
            }
        }
    }

    #[test]
    fn rolling_slides() {
        let z = Zone::UTC;
        let r = Window::Rolling {
            span: Duration::hours(5),
            label: RollingLabel { n: 5, unit: 'h' },
        };
        assert_eq!(
            b(r, "2025-11-18T12:00:00Z", &z),
            (at("2025-11-18T07:00:00Z"), None)
        );
        assert_eq!(
            b(r, "2025-11-18T12:01:00Z", &z),
            (at("2025-11-18T07:01:00Z"), None)
        );
    }
}

//! Numbers as people read them: thousands separators, compact K/M/B, money.

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `12_400` → `12.4K`, `3_200_000` → `3.2M`; below 1,000 as is.
pub fn compact(n: u64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")];
    let f = n as f64;
    for (size, unit) in UNITS {
        if f >= size {
            let v = f / size;
            return if v >= 100.0 {
                format!("{v:.0}{unit}")
            } else {
                format!("{:.1}{unit}", (v * 10.0).floor() / 10.0)
            };
        }
    }
    n.to_string()
}

/// Dollars with a precision that suits the amount: `$0.0042`, `$1.23`, `$1,234.56`.
pub fn usd(v: f64) -> String {
    if v == 0.0 {
        return "$0.00".into();
    }
    if v.abs() < 0.01 {
        return format!("${v:.4}");
    }
    let cents = (v * 100.0).round() as u64;
    format!("${}.{:02}", thousands(cents / 100), cents % 100)
}

/// Compact dollars for narrow places: `$1.2K`, `$12.34`.
pub fn usd_compact(v: f64) -> String {
    if v >= 10_000.0 {
        format!("${}", compact(v.round() as u64))
    } else {
        usd(v)
    }
}

/// A share in percent with one decimal, `-` when the whole is zero.
pub fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        "-".into()
    } else {
        format!("{:.1}%", part / whole * 100.0)
    }
}

/// A duration in words: `3h 20m`, `2d 4h`, `45s`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(compact(999), "999");
        assert_eq!(compact(12_400), "12.4K");
        assert_eq!(compact(12_499), "12.4K");
        assert_eq!(compact(3_200_000), "3.2M");
        assert_eq!(compact(350_000), "350K");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.0042), "$0.0042");
        assert_eq!(usd(1234.567), "$1,234.57");
        assert_eq!(percent(1.0, 4.0), "25.0%");
        assert_eq!(duration(3 * 3600 + 20 * 60), "3h 20m");
        assert_eq!(duration(2 * 86400 + 4 * 3600), "2d 4h");
    }
}

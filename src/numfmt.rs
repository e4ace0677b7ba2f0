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

/// The compact form, one rule everywhere: rounded to three significant figures with a
/// unit, `1_187_753` → `1.19M`, `421_761` → `422K`, `12_400` → `12.4K`, `2_000` → `2.00K`;
/// below 1,000 as is.
pub fn compact(n: u64) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "B", "T"];
    if n < 1000 {
        return n.to_string();
    }
    // Round to three significant digits in integers (half up), then place the point.
    let mut digits = n.ilog10() + 1;
    let q = 10u128.pow(digits - 3);
    let mut r = (u128::from(n) + q / 2) / q;
    if r == 1000 {
        digits += 1;
        r = 100;
    }
    let unit = ((digits - 1) / 3).min(UNITS.len() as u32 - 1);
    let whole = digits - 3 * unit;
    if whole >= 3 {
        // Past the largest unit the figures beyond three are zeros.
        let v = r * 10u128.pow(whole - 3);
        return format!("{v}{}", UNITS[unit as usize]);
    }
    let scale = 10u128.pow(3 - whole);
    let frac = 3 - whole as usize;
    format!("{}.{:0frac$}{}", r / scale, r % scale, UNITS[unit as usize])
}

/// Dollars with a precision that suits the amount: `$0.0042`, `$1.23`, `$1,234.56`;
/// negative amounts (refunds, corrections) with a minus sign: `-$1.50`.
pub fn usd(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "$0.00".into();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a < 0.01 {
        return format!("{sign}${a:.4}");
    }
    let cents = (a * 100.0).round() as u64;
    format!("{sign}${}.{:02}", thousands(cents / 100), cents % 100)
}

/// Compact dollars for narrow places: `$12.3K`, `$12.34`, `-$12.3K`.
pub fn usd_compact(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        format!("{sign}${}", compact(v.abs().round() as u64))
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
        assert_eq!(compact(12_499), "12.5K");
        assert_eq!(compact(3_200_000), "3.20M");
        assert_eq!(compact(350_000), "350K");
        assert_eq!(compact(1_187_753), "1.19M");
        assert_eq!(compact(421_761), "422K");
        assert_eq!(compact(1_000), "1.00K");
        assert_eq!(compact(9_995), "10.0K");
        assert_eq!(compact(99_950), "100K");
        assert_eq!(compact(999_500), "1.00M");
        assert_eq!(compact(999_499), "999K");
        assert_eq!(compact(2_500_000_000), "2.50B");
        assert_eq!(compact(u64::MAX), "18400000T");
        assert_eq!(usd(-1.5), "-$1.50");
        assert_eq!(usd(-0.0042), "-$0.0042");
        assert_eq!(usd(-1234.567), "-$1,234.57");
        assert_eq!(usd_compact(-12_345.0), "-$12.3K");
        assert_eq!(usd_compact(12.34), "$12.34");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.0042), "$0.0042");
        assert_eq!(usd(1234.567), "$1,234.57");
        assert_eq!(percent(1.0, 4.0), "25.0%");
        assert_eq!(duration(3 * 3600 + 20 * 60), "3h 20m");
        assert_eq!(duration(2 * 86400 + 4 * 3600), "2d 4h");
    }
}

//! The sync VALUE: what a person types or pastes as "the cumulative count the other tool shows",
//! and the plan a sync would carry out with it.
//!
//! [`parse_sync_value`] is pure and cheap, so the TUI can call [`preview`] on every keystroke.
//!
//! Accepted, around exactly one number (any other text is ignored):
//! * plain digits of any length: `350000`;
//! * digit groups of three, all with the same separator: `350,000`, `350 000`, `1_000`, `1'000`,
//!   and the no-break spaces U+00A0, U+202F, U+2009;
//! * a decimal part with `.`: `1.5K`; an exponent: `1.5e6`;
//! * a multiplier, attached or after a space: `K` `M` `B` (either case), `thousand` `million`
//!   `billion`, and `百` `千` `万` `萬` `亿` `億` `만` `천` `억` (which multiply when chained: `3千万`);
//! * full-width forms of all of the above (`３５０Ｋ`, `３５０，０００`).
//!
//! The result must be a whole number of tokens, at most [`MAX_VALUE`].

use crate::domain::Level;
use crate::error::BadInput;

use super::StateView;

/// Why a value was refused. The message is made by [`parse_sync_value`] and names the value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    Empty,
    Negative,
    NoNumber,
    TwoNumbers(String, String),
    MalformedGroups,
    MalformedDecimal,
    AmbiguousDecimal,
    UnknownUnit(String),
    NotWhole,
    TooLarge,
}

/// The largest sync value (and quota total): 2^63 − 1, the largest count every part of
/// tokmon keeps exactly (SQLite integers, budget sums). Checked by the parser, before anything
/// is opened, so no value is accepted and then refused later.
pub const MAX_VALUE: u64 = i64::MAX as u64;

const EXAMPLES: &str = "e.g. 350000, 350,000, 350K, 1.5M or 35万";

/// Parse a sync value into a token count. The error message names the value and says what
/// would be accepted.
pub fn parse_sync_value(input: &str) -> Result<u64, BadInput> {
    parse_inner(input).map_err(|why| BadInput(refusal_message(input, why)))
}

fn refusal_message(input: &str, why: Refusal) -> String {
    let v = input.trim();
    match why {
        Refusal::Empty => format!("empty value: give the cumulative token count, {EXAMPLES}"),
        Refusal::Negative => format!("'{v}' is negative: a token count cannot be below zero"),
        Refusal::NoNumber => {
            format!("'{v}' contains no number: give the cumulative token count, {EXAMPLES}")
        }
        Refusal::TwoNumbers(a, b) => format!(
            "'{v}' contains more than one number ({a} and {b}): give only the cumulative token count"
        ),
        Refusal::MalformedGroups => format!(
            "'{v}' has malformed digit groups: after the first group every group has three digits \
             and one kind of separator (350,000 or 1 000 000); use '.' for decimals"
        ),
        Refusal::MalformedDecimal => {
            format!("'{v}' has a malformed decimal: use one '.' between digits, e.g. 12.5K")
        }
        Refusal::AmbiguousDecimal => format!(
            "'{v}' is ambiguous: '.' followed by three digits may be a thousands separator; \
             write it without the dot (350000) or with a comma (350,000)"
        ),
        Refusal::UnknownUnit(u) => format!(
            "'{v}' has an unknown unit '{u}': use K, M, B, 千, 万, 亿 or 만 (or a space before other text)"
        ),
        Refusal::NotWhole => format!("'{v}' is not a whole number of tokens"),
        Refusal::TooLarge => format!(
            "'{v}' is too large: a token count is at most {} (2^63 - 1)",
            crate::numfmt::thousands(MAX_VALUE)
        ),
    }
}

/// Map full-width ASCII forms and a few look-alikes onto plain ASCII.
fn normalise(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        '\u{2212}' | '\u{2013}' => '-',
        '\u{2019}' => '\'',
        _ => c,
    }
}

/// Spaces that may separate digit groups (and a number from its unit).
fn is_space_sep(c: char) -> bool {
    matches!(c, ' ' | '\u{00A0}' | '\u{202F}' | '\u{2009}')
}

fn is_punct_sep(c: char) -> bool {
    matches!(c, ',' | '_' | '\'')
}

/// Powers of ten of the CJK multipliers.
fn cjk_power(c: char) -> Option<i64> {
    match c {
        '百' => Some(2),
        '千' | '천' => Some(3),
        '万' | '萬' | '만' => Some(4),
        '亿' | '億' | '억' => Some(8),
        _ => None,
    }
}

/// Powers of ten of the Latin multiplier words (compared in lower case).
fn word_power(w: &str) -> Option<i64> {
    match w {
        "k" | "thousand" => Some(3),
        "m" | "mn" | "million" => Some(6),
        "b" | "bn" | "billion" => Some(9),
        _ => None,
    }
}

/// One number found in the text, as exact decimal parts.
#[derive(Debug)]
struct Found {
    start: usize,
    end: usize,
    /// Integer and fraction digits, concatenated.
    digits: String,
    /// The value is `digits × 10^power`.
    power: i64,
}

fn parse_inner(input: &str) -> Result<u64, Refusal> {
    let chars: Vec<char> = input.chars().map(normalise).collect();
    let text: String = chars.iter().collect();
    if text.trim().is_empty() {
        return Err(Refusal::Empty);
    }
    let mut found: Vec<Found> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts =
            c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !starts {
            i += 1;
            continue;
        }
        let f = scan_number(&chars, i)?;
        i = f.end;
        if let Some(first) = found.first() {
            let a: String = chars[first.start..first.end].iter().collect();
            let b: String = chars[f.start..f.end].iter().collect();
            return Err(Refusal::TwoNumbers(
                a.trim().to_string(),
                b.trim().to_string(),
            ));
        }
        found.push(f);
    }
    let Some(f) = found.pop() else {
        return Err(Refusal::NoNumber);
    };
    if is_negative(&chars, f.start) {
        return Err(Refusal::Negative);
    }
    exact_value(&f.digits, f.power)
}

/// A '-' right before the number (and not a hyphen inside a word like `GPT-4`), or a value
/// that starts with '-'.
fn is_negative(chars: &[char], start: usize) -> bool {
    if chars.iter().find(|c| !c.is_whitespace()) == Some(&'-') {
        return true;
    }
    start > 0 && chars[start - 1] == '-' && (start < 2 || !chars[start - 2].is_alphanumeric())
}

fn digit_run(chars: &[char], mut j: usize) -> (String, usize) {
    let mut s = String::new();
    while let Some(c) = chars.get(j).filter(|c| c.is_ascii_digit()) {
        s.push(*c);
        j += 1;
    }
    (s, j)
}

fn digit_at(chars: &[char], j: usize) -> bool {
    chars.get(j).is_some_and(char::is_ascii_digit)
}

/// Read one number starting at `start`: groups, decimals, exponent, multiplier.
fn scan_number(chars: &[char], start: usize) -> Result<Found, Refusal> {
    // Integer part, possibly grouped.
    let (first, mut j) = digit_run(chars, start);
    let mut int_digits = first.clone();
    let mut sep: Option<char> = None;
    let mut groups = 1;
    while let Some(&c) = chars.get(j) {
        if !(is_space_sep(c) || is_punct_sep(c)) || !digit_at(chars, j + 1) {
            break;
        }
        let (run, next) = digit_run(chars, j + 1);
        let fits = run.len() == 3 && (1..=3).contains(&first.len()) && sep.is_none_or(|s| s == c);
        if !fits {
            if is_space_sep(c) {
                // A space that does not make a valid group ends the number; what follows is
                // another number (and refused as such).
                break;
            }
            return Err(Refusal::MalformedGroups);
        }
        sep = Some(c);
        groups += 1;
        int_digits.push_str(&run);
        j = next;
    }
    // Fraction.
    let mut frac = String::new();
    if chars.get(j) == Some(&'.') {
        match chars.get(j + 1) {
            Some(c) if c.is_ascii_digit() => {
                let (run, next) = digit_run(chars, j + 1);
                frac = run;
                j = next;
                let more = chars.get(j).copied();
                if more == Some('.')
                    || more.is_some_and(|c| is_punct_sep(c) && digit_at(chars, j + 1))
                {
                    return Err(Refusal::MalformedDecimal);
                }
            }
            // A dot that ends a sentence: "350,000." or "350,000. Next".
            None => {}
            Some(c) if c.is_whitespace() || matches!(c, ')' | ']' | '"' | '\'') => {}
            Some(_) => return Err(Refusal::MalformedDecimal),
        }
    }
    // Exponent: e6, E+6, e-3.
    let mut exponent: i64 = 0;
    let mut has_exponent = false;
    if matches!(chars.get(j), Some('e' | 'E')) {
        let (sign, k) = match chars.get(j + 1) {
            Some('+') => (1, j + 2),
            Some('-') => (-1, j + 2),
            _ => (1, j + 1),
        };
        if digit_at(chars, k) {
            let (run, next) = digit_run(chars, k);
            // Far beyond any u64 already; saturate instead of overflowing.
            let magnitude: i64 = run.parse().unwrap_or(i64::from(u32::MAX)).min(1 << 20);
            exponent = sign * magnitude;
            has_exponent = true;
            j = next;
        }
    }
    // Multiplier, attached or after spaces.
    let mut k = j;
    while chars.get(k).is_some_and(|c| is_space_sep(*c)) {
        k += 1;
    }
    let attached = k == j;
    let mut multiplier: i64 = 0;
    let mut has_multiplier = false;
    if chars.get(k).and_then(|c| cjk_power(*c)).is_some() {
        while let Some(p) = chars.get(k).and_then(|c| cjk_power(*c)) {
            multiplier += p;
            k += 1;
        }
        has_multiplier = true;
        j = k;
    } else {
        let mut end = k;
        while chars.get(end).is_some_and(char::is_ascii_alphabetic) {
            end += 1;
        }
        if end > k {
            let word: String = chars[k..end]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase();
            if let Some(p) = word_power(&word) {
                multiplier = p;
                has_multiplier = true;
                j = end;
            } else if attached && matches!(word.as_bytes()[0], b'k' | b'm' | b'b') {
                return Err(Refusal::UnknownUnit(chars[k..end].iter().collect()));
            }
        }
    }
    if frac.len() == 3 && groups == 1 && !has_exponent && !has_multiplier {
        return Err(Refusal::AmbiguousDecimal);
    }
    let power = exponent + multiplier - frac.len() as i64;
    Ok(Found {
        start,
        end: j,
        digits: int_digits + &frac,
        power,
    })
}

/// `digits × 10^power` as a whole u64, exactly.
fn exact_value(digits: &str, power: i64) -> Result<u64, Refusal> {
    let mut d = digits.trim_start_matches('0');
    if d.is_empty() {
        return Ok(0);
    }
    let mut power = power;
    if power < 0 {
        let drop = usize::try_from(-power).unwrap_or(usize::MAX);
        if drop > d.len() || !d[d.len() - drop..].bytes().all(|b| b == b'0') {
            return Err(Refusal::NotWhole);
        }
        d = &d[..d.len() - drop];
        power = 0;
        if d.is_empty() {
            return Ok(0);
        }
    }
    // MAX_VALUE has 19 digits.
    if d.len() as i64 + power > 19 {
        return Err(Refusal::TooLarge);
    }
    let mut n: u128 = d.parse().map_err(|_| Refusal::TooLarge)?;
    for _ in 0..power {
        n *= 10;
    }
    u64::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_VALUE)
        .ok_or(Refusal::TooLarge)
}

/// Counts are shown with `,` between groups of three digits: `1,234,567`.
pub use crate::numfmt::thousands as format_count;

/// What a sync with a given value would do to a state.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPlan {
    /// The new cumulative value.
    pub value: u64,
    /// `used` before the sync.
    pub previous: u64,
    /// Tokens counted by this sync: `value - previous`, or `value` after a reset.
    pub increment: u64,
    /// The value is below `used`: the other tool's counter was reset.
    pub reset: bool,
    /// The value equals `used`: nothing new to record.
    pub unchanged: bool,
    /// The quota total after the sync.
    pub total: Option<u64>,
    /// The percentage after the sync (two decimals), when there is a total.
    pub percentage: Option<f64>,
    /// The alert level after the sync, when there is a total.
    pub level: Option<Level>,
}

/// Work out what syncing `value` against `state` means. `new_total` replaces the total.
pub fn plan(state: &StateView, value: u64, new_total: Option<u64>) -> SyncPlan {
    let previous = state.used;
    let reset = value < previous;
    let unchanged = value == previous;
    let increment = if reset { value } else { value - previous };
    let total = new_total.or(state.total);
    SyncPlan {
        value,
        previous,
        increment,
        reset,
        unchanged,
        total,
        percentage: total.and_then(|t| super::percentage(value, t)),
        level: total.and_then(|t| super::level(value, t)),
    }
}

/// Parse `input` and plan it against `state`, for a dialog that previews as the user types.
/// The error is the same message the command line would print.
pub fn preview(state: &StateView, input: &str) -> Result<SyncPlan, BadInput> {
    parse_sync_value(input).map(|v| plan(state, v, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> u64 {
        parse_sync_value(s).unwrap_or_else(|e| panic!("{s:?} refused: {e}"))
    }

    fn refused(s: &str) -> String {
        match parse_sync_value(s) {
            Ok(v) => panic!("{s:?} accepted as {v}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn accepted_forms() {
        let cases: &[(&str, u64)] = &[
            ("350000", 350_000),
            ("  350000\n", 350_000),
            ("350,000", 350_000),
            ("350 000", 350_000),
            ("350K", 350_000),
            ("350k", 350_000),
            ("350 K", 350_000),
            ("1.5K", 1_500),
            ("35万", 350_000),
            ("35 万", 350_000),
            ("1.5万", 15_000),
            ("350,000 tokens used", 350_000),
            ("Tokens used: 350,000.", 350_000),
            ("已使用 35万 tokens", 350_000),
            ("1_000", 1_000),
            ("1'000", 1_000),
            ("1’000", 1_000),
            ("350\u{202F}000", 350_000),
            ("350\u{00A0}000", 350_000),
            ("1\u{2009}000\u{2009}000", 1_000_000),
            ("1,000,000", 1_000_000),
            ("1,234.5K", 1_234_500),
            ("2M", 2_000_000),
            ("2m", 2_000_000),
            ("1.2b", 1_200_000_000),
            ("1.2B", 1_200_000_000),
            ("2 million tokens", 2_000_000),
            ("3千", 3_000),
            ("3千万", 30_000_000),
            ("2亿", 200_000_000),
            ("2億", 200_000_000),
            ("3萬", 30_000),
            ("5만", 50_000),
            ("３５０Ｋ", 350_000),
            ("３５０，０００", 350_000),
            ("１．５万", 15_000),
            ("0", 0),
            ("007", 7),
            (".5K", 500),
            ("1.50K", 1_500),
            ("1e6", 1_000_000),
            ("1.5E3", 1_500),
            ("2.5e-1K", 250),
            ("20B", 20_000_000_000),
            ("9223372036854775807", MAX_VALUE),
            ("9,223,372,036,854,775,807", MAX_VALUE),
            ("00000000000000000000000000001", 1),
            ("12345678901234", 12_345_678_901_234),
        ];
        for (s, want) in cases {
            assert_eq!(ok(s), *want, "{s:?}");
        }
    }

    #[test]
    fn refused_forms() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("-5", "negative"),
            ("−5", "negative"),
            ("used: -5K", "negative"),
            ("abc", "no number"),
            ("K", "no number"),
            ("12 and 13", "more than one number"),
            ("350K/1M", "more than one number"),
            ("12..5K", "malformed decimal"),
            ("1.2.3", "malformed decimal"),
            ("12.K", "malformed decimal"),
            ("1,2,3", "malformed digit groups"),
            ("1,5K", "malformed digit groups"),
            ("1000,000", "malformed digit groups"),
            ("1,000_000", "malformed digit groups"),
            ("3,50,000", "malformed digit groups"),
            ("1.5", "not a whole number"),
            ("1.5e-3K", "not a whole number"),
            ("0.3", "not a whole number"),
            ("1e999", "too large"),
            ("1e99999999999999999999", "too large"),
            ("99999999999999999999", "too large"),
            ("18446744073709551616", "too large"),
            ("18446744073709551615", "at most 9,223,372,036,854,775,807"),
            ("9223372036854775808", "at most 9,223,372,036,854,775,807"),
            ("9.3e18", "too large"),
            ("20000000000B", "too large"),
            ("GPT-4o used 350K", "more than one number"),
            ("350KE", "unknown unit"),
            ("5MB", "unknown unit"),
            ("350.000", "ambiguous"),
        ];
        for (s, why) in cases {
            let msg = refused(s);
            assert!(msg.contains(why), "{s:?}: {msg}");
            if !s.trim().is_empty() {
                assert!(msg.contains(s.trim()), "message names the value: {msg}");
            }
        }
    }

    #[test]
    fn formats_md_examples() {
        for (s, want) in [
            ("350000", 350_000),
            ("350,000", 350_000),
            ("350 000", 350_000),
            ("350K", 350_000),
            ("1.5K", 1_500),
            ("35万", 350_000),
            ("1.5万", 15_000),
            ("350,000 tokens used", 350_000),
        ] {
            assert_eq!(ok(s), want, "{s}");
        }
    }

    #[test]
    fn plans() {
        let state = StateView {
            used: 299_000,
            total: Some(1_000_000),
            ..StateView::default()
        };
        let p = preview(&state, "350K").unwrap();
        assert_eq!((p.increment, p.reset, p.unchanged), (51_000, false, false));
        assert_eq!(p.percentage, Some(35.0));
        let p = preview(&state, "5000").unwrap();
        assert_eq!((p.increment, p.reset), (5_000, true));
        let p = preview(&state, "299,000").unwrap();
        assert_eq!((p.increment, p.unchanged), (0, true));
        assert!(preview(&state, "12..5").unwrap_err().0.contains("12..5"));
        let p = plan(&state, 960_000, None);
        assert_eq!(p.level, Some(Level::Critical));
    }
}

/// Property tests of the parser: no input panics it, nothing above [`MAX_VALUE`] is accepted,
/// and every way of writing a count reads back as that count.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Text built from the pieces the parser cares about, so the interesting paths are hit.
    fn tricky() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[0-9]{1,4}",
            Just(",".to_string()),
            Just(".".to_string()),
            Just(" ".to_string()),
            Just("_".to_string()),
            Just("'".to_string()),
            Just("-".to_string()),
            Just("−".to_string()),
            Just("e".to_string()),
            Just("E+".to_string()),
            Just("e-".to_string()),
            Just("K".to_string()),
            Just("m".to_string()),
            Just("billion".to_string()),
            Just("万".to_string()),
            Just("亿".to_string()),
            Just("千".to_string()),
            Just("만".to_string()),
            Just("３".to_string()),
            Just("，".to_string()),
            Just("\u{00A0}".to_string()),
            Just("\u{202F}".to_string()),
            Just("tokens".to_string()),
            "[0-9]{15,30}",
            "e[0-9]{1,25}",
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    fn fullwidth(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '0'..='9' | ',' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
                _ => c,
            })
            .collect()
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_in_range(s in any::<String>()) {
            if let Ok(v) = parse_sync_value(&s) {
                prop_assert!(v <= MAX_VALUE);
            }
        }

        #[test]
        fn tricky_text_never_panics_and_errors_name_it(s in tricky()) {
            match parse_sync_value(&s) {
                Ok(v) => prop_assert!(v <= MAX_VALUE),
                Err(e) => {
                    if !s.trim().is_empty() {
                        prop_assert!(e.0.contains(s.trim()), "{}", e.0);
                    }
                }
            }
        }

        #[test]
        fn every_count_reads_back(n in 0..=MAX_VALUE) {
            let grouped = format_count(n);
            let forms = [
                n.to_string(),
                grouped.clone(),
                grouped.replace(',', " "),
                grouped.replace(',', "\u{202F}"),
                grouped.replace(',', "_"),
                fullwidth(&grouped),
                format!("Tokens used: {grouped}."),
                format!("{grouped} tokens used"),
                format!("  {n}\n"),
            ];
            for f in forms {
                prop_assert_eq!(parse_sync_value(&f).ok(), Some(n), "{:?}", f);
            }
        }

        #[test]
        fn multipliers_read_back(n in 0..=MAX_VALUE / 100_000_000) {
            prop_assert_eq!(parse_sync_value(&format!("{n}K")).ok(), Some(n * 1_000));
            prop_assert_eq!(parse_sync_value(&format!("{n} million")).ok(), Some(n * 1_000_000));
            prop_assert_eq!(parse_sync_value(&format!("{n}万")).ok(), Some(n * 10_000));
            prop_assert_eq!(parse_sync_value(&format!("{n}亿")).ok(), Some(n * 100_000_000));
            prop_assert_eq!(parse_sync_value(&format!("{n}e3")).ok(), Some(n * 1_000));
            // One decimal of a thousand is a whole number of tokens.
            prop_assert_eq!(
                parse_sync_value(&format!("{}.{}K", n / 10, n % 10)).ok(),
                Some(n * 100)
            );
        }

        #[test]
        fn above_the_maximum_is_refused_naming_it(extra in 1..=u64::MAX - MAX_VALUE) {
            let n = MAX_VALUE as u128 + extra as u128;
            let e = parse_sync_value(&n.to_string()).unwrap_err();
            prop_assert!(e.0.contains("at most 9,223,372,036,854,775,807"), "{}", e.0);
        }
    }
}

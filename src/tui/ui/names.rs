//! Names as a table shows them: shorter where that stays unambiguous (a model without its
//! date suffix or route prefix), cut to the column when they must be, and never two
//! different names drawn the same.

use std::collections::HashMap;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::fit;

/// `name` without a trailing date (`-20250514`, `-2024-08-06`, `@20240620`).
fn strip_date(name: &str) -> &str {
    let b = name.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let plausible = |s: &[u8]| s.starts_with(b"19") || s.starts_with(b"20");
    let n = b.len();
    // `-YYYYMMDD`
    if n > 9
        && matches!(b[n - 9], b'-' | b'@' | b'_')
        && digits(&b[n - 8..])
        && plausible(&b[n - 8..])
    {
        return &name[..n - 9];
    }
    // `-YYYY-MM-DD`
    if n > 11
        && b[n - 11] == b'-'
        && digits(&b[n - 10..n - 6])
        && b[n - 6] == b'-'
        && digits(&b[n - 5..n - 3])
        && b[n - 3] == b'-'
        && digits(&b[n - 2..])
        && plausible(&b[n - 10..])
    {
        return &name[..n - 11];
    }
    name
}

/// `name` without a route prefix (`anthropic/claude-opus-4-1` → `claude-opus-4-1`).
fn strip_route(name: &str) -> &str {
    match name.rsplit_once('/') {
        Some((_, rest)) if !rest.is_empty() => rest,
        _ => name,
    }
}

/// The shorter form of a model name: no route prefix, no date suffix.
pub fn short_model(name: &str) -> &str {
    strip_date(strip_route(name))
}

/// Display names for `names` (all distinct): each one's short form where no other name on
/// the screen has that form (short or full), else the name itself.
pub fn shorten(names: &[&str], short: impl Fn(&str) -> &str) -> Vec<String> {
    let shorts: Vec<&str> = names.iter().map(|n| short(n)).collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for s in &shorts {
        *count.entry(s).or_default() += 1;
    }
    for (n, s) in names.iter().zip(&shorts) {
        // A full name that is some other name's short form counts against that form.
        if *n != *s {
            *count.entry(n).or_default() += 1;
        }
    }
    names
        .iter()
        .zip(&shorts)
        .map(|(n, s)| {
            if *s != *n && count.get(s).copied().unwrap_or(0) == 1 && !s.is_empty() {
                s.to_string()
            } else {
                n.to_string()
            }
        })
        .collect()
}

/// The last characters of `s` that fit in `width` columns.
fn tail(s: &str, width: usize) -> String {
    let mut kept = Vec::new();
    let mut w = 0;
    for c in s.chars().rev() {
        let cw = c.width().unwrap_or(0);
        if w + cw > width {
            break;
        }
        kept.push(c);
        w += cw;
    }
    kept.iter().rev().collect()
}

/// `head…tail` in `width` columns, the tail `k` columns wide.
fn middle(s: &str, width: usize, k: usize) -> String {
    let t = tail(s, k);
    let head = fit(s, width.saturating_sub(t.width()));
    format!("{head}{t}")
}

/// Fit every name into `width` columns (cut with `…`) so that no two come out the same:
/// names that would collide keep their ends (`gemini-1.5-…ash`, `gemini-1.5-…pro`).
pub fn fit_unique(names: &[String], width: usize) -> Vec<String> {
    let mut out: Vec<String> = names.iter().map(|n| fit(n, width)).collect();
    let clashes = |out: &[String]| -> Vec<Vec<usize>> {
        let mut by: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, s) in out.iter().enumerate() {
            by.entry(s.as_str()).or_default().push(i);
        }
        by.into_values().filter(|v| v.len() > 1).collect()
    };
    for group in clashes(&out) {
        // The shortest tail that tells the group apart (a few letters at least, which read
        // better than one).
        let from = if width >= 9 { 3 } else { 1 };
        let found = (from..width.saturating_sub(1)).find(|k| {
            let forms: Vec<String> = group
                .iter()
                .map(|i| middle(&names[*i], width, *k))
                .collect();
            let mut sorted = forms.clone();
            sorted.sort();
            sorted.dedup();
            sorted.len() == forms.len() && forms.iter().all(|f| !out.contains(f))
        });
        if let Some(k) = found {
            for i in &group {
                out[*i] = middle(&names[*i], width, k);
            }
        }
    }
    // Too narrow to tell them apart by their ends: number them.
    for group in clashes(&out) {
        for (n, i) in group.iter().enumerate().skip(1) {
            let mark = format!("~{n}");
            out[*i] = format!(
                "{}{mark}",
                fit(&names[*i], width.saturating_sub(mark.width()))
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_only_when_unique() {
        assert_eq!(short_model("claude-sonnet-4-20250514"), "claude-sonnet-4");
        assert_eq!(short_model("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(short_model("anthropic/claude-opus-4-1"), "claude-opus-4-1");
        assert_eq!(short_model("ollama/llama3.1:8b"), "llama3.1:8b");
        assert_eq!(short_model("gpt-5"), "gpt-5");
        assert_eq!(short_model("model-12345678"), "model-12345678");
        let names = [
            "claude-sonnet-4-20250514",
            "claude-sonnet-4",
            "gpt-4o-2024-08-06",
            "openrouter/gpt-4o-mini",
            "gpt-4o-mini",
            "claude-3-5-sonnet-20241022",
        ];
        assert_eq!(
            shorten(&names, short_model),
            vec![
                "claude-sonnet-4-20250514",
                "claude-sonnet-4",
                "gpt-4o",
                "openrouter/gpt-4o-mini",
                "gpt-4o-mini",
                "claude-3-5-sonnet",
            ]
        );
        // Two dated versions of one model keep their dates.
        assert_eq!(
            shorten(&["m-20240101", "m-20250101"], short_model),
            vec!["m-20240101", "m-20250101"]
        );
    }

    #[test]
    fn cut_names_never_collide() {
        let names: Vec<String> = [
            "gemini-1.5-flash",
            "gemini-1.5-pro",
            "text-embedding-3-small",
            "text-embedding-3-large",
            "gpt-5",
        ]
        .map(String::from)
        .to_vec();
        let out = fit_unique(&names, 12);
        assert_eq!(out[4], "gpt-5");
        for (i, a) in out.iter().enumerate() {
            assert!(a.width() <= 12, "{a}");
            for b in &out[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(out[0], "gemini-1…ash");
        assert_eq!(out[1], "gemini-1…pro");
        assert_eq!(out[2], "text-emb…all");
        // Far too narrow: still distinct.
        let out = fit_unique(&names, 3);
        let mut d = out.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), out.len(), "{out:?}");
    }
}

//! Text from data (model and agent names, notes, budget names, bad lines of a log) made safe
//! for a terminal. A database or a log may hold anything, including escape sequences that
//! would retitle the window, clear the screen or fake output; every human-readable output
//! passes such text through [`printable`] first. Ordinary text comes back unchanged (and
//! unallocated), so tables and CSV stay byte-identical for normal data. JSON escapes control
//! characters by itself.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that must not reach a terminal as they are: C0 and C1 controls, DEL, and the
/// Unicode bidirectional overrides and isolates (which reorder what is shown).
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character shown visibly: `\x1b` for controls, `\u{202e}` for the
/// bidirectional ones. Borrowed when there is nothing to escape.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// [`printable`] into an owned `String`.
pub fn printable_string(s: &str) -> String {
    printable(s).into_owned()
}

/// [`printable`] line by line: the line breaks of a multi-line message are kept.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.split('\n').map(printable).collect::<Vec<_>>().join("\n"))
}

/// A path as printable text (for messages that name a file).
pub fn printable_path(p: &std::path::Path) -> String {
    printable_string(&p.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_untouched() {
        for s in ["claude-sonnet-4", "日本語 モデル", "a b\u{00e9}", ""] {
            assert!(matches!(printable(s), Cow::Borrowed(x) if x == s));
        }
    }

    #[test]
    fn escapes_are_shown_not_sent() {
        let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J";
        let p = printable(evil);
        assert_eq!(p, "\\x1b]0;pwned\\x07\\x1b[2J");
        assert!(!p.chars().any(is_unsafe));
        assert_eq!(printable("a\nb\tc\u{7f}\u{9b}"), "a\\x0ab\\x09c\\x7f\\x9b");
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(printable_lines("a\u{1b}[2J\nb"), "a\\x1b[2J\nb");
        assert!(matches!(printable_lines("a\nb"), Cow::Borrowed(_)));
    }
}

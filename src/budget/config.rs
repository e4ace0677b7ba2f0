//! `[[budget]]` tables of the config file: the data serde reads ([`BudgetSpec`], in
//! [`crate::config`]) compiled into the checked form the rest of the program uses ([`Budget`]).

use super::Level;
pub use crate::config::{BudgetSpec, Patterns, ResetDay};
use chrono::{Duration, Weekday};
use globset::{GlobBuilder, GlobMatcher};

/// The name of the budget that stands for the state file's quota.
pub const QUOTA_NAME: &str = "quota";

/// Warning, critical and exceeded thresholds when a budget sets none: the one ladder.
pub use crate::domain::DEFAULT_THRESHOLDS;

/// What a budget's window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A calendar month starting on `day` (1–28) at `hour`, local time.
    Month { day: u32, hour: u32 },
    /// A week starting on `day` at `hour`, local time.
    Week { day: Weekday, hour: u32 },
    /// A day starting at `hour`, local time.
    Day { hour: u32 },
    /// The last `span` up to now, sliding with the clock.
    Rolling { span: Duration, label: RollingLabel },
}

/// How a rolling window was written (`5h`, `7d`), kept for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingLabel {
    pub n: i64,
    pub unit: char,
}

impl Window {
    /// Short text as written in the config: `month`, `week`, `day`, `5h`.
    pub fn label(&self) -> String {
        match self {
            Window::Month { .. } => "month".into(),
            Window::Week { .. } => "week".into(),
            Window::Day { .. } => "day".into(),
            Window::Rolling { label, .. } => format!("{}{}", label.n, label.unit),
        }
    }

    pub fn is_rolling(&self) -> bool {
        matches!(self, Window::Rolling { .. })
    }
}

/// Percentages at which a budget reaches each level (ascending, equal values allowed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warning: f64,
    pub critical: f64,
    pub exceeded: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        let [warning, critical, exceeded] = DEFAULT_THRESHOLDS;
        Thresholds {
            warning,
            critical,
            exceeded,
        }
    }
}

impl Thresholds {
    /// The level of a percentage. When two thresholds are equal, the higher level wins.
    pub fn level_of(&self, pct: f64) -> Level {
        if pct >= self.exceeded {
            Level::Exceeded
        } else if pct >= self.critical {
            Level::Critical
        } else if pct >= self.warning {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    /// The threshold at which `level` begins (`None` for ok).
    pub fn of(&self, level: Level) -> Option<f64> {
        match level {
            Level::Ok => None,
            Level::Warning => Some(self.warning),
            Level::Critical => Some(self.critical),
            Level::Exceeded => Some(self.exceeded),
        }
    }
}

/// Compiled glob filters. An empty list of a dimension means "any value".
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub provider: Vec<GlobMatcher>,
    pub model: Vec<GlobMatcher>,
    pub agent: Vec<GlobMatcher>,
}

impl Filter {
    fn one(globs: &[GlobMatcher], value: Option<&str>) -> bool {
        // A missing value never matches a filter: "provider = '*'" means "has a provider".
        globs.is_empty() || value.is_some_and(|v| globs.iter().any(|g| g.is_match(v)))
    }

    pub fn matches(
        &self,
        provider: Option<&str>,
        model: Option<&str>,
        agent: Option<&str>,
    ) -> bool {
        Self::one(&self.provider, provider)
            && Self::one(&self.model, model)
            && Self::one(&self.agent, agent)
    }

    pub fn is_empty(&self) -> bool {
        self.provider.is_empty() && self.model.is_empty() && self.agent.is_empty()
    }
}

/// A checked budget.
#[derive(Debug, Clone)]
pub struct Budget {
    pub name: String,
    pub window: Window,
    pub limit_tokens: Option<u64>,
    pub limit_usd: Option<f64>,
    pub filter: Filter,
    /// The filter as written, for display (`provider=openai model=gpt-*`).
    pub filter_text: String,
    pub thresholds: Thresholds,
}

/// A problem with one field of one budget. Displayed as
/// `budget 'name' (#2), field 'window': …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}, field '{field}': {message}", budget_label(name.as_deref(), *index))]
pub struct SpecError {
    /// 1-based position among the `[[budget]]` tables.
    pub index: usize,
    pub name: Option<String>,
    pub field: &'static str,
    pub message: String,
}

/// `budget 'name' (#2)`, or `budget #2` without a name.
fn budget_label(name: Option<&str>, index: usize) -> String {
    match name {
        Some(n) => format!("budget '{n}' (#{index})"),
        None => format!("budget #{index}"),
    }
}

const WINDOW_HELP: &str =
    "use month, week, day, or a rolling span such as 5h, 24h, 7d or 2w (m is minutes)";

fn weekday(s: &str) -> Option<Weekday> {
    let l = s.trim().to_ascii_lowercase();
    let all = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let names = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    all.into_iter()
        .zip(names)
        .find(|(_, n)| l == *n || (l.len() >= 3 && n.starts_with(&l)))
        .map(|(d, _)| d)
}

impl BudgetSpec {
    /// Check every field; `index` is the 1-based position in the config file.
    pub fn compile(&self, index: usize) -> Result<Budget, SpecError> {
        let err = |field: &'static str, message: String| SpecError {
            index,
            name: self.name.clone(),
            field,
            message,
        };
        let name = match self.name.as_deref().map(str::trim) {
            None => return Err(err("name", "missing: every budget needs a name".into())),
            Some("") => return Err(err("name", "must not be empty".into())),
            Some(n) if n.eq_ignore_ascii_case(QUOTA_NAME) => {
                return Err(err(
                    "name",
                    format!("'{n}' is reserved for the state file's quota; choose another name"),
                ));
            }
            Some(n) => n.to_string(),
        };
        let hour = match self.reset_hour {
            None => 0,
            Some(h) if (0..=23).contains(&h) => h as u32,
            Some(h) => {
                return Err(err(
                    "reset_hour",
                    format!("{h} is not an hour: use 0 to 23"),
                ));
            }
        };
        let raw_window = self
            .window
            .as_deref()
            .ok_or_else(|| err("window", format!("missing: {WINDOW_HELP}")))?;
        let window = match raw_window.trim().to_ascii_lowercase().as_str() {
            "month" | "monthly" => {
                let day = match &self.reset_day {
                    None => 1,
                    Some(ResetDay::Number(d)) if (1..=28).contains(d) => *d as u32,
                    Some(other) => {
                        return Err(err(
                            "reset_day",
                            format!(
                                "{} does not suit a month window: use a day from 1 to 28",
                                show_day(other)
                            ),
                        ));
                    }
                };
                Window::Month { day, hour }
            }
            "week" | "weekly" => {
                let day = match &self.reset_day {
                    None => Weekday::Mon,
                    Some(ResetDay::Name(n)) => weekday(n).ok_or_else(|| {
                        err(
                            "reset_day",
                            format!("'{n}' is not a weekday: use monday … sunday"),
                        )
                    })?,
                    Some(other) => {
                        return Err(err(
                            "reset_day",
                            format!(
                                "{} does not suit a week window: use a weekday name such as \"monday\"",
                                show_day(other)
                            ),
                        ));
                    }
                };
                Window::Week { day, hour }
            }
            "day" | "daily" => {
                if let Some(d) = &self.reset_day {
                    return Err(err(
                        "reset_day",
                        format!(
                            "{} does not suit a day window (it starts every day; set reset_hour)",
                            show_day(d)
                        ),
                    ));
                }
                Window::Day { hour }
            }
            other => {
                let span = crate::range::parse_span(other).map_err(|e| {
                    let why = match e {
                        crate::range::SpanError::NotASpan => WINDOW_HELP,
                        crate::range::SpanError::TooLong => crate::range::TOO_LONG,
                    };
                    err("window", format!("'{raw_window}' is not a window: {why}"))
                })?;
                if self.reset_day.is_some() || self.reset_hour.is_some() {
                    let field = if self.reset_day.is_some() {
                        "reset_day"
                    } else {
                        "reset_hour"
                    };
                    return Err(err(
                        field,
                        format!("a rolling window ({other}) has no reset; remove {field}"),
                    ));
                }
                let unit = other.chars().last().unwrap_or('h');
                let n = other[..other.len() - unit.len_utf8()]
                    .parse()
                    .unwrap_or_default();
                Window::Rolling {
                    span,
                    label: RollingLabel { n, unit },
                }
            }
        };
        if self.limit_tokens == Some(0) {
            return Err(err("limit_tokens", "must be above 0".into()));
        }
        if let Some(u) = self.limit_usd.filter(|u| !(u.is_finite() && *u > 0.0)) {
            return Err(err("limit_usd", format!("{u} is not a positive amount")));
        }
        if self.limit_tokens.is_none() && self.limit_usd.is_none() {
            return Err(err(
                "limit_tokens",
                "a budget needs limit_tokens, limit_usd, or both".into(),
            ));
        }
        let thresholds = match &self.thresholds {
            None => Thresholds::default(),
            Some(v) => compile_thresholds(v).map_err(|e| err("thresholds", e.to_string()))?,
        };
        let mut filter = Filter::default();
        let mut filter_text = Vec::new();
        for (field, pats, into) in [
            ("provider", &self.provider, &mut filter.provider),
            ("model", &self.model, &mut filter.model),
            ("agent", &self.agent, &mut filter.agent),
        ] {
            let Some(Patterns(list)) = pats else { continue };
            if list.is_empty() {
                return Err(err(field, "the list of patterns is empty".into()));
            }
            for p in list {
                let g = GlobBuilder::new(p.trim())
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| err(field, format!("bad glob pattern '{p}': {e}")))?;
                into.push(g.compile_matcher());
            }
            filter_text.push(format!("{field}={}", list.join(",")));
        }
        Ok(Budget {
            name,
            window,
            limit_tokens: self.limit_tokens,
            limit_usd: self.limit_usd,
            filter,
            filter_text: filter_text.join(" "),
            thresholds,
        })
    }
}

fn show_day(d: &ResetDay) -> String {
    match d {
        ResetDay::Number(n) => n.to_string(),
        ResetDay::Name(s) => format!("'{s}'"),
    }
}

/// Why a `thresholds` list cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("give 1 to 3 percentages [warning, critical, exceeded], not {0}")]
    Count(usize),
    #[error("{0} is not a positive percentage")]
    NotPositive(f64),
    #[error("{later} comes after {earlier}: thresholds must not decrease")]
    Decreasing { earlier: f64, later: f64 },
}

/// `[w]`, `[w, c]` or `[w, c, e]`; levels left out are 100 (or the level below, if higher).
fn compile_thresholds(v: &[f64]) -> Result<Thresholds, ThresholdError> {
    if v.is_empty() || v.len() > 3 {
        return Err(ThresholdError::Count(v.len()));
    }
    for (i, t) in v.iter().enumerate() {
        if !(t.is_finite() && *t > 0.0) {
            return Err(ThresholdError::NotPositive(*t));
        }
        if i > 0 && *t < v[i - 1] {
            return Err(ThresholdError::Decreasing {
                earlier: v[i - 1],
                later: *t,
            });
        }
    }
    let warning = v[0];
    let critical = v.get(1).copied().unwrap_or(warning.max(100.0));
    let exceeded = v.get(2).copied().unwrap_or(critical.max(100.0));
    Ok(Thresholds {
        warning,
        critical,
        exceeded,
    })
}

/// Check every budget of a config: each one's fields, and that names are unique.
pub fn compile_all(specs: &[BudgetSpec]) -> Result<Vec<Budget>, SpecError> {
    let mut out: Vec<Budget> = Vec::with_capacity(specs.len());
    for (i, s) in specs.iter().enumerate() {
        let b = s.compile(i + 1)?;
        if let Some(first) = out
            .iter()
            .position(|o| o.name.eq_ignore_ascii_case(&b.name))
        {
            return Err(SpecError {
                index: i + 1,
                name: Some(b.name.clone()),
                field: "name",
                message: format!(
                    "budget #{} already has this name; names must be unique",
                    first + 1
                ),
            });
        }
        out.push(b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Vec<Budget>, String> {
        let cfg = crate::config::Config::parse(toml_text).map_err(|e| e.0)?;
        compile_all(&cfg.budgets).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_budget() {
        let b = parse(
            r#"
            [[budget]]
            name = "openai"
            window = "month"
            reset_day = 15
            reset_hour = 6
            provider = "openai"
            model = ["gpt-4*", "o3*"]
            limit_tokens = 1_000_000
            limit_usd = 25
            thresholds = [80, 90, 100]
            "#,
        )
        .unwrap();
        let b = &b[0];
        assert_eq!(b.window, Window::Month { day: 15, hour: 6 });
        assert_eq!(b.limit_usd, Some(25.0));
        assert_eq!(b.thresholds.warning, 80.0);
        assert!(b.filter.matches(Some("OpenAI"), Some("gpt-4o-mini"), None));
        assert!(!b.filter.matches(Some("openai"), Some("claude-3"), None));
        assert!(!b.filter.matches(None, Some("gpt-4o"), None));
        assert_eq!(b.filter_text, "provider=openai model=gpt-4*,o3*");
    }

    #[test]
    fn windows() {
        let one = |w: &str, extra: &str| {
            parse(&format!(
                "[[budget]]\nname = \"b\"\nwindow = \"{w}\"\nlimit_tokens = 5\n{extra}"
            ))
            .map(|v| v[0].window)
        };
        assert_eq!(
            one("week", "").unwrap(),
            Window::Week {
                day: Weekday::Mon,
                hour: 0
            }
        );
        assert_eq!(
            one("week", "reset_day = \"Fri\"\nreset_hour = 9").unwrap(),
            Window::Week {
                day: Weekday::Fri,
                hour: 9
            }
        );
        assert_eq!(
            one("day", "reset_hour = 4").unwrap(),
            Window::Day { hour: 4 }
        );
        let w = one("5h", "").unwrap();
        assert_eq!(w.label(), "5h");
        assert!(matches!(w, Window::Rolling { span, .. } if span == Duration::hours(5)));
        assert_eq!(one("7d", "").unwrap().label(), "7d");
    }

    #[test]
    fn errors_name_the_budget_and_field() {
        let cases = [
            ("window = \"monthy\"\nlimit_tokens = 5", "field 'window'"),
            ("window = \"month\"", "field 'limit_tokens'"),
            (
                "window = \"month\"\nlimit_tokens = 0",
                "field 'limit_tokens'",
            ),
            ("window = \"month\"\nlimit_usd = -1.5", "field 'limit_usd'"),
            (
                "window = \"month\"\nreset_day = 31\nlimit_tokens = 5",
                "field 'reset_day'",
            ),
            (
                "window = \"week\"\nreset_day = 3\nlimit_tokens = 5",
                "field 'reset_day'",
            ),
            (
                "window = \"week\"\nreset_day = \"someday\"\nlimit_tokens = 5",
                "field 'reset_day'",
            ),
            (
                "window = \"day\"\nreset_hour = 24\nlimit_tokens = 5",
                "field 'reset_hour'",
            ),
            (
                "window = \"5h\"\nreset_hour = 2\nlimit_tokens = 5",
                "field 'reset_hour'",
            ),
            (
                "window = \"month\"\nlimit_tokens = 5\nthresholds = [95, 90]",
                "field 'thresholds'",
            ),
            (
                "window = \"month\"\nlimit_tokens = 5\nthresholds = [0]",
                "field 'thresholds'",
            ),
            (
                "window = \"month\"\nlimit_tokens = 5\nthresholds = []",
                "field 'thresholds'",
            ),
            (
                "window = \"month\"\nlimit_tokens = 5\nmodel = \"gpt-[\"",
                "field 'model'",
            ),
        ];
        for (body, want) in cases {
            let e = parse(&format!("[[budget]]\nname = \"team\"\n{body}")).unwrap_err();
            assert!(
                e.contains("budget 'team' (#1)") && e.contains(want),
                "{body}: {e}"
            );
        }
        let e = parse("[[budget]]\nwindow = \"month\"\nlimit_tokens = 5").unwrap_err();
        assert!(e.contains("budget #1, field 'name'"), "{e}");
        let e = parse(
            "[[budget]]\nname = \"a\"\nwindow = \"day\"\nlimit_tokens = 5\n\
             [[budget]]\nname = \"A\"\nwindow = \"day\"\nlimit_tokens = 5",
        )
        .unwrap_err();
        assert!(e.contains("budget 'A' (#2), field 'name'"), "{e}");
        let e =
            parse("[[budget]]\nname = \"quota\"\nwindow = \"day\"\nlimit_tokens = 5").unwrap_err();
        assert!(e.contains("reserved"), "{e}");
        // serde's own errors still carry the field and the line.
        let e = parse("[[budget]]\nname = \"a\"\nwindow = \"day\"\nlimit_tokns = 5").unwrap_err();
        assert!(e.contains("limit_tokns") && e.contains("line 4"), "{e}");
    }

    #[test]
    fn two_level_and_short_threshold_lists() {
        let t = compile_thresholds(&[90.0, 100.0]).unwrap();
        assert_eq!((t.warning, t.critical, t.exceeded), (90.0, 100.0, 100.0));
        assert_eq!(t.level_of(100.0), Level::Exceeded);
        assert_eq!(t.level_of(99.9), Level::Warning);
        let t = compile_thresholds(&[80.0]).unwrap();
        assert_eq!((t.critical, t.exceeded), (100.0, 100.0));
        let t = compile_thresholds(&[50.0, 120.0]).unwrap();
        assert_eq!(t.exceeded, 120.0);
    }

    #[test]
    fn bad_threshold_lists_say_why() {
        let why = |v: &[f64]| compile_thresholds(v).unwrap_err().to_string();
        assert_eq!(
            why(&[]),
            "give 1 to 3 percentages [warning, critical, exceeded], not 0"
        );
        assert_eq!(
            why(&[1.0, 2.0, 3.0, 4.0]),
            "give 1 to 3 percentages [warning, critical, exceeded], not 4"
        );
        assert_eq!(why(&[-5.0]), "-5 is not a positive percentage");
        assert_eq!(why(&[80.0, f64::NAN]), "NaN is not a positive percentage");
        assert_eq!(
            why(&[90.0, 85.5]),
            "85.5 comes after 90: thresholds must not decrease"
        );
    }

    #[test]
    fn each_level() {
        let t = Thresholds::default();
        assert_eq!(t.level_of(0.0), Level::Ok);
        assert_eq!(t.level_of(89.99), Level::Ok);
        assert_eq!(t.level_of(90.0), Level::Warning);
        assert_eq!(t.level_of(94.9), Level::Warning);
        assert_eq!(t.level_of(95.0), Level::Critical);
        assert_eq!(t.level_of(99.99), Level::Critical);
        assert_eq!(t.level_of(100.0), Level::Exceeded);
        assert_eq!(t.level_of(250.0), Level::Exceeded);
    }
}

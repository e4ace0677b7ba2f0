//! Themes: styles keyed by meaning, read from TOML. The built-in themes in `themes/` are
//! embedded at build time; files in `<config dir>/themes/` override them role by role or add
//! new ones. `NO_COLOR` strips every colour and keeps only bold / underline / reverse.

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::error::BadInput;

/// The built-in themes, in the order `t` cycles through them.
const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// The roles of a theme, listed once: the [`Theme`] fields, the names theme files use
/// ([`ROLES`]), a blank theme and the lookup by name come from this one list.
macro_rules! theme_roles {
    ($($role:ident),* $(,)?) => {
        /// Every style the screen uses, by what it means.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            pub name: String,
            $(pub $role: Style,)*
        }

        /// Every role, by the name theme files use.
        const ROLES: &[&str] = &[$(stringify!($role)),*];

        impl Theme {
            fn blank(name: &str) -> Theme {
                Theme {
                    name: name.to_string(),
                    $($role: Style::new(),)*
                }
            }

            fn slot(&mut self, role: &str) -> Option<&mut Style> {
                Some(match role {
                    $(stringify!($role) => &mut self.$role,)*
                    _ => return None,
                })
            }
        }
    };
}

theme_roles!(
    text,
    dim,
    title,
    accent,
    border,
    key,
    live,
    ok,
    warning,
    critical,
    exceeded,
    error,
    spark_tokens,
    spark_cost,
    table_header,
    selected,
);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    #[serde(default)]
    styles: BTreeMap<String, String>,
}

/// Why a theme cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThemeError {
    /// The file is not TOML of a theme's shape (toml's own message).
    #[error("{0}")]
    Toml(String),
    /// `styles.accent: unknown colour 'x'`.
    #[error("styles.{role}: {problem}")]
    Style { role: String, problem: BadInput },
    #[error("unknown style role '{0}'")]
    UnknownRole(String),
    /// A theme compiled into tokmon is broken.
    #[error("built-in theme {name}: {problem}")]
    BuiltIn {
        name: &'static str,
        problem: Box<ThemeError>,
    },
    /// `--theme` or the config names no theme there is.
    #[error("unknown theme '{wanted}': use one of {}", known.join(", "))]
    Unknown { wanted: String, known: Vec<String> },
}

impl Theme {
    /// Apply a theme file on top of `self` (only the roles it names change).
    fn overlay(mut self, text: &str) -> Result<Theme, ThemeError> {
        let file: ThemeFile = toml::from_str(text)
            .map_err(|e| ThemeError::Toml(e.to_string().trim_end().to_string()))?;
        if let Some(n) = file.name {
            self.name = n;
        }
        for (role, spec) in &file.styles {
            let style = parse_style(spec).map_err(|problem| ThemeError::Style {
                role: role.clone(),
                problem,
            })?;
            *self
                .slot(role)
                .ok_or_else(|| ThemeError::UnknownRole(role.clone()))? = style;
        }
        // Focus is never shown by colour alone.
        self.selected = self.selected.add_modifier(Modifier::REVERSED);
        Ok(self)
    }

    /// The same theme with every colour removed (for `NO_COLOR`).
    pub fn without_color(mut self) -> Theme {
        for role in ROLES {
            if let Some(s) = self.slot(role) {
                s.fg = None;
                s.bg = None;
                s.underline_color = None;
            }
        }
        self
    }
}

/// A colour name (`red`, `lightblue`, `darkgrey`), `#rrggbb`, an index 0–255, or `default`
/// (the terminal's own colour): ratatui's reading, plus `default`.
fn parse_color(s: &str) -> Option<Color> {
    if s == "default" {
        return Some(Color::Reset);
    }
    s.parse::<Color>().ok()
}

/// `"cyan bold"`, `"white on red bold"`, `"#b35900"`, `"reversed"`, `""`.
pub fn parse_style(spec: &str) -> Result<Style, BadInput> {
    let mut style = Style::new();
    let mut words = spec.split_whitespace().map(str::to_ascii_lowercase);
    while let Some(w) = words.next() {
        let modifier = match w.as_str() {
            "bold" => Some(Modifier::BOLD),
            "dim" => Some(Modifier::DIM),
            "italic" => Some(Modifier::ITALIC),
            "underlined" | "underline" => Some(Modifier::UNDERLINED),
            "reversed" | "reverse" => Some(Modifier::REVERSED),
            _ => None,
        };
        if let Some(m) = modifier {
            style = style.add_modifier(m);
        } else if w == "on" {
            let c = words
                .next()
                .ok_or_else(|| BadInput("'on' needs a colour after it".into()))?;
            style =
                style.bg(parse_color(&c).ok_or_else(|| BadInput(format!("unknown colour '{c}'")))?);
        } else {
            style = style.fg(parse_color(&w).ok_or_else(|| {
                BadInput(format!("unknown colour or modifier '{w}' (use ANSI names, #rrggbb, bold, dim, italic, underlined, reversed)"))
            })?);
        }
    }
    Ok(style)
}

/// The themes `t` cycles through, and the one to start with.
#[derive(Debug, Clone)]
pub struct Themes {
    pub list: Vec<Theme>,
    pub current: usize,
    /// Problems found in user theme files (shown once in the status line).
    pub warnings: Vec<String>,
}

impl Themes {
    /// Built-in themes only, starting at `wanted` (or the default).
    pub fn built_in(wanted: Option<&str>, no_color: bool) -> Result<Themes, ThemeError> {
        Themes::load(wanted, None, no_color)
    }

    /// Built-in themes merged with `<user_dir>/*.toml`. A user file named like a built-in
    /// theme changes only the roles it lists; other names add themes.
    pub fn load(
        wanted: Option<&str>,
        user_dir: Option<&Path>,
        no_color: bool,
    ) -> Result<Themes, ThemeError> {
        let base = Theme::blank("default");
        let mut list = Vec::new();
        for (name, text) in BUILT_IN {
            let t = base
                .clone()
                .overlay(text)
                .map_err(|e| ThemeError::BuiltIn {
                    name,
                    problem: Box::new(e),
                })?;
            list.push(t);
        }
        let mut warnings = Vec::new();
        if let Some(dir) = user_dir {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for path in files {
                let stem = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        warnings.push(format!("theme {}: {e}", path.display()));
                        continue;
                    }
                };
                let existing = list.iter().position(|t| t.name == stem);
                let start = existing.map(|i| list[i].clone()).unwrap_or_else(|| {
                    let mut t = list[0].clone();
                    t.name = stem.clone();
                    t
                });
                match start.overlay(&text) {
                    Ok(mut t) => {
                        t.name = stem;
                        match existing {
                            Some(i) => list[i] = t,
                            None => list.push(t),
                        }
                    }
                    Err(e) => warnings.push(format!("theme {}: {e}", path.display())),
                }
            }
        }
        if no_color {
            list = list.into_iter().map(Theme::without_color).collect();
        }
        let wanted = wanted.or(no_color.then_some("mono"));
        let current = match wanted {
            None => 0,
            Some(w) => list
                .iter()
                .position(|t| t.name.eq_ignore_ascii_case(w))
                .ok_or_else(|| ThemeError::Unknown {
                    wanted: w.to_string(),
                    known: list.iter().map(|t| t.name.clone()).collect(),
                })?,
        };
        Ok(Themes {
            list,
            current,
            warnings,
        })
    }

    pub fn theme(&self) -> &Theme {
        &self.list[self.current]
    }

    pub fn cycle(&mut self) {
        self.current = (self.current + 1) % self.list.len();
    }
}

/// True when the user asked for no colour (`NO_COLOR` set to anything non-empty).
pub fn no_color_requested() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_parse_and_default_uses_named_colours() {
        let t = Themes::built_in(None, false).unwrap();
        assert_eq!(
            t.list.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["default", "light", "high-contrast", "mono"]
        );
        let d = &t.list[0];
        for role in ROLES {
            let mut d = d.clone();
            let s = *d.slot(role).unwrap();
            for c in [s.fg, s.bg].into_iter().flatten() {
                assert!(
                    !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                    "{role} uses {c:?}"
                );
            }
        }
        assert!(
            t.list
                .iter()
                .all(|t| t.selected.add_modifier.contains(Modifier::REVERSED))
        );
    }

    #[test]
    fn no_color_strips_colours_and_starts_mono() {
        let t = Themes::built_in(None, true).unwrap();
        assert_eq!(t.theme().name, "mono");
        assert!(
            t.list
                .iter()
                .all(|t| t.warning.fg.is_none() && t.exceeded.bg.is_none())
        );
    }

    #[test]
    fn styles_and_errors() {
        let s = parse_style("white on red bold").unwrap();
        assert_eq!(
            s,
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            parse_style("#102030").unwrap().fg,
            Some(Color::Rgb(16, 32, 48))
        );
        assert!(parse_style("purple").unwrap_err().0.contains("purple"));
        assert_eq!(parse_color("default"), Some(Color::Reset));
        assert_eq!(parse_color("darkgrey"), Some(Color::DarkGray));
        assert_eq!(parse_color("#b35900"), Some(Color::Rgb(0xb3, 0x59, 0x00)));
        assert_eq!(parse_color("#b359"), None);
        assert_eq!(
            Themes::built_in(Some("neon"), false)
                .unwrap_err()
                .to_string(),
            "unknown theme 'neon': use one of default, light, high-contrast, mono"
        );
    }

    #[test]
    fn user_files_override_by_role_and_add_themes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("default.toml"), "[styles]\nok = \"blue\"\n").unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "[styles]\nwarning = \"magenta\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.toml"), "[styles]\nnope = \"red\"\n").unwrap();
        let t = Themes::load(Some("mine"), Some(dir.path()), false).unwrap();
        assert_eq!(t.list[0].ok.fg, Some(Color::Blue));
        assert_eq!(
            t.list[0].warning,
            Themes::built_in(None, false).unwrap().list[0].warning
        );
        assert_eq!(t.theme().name, "mine");
        assert_eq!(t.theme().warning.fg, Some(Color::Magenta));
        assert_eq!(
            t.warnings,
            [format!(
                "theme {}: unknown style role 'nope'",
                dir.path().join("bad.toml").display()
            )]
        );
    }

    #[test]
    fn theme_file_problems_are_named() {
        let base = || Theme::blank("default");
        assert_eq!(
            base()
                .overlay("[styles]\nok = \"on\"\n")
                .unwrap_err()
                .to_string(),
            "styles.ok: 'on' needs a colour after it"
        );
        let e = base().overlay("name = 3\n").unwrap_err();
        assert!(
            matches!(&e, ThemeError::Toml(m) if m.contains("name")),
            "{e}"
        );
        assert_eq!(e.to_string(), e.to_string().trim_end());
    }
}

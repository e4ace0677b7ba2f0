//! The key map, as data. Both key handling and the help overlay read it, so the help can
//! never disagree with what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::model::RangeKind;

/// What a key (or a paste) asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Range(RangeKind),
    NextRange,
    PrevRange,
    FocusNext,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    CycleSort,
    /// Filter the rest of the screen to the selected row.
    Drill,
    /// Group the right-hand table by model or by provider.
    ToggleModelProvider,
    /// Move the bucket cursor one bucket back / on (past the newest: off).
    CursorLeft,
    CursorRight,
    /// Write what the screen shows to a CSV and a JSON file.
    Export,
    OpenSync,
    Reload,
    CycleTheme,
    /// Scroll the budget panel by one budget (wrapping to the top).
    ScrollBudgets,
    /// Dismiss the alert line.
    Acknowledge,
    ToggleHelp,
    Cancel,
    Quit,
    /// Sync dialog: write the value.
    Submit,
    Input(char),
    DeleteBack,
    ClearInput,
    Paste(String),
}

/// One key as written in the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Code(KeyCode),
    Ctrl(char),
}

impl Key {
    pub fn matches(self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Key::Char(c) => !ctrl && ev.code == KeyCode::Char(c),
            Key::Ctrl(c) => ctrl && ev.code == KeyCode::Char(c),
            Key::Code(code) => !ctrl && ev.code == code,
        }
    }

    /// How the key is written in the help and the footer.
    pub fn label(self) -> String {
        match self {
            Key::Char(' ') => "Space".into(),
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("Ctrl-{}", c.to_ascii_uppercase()),
            Key::Code(code) => match code {
                KeyCode::Up => "↑".into(),
                KeyCode::Down => "↓".into(),
                KeyCode::Left => "←".into(),
                KeyCode::Right => "→".into(),
                KeyCode::Tab => "Tab".into(),
                KeyCode::BackTab => "Shift-Tab".into(),
                KeyCode::Enter => "Enter".into(),
                KeyCode::Esc => "Esc".into(),
                KeyCode::Backspace => "Backspace".into(),
                KeyCode::PageUp => "PgUp".into(),
                KeyCode::PageDown => "PgDn".into(),
                KeyCode::Home => "Home".into(),
                KeyCode::End => "End".into(),
                other => format!("{other:?}"),
            },
        }
    }
}

/// One entry of the key map.
#[derive(Debug, Clone)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    /// What it does, for the help overlay.
    pub help: &'static str,
    /// Short word for the footer (only the main keys have one).
    pub footer: Option<&'static str>,
}

impl Binding {
    /// All keys of the entry, as written in the help: `j ↓`.
    pub fn keys_label(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.label())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

const fn bind(
    keys: &'static [Key],
    action: Action,
    help: &'static str,
    footer: Option<&'static str>,
) -> Binding {
    Binding {
        keys,
        action,
        help,
        footer,
    }
}

use Key::{Char, Code, Ctrl};

/// Keys of the main screen (and the help overlay).
pub static MAIN_KEYS: &[Binding] = &[
    bind(
        &[Char('1')],
        Action::Range(RangeKind::Hour),
        "show the last hour",
        None,
    ),
    bind(
        &[Char('2')],
        Action::Range(RangeKind::Day),
        "show the last 24 hours",
        None,
    ),
    bind(
        &[Char('3')],
        Action::Range(RangeKind::Week),
        "show the last 7 days",
        None,
    ),
    bind(
        &[Char('4')],
        Action::Range(RangeKind::Month),
        "show the last 30 days",
        None,
    ),
    bind(
        &[Char('5')],
        Action::Range(RangeKind::All),
        "show all time",
        None,
    ),
    bind(
        &[Char('['), Char(']')],
        Action::NextRange,
        "previous / next range",
        Some("range"),
    ),
    bind(
        &[Code(KeyCode::Tab), Code(KeyCode::BackTab)],
        Action::FocusNext,
        "move focus between the tables",
        Some("focus"),
    ),
    bind(
        &[Char('j'), Code(KeyCode::Down)],
        Action::Down,
        "select the next row",
        None,
    ),
    bind(
        &[Char('k'), Code(KeyCode::Up)],
        Action::Up,
        "select the previous row",
        None,
    ),
    bind(
        &[Code(KeyCode::PageDown), Code(KeyCode::PageUp)],
        Action::PageDown,
        "scroll a page down / up",
        None,
    ),
    bind(
        &[Char('g'), Code(KeyCode::Home)],
        Action::Home,
        "first row",
        None,
    ),
    bind(
        &[Char('G'), Code(KeyCode::End)],
        Action::End,
        "last row",
        None,
    ),
    bind(
        &[Char('o')],
        Action::CycleSort,
        "sort the focused table by the next column",
        Some("sort"),
    ),
    bind(
        &[Code(KeyCode::Enter)],
        Action::Drill,
        "drill down: show only the selected agent, model or provider",
        Some("drill"),
    ),
    bind(
        &[Code(KeyCode::Esc), Code(KeyCode::Backspace)],
        Action::Cancel,
        "back: close the help, hide the cursor, undo the last drill-down",
        Some("back"),
    ),
    bind(
        &[Char('p')],
        Action::ToggleModelProvider,
        "right table: by model / by provider",
        None,
    ),
    bind(
        &[
            Code(KeyCode::Left),
            Code(KeyCode::Right),
            Char('h'),
            Char('l'),
        ],
        Action::CursorLeft,
        "move the bucket cursor back / on (past now: off)",
        Some("cursor"),
    ),
    bind(
        &[Char('e')],
        Action::Export,
        "export the screen to CSV and JSON in the data directory",
        Some("export"),
    ),
    bind(
        &[Char('b')],
        Action::ScrollBudgets,
        "scroll the budget panel when it holds more budgets than lines",
        None,
    ),
    bind(
        &[Char('a')],
        Action::Acknowledge,
        "dismiss the budget alert line",
        None,
    ),
    bind(
        &[Char('s')],
        Action::OpenSync,
        "sync the quota counter (type or paste a value)",
        Some("sync"),
    ),
    bind(
        &[Char('r')],
        Action::Reload,
        "re-read everything from the database",
        Some("reload"),
    ),
    bind(
        &[Char('t')],
        Action::CycleTheme,
        "next theme",
        Some("theme"),
    ),
    bind(
        &[Char('?')],
        Action::ToggleHelp,
        "show / hide this help",
        Some("help"),
    ),
    bind(&[Char('q'), Ctrl('c')], Action::Quit, "quit", Some("quit")),
];

/// Keys of the sync dialog. Any other printable key is typed into the value.
pub static SYNC_KEYS: &[Binding] = &[
    bind(
        &[Code(KeyCode::Enter)],
        Action::Submit,
        "write the value to the state file",
        Some("sync"),
    ),
    bind(
        &[Code(KeyCode::Esc)],
        Action::Cancel,
        "close without writing",
        Some("cancel"),
    ),
    bind(
        &[Code(KeyCode::Backspace)],
        Action::DeleteBack,
        "delete the last character",
        None,
    ),
    bind(&[Ctrl('u')], Action::ClearInput, "clear the value", None),
    bind(&[Ctrl('c')], Action::Quit, "quit", None),
];

/// The action a key press means on the main screen.
pub fn main_action(ev: &KeyEvent) -> Option<Action> {
    // The pairs on one line differ by direction.
    let reverse = match ev.code {
        KeyCode::Char('[') => Some(Action::PrevRange),
        KeyCode::BackTab => Some(Action::FocusNext),
        KeyCode::PageUp => Some(Action::PageUp),
        KeyCode::Right | KeyCode::Char('l') => Some(Action::CursorRight),
        _ => None,
    };
    if reverse.is_some() && !ev.modifiers.contains(KeyModifiers::CONTROL) {
        return reverse;
    }
    lookup(MAIN_KEYS, ev)
}

/// The action a key press means in the sync dialog.
pub fn sync_action(ev: &KeyEvent) -> Option<Action> {
    if let Some(a) = lookup(SYNC_KEYS, ev) {
        return Some(a);
    }
    match ev.code {
        KeyCode::Char(c)
            if !ev
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(Action::Input(c))
        }
        _ => None,
    }
}

fn lookup(map: &[Binding], ev: &KeyEvent) -> Option<Action> {
    map.iter()
        .find(|b| b.keys.iter().any(|k| k.matches(ev)))
        .map(|b| b.action.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn every_main_key_is_reachable() {
        for b in MAIN_KEYS {
            for k in b.keys {
                let ev = match *k {
                    Key::Char(c) => KeyEvent::new(
                        KeyCode::Char(c),
                        if c.is_ascii_uppercase() {
                            KeyModifiers::SHIFT
                        } else {
                            KeyModifiers::NONE
                        },
                    ),
                    Key::Ctrl(c) => KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL),
                    Key::Code(c) => key(c),
                };
                assert!(main_action(&ev).is_some(), "{k:?}");
            }
        }
        assert_eq!(
            main_action(&key(KeyCode::Char('['))),
            Some(Action::PrevRange)
        );
        assert_eq!(
            main_action(&key(KeyCode::Char(']'))),
            Some(Action::NextRange)
        );
        assert_eq!(main_action(&key(KeyCode::Char('x'))), None);
        assert_eq!(
            main_action(&key(KeyCode::Char('h'))),
            Some(Action::CursorLeft)
        );
        assert_eq!(main_action(&key(KeyCode::Right)), Some(Action::CursorRight));
        assert_eq!(main_action(&key(KeyCode::Enter)), Some(Action::Drill));
        assert_eq!(main_action(&key(KeyCode::Backspace)), Some(Action::Cancel));
    }

    #[test]
    fn dialog_types_text_but_ctrl_c_quits() {
        assert_eq!(
            sync_action(&key(KeyCode::Char('q'))),
            Some(Action::Input('q'))
        );
        assert_eq!(
            sync_action(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(sync_action(&key(KeyCode::Enter)), Some(Action::Submit));
    }
}

//! The monitor's model: everything the screen shows, changed only by `update` (a key's
//! action), `on_msg` (news from the background threads) and `on_tick` (time passing).
//! Drawing reads it and never changes it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crossterm::event::{KeyEvent, KeyEventKind};

use super::export::Export;
use super::keys;
pub use super::keys::Action;
pub use super::model::RowView;
use super::model::{Aggregates, Dim, Filter, LoadRequest, RangeKind, Snapshot, Tally};
use super::quota::{Preview, QuotaMsg, QuotaView};
use super::sync::SyncError;
use super::theme::{Theme, Themes};
use crate::budget::{Alert, AlertTracker, BudgetStatus, QuotaInput};
use crate::domain::CostMode;
use crate::store::EventRow;
use crate::timefmt::Zone;

/// Where "now" comes from: the system clock, or a fixed one in tests.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to.
pub struct FixedClock(pub AtomicI64);

impl FixedClock {
    pub fn new(ms: i64) -> Arc<FixedClock> {
        Arc::new(FixedClock(AtomicI64::new(ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::Relaxed);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Something the loop must do outside the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Read the numbers of a range.
    Load(LoadRequest),
    /// Reopen the database and read everything again.
    Reload(LoadRequest),
    /// Sync the quota counter to this typed value.
    Sync(String),
    /// Tell the tail the quota counter changed (`None`: no state file), so the budgets
    /// are evaluated again with it.
    Quota(Option<QuotaInput>),
    /// Write these numbers to files in this directory.
    Export(Box<Export>, PathBuf),
}

/// The two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Agents,
    Models,
}

impl Focus {
    pub fn index(self) -> usize {
        match self {
            Focus::Agents => 0,
            Focus::Models => 1,
        }
    }
}

/// The column a table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortCol {
    Total,
    Cost,
    Events,
    Input,
    Output,
    Cache,
    Name,
}

impl SortCol {
    const CYCLE: [SortCol; 7] = [
        SortCol::Total,
        SortCol::Cost,
        SortCol::Events,
        SortCol::Input,
        SortCol::Output,
        SortCol::Cache,
        SortCol::Name,
    ];

    pub fn next(self) -> SortCol {
        let i = SortCol::CYCLE.iter().position(|c| *c == self).unwrap_or(0);
        SortCol::CYCLE[(i + 1) % SortCol::CYCLE.len()]
    }
}

/// Sort and selection of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableView {
    pub sort: SortCol,
    pub selected: usize,
}

impl Default for TableView {
    fn default() -> Self {
        TableView {
            sort: SortCol::Total,
            selected: 0,
        }
    }
}

/// The sync dialog's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncDialog {
    pub input: String,
    /// What the value would do, or why it cannot be read (None while empty).
    pub preview: Option<Result<Preview, SyncError>>,
    /// Waiting for the write to finish.
    pub busy: bool,
    /// The write failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    None,
    Help,
    Sync(SyncDialog),
}

/// How the database looks from here.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceState {
    Opening,
    Live,
    /// No file at the path (yet).
    Missing,
    Error(String),
    /// The connection to a database server was lost: trying again (why it was lost). The
    /// numbers last read stay on screen until a fresh read replaces them.
    Reconnecting(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub path: PathBuf,
    /// Detected format (native, bot, …), once opened.
    pub kind: Option<String>,
    pub state: SourceState,
}

/// News from the background threads.
#[derive(Debug, Clone)]
pub enum Msg {
    /// The database was opened and its format detected.
    Opened {
        kind: String,
    },
    Snapshot(Box<Snapshot>),
    /// Rows committed after the last snapshot, in id order.
    Rows(Vec<EventRow>),
    /// Rows below the last id read, committed after it was (PostgreSQL: another program's
    /// writers commit out of id order); each is sent once.
    LateRows(Vec<EventRow>),
    Source(SourceState),
    /// The database was replaced, rewritten or shrank: the numbers are being read again.
    Reset(String),
    Quota(QuotaMsg),
    /// A fresh evaluation of the budgets and the quota, most urgent first.
    Budgets(Vec<BudgetStatus>),
    /// The sync finished: a message for the status line, or why it failed.
    SyncDone(Result<String, SyncError>),
    /// The agent-log import and the 5-hour block.
    AgentLogs(crate::tui::agent_logs::AgentLogsMsg),
    /// The export finished: the files written, or why it failed.
    Exported(Result<Vec<PathBuf>, String>),
    Quit,
}

/// How long a status message stays.
const STATUS_MS: i64 = 8_000;
const PAGE: usize = 10;
/// How long an alert line stays when nobody acknowledges it.
pub const ALERT_MS: i64 = 5 * 60_000;

/// The whole model. Its state is its own: the loop and the drawing read it through the
/// accessors below and change it only through `update`, `on_msg`, `on_tick` and the few
/// setters the loop needs (bell, terminal size, bells rung).
pub struct App {
    range: RangeKind,
    focus: Focus,
    tables: [TableView; 2],
    overlay: Overlay,
    themes: Themes,
    /// A message for the footer and when it goes away (unix ms).
    status: Option<(String, i64)>,
    source: SourceInfo,
    state_path: PathBuf,
    /// Numbers of the selected range; None until the first snapshot arrives.
    agg: Option<Aggregates>,
    /// A range was asked for and its numbers have not arrived yet.
    loading: bool,
    quota: QuotaView,
    clock: Arc<dyn Clock>,
    zone: Zone,
    cost_mode: CostMode,
    should_quit: bool,
    /// Ring the bell when a budget crosses a threshold (`--bell`).
    bell: bool,
    /// Bells not rung yet: one per new alert while `bell` is on. The loop rings and clears.
    bells: u32,
    /// The latest evaluation of the budgets and the quota, most urgent first.
    budgets: Vec<BudgetStatus>,
    /// First budget shown in the panel.
    budget_scroll: usize,
    /// The terminal's size at the last frame (how many budget lines fit depends on it).
    viewport: ratatui::layout::Rect,
    /// Alerts not yet acknowledged, most urgent first, and when they go away (unix ms).
    alerts: Vec<Alert>,
    alerts_until: i64,
    /// Drill-downs, oldest first (at most one per dimension); Esc undoes the newest.
    filters: Vec<Filter>,
    /// What the right-hand table groups by: models or providers.
    right: Dim,
    /// The bucket under the cursor (its start), while the cursor is on.
    cursor_ms: Option<i64>,
    /// Where `e` writes its files.
    export_dir: PathBuf,
    tracker: AlertTracker,
    /// Budgets seen in an evaluation before: a budget seen for the first time is only
    /// noted, so what was already crossed when the monitor started does not alert.
    known_budgets: HashSet<String>,
    /// The quota counter last passed to the tail.
    sent_quota: Option<Option<QuotaInput>>,
    /// Effects of `update`, `on_msg` and `on_tick`, for the loop to carry out.
    outbox: Vec<Effect>,
    /// A quiet re-read of a sliding range is under way.
    refreshing: bool,
    generation: u64,
    last_minute: i64,
    /// The first import of agent logs and the active 5-hour block.
    agent_logs: crate::tui::agent_logs::AgentLogs,
}

impl App {
    pub fn new(
        db: PathBuf,
        state_path: PathBuf,
        themes: Themes,
        clock: Arc<dyn Clock>,
        zone: Zone,
        cost_mode: CostMode,
    ) -> App {
        let now = clock.now_ms();
        let status = themes
            .warnings
            .first()
            .map(|w| (w.clone(), now + STATUS_MS));
        App {
            range: RangeKind::Day,
            focus: Focus::Agents,
            tables: [TableView::default(); 2],
            overlay: Overlay::None,
            themes,
            status,
            source: SourceInfo {
                path: db,
                kind: None,
                state: SourceState::Opening,
            },
            state_path,
            agg: None,
            loading: true,
            quota: QuotaView {
                loading: true,
                ..Default::default()
            },
            clock,
            zone,
            cost_mode,
            should_quit: false,
            bell: false,
            bells: 0,
            budgets: Vec::new(),
            budget_scroll: 0,
            viewport: ratatui::layout::Rect::default(),
            alerts: Vec::new(),
            alerts_until: 0,
            filters: Vec::new(),
            right: Dim::Model,
            cursor_ms: None,
            export_dir: crate::paths::data_dir().join("exports"),
            tracker: AlertTracker::new(),
            known_budgets: HashSet::new(),
            sent_quota: None,
            outbox: Vec::new(),
            refreshing: false,
            generation: 0,
            last_minute: now.div_euclid(60_000),
            agent_logs: Default::default(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn range(&self) -> RangeKind {
        self.range
    }

    /// The table the keys move in.
    pub fn focus(&self) -> Focus {
        self.focus
    }

    /// Sort and selection of a table.
    pub fn table(&self, which: Focus) -> TableView {
        self.tables[which.index()]
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// The footer's message while it lasts.
    pub fn status(&self) -> Option<&str> {
        self.status.as_ref().map(|(text, _)| text.as_str())
    }

    pub fn source(&self) -> &SourceInfo {
        &self.source
    }

    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    /// Numbers of the selected range; None until the first snapshot arrives.
    pub fn agg(&self) -> Option<&Aggregates> {
        self.agg.as_ref()
    }

    /// A range was asked for and its numbers have not arrived yet.
    pub fn is_loading(&self) -> bool {
        self.loading
    }

    pub fn quota(&self) -> &QuotaView {
        &self.quota
    }

    pub fn zone(&self) -> Zone {
        self.zone
    }

    pub fn should_quit(&self) -> bool {
        self.should_quit
    }

    /// The latest evaluation of the budgets and the quota, most urgent first.
    pub fn budgets(&self) -> &[BudgetStatus] {
        &self.budgets
    }

    /// First budget shown in the panel.
    pub fn budget_scroll(&self) -> usize {
        self.budget_scroll
    }

    /// Alerts not yet acknowledged, most urgent first.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// Drill-downs, oldest first.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// The start of the bucket under the cursor, while the cursor is on.
    pub fn cursor_ms(&self) -> Option<i64> {
        self.cursor_ms
    }

    pub fn agent_logs(&self) -> &crate::tui::agent_logs::AgentLogs {
        &self.agent_logs
    }

    /// Bells not rung yet.
    pub fn pending_bells(&self) -> u32 {
        self.bells
    }

    /// The bells to ring with the next frame; none are left after.
    pub fn take_bells(&mut self) -> u32 {
        std::mem::take(&mut self.bells)
    }

    /// Ring the bell when a budget crosses a threshold (`--bell`).
    pub fn set_bell(&mut self, on: bool) {
        self.bell = on;
    }

    /// The terminal's size at this frame (how many budget lines fit depends on it).
    pub fn set_viewport(&mut self, area: ratatui::layout::Rect) {
        self.viewport = area;
    }

    /// Where `e` writes its files (the data directory's `exports` unless told).
    pub fn set_export_dir(&mut self, dir: PathBuf) {
        self.export_dir = dir;
    }

    pub fn theme(&self) -> &Theme {
        self.themes.theme()
    }

    /// The request for the current range (a new generation).
    pub fn load_request(&mut self) -> LoadRequest {
        self.generation += 1;
        LoadRequest {
            generation: self.generation,
            range: self.range,
            now_ms: self.now_ms(),
        }
    }

    /// Effects produced by actions, messages and ticks since the last call, oldest first.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.outbox)
    }

    /// The quota as a budget, from its last evaluation.
    pub fn quota_status(&self) -> Option<&BudgetStatus> {
        self.budgets.iter().find(|b| b.is_quota)
    }

    /// Whether the config has budgets of its own (the panel then lists them all).
    pub fn has_config_budgets(&self) -> bool {
        self.budgets.iter().any(|b| !b.is_quota)
    }

    /// A new evaluation: keep it, and turn fresh threshold crossings into alerts.
    fn take_budgets(&mut self, statuses: Vec<BudgetStatus>) {
        let fresh: Vec<BudgetStatus> = statuses
            .iter()
            .filter(|s| !self.known_budgets.contains(&s.name))
            .cloned()
            .collect();
        self.tracker.prime(&fresh);
        self.known_budgets.extend(fresh.into_iter().map(|s| s.name));
        let alerts = self.tracker.crossings(&statuses);
        if !alerts.is_empty() {
            if self.bell {
                self.bells += alerts.len() as u32;
            }
            // A budget's newer alert replaces its older one; the worst comes first.
            self.alerts
                .retain(|old| !alerts.iter().any(|a| a.budget == old.budget));
            self.alerts.extend(alerts);
            self.alerts.sort_by_key(|a| std::cmp::Reverse(a.level));
            self.alerts_until = self.now_ms() + ALERT_MS;
        }
        self.budgets = statuses;
        self.budget_scroll = self.budget_scroll.min(self.budgets.len().saturating_sub(1));
    }

    /// Pass the quota counter to the tail when it changed.
    fn forward_quota(&mut self) {
        let q = self.quota.quota.map(|q| QuotaInput {
            used: q.used,
            total: q.total,
            ..Default::default()
        });
        if self.sent_quota.as_ref() != Some(&q) {
            self.sent_quota = Some(q.clone());
            self.outbox.push(Effect::Quota(q));
        }
    }

    pub fn set_status(&mut self, msg: impl Into<String>) {
        self.status = Some((msg.into(), self.now_ms() + STATUS_MS));
    }

    /// A key press as an action, depending on what is open. Releases and repeats of
    /// other kinds are ignored.
    pub fn handle_key(&self, ev: KeyEvent) -> Option<Action> {
        if ev.kind != KeyEventKind::Press {
            return None;
        }
        match &self.overlay {
            Overlay::Sync(_) => keys::sync_action(&ev),
            Overlay::Help => keys::main_action(&ev)
                .filter(|a| matches!(a, Action::ToggleHelp | Action::Cancel | Action::Quit)),
            Overlay::None => keys::main_action(&ev),
        }
    }

    /// The dimension a table shows.
    pub fn dim_of(&self, which: Focus) -> Dim {
        match which {
            Focus::Agents => Dim::Agent,
            Focus::Models => self.right,
        }
    }

    /// Rows of a table under the drill-downs on other dimensions, sorted by its sort column.
    pub fn rows(&self, which: Focus) -> Vec<RowView> {
        let Some(agg) = &self.agg else {
            return Vec::new();
        };
        let map = agg.table(self.dim_of(which), &self.filters);
        let total = map.values().map(|t| t.tokens()).sum::<u64>() as f64;
        let mut rows: Vec<RowView> = map
            .into_iter()
            .map(|(k, t)| RowView {
                share: if total > 0.0 {
                    t.tokens() as f64 / total
                } else {
                    0.0
                },
                name: k,
                tally: t,
            })
            .collect();
        let sort = self.tables[which.index()].sort;
        let cache = |r: &RowView| r.tally.sums.all.cache_read + r.tally.sums.all.cache_write;
        rows.sort_by(|a, b| {
            let ord = match sort {
                SortCol::Total => b.tally.tokens().cmp(&a.tally.tokens()),
                SortCol::Cost => b.tally.cost.total_cmp(&a.tally.cost),
                SortCol::Events => b.tally.sums.all.events.cmp(&a.tally.sums.all.events),
                SortCol::Input => b.tally.sums.all.input.cmp(&a.tally.sums.all.input),
                SortCol::Output => b.tally.sums.all.output.cmp(&a.tally.sums.all.output),
                SortCol::Cache => cache(b).cmp(&cache(a)),
                SortCol::Name => std::cmp::Ordering::Equal,
            };
            ord.then_with(|| a.name.cmp(&b.name))
        });
        rows
    }

    /// The range's total under the drill-downs.
    pub fn total(&self) -> Option<Tally> {
        Some(self.agg.as_ref()?.total_under(&self.filters))
    }

    /// Tokens and cost per bucket under the drill-downs, up to now.
    pub fn series(&self) -> Option<(Vec<u64>, Vec<f64>)> {
        Some(
            self.agg
                .as_ref()?
                .series_under(self.now_ms(), &self.filters),
        )
    }

    /// The bucket under the cursor: its index, start, tokens and cost.
    pub fn cursor(&self) -> Option<(usize, i64, u64, f64)> {
        let at = self.cursor_ms?;
        let agg = self.agg.as_ref()?;
        let i = agg.bucket_of(at, self.now_ms());
        let (tokens, cost) = self.series()?;
        Some((
            i,
            agg.bucket_start(i),
            tokens.get(i).copied().unwrap_or(0),
            cost.get(i).copied().unwrap_or(0.0),
        ))
    }

    /// The selected row of the focused table.
    pub fn selected_row(&self, which: Focus) -> Option<RowView> {
        let rows = self.rows(which);
        let i = self.tables[which.index()]
            .selected
            .min(rows.len().checked_sub(1)?);
        rows.into_iter().nth(i)
    }

    fn row_count(&self, which: Focus) -> usize {
        self.rows(which).len()
    }

    fn move_selection(&mut self, f: impl FnOnce(usize, usize) -> usize) {
        let n = self.row_count(self.focus);
        let t = &mut self.tables[self.focus.index()];
        t.selected = if n == 0 {
            0
        } else {
            f(t.selected, n).min(n - 1)
        };
    }

    fn change_range(&mut self, r: RangeKind) -> Option<Effect> {
        self.range = r;
        self.loading = true;
        self.cursor_ms = None;
        for t in &mut self.tables {
            t.selected = 0;
        }
        Some(Effect::Load(self.load_request()))
    }

    fn refresh_preview(&mut self) {
        let used = self.quota.quota;
        if let Overlay::Sync(d) = &mut self.overlay {
            d.error = None;
            d.preview = if d.input.trim().is_empty() {
                None
            } else {
                Some(super::sync::preview(&d.input, used.as_ref()))
            };
        }
    }

    /// Apply an action. Like [`App::on_msg`] and [`App::on_tick`], it leaves what the loop must
    /// do in the outbox ([`App::take_effects`]) and returns whether the screen changed (after an
    /// action it always may).
    pub fn update(&mut self, action: Action) -> bool {
        if let Some(e) = self.apply(action) {
            self.outbox.push(e);
        }
        true
    }

    fn apply(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Range(r) => return self.change_range(r),
            Action::NextRange => return self.change_range(self.range.next()),
            Action::PrevRange => return self.change_range(self.range.prev()),
            Action::FocusNext => {
                self.focus = match self.focus {
                    Focus::Agents => Focus::Models,
                    Focus::Models => Focus::Agents,
                }
            }
            Action::Up => self.move_selection(|s, _| s.saturating_sub(1)),
            Action::Down => self.move_selection(|s, _| s + 1),
            Action::PageUp => self.move_selection(|s, _| s.saturating_sub(PAGE)),
            Action::PageDown => self.move_selection(|s, _| s + PAGE),
            Action::Home => self.move_selection(|_, _| 0),
            Action::End => self.move_selection(|_, n| n - 1),
            Action::CycleSort => {
                let t = &mut self.tables[self.focus.index()];
                t.sort = t.sort.next();
                t.selected = 0;
            }
            Action::Drill => self.drill(),
            Action::ToggleModelProvider => {
                self.right = match self.right {
                    Dim::Provider => Dim::Model,
                    _ => Dim::Provider,
                };
                self.tables[Focus::Models.index()].selected = 0;
            }
            Action::CursorLeft => self.move_cursor(-1),
            Action::CursorRight => self.move_cursor(1),
            Action::Export => match self.export() {
                Some(e) => return Some(Effect::Export(Box::new(e), self.export_dir.clone())),
                None => self.set_status("nothing to export yet"),
            },
            Action::OpenSync => {
                self.overlay = Overlay::Sync(SyncDialog::default());
            }
            Action::Reload => {
                self.loading = true;
                self.set_status("re-reading the database…");
                return Some(Effect::Reload(self.load_request()));
            }
            Action::CycleTheme => {
                self.themes.cycle();
                let name = self.theme().name.clone();
                self.set_status(format!("theme: {name}"));
            }
            Action::ScrollBudgets => {
                // Down by one until the last budget shows, then back to the most urgent.
                let n = self.budgets.len();
                let rows = super::breakpoints::panel_rows(self.viewport, n);
                let last_first = n.saturating_sub(rows);
                self.budget_scroll = if self.budget_scroll >= last_first {
                    0
                } else {
                    self.budget_scroll + 1
                };
            }
            Action::Acknowledge => self.alerts.clear(),
            Action::ToggleHelp => {
                self.overlay = match self.overlay {
                    Overlay::Help => Overlay::None,
                    _ => Overlay::Help,
                }
            }
            Action::Cancel => self.back(),
            Action::Quit => self.should_quit = true,
            Action::Submit => {
                if let Overlay::Sync(d) = &mut self.overlay {
                    if d.busy {
                        return None;
                    }
                    match &d.preview {
                        Some(Ok(_)) => {
                            d.busy = true;
                            return Some(Effect::Sync(d.input.trim().to_string()));
                        }
                        Some(Err(_)) => {}
                        None => {
                            d.error = Some("type the value the other tool shows, e.g. 350K".into())
                        }
                    }
                }
            }
            Action::Input(c) => {
                if let Overlay::Sync(d) = &mut self.overlay
                    && !d.busy
                {
                    d.input.push(c);
                }
                self.refresh_preview();
            }
            Action::DeleteBack => {
                if let Overlay::Sync(d) = &mut self.overlay {
                    d.input.pop();
                }
                self.refresh_preview();
            }
            Action::ClearInput => {
                if let Overlay::Sync(d) = &mut self.overlay {
                    d.input.clear();
                }
                self.refresh_preview();
            }
            Action::Paste(text) => {
                let clean: String = text.chars().filter(|c| !c.is_control()).collect();
                match &mut self.overlay {
                    Overlay::Sync(d) => d.input.push_str(&clean),
                    Overlay::None => {
                        self.overlay = Overlay::Sync(SyncDialog {
                            input: clean,
                            ..Default::default()
                        })
                    }
                    Overlay::Help => {}
                }
                self.refresh_preview();
            }
        }
        None
    }

    /// Esc / Backspace: close what is open, else turn the cursor off, else undo the newest
    /// drill-down.
    fn back(&mut self) {
        if self.overlay != Overlay::None {
            self.overlay = Overlay::None;
        } else if self.cursor_ms.is_some() {
            self.cursor_ms = None;
        } else if let Some(f) = self.filters.pop() {
            // The table of the dimension that was drilled gets the focus back.
            self.focus = if f.dim == Dim::Agent {
                Focus::Agents
            } else {
                Focus::Models
            };
            self.clamp_selection();
        }
    }

    /// Enter: filter the rest of the screen to the focused table's selected row (replacing
    /// an earlier drill-down on the same dimension); the other table gets the focus.
    fn drill(&mut self) {
        let Some(row) = self.selected_row(self.focus) else {
            return;
        };
        let dim = self.dim_of(self.focus);
        self.filters.retain(|f| f.dim != dim);
        self.filters.push(Filter {
            dim,
            value: row.name,
        });
        self.focus = match self.focus {
            Focus::Agents => Focus::Models,
            Focus::Models => Focus::Agents,
        };
        self.tables[self.focus.index()].selected = 0;
        self.clamp_selection();
    }

    /// Move the bucket cursor by `step` buckets; it starts at the newest bucket and goes
    /// off when moved past it.
    fn move_cursor(&mut self, step: i64) {
        let Some(agg) = &self.agg else {
            return;
        };
        let now = self.now_ms();
        let last = agg.bucket_count(now) - 1;
        let next = match self.cursor_ms {
            None if step < 0 => Some(last),
            None => None,
            Some(at) => {
                let i = agg.bucket_of(at, now) as i64 + step;
                (i <= last as i64).then_some(i.max(0) as usize)
            }
        };
        self.cursor_ms = next.map(|i| agg.bucket_start(i));
    }

    /// What the screen shows, as an export.
    pub fn export(&self) -> Option<Export> {
        let agg = self.agg.as_ref()?;
        let (tokens, cost) = self.series()?;
        Some(Export {
            now_ms: self.now_ms(),
            zone: self.zone,
            range: self.range,
            from_ms: agg.from_ms,
            bucket_ms: agg.bucket_ms,
            filters: self.filters.clone(),
            total: self.total().unwrap_or_default(),
            tables: [Focus::Agents, Focus::Models]
                .into_iter()
                .map(|w| (self.dim_of(w), self.rows(w)))
                .collect(),
            buckets: (0..tokens.len())
                .map(|i| (agg.bucket_start(i), tokens[i], cost[i]))
                .collect(),
        })
    }

    /// Apply news from a background thread. Returns whether the screen changed.
    pub fn on_msg(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Opened { kind } => {
                self.source.kind = Some(kind);
                if self.source.state != SourceState::Live {
                    self.source.state = SourceState::Live;
                }
            }
            Msg::Snapshot(s) => {
                if s.generation != self.generation {
                    return false;
                }
                self.loading = false;
                self.refreshing = false;
                match Aggregates::from_snapshot(self.range, &s, self.cost_mode) {
                    Ok(agg) => {
                        self.agg = Some(agg);
                        self.source.state = SourceState::Live;
                    }
                    Err(e) => {
                        self.agg = None;
                        self.source.state = SourceState::Error(e.to_string());
                    }
                }
                self.clamp_selection();
            }
            Msg::Rows(rows) => return self.fold(|agg| agg.fold(&rows)),
            Msg::LateRows(rows) => return self.fold(|agg| agg.fold_late(&rows)),
            Msg::Source(state) => {
                if state != SourceState::Live && !matches!(state, SourceState::Reconnecting(_)) {
                    self.agg = None;
                    self.loading = false;
                }
                if state == SourceState::Missing {
                    self.source.kind = None;
                }
                self.source.state = state;
            }
            Msg::Reset(why) => {
                self.agg = None;
                self.loading = true;
                self.set_status(why);
            }
            Msg::Quota(q) => {
                self.quota.apply(q);
                self.forward_quota();
                self.refresh_preview();
            }
            Msg::Budgets(statuses) => self.take_budgets(statuses),
            Msg::AgentLogs(m) => return self.agent_logs.apply(m),
            Msg::SyncDone(Ok(text)) => {
                if matches!(self.overlay, Overlay::Sync(_)) {
                    self.overlay = Overlay::None;
                }
                self.set_status(text);
            }
            Msg::SyncDone(Err(e)) => {
                let e = e.to_string();
                if let Overlay::Sync(d) = &mut self.overlay {
                    d.busy = false;
                    d.error = Some(e);
                } else {
                    self.set_status(e);
                }
            }
            Msg::Exported(Ok(paths)) => {
                // `…/tokmon-20251118-120000.csv and .json`: one path, both extensions.
                let mut text = String::from("exported to ");
                for (i, p) in paths.iter().enumerate() {
                    if i == 0 {
                        text.push_str(&crate::paths::display_path(p));
                    } else if let Some(ext) = p.extension() {
                        text.push_str(&format!(" and .{}", ext.to_string_lossy()));
                    }
                }
                self.set_status(text);
            }
            Msg::Exported(Err(e)) => self.set_status(format!("export failed: {e}")),
            Msg::Quit => self.should_quit = true,
        }
        true
    }

    /// Fold new rows into the numbers shown (none while they are being read). Returns whether
    /// the screen changed; numbers that overflow are replaced by the error.
    fn fold(
        &mut self,
        f: impl FnOnce(&mut Aggregates) -> Result<bool, crate::store::query::TokenOverflow>,
    ) -> bool {
        let Some(agg) = &mut self.agg else {
            return false;
        };
        match f(agg) {
            Ok(changed) => changed,
            Err(e) => {
                self.agg = None;
                self.source.state = SourceState::Error(e.to_string());
                true
            }
        }
    }

    fn clamp_selection(&mut self) {
        for which in [Focus::Agents, Focus::Models] {
            let n = self.row_count(which);
            let t = &mut self.tables[which.index()];
            t.selected = t.selected.min(n.saturating_sub(1));
        }
    }

    /// Time passed. Returns whether the screen changed; a load goes to the outbox. Relative
    /// ranges slide: when the window start passes a bucket boundary the range is read again
    /// (quietly: the old numbers stay until the new ones arrive).
    pub fn on_tick(&mut self) -> bool {
        let now = self.now_ms();
        let mut changed = false;
        if self.status.as_ref().is_some_and(|(_, until)| now >= *until) {
            self.status = None;
            changed = true;
        }
        if !self.alerts.is_empty() && now >= self.alerts_until {
            self.alerts.clear();
            changed = true;
        }
        let minute = now.div_euclid(60_000);
        if minute != self.last_minute {
            self.last_minute = minute;
            changed = true;
        }
        if let Some(agg) = &mut self.agg {
            agg.prune(now);
        }
        let stale = !self.loading
            && !self.refreshing
            && self.agg.as_ref().is_some_and(|a| {
                self.range
                    .window_start(now)
                    .is_some_and(|w| Some(w) != a.from_ms)
            });
        self.refreshing |= stale;
        if stale {
            let load = Effect::Load(self.load_request());
            self.outbox.push(load);
        }
        changed
    }
}

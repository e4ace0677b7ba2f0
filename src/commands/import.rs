//! `tokmon import PATH… [--format …] [--follow] [--strict]`: agent logs into the native store.

use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ImportArgs;
use crate::commands::Ctx;
use crate::error::bad_input;
use crate::import::{ImportSummary, Options, Progress, follow_with, import_to};
use crate::text::{printable, printable_path};

/// How many bad lines are printed with their place (all are counted).
const BAD_LINES_SHOWN: usize = 20;

/// A progress bar on stderr: files, lines, bytes and MB/s.
struct Bar {
    bar: ProgressBar,
    files: std::cell::Cell<u64>,
}

impl Progress for Bar {
    fn start(&self, files: u64, bytes: u64) {
        self.files.set(files);
        self.bar.set_length(bytes);
        self.bar.set_message(format!("files 0/{files}"));
    }

    fn advance(&self, bytes: u64, files_done: u64, lines: u64) {
        self.bar.inc(bytes);
        self.bar.set_message(format!(
            "files {files_done}/{}, {} lines",
            self.files.get(),
            crate::numfmt::thousands(lines)
        ));
    }
}

fn new_bar() -> Bar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} ({eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Bar {
        bar,
        files: std::cell::Cell::new(0),
    }
}

/// Print the bad lines (up to [`BAD_LINES_SHOWN`]) and errors to stderr.
fn print_problems(s: &ImportSummary) {
    for b in s.bad.iter().take(BAD_LINES_SHOWN) {
        // The reason may quote the line: text from the log, made printable.
        crate::error::tell!(
            "{}:{}: {}",
            printable_path(&b.path),
            b.line,
            printable(&b.reason)
        );
    }
    if s.bad_lines > BAD_LINES_SHOWN as u64 {
        crate::error::tell!(
            "… and {} more bad lines",
            s.bad_lines - BAD_LINES_SHOWN as u64
        );
    }
    for e in &s.errors {
        crate::error::tell!("tokmon: cannot import {}", printable(e));
    }
    for n in &s.not_regular {
        crate::error::tell!("tokmon: skipped {n}, not a regular file");
    }
}

pub fn run(ctx: &Ctx, args: &ImportArgs) -> anyhow::Result<u8> {
    let found;
    let paths = if args.paths.is_empty() {
        let logs = ctx.log_paths();
        found = logs.existing();
        if found.is_empty() {
            return Err(bad_input(format!(
                "no agent logs found (looked in {}); give the paths to import, e.g. `tokmon import ~/.claude`",
                if logs.looked_at().is_empty() {
                    "nothing: discovery is off and the config names no `logs`".to_string()
                } else {
                    logs.looked_at().join(", ")
                }
            )));
        }
        &found
    } else {
        &args.paths
    };
    for p in paths {
        crate::regular::check_log_path(p, "import path")?;
    }
    let opts = Options {
        format: args.format.forced(),
        strict: args.strict,
        naive_zone: ctx.foreign_zone,
    };
    let bar = std::io::stderr().is_terminal().then(new_bar);
    let summary = import_to(
        &ctx.db,
        paths,
        &opts,
        bar.as_ref().map(|b| b as &dyn Progress),
    )?;
    if let Some(b) = &bar {
        b.bar.finish_and_clear();
    }
    print_problems(&summary);
    crate::error::emit(&format!("{}\n", summary.one_line()))
        .map_err(|e| e.context("the import is saved, but its summary could not be written"))?;
    if summary.files_found == 0 {
        crate::error::tell!(
            "tokmon: no usage logs found under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !summary.rejected_files.is_empty() {
        let names: Vec<String> = summary
            .rejected_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return Err(bad_input(format!(
            "--strict: {} bad line{} in {}; nothing was imported from {}. Fix the lines or import without --strict to skip them.",
            summary.bad_lines,
            if summary.bad_lines == 1 { "" } else { "s" },
            names.join(", "),
            if names.len() == 1 {
                "that file"
            } else {
                "those files"
            }
        )));
    }
    if summary.bad_lines > 0 {
        crate::error::tell!(
            "tokmon: skipped {} bad line{}; the other lines were imported",
            summary.bad_lines,
            if summary.bad_lines == 1 { "" } else { "s" }
        );
    }
    if args.follow {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        crate::error::tell!("tokmon: following {} (Ctrl-C to stop)", names.join(", "));
        let stop = AtomicBool::new(false);
        let mut first = true;
        follow_with(paths, &ctx.db, &opts, &stop, |s| {
            // The first pass repeats what was just imported: only report it if it found more.
            if first && !s.is_noteworthy() {
                first = false;
                return;
            }
            first = false;
            print_problems(&s);
            // Following goes on when its summaries cannot be written.
            let _ = crate::error::emit(&format!("{}\n", s.one_line()));
        })?;
    }
    Ok(if summary.errors.is_empty() { 0 } else { 1 })
}

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use tokmon::cli::{Cli, Command};
use tokmon::commands::Ctx;
use tokmon::error::exit_code_for;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        // A reader that stops early (`tokmon report | head`) is not a failure.
        Err(err) if tokmon::error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Messages may quote data (a column name, a log line): shown printable. A stderr
            // that cannot be written (a closed terminal, a full device) must not turn the
            // error's exit code into a panic's.
            let _ = writeln!(
                std::io::stderr(),
                "tokmon: {}",
                tokmon::text::printable_lines(&format!("{err:#}"))
            );
            ExitCode::from(exit_code_for(&err))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    // The status-line hook must never fail, not even on a bad config file.
    if matches!(cli.command, Some(Command::Statusline)) {
        return Ok(tokmon::commands::statusline::run(&cli.global));
    }
    // The doctor reports a bad config file instead of stopping at it.
    if matches!(cli.command, Some(Command::Doctor)) {
        return tokmon::commands::doctor::run(&cli.global);
    }
    let ctx = Ctx::from_args(&cli.global)?;
    match cli.command {
        None => tokmon::tui::run(&ctx, &cli.monitor),
        Some(cmd) => match cmd {
            Command::Record(a) => tokmon::commands::record::run(&ctx, &a),
            Command::Report(a) => tokmon::commands::report::run(&ctx, &a),
            Command::Demo(a) => tokmon::commands::demo::run(&ctx, &a),
            Command::Prices(a) => tokmon::commands::prices::run(&ctx, &a),
            Command::Sync(a) => tokmon::commands::sync::run(&ctx, &a),
            Command::Status(a) => tokmon::commands::status::run(&ctx, &a),
            Command::Import(a) => tokmon::commands::import::run(&ctx, &a),
            Command::Statusline => Ok(tokmon::commands::statusline::run(&cli.global)),
            Command::Doctor => tokmon::commands::doctor::run(&cli.global),
        },
    }
}

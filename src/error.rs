//! Error kinds that decide the exit code.
//!
//! * [`BadInput`]: the user gave a value we cannot accept. Exit 2, nothing written.
//! * anything else that bubbles up as `anyhow::Error`: a runtime failure. Exit 1.

/// A value from the command line, a file or the keyboard that cannot be accepted.
/// The message names the offending value and, where it helps, what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Build an `anyhow::Error` that exits with code 2.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// Exit codes, as documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const THRESHOLD: u8 = 3;
}

/// True when the error is a closed stdout (`tokmon report | head`): not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// `eprintln!` that never panics: a stderr that cannot be written (a closed terminal, a full
/// device) loses the message rather than turning the command's exit code into a panic's.
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use tell;

/// Write command output to stdout, returning an error (never panicking) when it is closed.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The exit code an error should produce.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<BadInput>()) {
        exit::BAD_INPUT
    } else {
        exit::FAILURE
    }
}

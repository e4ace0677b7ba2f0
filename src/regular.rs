//! Only regular files are read as databases, configs and logs. A FIFO would block `open()`
//! until a writer appears, and `/dev/zero` or a directory would be read forever or fail
//! obscurely; both are refused up front with the path and what it is.

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

use crate::error::bad_input;

/// What kind of file a (non-regular) path is, in words.
pub fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        return "a regular file";
    }
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// `Ok` when `path` is missing or a regular file (symlinks followed); otherwise a bad-input
/// error naming `what` (for example `--db`), the path and what it is.
pub fn check_regular_or_missing(path: &Path, what: &str) -> anyhow::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(not_regular(path, what, &m)),
        _ => Ok(()),
    }
}

/// A log path to import or follow (`what`: how the user gave it): it must exist and be a
/// directory or a regular file. A FIFO or a device would block or never end.
pub fn check_log_path(path: &Path, what: &str) -> anyhow::Result<()> {
    match std::fs::metadata(path) {
        Err(_) => Err(bad_input(format!(
            "{what} {}: no such file or directory (give Claude Code's ~/.claude, Codex's \
             ~/.codex/sessions, or a .jsonl / .csv file)",
            crate::text::printable_path(path)
        ))),
        Ok(m) if !m.is_dir() && !m.is_file() => Err(not_regular(path, what, &m)),
        Ok(_) => Ok(()),
    }
}

/// The error for a path that exists but is not a regular file.
pub fn not_regular(path: &Path, what: &str, meta: &Metadata) -> anyhow::Error {
    bad_input(format!(
        "{what} {} is {}, not a regular file; give the path of a file",
        crate::text::printable_path(path),
        kind_of(meta)
    ))
}

/// Open a file for reading only if it is a regular file. The open itself never blocks (a
/// FIFO put in place after a check would otherwise wait for a writer forever); `O_NONBLOCK`
/// changes nothing for the reads of a regular file.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let f = opts.open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file",
                path.display(),
                kind_of(&meta)
            ),
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn fifo_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(ok.success());
        let e = open_regular(&fifo).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = open_regular(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        assert!(open_regular(dir.path()).is_err());
        let err = check_regular_or_missing(&fifo, "--db").unwrap_err();
        assert!(err.to_string().starts_with("--db "), "{err}");
        check_regular_or_missing(&dir.path().join("missing"), "--db").unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        check_regular_or_missing(&f, "--db").unwrap();
        open_regular(&f).unwrap();
        check_log_path(&f, "--follow").unwrap();
        check_log_path(dir.path(), "--follow").unwrap();
        let err = check_log_path(&fifo, "--follow").unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        assert_eq!(crate::error::exit_code_for(&err), 2);
        let err = check_log_path(&dir.path().join("gone"), "--follow").unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
    }
}

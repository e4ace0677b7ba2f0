//! Reading a file that must be a regular file of a sane size (the state file and its history),
//! without ever blocking on a FIFO or reading a device forever.
//!
//! The path is checked with `stat` before it is opened; it is then opened with `O_NONBLOCK`
//! (a FIFO without a writer would block `open` itself) and checked again with `fstat`, since
//! the path may have been replaced in between. At most [`MAX_STATE_BYTES`] are read, even if
//! the file grows while it is read.

use std::fs::Metadata;
use std::io::{self, Read};
use std::path::Path;

use crate::regular::kind_of;

/// The largest state file (and sync history) tokmon reads: far beyond any real one (a full
/// session list is a few tens of kilobytes), small enough to never exhaust memory.
pub const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// Not a regular file: the words say what it is ("a FIFO", "a directory", …).
    NotRegular(&'static str),
    /// Larger than the limit (the size found).
    TooLarge(u64),
    Io(io::Error),
}

fn check(meta: &Metadata, limit: u64) -> Result<(), ReadError> {
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(meta)));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(meta.len()));
    }
    Ok(())
}

/// Read a regular file of at most `limit` bytes. `Ok(None)` when it does not exist.
pub fn read_regular(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ReadError> {
    match std::fs::metadata(path) {
        Ok(m) => check(&m, limit)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    }
    // Replaced by something else since the check: `open_regular` never blocks and refuses it.
    let file = match crate::regular::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            return Err(ReadError::NotRegular("not a regular file"));
        }
        Err(e) => return Err(ReadError::Io(e)),
    };
    let meta = file.metadata().map_err(ReadError::Io)?;
    check(&meta, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// Check, without opening it, that `path` is a regular file or does not exist (following
/// symlinks). The error says what it is instead.
pub fn ensure_regular_or_missing(path: &Path) -> Result<(), ReadError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(ReadError::NotRegular(kind_of(&m))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        match read_regular(&p, MAX_STATE_BYTES) {
            Err(ReadError::NotRegular(w)) => assert!(w.contains("FIFO"), "{w}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn directories_devices_and_big_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_regular(dir.path(), MAX_STATE_BYTES),
            Err(ReadError::NotRegular("a directory"))
        ));
        #[cfg(unix)]
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), MAX_STATE_BYTES),
            Err(ReadError::NotRegular("a character device"))
        ));
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b' '; 101]).unwrap();
        assert!(matches!(
            read_regular(&p, 100),
            Err(ReadError::TooLarge(101))
        ));
        assert_eq!(read_regular(&p, 101).unwrap().unwrap().len(), 101);
        assert!(
            read_regular(&dir.path().join("none"), 100)
                .unwrap()
                .is_none()
        );
    }
}

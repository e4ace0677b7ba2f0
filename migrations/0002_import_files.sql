-- How far `tokmon import` has read each log file, so a re-import reads only appended bytes.
-- The row is written in the same transaction as the events read up to `offset`, so a crash
-- can neither skip nor double-count lines.
CREATE TABLE import_files (
    -- Absolute (canonical) path of the log file.
    path       TEXT PRIMARY KEY,
    -- claude-code, codex, jsonl or csv: the format chosen when the file was first read.
    format     TEXT NOT NULL,
    -- Size and modification time (unix ns) seen at the last read: both unchanged, nothing to do.
    size       INTEGER NOT NULL CHECK (size >= 0),
    mtime_ns   INTEGER NOT NULL,
    -- Byte offset just past the last complete line that was read.
    "offset"   INTEGER NOT NULL CHECK ("offset" >= 0),
    -- Number of lines before `offset` (for line numbers in error messages).
    line_no    INTEGER NOT NULL CHECK (line_no >= 0),
    -- SHA-256 (hex) of the first `head_len` bytes and of the `tail_len` bytes that end at
    -- `offset`. When either no longer matches, the file was rewritten and is read again from
    -- its start.
    head_len   INTEGER NOT NULL,
    head_hash  TEXT NOT NULL,
    tail_len   INTEGER NOT NULL,
    tail_hash  TEXT NOT NULL,
    -- Parser state needed to resume (JSON): Codex session, model and running totals; CSV header.
    state      TEXT CHECK (state IS NULL OR json_valid(state)),
    -- When this row was last written (unix ms, UTC).
    updated_at INTEGER NOT NULL
);

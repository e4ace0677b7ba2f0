-- Usage events: one row per LLM call (or per imported usage line).
-- Times are unix milliseconds, UTC. Token counts are never negative.
CREATE TABLE events (
    id                    INTEGER PRIMARY KEY,
    ts                    INTEGER NOT NULL,
    provider              TEXT,
    model                 TEXT NOT NULL,
    agent                 TEXT,
    session               TEXT,
    project               TEXT,
    user                  TEXT,
    channel               TEXT,
    operation             TEXT,
    input_tokens          INTEGER NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens         INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_creation_tokens >= 0),
    cache_read_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    -- NULL means "not known: compute it from prices".
    cost_usd              REAL CHECK (cost_usd IS NULL OR cost_usd >= 0),
    duration_ms           REAL CHECK (duration_ms IS NULL OR duration_ms >= 0),
    -- Who wrote the row: "record", "import:claude-code", "demo", ...
    source                TEXT NOT NULL,
    -- Optional key that makes imports idempotent.
    unique_key            TEXT UNIQUE,
    metadata              TEXT CHECK (metadata IS NULL OR json_valid(metadata))
);

CREATE INDEX events_ts ON events (ts);
CREATE INDEX events_model_ts ON events (model, ts);
CREATE INDEX events_agent_ts ON events (agent, ts);

-- Every manual sync of the quota counter, never capped (the state file keeps only the newest).
CREATE TABLE sync_history (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,      -- unix ms, UTC
    value      INTEGER NOT NULL CHECK (value >= 0),
    increment  INTEGER NOT NULL CHECK (increment >= 0),
    note       TEXT,
    method     TEXT NOT NULL,
    state_path TEXT
);

CREATE INDEX sync_history_at ON sync_history (at);

-- Fifteen-minute rollups of events by model, agent and provider, so ranges over millions of
-- events read thousands of rollup rows. In the native database, triggers (next migration) keep
-- it in step with the events; beside a foreign database, the same table is the rollup cache.
-- Every UTC offset is a multiple of 15 minutes, so slices also fold exactly into local hours,
-- days, weeks and months. A missing agent or provider is stored as '' (events never hold '').
CREATE TABLE rollup_15m (
    slice         INTEGER NOT NULL,   -- ts / 900000
    model         TEXT NOT NULL,
    agent         TEXT NOT NULL,
    provider      TEXT NOT NULL,
    events        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cache_read_tokens     INTEGER NOT NULL,
    -- Sum of stored costs, and of the positive ones.
    stored_cost   REAL NOT NULL,
    positive_cost REAL NOT NULL,
    -- Events without a positive stored cost, and their tokens (priced from the table).
    uncosted_events INTEGER NOT NULL,
    uncosted_input  INTEGER NOT NULL,
    uncosted_output INTEGER NOT NULL,
    uncosted_cache_creation INTEGER NOT NULL,
    uncosted_cache_read     INTEGER NOT NULL,
    PRIMARY KEY (slice, model, agent, provider)
) WITHOUT ROWID;

-- Existing events are folded in by the migration hook (`rebuild_rollup` in src/store/native.rs).

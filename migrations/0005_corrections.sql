-- Corrections and a compact deduplication key.
--
-- A Claude Code reply is logged over several lines whose counts grow; a later line may be read
-- after the reply was stored (a file still being written, a resumed session). The stored reply
-- is then corrected by a new row carrying only the increase: `corrects` holds the id of the
-- corrected event. A correction is not an event of its own: it adds tokens and cost, never to
-- the number of events. Being a new row, the monitor's tail sees it like any other.
--
-- `unique_key` keeps its text but loses its UNIQUE index: `key_hash` (a 64-bit FNV-1a hash of
-- the key, filled by tokmon) is indexed instead and the text compared on a hash match.
-- SQLite cannot drop a constraint, so the table is built again.
CREATE TABLE events_new (
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
    -- Optional key that makes imports idempotent (unique among events; corrections have none).
    unique_key            TEXT,
    metadata              TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    -- 64-bit hash of unique_key (see above).
    key_hash              INTEGER,
    -- For a correction: the id of the event it corrects; NULL for an event.
    corrects              INTEGER
);

INSERT INTO events_new (id, ts, provider, model, agent, session, project, user, channel,
    operation, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd,
    duration_ms, source, unique_key, metadata)
SELECT id, ts, provider, model, agent, session, project, user, channel, operation,
    input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd,
    duration_ms, source, unique_key, metadata
FROM events;

DROP TABLE events;
ALTER TABLE events_new RENAME TO events;

CREATE INDEX events_ts ON events (ts);
CREATE INDEX events_key_hash ON events (key_hash) WHERE key_hash IS NOT NULL;
CREATE INDEX events_corrects ON events (corrects) WHERE corrects IS NOT NULL;

-- While a row of this table exists (only ever inside an import's own transaction), the
-- triggers leave the rollup alone: the import folds its rows in at once before it commits.
CREATE TABLE rollup_deferred (since_id INTEGER NOT NULL);

-- The rollup triggers of 0004, with corrections counted as no event.
CREATE TRIGGER events_rollup_insert AFTER INSERT ON events
WHEN NOT EXISTS (SELECT 1 FROM rollup_deferred) BEGIN
    INSERT INTO rollup_15m VALUES (
        NEW.ts / 900000, NEW.model, COALESCE(NEW.agent, ''), COALESCE(NEW.provider, ''),
        NEW.corrects IS NULL, NEW.input_tokens, NEW.output_tokens, NEW.cache_creation_tokens,
        NEW.cache_read_tokens,
        COALESCE(NEW.cost_usd, 0), CASE WHEN NEW.cost_usd > 0 THEN NEW.cost_usd ELSE 0 END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.corrects IS NULL END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.input_tokens END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.output_tokens END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.cache_creation_tokens END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.cache_read_tokens END)
    ON CONFLICT (slice, model, agent, provider) DO UPDATE SET
        events = events + excluded.events,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        stored_cost = stored_cost + excluded.stored_cost,
        positive_cost = positive_cost + excluded.positive_cost,
        uncosted_events = uncosted_events + excluded.uncosted_events,
        uncosted_input = uncosted_input + excluded.uncosted_input,
        uncosted_output = uncosted_output + excluded.uncosted_output,
        uncosted_cache_creation = uncosted_cache_creation + excluded.uncosted_cache_creation,
        uncosted_cache_read = uncosted_cache_read + excluded.uncosted_cache_read;
END;

CREATE TRIGGER events_rollup_delete AFTER DELETE ON events BEGIN
    UPDATE rollup_15m SET
        events = events - (OLD.corrects IS NULL),
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        cache_creation_tokens = cache_creation_tokens - OLD.cache_creation_tokens,
        cache_read_tokens = cache_read_tokens - OLD.cache_read_tokens,
        stored_cost = stored_cost - COALESCE(OLD.cost_usd, 0),
        positive_cost = positive_cost - CASE WHEN OLD.cost_usd > 0 THEN OLD.cost_usd ELSE 0 END,
        uncosted_events = uncosted_events - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.corrects IS NULL END,
        uncosted_input = uncosted_input - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.input_tokens END,
        uncosted_output = uncosted_output - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.output_tokens END,
        uncosted_cache_creation = uncosted_cache_creation - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.cache_creation_tokens END,
        uncosted_cache_read = uncosted_cache_read - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.cache_read_tokens END
    WHERE slice = OLD.ts / 900000 AND model = OLD.model
      AND agent = COALESCE(OLD.agent, '') AND provider = COALESCE(OLD.provider, '');
    DELETE FROM rollup_15m
    WHERE slice = OLD.ts / 900000 AND model = OLD.model
      AND agent = COALESCE(OLD.agent, '') AND provider = COALESCE(OLD.provider, '')
      AND events <= 0 AND input_tokens = 0 AND output_tokens = 0
      AND cache_creation_tokens = 0 AND cache_read_tokens = 0;
END;

-- Events are append-only: a changed row would silently disagree with its rollup.
CREATE TRIGGER events_append_only BEFORE UPDATE OF ts, model, agent, provider, input_tokens,
    output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, corrects ON events BEGIN
    SELECT RAISE(ABORT, 'tokmon events are append-only: delete the row and insert it again');
END;

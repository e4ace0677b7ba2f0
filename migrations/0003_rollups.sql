-- Fifteen-minute rollups of events by model, agent and provider, kept in step with the
-- events table by triggers, so ranges over millions of events read thousands of rollup rows.
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

-- Existing events are folded in by the migration hook (see `rebuild_rollup` in src/store/native.rs).

CREATE TRIGGER events_rollup_insert AFTER INSERT ON events BEGIN
    INSERT INTO rollup_15m VALUES (
        NEW.ts / 900000, NEW.model, COALESCE(NEW.agent, ''), COALESCE(NEW.provider, ''),
        1, NEW.input_tokens, NEW.output_tokens, NEW.cache_creation_tokens, NEW.cache_read_tokens,
        COALESCE(NEW.cost_usd, 0), CASE WHEN NEW.cost_usd > 0 THEN NEW.cost_usd ELSE 0 END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE 1 END,
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
        events = events - 1,
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        cache_creation_tokens = cache_creation_tokens - OLD.cache_creation_tokens,
        cache_read_tokens = cache_read_tokens - OLD.cache_read_tokens,
        stored_cost = stored_cost - COALESCE(OLD.cost_usd, 0),
        positive_cost = positive_cost - CASE WHEN OLD.cost_usd > 0 THEN OLD.cost_usd ELSE 0 END,
        uncosted_events = uncosted_events - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE 1 END,
        uncosted_input = uncosted_input - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.input_tokens END,
        uncosted_output = uncosted_output - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.output_tokens END,
        uncosted_cache_creation = uncosted_cache_creation - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.cache_creation_tokens END,
        uncosted_cache_read = uncosted_cache_read - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.cache_read_tokens END
    WHERE slice = OLD.ts / 900000 AND model = OLD.model
      AND agent = COALESCE(OLD.agent, '') AND provider = COALESCE(OLD.provider, '');
    DELETE FROM rollup_15m
    WHERE slice = OLD.ts / 900000 AND model = OLD.model
      AND agent = COALESCE(OLD.agent, '') AND provider = COALESCE(OLD.provider, '') AND events <= 0;
END;

-- Events are append-only: a changed row would silently disagree with its rollup.
CREATE TRIGGER events_append_only BEFORE UPDATE OF ts, model, agent, provider, input_tokens,
    output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd ON events BEGIN
    SELECT RAISE(ABORT, 'tokmon events are append-only: delete the row and insert it again');
END;

-- Grouped reads by model or agent now come from the rollup; the edges of a range are found
-- through events_ts. These indexes would only slow every insert down.
DROP INDEX events_model_ts;
DROP INDEX events_agent_ts;

-- Price detail (issue #11): what `--cost-mode calculate` needs to price an event again later.
-- * cache_creation_1h_tokens: of cache_creation_tokens, the 1-hour cache writes, priced above
--   5-minute ones. Claude Code imports already kept the split in metadata: copied from there.
-- * long_context: 1 for the rows of a request whose prompt (input + cache write + cache read)
--   exceeds 200,000 tokens, priced at the long-context rates. A correction (0005) belongs to
--   the request it corrects, so it takes that event's flag rather than its own counts'.
-- The rollup keeps both as sums of their own (columns added by 0006_price_detail_rollup.sql,
-- run just before this file); the migration hook rebuilds it.
ALTER TABLE events ADD COLUMN cache_creation_1h_tokens INTEGER NOT NULL DEFAULT 0
    CHECK (cache_creation_1h_tokens >= 0 AND cache_creation_1h_tokens <= cache_creation_tokens);
ALTER TABLE events ADD COLUMN long_context INTEGER NOT NULL DEFAULT 0
    CHECK (long_context IN (0, 1));

UPDATE events
SET cache_creation_1h_tokens = MIN(cache_creation_tokens,
                                   json_extract(metadata, '$.cache_creation_1h_tokens'))
WHERE source = 'import:claude-code'
  AND json_type(metadata, '$.cache_creation_1h_tokens') = 'integer'
  AND json_extract(metadata, '$.cache_creation_1h_tokens') > 0;

UPDATE events SET long_context = 1
WHERE corrects IS NULL AND input_tokens + cache_creation_tokens + cache_read_tokens > 200000;
UPDATE events SET long_context = 1
WHERE corrects IN (SELECT id FROM events WHERE corrects IS NULL AND long_context = 1);

-- The triggers of 0005, with the new sums.
DROP TRIGGER events_rollup_insert;
DROP TRIGGER events_rollup_delete;
DROP TRIGGER events_append_only;

CREATE TRIGGER events_rollup_insert AFTER INSERT ON events
WHEN NOT EXISTS (SELECT 1 FROM rollup_deferred) BEGIN
    INSERT INTO rollup_15m (slice, model, agent, provider, events, input_tokens, output_tokens,
        cache_creation_tokens, cache_read_tokens, stored_cost, positive_cost, uncosted_events,
        uncosted_input, uncosted_output, uncosted_cache_creation, uncosted_cache_read,
        cache_creation_1h_tokens, long_input, long_output, long_cache_creation,
        long_cache_creation_1h, long_cache_read, uncosted_cache_creation_1h,
        uncosted_long_input, uncosted_long_output, uncosted_long_cache_creation,
        uncosted_long_cache_creation_1h, uncosted_long_cache_read)
    VALUES (
        NEW.ts / 900000, NEW.model, COALESCE(NEW.agent, ''), COALESCE(NEW.provider, ''),
        NEW.corrects IS NULL,
        NEW.input_tokens,
        NEW.output_tokens,
        NEW.cache_creation_tokens,
        NEW.cache_read_tokens,
        COALESCE(NEW.cost_usd, 0),
        CASE WHEN NEW.cost_usd > 0 THEN NEW.cost_usd ELSE 0 END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.corrects IS NULL END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.input_tokens END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.output_tokens END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.cache_creation_tokens END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.cache_read_tokens END,
        NEW.cache_creation_1h_tokens,
        CASE WHEN NEW.long_context THEN NEW.input_tokens ELSE 0 END,
        CASE WHEN NEW.long_context THEN NEW.output_tokens ELSE 0 END,
        CASE WHEN NEW.long_context THEN NEW.cache_creation_tokens ELSE 0 END,
        CASE WHEN NEW.long_context THEN NEW.cache_creation_1h_tokens ELSE 0 END,
        CASE WHEN NEW.long_context THEN NEW.cache_read_tokens ELSE 0 END,
        CASE WHEN NEW.cost_usd > 0 THEN 0 ELSE NEW.cache_creation_1h_tokens END,
        CASE WHEN NEW.cost_usd > 0 OR NOT NEW.long_context THEN 0 ELSE NEW.input_tokens END,
        CASE WHEN NEW.cost_usd > 0 OR NOT NEW.long_context THEN 0 ELSE NEW.output_tokens END,
        CASE WHEN NEW.cost_usd > 0 OR NOT NEW.long_context THEN 0 ELSE NEW.cache_creation_tokens END,
        CASE WHEN NEW.cost_usd > 0 OR NOT NEW.long_context THEN 0 ELSE NEW.cache_creation_1h_tokens END,
        CASE WHEN NEW.cost_usd > 0 OR NOT NEW.long_context THEN 0 ELSE NEW.cache_read_tokens END)
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
        uncosted_cache_read = uncosted_cache_read + excluded.uncosted_cache_read,
        cache_creation_1h_tokens = cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
        long_input = long_input + excluded.long_input,
        long_output = long_output + excluded.long_output,
        long_cache_creation = long_cache_creation + excluded.long_cache_creation,
        long_cache_creation_1h = long_cache_creation_1h + excluded.long_cache_creation_1h,
        long_cache_read = long_cache_read + excluded.long_cache_read,
        uncosted_cache_creation_1h = uncosted_cache_creation_1h + excluded.uncosted_cache_creation_1h,
        uncosted_long_input = uncosted_long_input + excluded.uncosted_long_input,
        uncosted_long_output = uncosted_long_output + excluded.uncosted_long_output,
        uncosted_long_cache_creation = uncosted_long_cache_creation + excluded.uncosted_long_cache_creation,
        uncosted_long_cache_creation_1h = uncosted_long_cache_creation_1h + excluded.uncosted_long_cache_creation_1h,
        uncosted_long_cache_read = uncosted_long_cache_read + excluded.uncosted_long_cache_read;
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
        uncosted_cache_read = uncosted_cache_read - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.cache_read_tokens END,
        cache_creation_1h_tokens = cache_creation_1h_tokens - OLD.cache_creation_1h_tokens,
        long_input = long_input - CASE WHEN OLD.long_context THEN OLD.input_tokens ELSE 0 END,
        long_output = long_output - CASE WHEN OLD.long_context THEN OLD.output_tokens ELSE 0 END,
        long_cache_creation = long_cache_creation - CASE WHEN OLD.long_context THEN OLD.cache_creation_tokens ELSE 0 END,
        long_cache_creation_1h = long_cache_creation_1h - CASE WHEN OLD.long_context THEN OLD.cache_creation_1h_tokens ELSE 0 END,
        long_cache_read = long_cache_read - CASE WHEN OLD.long_context THEN OLD.cache_read_tokens ELSE 0 END,
        uncosted_cache_creation_1h = uncosted_cache_creation_1h - CASE WHEN OLD.cost_usd > 0 THEN 0 ELSE OLD.cache_creation_1h_tokens END,
        uncosted_long_input = uncosted_long_input - CASE WHEN OLD.cost_usd > 0 OR NOT OLD.long_context THEN 0 ELSE OLD.input_tokens END,
        uncosted_long_output = uncosted_long_output - CASE WHEN OLD.cost_usd > 0 OR NOT OLD.long_context THEN 0 ELSE OLD.output_tokens END,
        uncosted_long_cache_creation = uncosted_long_cache_creation - CASE WHEN OLD.cost_usd > 0 OR NOT OLD.long_context THEN 0 ELSE OLD.cache_creation_tokens END,
        uncosted_long_cache_creation_1h = uncosted_long_cache_creation_1h - CASE WHEN OLD.cost_usd > 0 OR NOT OLD.long_context THEN 0 ELSE OLD.cache_creation_1h_tokens END,
        uncosted_long_cache_read = uncosted_long_cache_read - CASE WHEN OLD.cost_usd > 0 OR NOT OLD.long_context THEN 0 ELSE OLD.cache_read_tokens END
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
    output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, corrects,
    cache_creation_1h_tokens, long_context ON events BEGIN
    SELECT RAISE(ABORT, 'tokmon events are append-only: delete the row and insert it again');
END;

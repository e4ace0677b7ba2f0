-- tokmon's native schema on PostgreSQL: the tables of the SQLite migrations (0001-0007) in
-- one step, with PostgreSQL's types. Applied by src/store/pg.rs, which records the version in
-- tokmon_schema_version. Times are unix milliseconds, UTC; token counts are never negative.
CREATE TABLE events (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts                    bigint NOT NULL,
    provider              text,
    model                 text NOT NULL,
    agent                 text,
    session               text,
    project               text,
    "user"                text,
    channel               text,
    operation             text,
    input_tokens          bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens         bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_creation_tokens bigint NOT NULL DEFAULT 0 CHECK (cache_creation_tokens >= 0),
    cache_read_tokens     bigint NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    -- NULL means "not known: compute it from prices".
    cost_usd              double precision CHECK (cost_usd IS NULL OR cost_usd >= 0),
    duration_ms           double precision CHECK (duration_ms IS NULL OR duration_ms >= 0),
    -- Who wrote the row: "record", "import:claude-code", "demo", ...
    source                text NOT NULL,
    -- Optional key that makes imports idempotent, across machines too (corrections have none).
    unique_key            text,
    -- JSON text.
    metadata              text,
    -- 64-bit FNV-1a hash of unique_key (`key_hash` in src/store/native.rs), as in SQLite.
    key_hash              bigint,
    -- For a correction: the id of the event it corrects; NULL for an event.
    corrects              bigint,
    -- Of cache_creation_tokens, the 1-hour cache writes.
    cache_creation_1h_tokens bigint NOT NULL DEFAULT 0
        CHECK (cache_creation_1h_tokens >= 0 AND cache_creation_1h_tokens <= cache_creation_tokens),
    -- The row belongs to a long-context request (prompt above 200,000 tokens).
    long_context          boolean NOT NULL DEFAULT false
);

CREATE INDEX events_ts ON events (ts);
CREATE INDEX events_session ON events (session);
CREATE INDEX events_corrects ON events (corrects) WHERE corrects IS NOT NULL;
-- One event per key: a second machine importing the same reply finds it here. Writers also
-- take a transaction-scoped advisory lock (src/store/pg.rs), so ids commit in their order and
-- two machines never correct the same reply at once.
CREATE UNIQUE INDEX events_key ON events (key_hash, unique_key)
    WHERE corrects IS NULL AND key_hash IS NOT NULL;

-- Every manual sync of the quota counter.
CREATE TABLE sync_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         bigint NOT NULL,
    value      bigint NOT NULL CHECK (value >= 0),
    increment  bigint NOT NULL CHECK (increment >= 0),
    note       text,
    method     text NOT NULL,
    state_path text
);
CREATE INDEX sync_history_at ON sync_history (at);

-- How far each machine's `tokmon import` has read each of its log files (as the SQLite
-- migration 0002 keeps it); the host is part of the key, as machines share paths.
CREATE TABLE import_files (
    host       text NOT NULL,
    path       text NOT NULL,
    format     text NOT NULL,
    size       bigint NOT NULL CHECK (size >= 0),
    mtime_ns   bigint NOT NULL,
    "offset"   bigint NOT NULL CHECK ("offset" >= 0),
    line_no    bigint NOT NULL CHECK (line_no >= 0),
    head_len   bigint NOT NULL,
    head_hash  text NOT NULL,
    tail_len   bigint NOT NULL,
    tail_hash  text NOT NULL,
    state      text,
    updated_at bigint NOT NULL,
    PRIMARY KEY (host, path)
);

-- Fifteen-minute rollups by model, agent and provider, as in SQLite (0003, 0006), kept by the
-- statement triggers below in the writer's own transaction. Slices are cut with floor division
-- (times before 1970 too). A sum past bigint fails the writer's statement: never wrapped.
CREATE TABLE rollup_15m (
    slice                            bigint NOT NULL,
    model                            text NOT NULL,
    agent                            text NOT NULL,
    provider                         text NOT NULL,
    events                           bigint NOT NULL,
    input_tokens                     bigint NOT NULL,
    output_tokens                    bigint NOT NULL,
    cache_creation_tokens            bigint NOT NULL,
    cache_read_tokens                bigint NOT NULL,
    stored_cost                      double precision NOT NULL,
    positive_cost                    double precision NOT NULL,
    uncosted_events                  bigint NOT NULL,
    uncosted_input                   bigint NOT NULL,
    uncosted_output                  bigint NOT NULL,
    uncosted_cache_creation          bigint NOT NULL,
    uncosted_cache_read              bigint NOT NULL,
    cache_creation_1h_tokens         bigint NOT NULL,
    long_input                       bigint NOT NULL,
    long_output                      bigint NOT NULL,
    long_cache_creation              bigint NOT NULL,
    long_cache_creation_1h           bigint NOT NULL,
    long_cache_read                  bigint NOT NULL,
    uncosted_cache_creation_1h       bigint NOT NULL,
    uncosted_long_input              bigint NOT NULL,
    uncosted_long_output             bigint NOT NULL,
    uncosted_long_cache_creation     bigint NOT NULL,
    uncosted_long_cache_creation_1h  bigint NOT NULL,
    uncosted_long_cache_read         bigint NOT NULL,
    PRIMARY KEY (slice, model, agent, provider)
);

CREATE FUNCTION tokmon_slice(ts bigint) RETURNS bigint IMMUTABLE LANGUAGE sql AS
$$ SELECT CASE WHEN ts >= 0 THEN ts / 900000 ELSE (ts + 1) / 900000 - 1 END $$;

CREATE FUNCTION tokmon_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_15m AS r (slice, model, agent, provider,
        events, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, stored_cost, positive_cost, uncosted_events, uncosted_input, uncosted_output, uncosted_cache_creation, uncosted_cache_read, cache_creation_1h_tokens, long_input, long_output, long_cache_creation, long_cache_creation_1h, long_cache_read, uncosted_cache_creation_1h, uncosted_long_input, uncosted_long_output, uncosted_long_cache_creation, uncosted_long_cache_creation_1h, uncosted_long_cache_read)
    SELECT tokmon_slice(ts), model, COALESCE(agent, ''), COALESCE(provider, ''),
           count(*) FILTER (WHERE ev),
           sum(input_tokens),
           sum(output_tokens),
           sum(cache_creation_tokens),
           sum(cache_read_tokens),
           COALESCE(sum(cost_usd), 0),
           COALESCE(sum(cost_usd) FILTER (WHERE pos), 0),
           count(*) FILTER (WHERE ev AND NOT pos),
           COALESCE(sum(input_tokens) FILTER (WHERE NOT pos), 0),
           COALESCE(sum(output_tokens) FILTER (WHERE NOT pos), 0),
           COALESCE(sum(cache_creation_tokens) FILTER (WHERE NOT pos), 0),
           COALESCE(sum(cache_read_tokens) FILTER (WHERE NOT pos), 0),
           sum(cache_creation_1h_tokens),
           COALESCE(sum(input_tokens) FILTER (WHERE long_context), 0),
           COALESCE(sum(output_tokens) FILTER (WHERE long_context), 0),
           COALESCE(sum(cache_creation_tokens) FILTER (WHERE long_context), 0),
           COALESCE(sum(cache_creation_1h_tokens) FILTER (WHERE long_context), 0),
           COALESCE(sum(cache_read_tokens) FILTER (WHERE long_context), 0),
           COALESCE(sum(cache_creation_1h_tokens) FILTER (WHERE NOT pos), 0),
           COALESCE(sum(input_tokens) FILTER (WHERE long_context AND NOT pos), 0),
           COALESCE(sum(output_tokens) FILTER (WHERE long_context AND NOT pos), 0),
           COALESCE(sum(cache_creation_tokens) FILTER (WHERE long_context AND NOT pos), 0),
           COALESCE(sum(cache_creation_1h_tokens) FILTER (WHERE long_context AND NOT pos), 0),
           COALESCE(sum(cache_read_tokens) FILTER (WHERE long_context AND NOT pos), 0)
    FROM (SELECT *, corrects IS NULL AS ev, COALESCE(cost_usd, 0) > 0 AS pos FROM new_rows) n
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (slice, model, agent, provider) DO UPDATE SET
        events = r.events + excluded.events,
        input_tokens = r.input_tokens + excluded.input_tokens,
        output_tokens = r.output_tokens + excluded.output_tokens,
        cache_creation_tokens = r.cache_creation_tokens + excluded.cache_creation_tokens,
        cache_read_tokens = r.cache_read_tokens + excluded.cache_read_tokens,
        stored_cost = r.stored_cost + excluded.stored_cost,
        positive_cost = r.positive_cost + excluded.positive_cost,
        uncosted_events = r.uncosted_events + excluded.uncosted_events,
        uncosted_input = r.uncosted_input + excluded.uncosted_input,
        uncosted_output = r.uncosted_output + excluded.uncosted_output,
        uncosted_cache_creation = r.uncosted_cache_creation + excluded.uncosted_cache_creation,
        uncosted_cache_read = r.uncosted_cache_read + excluded.uncosted_cache_read,
        cache_creation_1h_tokens = r.cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
        long_input = r.long_input + excluded.long_input,
        long_output = r.long_output + excluded.long_output,
        long_cache_creation = r.long_cache_creation + excluded.long_cache_creation,
        long_cache_creation_1h = r.long_cache_creation_1h + excluded.long_cache_creation_1h,
        long_cache_read = r.long_cache_read + excluded.long_cache_read,
        uncosted_cache_creation_1h = r.uncosted_cache_creation_1h + excluded.uncosted_cache_creation_1h,
        uncosted_long_input = r.uncosted_long_input + excluded.uncosted_long_input,
        uncosted_long_output = r.uncosted_long_output + excluded.uncosted_long_output,
        uncosted_long_cache_creation = r.uncosted_long_cache_creation + excluded.uncosted_long_cache_creation,
        uncosted_long_cache_creation_1h = r.uncosted_long_cache_creation_1h + excluded.uncosted_long_cache_creation_1h,
        uncosted_long_cache_read = r.uncosted_long_cache_read + excluded.uncosted_long_cache_read;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_rollup_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tokmon_rollup_insert();

CREATE FUNCTION tokmon_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_15m AS r (slice, model, agent, provider,
        events, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, stored_cost, positive_cost, uncosted_events, uncosted_input, uncosted_output, uncosted_cache_creation, uncosted_cache_read, cache_creation_1h_tokens, long_input, long_output, long_cache_creation, long_cache_creation_1h, long_cache_read, uncosted_cache_creation_1h, uncosted_long_input, uncosted_long_output, uncosted_long_cache_creation, uncosted_long_cache_creation_1h, uncosted_long_cache_read)
    SELECT tokmon_slice(ts), model, COALESCE(agent, ''), COALESCE(provider, ''),
           -count(*) FILTER (WHERE ev),
           -sum(input_tokens),
           -sum(output_tokens),
           -sum(cache_creation_tokens),
           -sum(cache_read_tokens),
           -COALESCE(sum(cost_usd), 0),
           -COALESCE(sum(cost_usd) FILTER (WHERE pos), 0),
           -count(*) FILTER (WHERE ev AND NOT pos),
           -COALESCE(sum(input_tokens) FILTER (WHERE NOT pos), 0),
           -COALESCE(sum(output_tokens) FILTER (WHERE NOT pos), 0),
           -COALESCE(sum(cache_creation_tokens) FILTER (WHERE NOT pos), 0),
           -COALESCE(sum(cache_read_tokens) FILTER (WHERE NOT pos), 0),
           -sum(cache_creation_1h_tokens),
           -COALESCE(sum(input_tokens) FILTER (WHERE long_context), 0),
           -COALESCE(sum(output_tokens) FILTER (WHERE long_context), 0),
           -COALESCE(sum(cache_creation_tokens) FILTER (WHERE long_context), 0),
           -COALESCE(sum(cache_creation_1h_tokens) FILTER (WHERE long_context), 0),
           -COALESCE(sum(cache_read_tokens) FILTER (WHERE long_context), 0),
           -COALESCE(sum(cache_creation_1h_tokens) FILTER (WHERE NOT pos), 0),
           -COALESCE(sum(input_tokens) FILTER (WHERE long_context AND NOT pos), 0),
           -COALESCE(sum(output_tokens) FILTER (WHERE long_context AND NOT pos), 0),
           -COALESCE(sum(cache_creation_tokens) FILTER (WHERE long_context AND NOT pos), 0),
           -COALESCE(sum(cache_creation_1h_tokens) FILTER (WHERE long_context AND NOT pos), 0),
           -COALESCE(sum(cache_read_tokens) FILTER (WHERE long_context AND NOT pos), 0)
    FROM (SELECT *, corrects IS NULL AS ev, COALESCE(cost_usd, 0) > 0 AS pos FROM old_rows) n
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (slice, model, agent, provider) DO UPDATE SET
        events = r.events + excluded.events,
        input_tokens = r.input_tokens + excluded.input_tokens,
        output_tokens = r.output_tokens + excluded.output_tokens,
        cache_creation_tokens = r.cache_creation_tokens + excluded.cache_creation_tokens,
        cache_read_tokens = r.cache_read_tokens + excluded.cache_read_tokens,
        stored_cost = r.stored_cost + excluded.stored_cost,
        positive_cost = r.positive_cost + excluded.positive_cost,
        uncosted_events = r.uncosted_events + excluded.uncosted_events,
        uncosted_input = r.uncosted_input + excluded.uncosted_input,
        uncosted_output = r.uncosted_output + excluded.uncosted_output,
        uncosted_cache_creation = r.uncosted_cache_creation + excluded.uncosted_cache_creation,
        uncosted_cache_read = r.uncosted_cache_read + excluded.uncosted_cache_read,
        cache_creation_1h_tokens = r.cache_creation_1h_tokens + excluded.cache_creation_1h_tokens,
        long_input = r.long_input + excluded.long_input,
        long_output = r.long_output + excluded.long_output,
        long_cache_creation = r.long_cache_creation + excluded.long_cache_creation,
        long_cache_creation_1h = r.long_cache_creation_1h + excluded.long_cache_creation_1h,
        long_cache_read = r.long_cache_read + excluded.long_cache_read,
        uncosted_cache_creation_1h = r.uncosted_cache_creation_1h + excluded.uncosted_cache_creation_1h,
        uncosted_long_input = r.uncosted_long_input + excluded.uncosted_long_input,
        uncosted_long_output = r.uncosted_long_output + excluded.uncosted_long_output,
        uncosted_long_cache_creation = r.uncosted_long_cache_creation + excluded.uncosted_long_cache_creation,
        uncosted_long_cache_creation_1h = r.uncosted_long_cache_creation_1h + excluded.uncosted_long_cache_creation_1h,
        uncosted_long_cache_read = r.uncosted_long_cache_read + excluded.uncosted_long_cache_read;
    DELETE FROM rollup_15m WHERE events <= 0 AND input_tokens = 0 AND output_tokens = 0
        AND cache_creation_tokens = 0 AND cache_read_tokens = 0;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_rollup_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tokmon_rollup_delete();

-- Events are append-only: a changed row would silently disagree with its rollup.
CREATE FUNCTION tokmon_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tokmon events are append-only: delete the row and insert it again';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OF ts, model, agent, provider, input_tokens,
    output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, corrects,
    cache_creation_1h_tokens, long_context ON events
    FOR EACH ROW EXECUTE FUNCTION tokmon_append_only();

-- New rows are announced on the channel `tokmon_events` (store::pg::NOTIFY_CHANNEL) once per
-- statement; the empty payload lets PostgreSQL fold a transaction's notices into one.
CREATE FUNCTION tokmon_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tokmon_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tokmon_notify();

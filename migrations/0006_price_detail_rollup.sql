-- Price detail in the rollups (issue #11): what a price needs besides the four token sums.
-- Of all events and of the uncosted ones: the 1-hour cache writes (priced above 5-minute
-- ones), and the tokens of long-context requests, whose prompt (input + cache write + cache
-- read) exceeds 200,000 tokens and which are priced at the long-context rates.
-- Also run on the rollup cache beside a foreign database (src/store/cache.rs).
ALTER TABLE rollup_15m ADD COLUMN cache_creation_1h_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN long_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN long_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN long_cache_creation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN long_cache_creation_1h INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN long_cache_read INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN uncosted_cache_creation_1h INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN uncosted_long_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN uncosted_long_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN uncosted_long_cache_creation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN uncosted_long_cache_creation_1h INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_15m ADD COLUMN uncosted_long_cache_read INTEGER NOT NULL DEFAULT 0;

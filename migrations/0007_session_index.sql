-- The events of one session, found without a scan (`tokmon statusline` shows the cost of the
-- Claude Code session it is called for, after every reply).
CREATE INDEX IF NOT EXISTS events_session ON events (session);

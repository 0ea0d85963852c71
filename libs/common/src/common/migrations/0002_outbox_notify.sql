-- Wake the outbox relay when events are committed: one notification per INSERT statement, sent by
-- PostgreSQL at commit, instead of a pg_notify round trip from the writer for every event.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cloudops_outbox_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Events written by one statement can share a clock_timestamp(); seq keeps their written order.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS seq bigserial;
DROP INDEX IF EXISTS outbox_unsent_idx;
CREATE INDEX outbox_unsent_idx ON outbox (created_at, seq) WHERE sent_at IS NULL;

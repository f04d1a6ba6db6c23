-- Seed 001's own tables (as its Supabase app keeps them), plus what the example receiver needs:
-- a de-duplication table for webhook event ids and an audit log of state changes (a trigger).
CREATE TABLE IF NOT EXISTS media_assets (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    status text NOT NULL DEFAULT 'uploaded',  -- uploaded → transcoding → transcoded → complete | failed
    streaming_url text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS jobs (
    id text PRIMARY KEY,
    media_id text NOT NULL REFERENCES media_assets (id),
    org_id text NOT NULL,
    state text NOT NULL DEFAULT 'queued',  -- queued → running → succeeded | failed
    error text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ebbtide_webhook_events (
    event_id text PRIMARY KEY,
    type text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS state_log (
    seq bigserial PRIMARY KEY,
    table_name text NOT NULL,
    row_id text NOT NULL,
    state text NOT NULL
);
CREATE OR REPLACE FUNCTION log_state() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'jobs' THEN
        IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
            INSERT INTO state_log (table_name, row_id, state) VALUES ('jobs', NEW.id, NEW.state);
        END IF;
    ELSIF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO state_log (table_name, row_id, state) VALUES ('media_assets', NEW.id, NEW.status);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS jobs_log ON jobs;
CREATE TRIGGER jobs_log AFTER INSERT OR UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION log_state();
DROP TRIGGER IF EXISTS media_assets_log ON media_assets;
CREATE TRIGGER media_assets_log AFTER INSERT OR UPDATE ON media_assets
    FOR EACH ROW EXECUTE FUNCTION log_state();

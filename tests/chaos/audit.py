"""Test instrumentation installed in the PRIVATE chaos database only (never product code).

Postgres keeps no history of task transitions (outbox rows are deleted once published), so
the checks need their own evidence:
- `chaos_audit`: one row per status change of a task (insert included), with the old and new
  status, the attempt counter, started_at, scheduled_at and the commit-side clock;
- `chaos_events`: a copy of every outbox row (task_events) as it is inserted, i.e. every event
  the system meant to publish, with its id (what the websocket client must see).
"""
from __future__ import annotations

from sqlalchemy import Engine, text

AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS chaos_audit (
    seq bigserial PRIMARY KEY,
    task_id uuid NOT NULL,
    old_status text,
    new_status text NOT NULL,
    attempts integer,
    started_at timestamptz,
    scheduled_at timestamptz,
    worker_id text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS chaos_audit_task ON chaos_audit (task_id);

CREATE OR REPLACE FUNCTION chaos_audit_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO chaos_audit (task_id, old_status, new_status, attempts, started_at, scheduled_at, worker_id)
        VALUES (NEW.id, CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, NEW.status,
                NEW.attempts, NEW.started_at, NEW.scheduled_at, NEW.worker_id);
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS chaos_audit ON tasks;
CREATE TRIGGER chaos_audit AFTER INSERT OR UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION chaos_audit_task();

CREATE TABLE IF NOT EXISTS chaos_events (
    event_id bigint PRIMARY KEY,
    task_id uuid NOT NULL,
    status text NOT NULL,
    webhook_event text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE FUNCTION chaos_copy_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chaos_events (event_id, task_id, status, webhook_event) VALUES (NEW.id, NEW.task_id, NEW.status, NEW.webhook_event);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS chaos_events ON task_events;
CREATE TRIGGER chaos_events AFTER INSERT ON task_events FOR EACH ROW EXECUTE FUNCTION chaos_copy_event();
"""


def install(engine: Engine, database_url: str) -> None:
    """Create the audit tables and triggers; refuses any database not named for chaos."""
    if "chaos" not in database_url.rsplit("/", 1)[-1]:
        raise RuntimeError(f"refusing to install chaos triggers into {database_url}")
    with engine.begin() as conn:
        conn.exec_driver_sql(AUDIT_SQL)


def row_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM chaos_audit")).scalar()

"""The scheduler's vacuum job (scheduler/vacuum.py) against the real test database: it vacuums
a hot table full of dead rows when the server's autovacuum is off, and leaves everything to the
server when it is on (whichever this server is, the matching assertion runs)."""
from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY
from scheduler import vacuum
from scheduler.vacuum import Vacuum
from sqlalchemy import text


@pytest.mark.parametrize("dead, live, expected", [
    (1_000, 0, False), (1_001, 0, True),  # the threshold alone on an empty table
    (5_000, 50_000, False), (6_001, 50_000, True),  # plus a tenth of the live rows
])
def test_due_follows_autovacuums_rule_with_our_figures(dead, live, expected):
    assert vacuum.due(dead, live) is expected


def vacuum_count(conn, table: str) -> int:
    return conn.execute(text("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = :t"), {"t": table}).scalar()


def test_dead_outbox_rows_are_vacuumed_only_without_autovacuum(engine):
    with engine.connect() as conn:
        with conn.begin():  # 3,000 outbox rows, then deleted: dead rows past the threshold
            conn.execute(text(
                "INSERT INTO task_events (task_id, owner_id, status) "
                "SELECT :t, 0, 'queued' FROM generate_series(1, 3000)"), {"t": uuid.uuid4()})
            conn.execute(text("DELETE FROM task_events WHERE owner_id = 0"))
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
        conn.commit()
        autovacuum_on = conn.execute(text("SHOW autovacuum")).scalar() == "on"
        before = vacuum_count(conn, "task_events")
        counted = REGISTRY.get_sample_value("taskqueue_scheduler_vacuums_total", {"table": "task_events"}) or 0

    vacuumed = Vacuum(engine).run()

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        after = vacuum_count(conn, "task_events")
    now_counted = REGISTRY.get_sample_value("taskqueue_scheduler_vacuums_total", {"table": "task_events"}) or 0
    if autovacuum_on:
        assert vacuumed == [] and after == before and now_counted == counted
    else:
        assert "task_events" in vacuumed
        assert after == before + 1 and now_counted == counted + 1


def test_a_replica_holding_the_lock_makes_the_others_skip(engine):
    with engine.connect() as conn:
        if conn.execute(text("SHOW autovacuum")).scalar() == "on":
            pytest.skip("with autovacuum on the job never takes the lock")
    with engine.connect() as holder:
        assert holder.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": vacuum.VACUUM_LOCK}).scalar()
        try:
            assert Vacuum(engine).run() == []
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": vacuum.VACUUM_LOCK})

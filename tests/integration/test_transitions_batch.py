"""The batch forms of the hot transitions (shared.transitions: create_many, claim_many,
succeed_many), run directly on the test database: each row keeps its own guard, and one row or
many give the same result."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared import transitions
from shared.task_values import row_values

LEASE = timedelta(seconds=30)


@pytest.mark.parametrize("count", [1, 3])
def test_create_claim_succeed_in_batches(engine, user, db, count):
    rows = [row_values(user.id, {"name": f"batch-{i}", "task_type": "echo", "payload": {"i": i}}) for i in range(count)]
    with engine.begin() as conn:
        created = transitions.create_many(conn, rows)
        assert sorted(r.name for r in created) == sorted(r["name"] for r in rows)
        assert {r.status for r in created} == {"queued"} and all(r.event_id for r in created)
        ids = [str(r["id"]) for r in rows]

        claimed = transitions.claim_many(conn, [*ids, str(uuid.uuid4())], LEASE, "w-batch")  # one unknown id
        assert sorted(str(r.id) for r in claimed) == sorted(ids)
        payloads = {str(r["id"]): r["payload"] for r in rows}
        assert all(r.status == "running" and r.attempts == 1 and r.payload == payloads[str(r.id)] for r in claimed)
        assert transitions.claim_many(conn, ids, LEASE, "w-other") == []  # already running: nobody claims twice

        stale = (ids[0], 99, {"late": True})  # a claim that is not ours: its guard skips it
        outcomes = [stale] + [(i, 1, {"echoed": n}) for n, i in enumerate(ids)]
        done = transitions.succeed_many(conn, outcomes[1:] if count == 1 else outcomes)
        assert sorted(str(r.id) for r in done) == sorted(ids)
        assert {r.status for r in done} == {"success"}
    for n, task_id in enumerate(ids):
        assert db.scalar("SELECT result FROM tasks WHERE id = :id", id=task_id) == {"echoed": n}
        assert db.scalar("SELECT count(*) FROM task_events WHERE task_id = :id", id=task_id) == 3  # queued, running, success

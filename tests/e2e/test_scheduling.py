"""Delayed tasks: released on time, never early, never twice (two scheduler replicas run)."""
from __future__ import annotations

from datetime import datetime

from .e2e_helpers import iso_in, metric_value, wait_until

RELEASED = "taskqueue_scheduler_tasks_released_total"


def test_a_task_scheduled_3s_ahead_starts_on_time_and_not_before(client):
    created = client.create("echo", {"at": "later"}, scheduled_at=iso_in(3))
    assert created["status"] == "scheduled"
    scheduled_at = datetime.fromisoformat(created["scheduled_at"])

    # still waiting a little before its time
    wait_until(lambda: (scheduled_at - datetime.now(scheduled_at.tzinfo)).total_seconds() < 1.0, 5)
    assert client.task(created["id"])["status"] == "scheduled"

    done = client.wait_status(created["id"], ("success", "failure"), timeout=10)
    assert done["status"] == "success"
    started_at = datetime.fromisoformat(done["started_at"])
    assert started_at >= scheduled_at, f"started {(scheduled_at - started_at).total_seconds():.3f}s early"
    lateness = (started_at - scheduled_at).total_seconds()
    assert lateness <= 1.0, f"started {lateness:.3f}s after its scheduled time"


def test_two_scheduler_replicas_release_each_task_exactly_once(client, system, db, events):
    assert len(system.schedulers) == 2 and all(s.alive() for s in system.schedulers)
    before = sum(metric_value(system.metrics(s), RELEASED) for s in system.schedulers)
    when = iso_in(2)
    ids = [client.create("echo", {"i": i}, scheduled_at=when, name=f"replicas {i}")["id"] for i in range(50)]

    done = client.wait_all(ids, timeout=20)
    assert {t["status"] for t in done.values()} == {"success"}

    attempts = dict(db.rows("SELECT id::text, attempts FROM tasks WHERE id = ANY(CAST(:ids AS uuid[]))", ids=ids))
    assert attempts == {i: 1 for i in ids}, {i: n for i, n in attempts.items() if n != 1}

    # exactly one release (scheduled -> queued) and one run per task on the event stream
    expected = ["scheduled", "queued", "running", "success"]
    wrong: dict = {}

    def all_as_expected():
        history = events.by_task()
        wrong.clear()
        wrong.update({i: [e["status"] for e in history.get(i, [])] for i in ids})
        for i in [i for i, got in wrong.items() if got == expected]:
            del wrong[i]
        return not wrong

    wait_until(all_as_expected, 10, 0.2, message="each task's events to be exactly " + " -> ".join(expected))
    assert not wrong, wrong

    # together the replicas released exactly these 50 tasks (nothing else was waiting)
    after = sum(metric_value(system.metrics(s), RELEASED) for s in system.schedulers)
    assert after - before == 50

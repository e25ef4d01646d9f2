"""Recurring schedules with real processes: two scheduler replicas create exactly one task per
fire, the tasks run to success, and a restart of the schedulers after an outage longer than
two intervals fires once for the missed period (run_once) or not at all (skip)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from e2e.e2e_helpers import metric_value, wait_until

from .conftest import MISFIRE_GRACE_SECONDS

INTERVAL = 2  # seconds
STEP = timedelta(seconds=INTERVAL)


def fires(db, schedule_id: str) -> list:
    """Every task the schedule created, by fire time (schedule_fires joined with tasks)."""
    return db.rows(
        "SELECT f.fire_at, t.id::text AS task_id, t.name, t.created_at, t.status FROM schedule_fires f "
        "JOIN tasks t ON t.id = f.task_id WHERE f.schedule_id = :s ORDER BY f.fire_at", s=schedule_id)


def create_schedule(client, name: str, **fields) -> dict:
    body = {"name": name, "task_type": "echo", "payload": {"from": name}, "interval_seconds": INTERVAL, **fields}
    return client.post("/schedules/", json=body, expect=201).json()


def assert_one_task_per_fire(rows: list) -> None:
    fire_times = [r.fire_at for r in rows]
    assert len(fire_times) == len(set(fire_times)), f"duplicate fires: {fire_times}"
    names = [r.name for r in rows]
    assert len(names) == len(set(names)), f"duplicate task names: {names}"
    for r in rows:
        assert r.name.endswith(f" @ {r.fire_at.astimezone(timezone.utc).isoformat()}"), r.name


def stop_schedulers(system) -> datetime:
    for svc in list(system.schedulers):
        svc.terminate(timeout=20)
        system.schedulers.remove(svc)
        system.every_service.remove(svc)  # its successor reuses the name and log file
    return datetime.now(timezone.utc)


def start_schedulers(system, count: int = 2) -> None:
    started = [system.start_scheduler() for _ in range(count)]
    for svc in started:
        svc.wait_healthy(timeout=40)


def outage(system, db, schedule_id: str, missed: int = 3) -> tuple[datetime, datetime]:
    """Stop both schedulers once the schedule has fired, keep them down for `missed` fires, and
    start them again 0.3 s before the next fire (the grid point G): every fire of the outage
    is then at least INTERVAL - 0.3 = 1.7 s late at the first run after restart, more than the
    1 s misfire grace, whatever the start-up time. Returns (last fire before the stop,
    restart time)."""
    wait_until(lambda: len(fires(db, schedule_id)) >= 2, timeout=15, message="two fires before the outage")
    stopped_at = stop_schedulers(system)
    last_before = fires(db, schedule_id)[-1].fire_at
    pending = db.scalar("SELECT next_run_at FROM schedules WHERE id = :s", s=schedule_id)
    assert pending > last_before  # the stopped schedulers left the next fire due, untouched
    grid_point = pending
    while grid_point < stopped_at + STEP * missed:
        grid_point += STEP
    restart_at = grid_point - timedelta(seconds=0.3)
    time.sleep(max(0.0, (restart_at - datetime.now(timezone.utc)).total_seconds()))
    restarted = datetime.now(timezone.utc)
    start_schedulers(system)
    return last_before, restarted


def finish(client, db, schedule_id: str) -> list:
    """Pause the schedule, then wait until every task it created has run."""
    client.post(f"/schedules/{schedule_id}/pause/", expect=200)
    time.sleep(0.5)  # a fire committed just before the pause is still being handed off
    rows = fires(db, schedule_id)
    done = client.wait_all([r.task_id for r in rows], timeout=30)
    return [done[r.task_id] for r in rows]


def test_two_replicas_create_exactly_one_task_per_fire(system, client, db):
    assert len(system.schedulers) == 2 and all(s.alive() for s in system.schedulers)
    fired_before = sum(metric_value(system.metrics(s), "taskqueue_scheduler_schedules_fired_total")
                       for s in system.schedulers)
    schedule = create_schedule(client, "every-2s")
    first = datetime.fromisoformat(schedule["next_run_at"])
    time.sleep(max(0.0, (first - datetime.now(timezone.utc)).total_seconds()) + 7.2)
    tasks = finish(client, db, schedule["id"])
    rows = fires(db, schedule["id"])

    assert 3 <= len(rows) <= 5, [r.fire_at for r in rows]  # fires at first, +2, +4, +6 (and maybe +8)
    assert_one_task_per_fire(rows)
    assert rows[0].fire_at == first
    assert [b.fire_at - a.fire_at for a, b in zip(rows, rows[1:])] == [STEP] * (len(rows) - 1)  # none missed
    assert db.scalar("SELECT count(*) FROM tasks WHERE name LIKE 'every-2s @ %'") == len(rows)
    for r in rows:  # each created after its fire time and before the next one was due
        assert timedelta(0) <= r.created_at - r.fire_at < STEP, (r.fire_at, r.created_at)
    assert all(t["status"] == "success" and t["result"] == {"echoed": {"from": "every-2s"}} for t in tasks), tasks
    fired = sum(metric_value(system.metrics(s), "taskqueue_scheduler_schedules_fired_total") for s in system.schedulers)
    assert fired - fired_before == len(rows)  # across both replicas, one count per task
    got = client.get(f"/schedules/{schedule['id']}/").json()
    assert got["last_task"] == rows[-1].task_id and datetime.fromisoformat(got["last_run_at"]) == rows[-1].fire_at


def test_restart_after_outage_fires_once_for_the_missed_period_run_once(system, client, db):
    schedule = create_schedule(client, "outage-run-once", misfire_policy="run_once")
    last_before, restarted = outage(system, db, schedule["id"])
    wait_until(lambda: len([r for r in fires(db, schedule["id"]) if r.fire_at > last_before]) >= 3, timeout=20,
               message="fires after the restart")
    tasks = finish(client, db, schedule["id"])
    rows = fires(db, schedule["id"])
    assert_one_task_per_fire(rows)

    after = [r for r in rows if r.fire_at > last_before]
    catch_up = after[0]
    assert catch_up.created_at > restarted
    missed = (catch_up.fire_at - last_before) // STEP - 1
    assert missed >= 2, f"only {missed} fire(s) fell in the outage"
    # exactly one task for the whole outage: the latest fire due when the scheduler came back ...
    in_outage = [r for r in rows if last_before < r.fire_at <= catch_up.created_at]
    assert in_outage == [catch_up]
    assert catch_up.created_at - catch_up.fire_at < STEP
    # ... then on schedule again, every fire once
    assert [b.fire_at - a.fire_at for a, b in zip(after, after[1:])] == [STEP] * (len(after) - 1)
    assert all(t["status"] == "success" for t in tasks)


def test_restart_after_outage_skips_missed_fires_under_skip(system, client, db):
    schedule = create_schedule(client, "outage-skip", misfire_policy="skip")
    last_before, restarted = outage(system, db, schedule["id"])
    wait_until(lambda: len([r for r in fires(db, schedule["id"]) if r.fire_at > restarted]) >= 2, timeout=20,
               message="fires after the restart")
    tasks = finish(client, db, schedule["id"])
    rows = fires(db, schedule["id"])
    assert_one_task_per_fire(rows)

    outage_fires = []
    point = last_before + STEP
    while point <= restarted:
        outage_fires.append(point)
        point += STEP
    assert len(outage_fires) >= 3
    assert [r for r in rows if last_before < r.fire_at <= restarted] == []  # none of them ran
    after = [r for r in rows if r.fire_at > restarted]
    # The schedule continues on its grid: from the first fire after the restart (`point`, due
    # 0.3 s after it) if a scheduler was up within the grace of it, else from a later one.
    assert after[0].fire_at >= point and (after[0].fire_at - point) % STEP == timedelta(0), (after[0].fire_at, point)
    for r in after:  # what runs is never later than the grace
        assert r.created_at - r.fire_at <= timedelta(seconds=MISFIRE_GRACE_SECONDS), (r.fire_at, r.created_at)
    assert all(t["status"] == "success" for t in tasks)

"""Recurring schedules during the chaos: fired by two scheduler replicas that keep crashing,
each fire must create exactly one task (the README's promise), and every such task must end."""
from __future__ import annotations

import time

from sqlalchemy import Engine, text

from .workload import ApiUser

PREFIX = "chaos-schedule-"
SCHEDULES = ({"interval_seconds": 1, "misfire_policy": "run_once"},
             {"interval_seconds": 2, "misfire_policy": "skip"},
             {"interval_seconds": 3, "misfire_policy": "run_once", "task_type": "compute",
              "payload": {"operation": "explode", "numbers": [1]}, "max_retries": 1, "retry_delay": 1})


def create(user: ApiUser) -> list[str]:
    """The schedules, created through the API before the faults start; returns their ids."""
    ids = []
    for i, extra in enumerate(SCHEDULES):
        body = {"name": f"{PREFIX}{i}", "task_type": "echo", "payload": {"schedule": i}, **extra}
        r = user.call("POST", "/schedules/", time.monotonic() + 120, json=body)
        if r is None or r.status_code != 201:
            raise RuntimeError(f"cannot create schedule: {r.status_code if r is not None else 'no answer'} "
                               f"{r.text[:300] if r is not None else ''}")
        ids.append(r.json()["id"])
    return ids


def pause(user: ApiUser, ids: list[str]) -> None:
    """Stop firing once the chaos is over, so the run can settle."""
    for schedule_id in ids:
        r = user.call("POST", f"/schedules/{schedule_id}/pause/", time.monotonic() + 300)
        if r is None or r.status_code != 200:
            print(f"  could not pause schedule {schedule_id}: {r.status_code if r is not None else 'no answer'}")


def task_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT id::text FROM tasks WHERE name LIKE :p"), {"p": PREFIX + "%"})]


def figures(engine: Engine) -> dict[str, int]:
    """fires, tasks created by them, fires that created more than one task, tasks not terminal."""
    with engine.connect() as conn:
        one = lambda sql: conn.execute(text(sql), {"p": PREFIX + "%"}).scalar()  # noqa: E731
        return {
            "fires": one("SELECT count(*) FROM schedule_fires"),
            "tasks": one("SELECT count(*) FROM tasks WHERE name LIKE :p"),
            # the task name is '<schedule> @ <fire time>': two tasks with one name = a fire run twice
            "doubled": one("SELECT count(*) FROM (SELECT name FROM tasks WHERE name LIKE :p "
                           "GROUP BY name HAVING count(*) > 1) d"),
            "not_terminal": one("SELECT count(*) FROM tasks WHERE name LIKE :p "
                                "AND status NOT IN ('success', 'failure', 'revoked')"),
        }

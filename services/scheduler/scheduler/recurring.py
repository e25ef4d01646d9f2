"""Recurring schedules: the scheduler's job that turns each due fire into exactly one task.

Exactly once, with any number of scheduler replicas and across restarts:

1. One transaction per batch locks the due schedules:
   `SELECT ... FROM schedules WHERE enabled AND next_run_at <= now() FOR UPDATE SKIP LOCKED`.
   A replica never sees a row another one holds; it skips it (no waiting, no double fire).
2. For each schedule, in that transaction: the misfire policy picks at most one fire time
   (shared.schedules.plan), the fire is recorded in `schedule_fires` (primary key
   (schedule_id, fire_at), ON CONFLICT DO NOTHING: a fire recorded before creates nothing),
   the task is created through `shared.transitions.create` from the template
   (shared.task_values.from_template: the same row builder as POST /tasks/), and
   `next_run_at` moves past `now` -- all committed together.
3. After the commit, the created rows go to the Handoff (event + Dramatiq message). If this
   process dies between commit and handoff, the task is durable and the release/resend jobs
   deliver it; if it dies before the commit, nothing happened and the fire is still due.

So a fire's task exists if and only if its fire is committed, and a committed fire has moved
`next_run_at` beyond it: no replica, and no restarted scheduler, can find it due again.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DataError, IntegrityError

from shared import schedules, task_values, transitions
from shared.models import Schedule, ScheduleFire

from . import metrics

log = logging.getLogger(__name__)
SCHEDULES = Schedule.__table__
FIRES = ScheduleFire.__table__
BATCH = 100


def task_name(schedule_name: str, fire_at: datetime) -> str:
    """`<schedule name> @ <fire time, ISO 8601 UTC>`: one task per fire, recognisable by both."""
    return f"{schedule_name} @ {fire_at.astimezone(timezone.utc).isoformat()}"


def template(row) -> dict:
    s = row._mapping
    return {key: s[key] for key in task_values.TEMPLATE_FIELDS}


def fire_due(engine: Engine, submit: Callable[[list], None], grace_seconds: float, batch: int = BATCH) -> int:
    """Fire every due schedule, batch after batch; returns the number of tasks created."""
    created_total = 0
    while True:
        with engine.begin() as conn:
            # `now()` is the transaction's start: the same instant for the WHERE and the plan.
            due = conn.execute(
                select(SCHEDULES, func.now().label("db_now"))
                .where(SCHEDULES.c.enabled, SCHEDULES.c.next_run_at <= func.now())
                .order_by(SCHEDULES.c.next_run_at)
                .limit(batch)
                .with_for_update(of=SCHEDULES, skip_locked=True)
            ).all()
            created = [c for row in due if (c := _fire_one(conn, row, row.db_now, grace_seconds)) is not None]
        submit([c.row for c in created])
        observed = datetime.now(timezone.utc)
        for c in created:
            metrics.SCHEDULE_LATENESS.observe(max(0.0, (observed - c.fire_at).total_seconds()))
        metrics.SCHEDULES_FIRED.inc(len(created))
        created_total += len(created)
        if len(due) < batch:
            return created_total


class _Created:
    """A created task's transition row, with the fire time it was created for."""

    __slots__ = ("row", "fire_at")

    def __init__(self, row, fire_at: datetime):
        self.row, self.fire_at = row, fire_at


def _fire_one(conn: Connection, s, now: datetime, grace_seconds: float):
    """Apply the misfire policy to one due, locked schedule; returns the created task row or None."""
    try:
        timing = schedules.timing(s.cron, s.interval_seconds, s.timezone, anchor=s.next_run_at)
        plan = schedules.plan(timing, s.next_run_at, now, s.misfire_policy, grace_seconds)
    except (schedules.ScheduleError, ValueError, OverflowError):
        # Only a row edited by hand past the API's validation gets here: stop it, loudly.
        log.error("schedule has an invalid timing; disabled", extra={"schedule_id": str(s.id)}, exc_info=True)
        conn.execute(update(SCHEDULES).where(SCHEDULES.c.id == s.id).values(enabled=False, next_run_at=None, updated_at=func.now()))
        metrics.SCHEDULE_ERRORS.inc()
        return None
    if plan.missed:
        metrics.SCHEDULE_MISFIRES.labels(s.misfire_policy).inc()
    changes = {"next_run_at": plan.next_run_at, "updated_at": func.now()}
    created = None
    if plan.fire_at is not None:
        row = _create_task(conn, s, plan.fire_at)
        if row is not None:
            created = row
            changes.update(last_run_at=plan.fire_at, last_task_id=row.id)
    conn.execute(update(SCHEDULES).where(SCHEDULES.c.id == s.id).values(**changes))
    return _Created(created, plan.fire_at) if created is not None else None


def _create_task(conn: Connection, s, fire_at: datetime):
    """Record the fire and create its task, in a savepoint: a template the database refuses
    (edited by hand) loses this one fire, not the whole batch."""
    values = task_values.from_template(s.owner_id, task_name(s.name, fire_at), template(s))
    savepoint = conn.begin_nested()
    try:
        recorded = conn.execute(
            insert(FIRES).values(schedule_id=s.id, fire_at=fire_at, task_id=values["id"])
            .on_conflict_do_nothing().returning(FIRES.c.fire_at)
        ).first()
        if recorded is None:  # this fire already ran (a second guard; see ScheduleFire)
            savepoint.rollback()
            log.warning("fire already recorded; not creating it again",
                        extra={"schedule_id": str(s.id), "fire_at": fire_at.isoformat()})
            return None
        row = transitions.create(conn, values)
        savepoint.commit()
        return row
    except (IntegrityError, DataError):
        savepoint.rollback()
        metrics.SCHEDULE_ERRORS.inc()
        log.error("could not create the task of a schedule fire; fire skipped",
                  extra={"schedule_id": str(s.id), "fire_at": fire_at.isoformat()}, exc_info=True)
        return None

"""Status changes as single SQL statements: a conditional UPDATE plus its outbox row.

Each function returns the changed task rows joined with their new event (`event_id`,
`event_at`), or nothing when the guard did not match (the task had already moved on).
Callers commit, then hand the rows to `events.EventPublisher`.
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, Row, func, insert, literal, select, update
from sqlalchemy.sql import Select

from .models import Task, TaskEvent

TASKS = Task.__table__
EVENTS = TaskEvent.__table__


def _with_event(changed, webhook_event: str = "") -> Select:
    """Append one TaskEvent per changed row and select both."""
    event = (
        insert(EVENTS)
        .from_select(
            ["task_id", "owner_id", "status", "result", "error_message", "webhook_event"],
            select(
                changed.c.id,
                changed.c.owner_id,
                changed.c.status,
                changed.c.result,
                changed.c.error_message,
                literal(webhook_event),
            ),
        )
        .returning(EVENTS.c.id, EVENTS.c.task_id, EVENTS.c.created_at)
        .cte("e")
    )
    return select(changed, event.c.id.label("event_id"), event.c.created_at.label("event_at")).join_from(
        changed, event, event.c.task_id == changed.c.id
    )


def create(conn: Connection, values: dict[str, Any]) -> Row:
    """INSERT a task and its first event in one statement."""
    created = insert(TASKS).values(**values).returning(*TASKS.c).cte("t")
    return conn.execute(_with_event(created)).one()


def move(
    conn: Connection,
    task_id: uuid.UUID | str,
    from_statuses: Iterable[str],
    to_status: str,
    *,
    owner_id: int | None = None,
    **values: Any,
) -> Row | None:
    """Move one task to `to_status` if it is still in one of `from_statuses` (and owned by `owner_id`)."""
    guard = [TASKS.c.id == task_id, TASKS.c.status.in_(tuple(from_statuses))]
    if owner_id is not None:
        guard.append(TASKS.c.owner_id == owner_id)
    changed = (
        update(TASKS)
        .where(*guard)
        .values(status=to_status, updated_at=func.now(), **values)
        .returning(*TASKS.c)
        .cte("t")
    )
    return conn.execute(_with_event(changed)).one_or_none()


def move_many(conn: Connection, ids_query, to_status: str, **values: Any) -> Sequence[Row]:
    """Move every task selected by `ids_query` (a SELECT of ids, ideally FOR UPDATE SKIP LOCKED)."""
    picked = ids_query.cte("picked")
    changed = (
        update(TASKS)
        .where(TASKS.c.id == picked.c.id)
        .values(status=to_status, updated_at=func.now(), **values)
        .returning(*TASKS.c)
        .cte("t")
    )
    return conn.execute(_with_event(changed)).all()


def announce(conn: Connection, task_id: uuid.UUID | str, owner_id: int, webhook_event: str) -> Row | None:
    """Record an event for a task without changing it (used by trigger_webhook)."""
    current = select(TASKS).where(TASKS.c.id == task_id, TASKS.c.owner_id == owner_id).cte("t")
    return conn.execute(_with_event(current, webhook_event)).one_or_none()

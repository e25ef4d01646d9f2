"""The notifier's only Postgres read: a task's current state, visible to its owner only.

Called once per `/ws/tasks/{task_id}/` handshake, from a thread (SQLAlchemy is synchronous),
so the event loop never waits on the database.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from shared.models import Task

TASKS = Task.__table__


@dataclass(frozen=True, slots=True)
class TaskState:
    task_id: uuid.UUID
    status: str
    result: Any
    error_message: str
    updated_at: datetime  # equals the timestamp of the event that produced this state


def task_state(engine: Engine, task_id: uuid.UUID, owner_id: int) -> TaskState | None:
    """The task's state, or None when it does not exist or belongs to someone else (same answer)."""
    query = select(TASKS.c.id, TASKS.c.status, TASKS.c.result, TASKS.c.error_message, TASKS.c.updated_at).where(
        TASKS.c.id == task_id, TASKS.c.owner_id == owner_id
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return TaskState(*row) if row is not None else None

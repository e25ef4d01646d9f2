"""Read queries for tasks, always scoped to one owner."""
from __future__ import annotations

import uuid

from sqlalchemy import Connection, Row, exists, func, or_, select

from shared import statuses
from shared.models import DeadLetter, Task
from shared.task_types import TASK_TYPES

from ..errors import ApiError
from ..openapi import params
from ..pagination import PAGE

TASKS = Task.__table__
ORDERABLE = {"created_at": TASKS.c.created_at, "priority": TASKS.c.priority, "status": TASKS.c.status}
LIST = PAGE + params.Query({
    "status": params.Choice(statuses.ALL),
    "task_type": params.Choice(TASK_TYPES),
    "priority": params.WholeNumber(),
    "search": params.Text(max_len=255, description="In the name and the tags (case-insensitive); first 255 characters."),
    "ordering": params.Ordering(tuple(ORDERABLE), default=[("created_at", True)],
                                description="Comma-separated; prefix - for descending. Default -created_at."),
})


def get_owned(conn: Connection, task_id: uuid.UUID, owner_id: int) -> Row:
    row = conn.execute(select(TASKS).where(TASKS.c.id == task_id, TASKS.c.owner_id == owner_id)).one_or_none()
    if row is None:
        raise ApiError(404, "Not found.")
    return row


def list_filters(owner_id: int, query: dict) -> list:
    """WHERE clauses from the list's parameters (`LIST.read()`): status, task_type, priority, search."""
    clauses = [TASKS.c.owner_id == owner_id]
    for name in ("status", "task_type", "priority"):
        if query[name] is not None:
            clauses.append(TASKS.c[name] == query[name])
    term = query["search"]
    if term:
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        tag = func.jsonb_array_elements_text(TASKS.c.tags).table_valued("value").alias("tag")
        clauses.append(or_(TASKS.c.name.ilike(pattern), exists(select(1).select_from(tag).where(tag.c.value.ilike(pattern)))))
    return clauses


def ordering(query: dict) -> list:
    order = [ORDERABLE[name].desc() if desc else ORDERABLE[name].asc() for name, desc in query["ordering"]]
    return order + [TASKS.c.id]


def stats(conn: Connection, owner_id: int) -> dict:
    """Counts per status and average run time in one query, dead letters in a second."""
    counts = [func.count().filter(TASKS.c.status == s).label(s) for s in statuses.ALL]
    duration = func.avg(func.extract("epoch", TASKS.c.completed_at - TASKS.c.started_at)).filter(
        TASKS.c.status == statuses.SUCCESS
    )
    row = conn.execute(
        select(func.count().label("total"), *counts, duration.label("avg_duration")).where(TASKS.c.owner_id == owner_id)
    ).one()
    dead = conn.execute(select(func.count()).select_from(DeadLetter).where(DeadLetter.owner_id == owner_id)).scalar()
    out = dict(row._mapping)
    out["avg_duration"] = round(float(out["avg_duration"]), 6) if out["avg_duration"] is not None else None
    out["dead_letters"] = dead
    return out

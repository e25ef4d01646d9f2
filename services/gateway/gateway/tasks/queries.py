"""Read queries for tasks, always scoped to one owner."""
from __future__ import annotations

import uuid

from flask import request
from sqlalchemy import Connection, Row, exists, func, or_, select

from shared import statuses
from shared.models import DeadLetter, Task
from shared.task_types import TASK_TYPES

from ..errors import ApiError, ValidationError

TASKS = Task.__table__
ORDERABLE = {"created_at": TASKS.c.created_at, "priority": TASKS.c.priority, "status": TASKS.c.status}


def get_owned(conn: Connection, task_id: uuid.UUID, owner_id: int) -> Row:
    row = conn.execute(select(TASKS).where(TASKS.c.id == task_id, TASKS.c.owner_id == owner_id)).one_or_none()
    if row is None:
        raise ApiError(404, "Not found.")
    return row


def list_filters(owner_id: int) -> list:
    """WHERE clauses from the query string: status, task_type, priority, search."""
    args = request.args
    clauses = [TASKS.c.owner_id == owner_id]
    if args.get("status"):
        if args["status"] not in statuses.ALL:
            raise ValidationError({"status": [f"Select a valid choice: {', '.join(statuses.ALL)}."]})
        clauses.append(TASKS.c.status == args["status"])
    if args.get("task_type"):
        if args["task_type"] not in TASK_TYPES:
            raise ValidationError({"task_type": [f"Select a valid choice: {', '.join(TASK_TYPES)}."]})
        clauses.append(TASKS.c.task_type == args["task_type"])
    if args.get("priority"):
        try:
            clauses.append(TASKS.c.priority == int(args["priority"]))
        except ValueError:
            raise ValidationError({"priority": ["Enter a whole number."]}) from None
    term = args.get("search", "").strip()[:255]
    if term:
        pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        tag = func.jsonb_array_elements_text(TASKS.c.tags).table_valued("value").alias("tag")
        clauses.append(or_(TASKS.c.name.ilike(pattern), exists(select(1).select_from(tag).where(tag.c.value.ilike(pattern)))))
    return clauses


def ordering() -> list:
    spec = request.args.get("ordering", "-created_at")
    order = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        column = ORDERABLE.get(item.lstrip("-"))
        if column is None:
            raise ValidationError({"ordering": [f"Order by one of: {', '.join(ORDERABLE)} (prefix - for descending)."]})
        order.append(column.desc() if item.startswith("-") else column.asc())
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

"""Dead-letter operations shared by the JSON API and the admin dashboard."""
from __future__ import annotations

import uuid

from sqlalchemy import Connection, Row, func, select, update

from shared import transitions
from shared.models import DeadLetter

from ..errors import ApiError
from ..extensions import db
from ..runtime import get_runtime
from ..tasks.fields import row_values

DEAD = DeadLetter.__table__


def get_owned(conn: Connection, entry_id: uuid.UUID, owner: int) -> Row:
    row = conn.execute(select(DEAD).where(DEAD.c.id == entry_id, DEAD.c.owner_id == owner)).one_or_none()
    if row is None:
        raise ApiError(404, "Not found.")
    return row


def reprocess(entry_id: uuid.UUID, owner: int):
    """Create a fresh task `[Reprocessed] <name>` (same type, payload, priority) for the entry's
    owner and mark the entry, in one transaction; the conditional UPDATE makes a second
    reprocess a 400. Returns the new task row."""
    with db.engine.connect() as conn:
        entry = get_owned(conn, entry_id, owner)
        fields = {
            "name": f"[Reprocessed] {entry.task_name}"[:255],
            "task_type": entry.task_type,
            "payload": entry.payload,
            "priority": entry.priority,
        }
        row = transitions.create(conn, row_values(owner, fields))
        marked = conn.execute(
            update(DEAD)
            .where(DEAD.c.id == entry_id, DEAD.c.reprocessed.is_(False))
            .values(reprocessed=True, reprocessed_at=func.now(), reprocessed_task_id=row.id)
        ).rowcount
        if not marked:
            conn.rollback()
            raise ApiError(400, "Dead letter entry has already been reprocessed.")
        conn.commit()
    get_runtime().after_commit([row])
    return row

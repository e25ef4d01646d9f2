"""The event schema of the `taskqueue:events` stream, and the outbox relay.

Every committed status change has a TaskEvent row (the outbox), written by the same statement
as the change. `shared.handoff` publishes it right after commit and deletes the row; whatever
is left behind (a crash, a Redis outage) the scheduler publishes with `relay_unpublished`.
Consumers deduplicate on `event_id`.

The optional field `webhook` ("1"/"0", see `wants_webhook`) tells the webhook dispatcher, ahead
of any decoding or query, whether the task's callback subscribes to this event, so the many
events of tasks without a callback cost it next to nothing. Only `from_transition` writes it:
it has the task's columns. `from_outbox` has not, and its entries go without the field, which
means "unknown: look at the task". Other consumers ignore the field.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

import redis
from sqlalchemy import Engine, delete, func, select, text

from . import webhooks
from .models import TaskEvent

EVENTS = TaskEvent.__table__
RELAY_BATCH = 500
WEBHOOK_HINT = "webhook"
SUBSCRIBED, UNSUBSCRIBED = "1", "0"


def encode(
    *,
    event_id: int,
    task_id: Any,
    owner_id: int,
    status: str,
    result: Any,
    error_message: str,
    timestamp: datetime,
    webhook_event: str = "",
    webhook: bool | None = None,
) -> dict[str, str]:
    """Stream entry fields (all strings, as Redis stores them); `webhook` None writes no hint."""
    fields = {
        "event_id": str(event_id),
        "task_id": str(task_id),
        "owner_id": str(owner_id),
        "status": status,
        "result": json.dumps(result),
        "error_message": error_message or "",
        "timestamp": timestamp.isoformat(),
        "webhook_event": webhook_event or "",
    }
    if webhook is not None:
        fields[WEBHOOK_HINT] = SUBSCRIBED if webhook else UNSUBSCRIBED
    return fields


def decode(fields: Mapping[bytes | str, bytes | str]) -> dict[str, Any]:
    """Inverse of `encode`, for consumers (the `webhook` hint, when present, stays a string)."""
    f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()}
    f["event_id"] = int(f["event_id"])
    f["owner_id"] = int(f["owner_id"])
    f["result"] = json.loads(f.get("result") or "null")
    return f


def wants_webhook(row) -> bool:
    """Whether the task's callback subscribes to the webhook event `row` stands for (none: False).

    The very rules the dispatcher applies once it loaded the task (`shared.webhooks`), decided
    here from the row in hand: a task's callback settings never change after it was created.
    """
    event = webhooks.event_for(row.status, row.webhook_event)
    return event is not None and webhooks.subscribed(row._mapping, event)


def from_transition(row) -> dict[str, str]:
    """Fields for a row returned by `shared.transitions` (task columns + event_id/event_at),
    with the `webhook` hint."""
    return encode(
        event_id=row.event_id,
        task_id=row.id,
        owner_id=row.owner_id,
        status=row.status,
        result=row.result,
        error_message=row.error_message,
        timestamp=row.event_at,
        webhook_event=row.webhook_event,
        webhook=wants_webhook(row),
    )


def from_outbox(row) -> dict[str, str]:
    """Fields for a leftover outbox row: no task columns, so no `webhook` hint."""
    return encode(
        event_id=row.id,
        task_id=row.task_id,
        owner_id=row.owner_id,
        status=row.status,
        result=row.result,
        error_message=row.error_message,
        timestamp=row.created_at,
        webhook_event=row.webhook_event,
    )


def relay_unpublished(client: redis.Redis, engine: Engine, stream: str, maxlen: int, older_than_s: float) -> int:
    """Publish outbox rows older than `older_than_s` (their producer failed to), oldest first."""
    query = (
        select(EVENTS)
        .where(EVENTS.c.created_at < func.now() - text(f"interval '{float(older_than_s)} seconds'"))
        .order_by(EVENTS.c.id)
        .limit(RELAY_BATCH)
        .with_for_update(skip_locked=True)
    )
    with engine.begin() as conn:
        rows = conn.execute(query).all()
        if not rows:
            return 0
        pipe = client.pipeline(transaction=True)
        for row in rows:
            pipe.xadd(stream, from_outbox(row), maxlen=maxlen, approximate=True)
        pipe.execute()
        conn.execute(delete(EVENTS).where(EVENTS.c.id.in_([r.id for r in rows])))
    return len(rows)

"""What a webhook delivery carries, fixed when it is recorded: its body, headers and row.

The dispatcher records the deliveries of status changes; the gateway records manual
triggers and replays. Both build them here, so a delivery looks the same whoever made it.
The body is built once and stored: every attempt and every replay sends the very same
bytes, and `sent_at` is the time the delivery was recorded. The Standard Webhooks headers
(`webhook-timestamp`, `webhook-signature`) are added by the dispatcher at send time, since
they sign the moment of sending.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from . import statuses
from .models import Task, WebhookDelivery

DELIVERIES = WebhookDelivery.__table__
TASKS = Task.__table__

PENDING, SUCCESS, FAILURE = "pending", "success", "failure"
DELIVERY_STATUSES = (PENDING, SUCCESS, FAILURE)
EVENTS = (*statuses.DEFAULT_CALLBACK_EVENTS, statuses.MANUAL_WEBHOOK_EVENT)
USER_AGENT = "TaskQueue-Webhooks/1.0"

# Headers TaskQueue sets (and the framing ones the HTTP client owns): callback_headers may add
# headers but never replace these, so a receiver can trust them.
RESERVED_HEADERS = frozenset({
    "content-type", "user-agent", "x-taskqueue-event", "x-taskqueue-task-id",
    "x-taskqueue-delivery-id", "x-taskqueue-signature", "webhook-id", "webhook-timestamp",
    "webhook-signature", "host", "content-length", "transfer-encoding", "connection",
})
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")  # an RFC 9110 token
MAX_HEADER_VALUE = 1024


def event_for(status: str, webhook_event: str = "") -> str | None:
    """The webhook event a stream event stands for; None when it triggers no webhook."""
    return webhook_event or statuses.WEBHOOK_EVENTS.get(status)


def subscribed(task: Mapping[str, Any], event: str) -> bool:
    """Whether the task wants `event` (as in the reference, an empty list means every event)."""
    if not task["callback_url"]:
        return False
    events = task["callback_events"] or []
    return not events or event in events


def header_problem(name: Any, value: Any) -> str | None:
    """Why a custom header cannot be sent as given, or None when it can."""
    if not isinstance(name, str) or not HEADER_NAME.match(name):
        return f"invalid header name {name!r}"
    if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
        return f"header {name!r} must be a string of at most {MAX_HEADER_VALUE} characters"
    if any(c in value for c in "\r\n\x00"):
        return f"header {name!r} must not contain line breaks or NUL characters"
    return None


def custom_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The task's callback_headers that may be sent: valid, and none of our own names."""
    return {
        name: value
        for name, value in (headers or {}).items()
        if header_problem(name, value) is None and name.lower() not in RESERVED_HEADERS
    }


def hmac_signature(secret: str, body: str) -> str:
    """The reference's `X-Taskqueue-Signature`: HMAC-SHA256 hex of the raw body."""
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def task_snapshot(task: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """The `task` object of the body (the reference's fields), with `overrides` applied."""
    t = {**task, **overrides}
    return {
        "id": str(t["id"]),
        "name": t["name"],
        "task_type": t["task_type"],
        "status": t["status"],
        "priority": t["priority"],
        "queue": t["queue"],
        "payload": t["payload"],
        "result": t["result"],
        "error_message": t["error_message"],
        "created_at": _iso(t["created_at"]),
        "started_at": _iso(t["started_at"]),
        "completed_at": _iso(t["completed_at"]),
        "tags": t["tags"],
        "metadata": t["metadata"],
    }


def build_body(event: str, snapshot: dict[str, Any], sent_at: datetime) -> str:
    return json.dumps({"event": event, "sent_at": sent_at.isoformat(), "task": snapshot})


def request_headers(task: Mapping[str, Any], event: str, delivery_id: uuid.UUID, body: str) -> dict[str, str]:
    """Every header of the delivery except the per-send Standard Webhooks timestamp/signature."""
    headers = custom_headers(task["callback_headers"])
    headers.update({
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Taskqueue-Event": event,
        "X-Taskqueue-Task-Id": str(task["id"]),
        "X-Taskqueue-Delivery-Id": str(delivery_id),
        "webhook-id": str(delivery_id),
    })
    if task["callback_secret"]:
        headers["X-Taskqueue-Signature"] = hmac_signature(task["callback_secret"], body)
    return headers


def new_delivery(
    task: Mapping[str, Any],
    event: str,
    *,
    event_id: int | None = None,
    occurred_at: datetime | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Column values of a new pending delivery of `event` for `task` (a tasks row mapping).

    `occurred_at` is set only for the automatic delivery of a status change (see the model).
    """
    delivery_id = uuid.uuid4()
    body = build_body(event, task_snapshot(task, **(overrides or {})), datetime.now(timezone.utc))
    headers = request_headers(task, event, delivery_id, body)
    return {
        "id": delivery_id,
        "task_id": task["id"],
        "owner_id": task["owner_id"],
        "event_id": event_id,
        "event": event,
        "max_attempts": task["callback_max_attempts"],
        "request_url": task["callback_url"],
        "request_headers": headers,
        "request_body": body,
        "signature": headers.get("X-Taskqueue-Signature", ""),
        "occurred_at": occurred_at,
        "replay_of_id": None,
    }


def replay(original: Mapping[str, Any]) -> dict[str, Any]:
    """A new delivery sending the same URL, body and headers as `original` under a new id."""
    delivery_id = uuid.uuid4()
    headers = dict(original["request_headers"] or {})
    headers["X-Taskqueue-Delivery-Id"] = headers["webhook-id"] = str(delivery_id)
    return {
        "id": delivery_id,
        "task_id": original["task_id"],
        "owner_id": original["owner_id"],
        "event_id": None,
        "event": original["event"],
        "max_attempts": original["max_attempts"],
        "request_url": original["request_url"],
        "request_headers": headers,
        "request_body": original["request_body"],
        "signature": original["signature"],
        "occurred_at": None,
        "replay_of_id": original["id"],
    }


def record(conn: Connection, deliveries: Iterable[dict[str, Any]]) -> list[uuid.UUID]:
    """INSERT pending deliveries, due now, skipping any that exist already under either key
    (an event read twice, a status change both streamed and reconciled); mark their tasks'
    callback `pending`. Returns the ids actually inserted."""
    rows = [{**d, "status": PENDING, "attempts": 0, "next_attempt_at": func.now()} for d in deliveries]
    if not rows:
        return []
    inserted = conn.execute(
        insert(DELIVERIES).values(rows).on_conflict_do_nothing().returning(DELIVERIES.c.id, DELIVERIES.c.task_id)
    ).all()
    task_ids = sorted({row.task_id for row in inserted})
    if task_ids:
        # Lock the tasks in one order, so concurrent recorders never deadlock on them.
        locked = select(TASKS.c.id).where(TASKS.c.id.in_(task_ids)).order_by(TASKS.c.id).with_for_update()
        conn.execute(update(TASKS).where(TASKS.c.id.in_(locked)).values(callback_status=PENDING))
    return [row.id for row in inserted]

"""The row a new task is inserted with (every column of `transitions.CREATE_COLUMNS`), from
validated fields: the one place that decides a new task's id, queue, status and defaults.

Every producer goes through it and then `transitions.create`: the gateway (POST /tasks/,
dead-letter reprocess) with fields its validators read, and the scheduler with the template
of a recurring schedule (validated by the same gateway readers when the schedule was saved).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from . import statuses, transitions
from .routing import queue_for_priority

DEFAULTS = {"priority": 5, "max_retries": 3, "retry_delay": 60, "timeout": 300, "callback_max_attempts": 5}
BLANK = {
    "payload": {}, "scheduled_at": None, "tags": [], "metadata": {}, "callback_url": "",
    "callback_headers": {}, "callback_secret": "", "callback_events": [],
}
# The task fields a schedule stores as its template (all but name and scheduled_at).
TEMPLATE_FIELDS = (
    "task_type", "payload", "priority", "max_retries", "retry_delay", "timeout", "tags", "metadata",
    "callback_url", "callback_headers", "callback_secret", "callback_events", "callback_max_attempts",
)


def row_values(owner_id: int, fields: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
    """Complete values for INSERT: id, queue, and the initial status (scheduled or queued)."""
    now = datetime.now(timezone.utc)
    scheduled_at = fields.get("scheduled_at")
    delayed = scheduled_at is not None and scheduled_at > now
    values = {
        **DEFAULTS,
        **BLANK,
        **fields,
        "id": uuid.uuid4(),
        "owner_id": owner_id,
        "queue": queue_for_priority(fields.get("priority", DEFAULTS["priority"])),
        "status": statuses.SCHEDULED if delayed else statuses.QUEUED,
        "enqueued_at": None if delayed else now,
        "idempotency_key": idempotency_key,
    }
    return {column: values[column] for column in transitions.CREATE_COLUMNS}


def from_template(owner_id: int, name: str, template: dict[str, Any]) -> dict[str, Any]:
    """The row of a task made from a schedule's template (queued at once)."""
    fields = {key: template[key] for key in TEMPLATE_FIELDS if key in template}
    return row_values(owner_id, {**fields, "name": name[:255], "scheduled_at": None})

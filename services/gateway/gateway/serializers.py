"""Public JSON shapes of the API's objects (the reference's field names)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.webhooks import task_snapshot


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def user(u) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "is_staff": u.is_staff,
        "date_joined": iso(u.date_joined),
    }


def task(row) -> dict[str, Any]:
    """A task from a Core row (`select(tasks)` or a transition's RETURNING). Never the secret.

    The webhook body's task object (shared.webhooks.task_snapshot) plus the API-only fields.
    """
    t = row._mapping
    return {
        **task_snapshot(t),
        "retry_count": t["retry_count"],
        "max_retries": t["max_retries"],
        "retry_delay": t["retry_delay"],
        "timeout": t["timeout"],
        "scheduled_at": iso(t["scheduled_at"]),
        "updated_at": iso(t["updated_at"]),
        "callback_url": t["callback_url"],
        "callback_headers": t["callback_headers"],
        "callback_events": t["callback_events"],
        "callback_max_attempts": t["callback_max_attempts"],
        "callback_status": t["callback_status"],
        "callback_attempts": t["callback_attempts"],
        "callback_last_attempt_at": iso(t["callback_last_attempt_at"]),
        "callback_last_response_code": t["callback_last_response_code"],
        "callback_last_error": t["callback_last_error"],
    }


def dead_letter(d) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "original_task": str(d.original_task_id),
        "task_name": d.task_name,
        "task_type": d.task_type,
        "payload": d.payload,
        "priority": d.priority,
        "error_message": d.error_message,
        "traceback": d.traceback,
        "retry_count": d.retry_count,
        "created_at": iso(d.created_at),
        "reprocessed": d.reprocessed,
        "reprocessed_at": iso(d.reprocessed_at),
        "reprocessed_task": str(d.reprocessed_task_id) if d.reprocessed_task_id else None,
    }


def webhook_delivery(d) -> dict[str, Any]:
    """A delivery from a Core row of webhook_deliveries (the reference's fields)."""
    return {
        "id": str(d.id),
        "task": str(d.task_id),
        "owner": d.owner_id,
        "event": d.event,
        "status": d.status,
        "attempts": d.attempts,
        "request_url": d.request_url,
        "request_headers": d.request_headers,
        "request_body": d.request_body,
        "signature": d.signature,
        "queued_at": iso(d.queued_at),
        "last_attempt_at": iso(d.last_attempt_at),
        "response_status_code": d.response_status_code,
        "response_body": d.response_body,
        "error_message": d.error_message,
        "replay_of": str(d.replay_of_id) if d.replay_of_id else None,
    }


def webhook_attempt(a) -> dict[str, Any]:
    return {
        "attempt": a.attempt,
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "created_at": iso(a.created_at),
    }

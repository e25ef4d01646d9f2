"""Stream events -> WebhookDelivery rows: exactly one per subscribed task event.

For each event that stands for a webhook (a terminal status, or a manual trigger), load the
task and, if it has a callback subscribed to that event, record a pending delivery with the
body built now from the task as the event left it. Inserts skip rows that exist under either
dedup key (shared.webhooks.record), so an event read twice, or one already recorded by the
gateway (trigger_webhook) or by the reconciliation, never makes a second delivery.

Most events call for no delivery, and they are dropped from the raw entry, before decoding it
and without a query (`_may_call_for_delivery`): those whose status stands for no webhook, and
those whose `webhook` hint (shared.events) says the task's callback does not subscribe to the
event. Trusting the hint is safe: it was computed with the rules applied here
(`shared.webhooks.subscribed`) from the task row of the very transition, and a task's callback
settings never change after creation (no endpoint updates callback_url/callback_events: tasks
are only created, cancelled, retried or announced; admin views are read-only; editing a
schedule changes the tasks it creates later). And were the delivery of a status change ever
missed, the reconciliation (reconcile.py) re-derives it from Postgres. Entries without the
hint ("unknown": relayed from the outbox, or from an older producer) and manual triggers (rare,
their delivery is recorded by the gateway already) are looked at as before: their task is loaded.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from shared import events as stream_events
from shared import statuses, webhooks

from . import metrics

log = logging.getLogger(__name__)
TASKS = webhooks.TASKS
# Raw field names and values, as redis-py returns them (bytes).
STATUS, MANUAL = b"status", b"webhook_event"
HINT, UNSUBSCRIBED = stream_events.WEBHOOK_HINT.encode(), stream_events.UNSUBSCRIBED.encode()


def _may_call_for_delivery(fields) -> bool:
    """False when the raw entry certainly calls for no delivery (see the module docstring).

    Entries not in bytes, or without a status, are left to the full decode, which logs a
    malformed one.
    """
    status = fields.get(STATUS)
    if status is None or fields.get(MANUAL):
        return True
    return webhooks.event_for(status.decode()) is not None and fields.get(HINT) != UNSUBSCRIBED


def _webhook_events(entries) -> list[tuple[str, dict[str, Any]]]:
    """(webhook event, decoded stream event) for the entries that may trigger a webhook."""
    out = []
    for entry_id, fields in entries:
        try:
            if not _may_call_for_delivery(fields):
                continue
            event = stream_events.decode(fields)
            name = webhooks.event_for(event["status"], event.get("webhook_event", ""))
            if name:
                event["task_id"] = uuid.UUID(event["task_id"])
                event["timestamp"] = datetime.fromisoformat(event["timestamp"])
                out.append((name, event))
        except (KeyError, ValueError, TypeError):
            log.error("skipping malformed stream entry", extra={"entry_id": entry_id, "fields": repr(fields)[:500]})
    return out


def _delivery(task, name: str, event: dict[str, Any]) -> dict[str, Any]:
    if event.get("webhook_event"):  # a manual trigger: the task as it is now
        return webhooks.new_delivery(task, name, event_id=event["event_id"])
    occurred = event["timestamp"]  # the commit time of the change = the task's completed_at
    overrides = {"status": event["status"], "result": event["result"], "error_message": event["error_message"]}
    if event["status"] in statuses.TERMINAL:
        overrides["completed_at"] = occurred  # the task may have been retried since
    return webhooks.new_delivery(task, name, event_id=event["event_id"], occurred_at=occurred, overrides=overrides)


def record_events(engine: Engine, entries) -> int:
    """Record the deliveries the stream entries call for; returns how many were new."""
    wanted = _webhook_events(entries)
    if not wanted:
        return 0
    with engine.begin() as conn:
        ids = sorted({event["task_id"] for _, event in wanted})
        tasks = {row.id: row._mapping for row in conn.execute(select(TASKS).where(TASKS.c.id.in_(ids)))}
        rows, seen = [], set()
        for name, event in wanted:
            task = tasks.get(event["task_id"])
            if task is None or not webhooks.subscribed(task, name) or event["event_id"] in seen:
                continue
            seen.add(event["event_id"])
            rows.append(_delivery(task, name, event))
        inserted = webhooks.record(conn, rows)
    metrics.RECORDED.labels("stream").inc(len(inserted))
    return len(inserted)

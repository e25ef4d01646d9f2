"""Webhook deliveries of a task (the reference's contract), replay and trigger_webhook.

Every path is scoped to the caller: another owner's task or delivery is a 404, like a
missing one. Deliveries are recorded pending and due now; the dispatcher's due loop (or, for
trigger_webhook, its stream reader) picks them up. Nothing here exposes callback_secret.
"""
from __future__ import annotations

import uuid

from flask import jsonify
from flask_jwt_extended import get_jwt_identity
from sqlalchemy import select

from shared import statuses, transitions, webhooks
from shared.models import WebhookAttempt

from .. import serializers
from ..errors import ApiError
from ..extensions import db
from ..openapi import params
from ..openapi.body import Body
from ..openapi.fields import Choice
from ..openapi.operations import operation
from ..openapi.responses import list_of, ref
from ..runtime import get_runtime
from ..tasks import queries
from ..validation import json_body
from . import actions, bp

DELIVERIES = webhooks.DELIVERIES
ATTEMPTS = WebhookAttempt.__table__
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
LIST = params.Query({
    "event": params.Choice(webhooks.EVENTS),
    "status": params.Choice(webhooks.DELIVERY_STATUSES),
    "limit": params.WholeNumber(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT),
})
TRIGGER = Body({"event": Choice(webhooks.EVENTS, description="Default: the event of the task's terminal status, "
                                                            "else task.updated.")})


def owner_id() -> int:
    return int(get_jwt_identity())


def _list_filters(query: dict) -> list:
    """WHERE clauses from the list's parameters: event, status."""
    return [DELIVERIES.c[name] == query[name] for name in ("event", "status") if query[name] is not None]


@bp.get("/<uuid:task_id>/webhook-deliveries/")
@operation("The webhook deliveries of a task, newest first", query=LIST, ok={200: list_of("WebhookDelivery")})
def list_deliveries(task_id: uuid.UUID):
    owner = owner_id()
    query = LIST.read()
    clauses, limit = _list_filters(query), query["limit"]
    with db.engine.connect() as conn:
        queries.get_owned(conn, task_id, owner)  # 404 for a task that is not the caller's
        rows = conn.execute(
            select(DELIVERIES)
            .where(DELIVERIES.c.task_id == task_id, DELIVERIES.c.owner_id == owner, *clauses)
            .order_by(DELIVERIES.c.queued_at.desc(), DELIVERIES.c.id)
            .limit(limit)
        ).all()
    return jsonify([serializers.webhook_delivery(r) for r in rows])


@bp.get("/<uuid:task_id>/webhook-deliveries/<uuid:delivery_id>/")
@operation("One delivery with its attempts", ok={200: ref("WebhookDeliveryDetail")})
def get_delivery(task_id: uuid.UUID, delivery_id: uuid.UUID):
    """One delivery, with `attempt_log`: every HTTP attempt made for it."""
    with db.engine.connect() as conn:
        row = actions.owned_delivery(conn, task_id, delivery_id, owner_id())
        attempts = conn.execute(
            select(ATTEMPTS).where(ATTEMPTS.c.delivery_id == delivery_id).order_by(ATTEMPTS.c.attempt, ATTEMPTS.c.id)
        ).all()
    return jsonify({**serializers.webhook_delivery(row), "attempt_log": [serializers.webhook_attempt(a) for a in attempts]})


@bp.post("/<uuid:task_id>/webhook-deliveries/<uuid:delivery_id>/replay/")
@operation("Send a delivery again (a new delivery)", ok={201: ref("WebhookDelivery")})
def replay_delivery(task_id: uuid.UUID, delivery_id: uuid.UUID):
    """A new delivery of the same body to the same URL (new id, so a new `webhook-id`)."""
    row = actions.replay(task_id, delivery_id, owner_id())
    return jsonify(serializers.webhook_delivery(row)), 201


@bp.post("/<uuid:task_id>/trigger_webhook/")
@operation("Record a webhook event for the task now (debugging)", body=TRIGGER, ok={200: ref("WebhookTriggered")})
def trigger_webhook(task_id: uuid.UUID):
    """Record a webhook event for the task now (debugging), as the reference does.

    `event` defaults, as in the reference, to the event of the task's terminal status, else
    `task.updated`. The event goes through the outbox like any status change (the notifier
    sees it too); the delivery row is recorded in the same transaction, so its id can be
    returned, and the dispatcher finds it by event id instead of recording a second one.
    """
    owner = owner_id()
    event = TRIGGER.read(json_body())["event"]
    with db.engine.begin() as conn:
        task = queries.get_owned(conn, task_id, owner)
        event = event or statuses.WEBHOOK_EVENTS.get(task.status, statuses.MANUAL_WEBHOOK_EVENT)
        row = transitions.run_one(conn, "announce", task_id=task_id, owner=owner, webhook_event=event)
        if row is None:  # deleted meanwhile
            raise ApiError(404, "Not found.")
        delivery_id = None
        if webhooks.subscribed(row._mapping, event):
            [delivery_id] = webhooks.record(conn, [webhooks.new_delivery(row._mapping, event, event_id=row.event_id)])
    get_runtime().after_commit([row])
    return jsonify({"queued": True, "event": event, "delivery_id": str(delivery_id) if delivery_id else None})

"""Webhook delivery operations shared by the JSON API and the admin dashboard."""
from __future__ import annotations

import uuid

from sqlalchemy import Connection, Row, select

from shared import webhooks

from ..errors import ApiError
from ..extensions import db

DELIVERIES = webhooks.DELIVERIES


def owned_delivery(conn: Connection, task_id: uuid.UUID, delivery_id: uuid.UUID, owner: int) -> Row:
    row = conn.execute(
        select(DELIVERIES).where(
            DELIVERIES.c.id == delivery_id, DELIVERIES.c.task_id == task_id, DELIVERIES.c.owner_id == owner
        )
    ).one_or_none()
    if row is None:
        raise ApiError(404, "Not found.")
    return row


def replay(task_id: uuid.UUID, delivery_id: uuid.UUID, owner: int) -> Row:
    """Record a new pending delivery of the same body to the same URL (new id, so a new
    `webhook-id`, `replay_of` the original); the dispatcher's due loop sends it. Returns it."""
    with db.engine.begin() as conn:
        original = owned_delivery(conn, task_id, delivery_id, owner)
        [new_id] = webhooks.record(conn, [webhooks.replay(original._mapping)])
        return conn.execute(select(DELIVERIES).where(DELIVERIES.c.id == new_id)).one()

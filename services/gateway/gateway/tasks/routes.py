from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from flask import jsonify, request
from flask_jwt_extended import get_jwt_identity
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from shared import transitions
from shared.models import Task

from .. import metrics, serializers
from ..errors import ApiError
from ..openapi.operations import operation
from ..openapi.responses import page_of, ref
from ..pagination import envelope
from ..runtime import get_runtime
from ..validation import json_body
from . import actions, bp, queries
from .fields import TASK, read_task_fields, row_values

TASKS = Task.__table__
IDEMPOTENCY_WINDOW = timedelta(hours=24)
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255},
    "description": "Replays the task first created with this key by the caller in the last 24 h.",
}


def owner_id() -> int:
    return int(get_jwt_identity())


@bp.post("/")
@operation("Create a task", body=TASK, headers=(IDEMPOTENCY_KEY,), ok={201: ref("Task")})
def create_task():
    owner = owner_id()
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None and len(key) > 255:
        raise ApiError(400, "Idempotency-Key must be at most 255 characters.")
    runtime = get_runtime()
    fields = read_task_fields(json_body(), runtime.settings.webhook_allow_private_networks)
    conn = runtime.connection()
    if key is None:  # nothing to collide with: one INSERT shared with concurrent requests
        return _created(runtime, runtime.creates.submit(conn, row_values(owner, fields)))
    original = _idempotent_original(conn, owner, key)
    if original is None:
        try:
            return _created(runtime, transitions.create(conn, row_values(owner, fields, key)))
        except IntegrityError:  # a concurrent request with the same key won the race
            original = _idempotent_original(conn, owner, key)
            if original is None:
                raise
    return jsonify(serializers.task(original)), 201, {"Idempotent-Replayed": "true"}


def _created(runtime, row):
    runtime.after_commit([row])
    metrics.TASKS_CREATED.labels(row.task_type, row.queue).inc()
    return jsonify(serializers.task(row)), 201


def _idempotent_original(conn, owner: int, key: str):
    """The task created with this key in the last 24 h; an older one releases the key."""
    match = (TASKS.c.owner_id == owner, TASKS.c.idempotency_key == key)
    row = conn.execute(select(TASKS).where(*match)).one_or_none()
    if row is None:
        return None
    if row.created_at > datetime.now(timezone.utc) - IDEMPOTENCY_WINDOW:
        return row
    conn.execute(update(TASKS).where(*match).values(idempotency_key=None))
    return None


@bp.get("/")
@operation("List the caller's tasks", query=queries.LIST, ok={200: page_of("Task")})
def list_tasks():
    query = queries.LIST.read()
    page, size = query["page"], query["page_size"]
    where = queries.list_filters(owner_id(), query)
    conn = get_runtime().connection()  # the one the session check used
    count = conn.execute(select(func.count()).select_from(TASKS).where(*where)).scalar()
    rows = conn.execute(
        select(TASKS).where(*where).order_by(*queries.ordering(query)).limit(size).offset((page - 1) * size)
    ).all()
    return jsonify(envelope(count, page, size, [serializers.task(r) for r in rows]))


@bp.get("/stats/")
@operation("Counts of the caller's tasks per status", ok={200: ref("TaskStats")})
def task_stats():
    return jsonify(queries.stats(get_runtime().connection(), owner_id()))


@bp.get("/<uuid:task_id>/")
@operation("One task", ok={200: ref("Task")})
def get_task(task_id: uuid.UUID):
    return jsonify(serializers.task(queries.get_owned(get_runtime().connection(), task_id, owner_id())))


@bp.post("/<uuid:task_id>/cancel/")
@operation("Cancel (revoke) a task", ok={200: ref("TaskActionResult")}, errors=(400,))
def cancel_task(task_id: uuid.UUID):
    row = actions.cancel(task_id, owner_id())
    return jsonify({**serializers.task(row), "message": "Task cancelled."})


@bp.post("/<uuid:task_id>/retry/")
@operation("Queue a failed or revoked task again", ok={200: ref("TaskActionResult")}, errors=(400,))
def retry_task(task_id: uuid.UUID):
    row = actions.retry(task_id, owner_id())
    return jsonify({**serializers.task(row), "message": "Task queued for retry."})

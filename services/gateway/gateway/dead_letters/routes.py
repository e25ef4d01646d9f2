from __future__ import annotations

import uuid

from flask import jsonify
from flask_jwt_extended import get_jwt_identity
from sqlalchemy import func, select

from .. import metrics, serializers
from ..extensions import db
from ..openapi import params
from ..openapi.operations import operation
from ..openapi.responses import page_of, ref
from ..pagination import PAGE, envelope
from . import actions, bp
from .actions import DEAD

LIST = PAGE + params.Query({"task_type": params.Param(), "reprocessed": params.Flag()})


def _filters(owner: int, query: dict) -> list:
    clauses = [DEAD.c.owner_id == owner]
    if query["task_type"] is not None:
        clauses.append(DEAD.c.task_type == query["task_type"])
    if query["reprocessed"] is not None:
        clauses.append(DEAD.c.reprocessed.is_(query["reprocessed"]))
    return clauses


@bp.get("/")
@operation("List the caller's dead letters", query=LIST, ok={200: page_of("DeadLetter")})
def list_dead_letters():
    query = LIST.read()
    page, size = query["page"], query["page_size"]
    where = _filters(int(get_jwt_identity()), query)
    with db.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(DEAD).where(*where)).scalar()
        rows = conn.execute(
            select(DEAD).where(*where).order_by(DEAD.c.created_at.desc(), DEAD.c.id).limit(size).offset((page - 1) * size)
        ).all()
    return jsonify(envelope(count, page, size, [serializers.dead_letter(r) for r in rows]))


@bp.get("/<uuid:entry_id>/")
@operation("One dead letter", ok={200: ref("DeadLetter")})
def get_dead_letter(entry_id: uuid.UUID):
    with db.engine.connect() as conn:
        return jsonify(serializers.dead_letter(actions.get_owned(conn, entry_id, int(get_jwt_identity()))))


@bp.post("/<uuid:entry_id>/reprocess/")
@operation("Create a fresh task from a dead letter (once)", ok={201: ref("Task")}, errors=(400,))
def reprocess(entry_id: uuid.UUID):
    """Create a fresh task from the entry; a second reprocess is a 400."""
    row = actions.reprocess(entry_id, int(get_jwt_identity()))
    metrics.TASKS_CREATED.labels(row.task_type, row.queue).inc()
    return jsonify(serializers.task(row)), 201

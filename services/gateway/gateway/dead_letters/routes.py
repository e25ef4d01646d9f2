from __future__ import annotations

import uuid

from flask import jsonify, request
from flask_jwt_extended import get_jwt_identity, jwt_required
from sqlalchemy import func, select

from .. import metrics, serializers
from ..errors import ValidationError
from ..extensions import db
from ..pagination import envelope, page_params
from . import actions, bp
from .actions import DEAD


def _filters(owner: int) -> list:
    clauses = [DEAD.c.owner_id == owner]
    if request.args.get("task_type"):
        clauses.append(DEAD.c.task_type == request.args["task_type"])
    flag = request.args.get("reprocessed")
    if flag:
        if flag.lower() not in ("true", "false", "1", "0"):
            raise ValidationError({"reprocessed": ["Must be true or false."]})
        clauses.append(DEAD.c.reprocessed.is_(flag.lower() in ("true", "1")))
    return clauses


@bp.get("/")
@jwt_required()
def list_dead_letters():
    page, size = page_params()
    where = _filters(int(get_jwt_identity()))
    with db.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(DEAD).where(*where)).scalar()
        rows = conn.execute(
            select(DEAD).where(*where).order_by(DEAD.c.created_at.desc(), DEAD.c.id).limit(size).offset((page - 1) * size)
        ).all()
    return jsonify(envelope(count, page, size, [serializers.dead_letter(r) for r in rows]))


@bp.get("/<uuid:entry_id>/")
@jwt_required()
def get_dead_letter(entry_id: uuid.UUID):
    with db.engine.connect() as conn:
        return jsonify(serializers.dead_letter(actions.get_owned(conn, entry_id, int(get_jwt_identity()))))


@bp.post("/<uuid:entry_id>/reprocess/")
@jwt_required()
def reprocess(entry_id: uuid.UUID):
    """Create a fresh task from the entry; a second reprocess is a 400."""
    row = actions.reprocess(entry_id, int(get_jwt_identity()))
    metrics.TASKS_CREATED.labels(row.task_type, row.queue).inc()
    return jsonify(serializers.task(row)), 201

from __future__ import annotations

import uuid

from flask import jsonify, request
from flask_jwt_extended import get_jwt_identity, jwt_required
from sqlalchemy import func, select, update

from shared import transitions
from shared.models import DeadLetter

from .. import serializers
from ..errors import ApiError, ValidationError
from ..extensions import db
from ..pagination import envelope, page_params
from ..runtime import get_runtime
from ..tasks.fields import row_values
from . import bp

DEAD = DeadLetter.__table__


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


def _get_owned(conn, entry_id: uuid.UUID, owner: int):
    row = conn.execute(select(DEAD).where(DEAD.c.id == entry_id, DEAD.c.owner_id == owner)).one_or_none()
    if row is None:
        raise ApiError(404, "Not found.")
    return row


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
        return jsonify(serializers.dead_letter(_get_owned(conn, entry_id, int(get_jwt_identity()))))


@bp.post("/<uuid:entry_id>/reprocess/")
@jwt_required()
def reprocess(entry_id: uuid.UUID):
    """Create a fresh task from the entry; the conditional UPDATE makes a second reprocess a 400."""
    owner = int(get_jwt_identity())
    with db.engine.connect() as conn:
        entry = _get_owned(conn, entry_id, owner)
        fields = {
            "name": f"[Reprocessed] {entry.task_name}"[:255],
            "task_type": entry.task_type,
            "payload": entry.payload,
            "priority": entry.priority,
        }
        row = transitions.create(conn, row_values(owner, fields))
        marked = conn.execute(
            update(DEAD)
            .where(DEAD.c.id == entry_id, DEAD.c.reprocessed.is_(False))
            .values(reprocessed=True, reprocessed_at=func.now(), reprocessed_task_id=row.id)
        ).rowcount
        if not marked:
            conn.rollback()
            raise ApiError(400, "Dead letter entry has already been reprocessed.")
        conn.commit()
    get_runtime().after_commit([row])
    return jsonify(serializers.task(row)), 201

"""/api/v1/schedules/: list, create, detail, replace, update, delete, pause, resume.

Writes run in one transaction that locks the schedule row (`FOR UPDATE`), so they serialise
with each other and with a scheduler firing it. `next_run_at` is computed from the
database's clock (the one the scheduler compares it with), and only when the timing
changes or the schedule is resumed: editing the name or the template keeps the next fire.
"""
from __future__ import annotations

import uuid

from flask import jsonify
from flask_jwt_extended import get_jwt_identity
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared.models import Schedule
from shared.task_types import TASK_TYPES

from ..errors import ApiError
from ..extensions import db
from ..openapi import params
from ..openapi.operations import operation
from ..openapi.responses import page_of, ref
from ..pagination import PAGE, envelope
from ..runtime import get_runtime
from ..validation import json_body
from . import bp
from .fields import SCHEDULE, TIMING_FIELDS, as_body, first_run, merge_patch, merge_put, read_schedule, to_json

SCHEDULES = Schedule.__table__
ORDERABLE = {"created_at": SCHEDULES.c.created_at, "name": SCHEDULES.c.name, "next_run_at": SCHEDULES.c.next_run_at}
FOREIGN_KEY_VIOLATION = "23503"
LIST = PAGE + params.Query({
    "enabled": params.Flag(),
    "task_type": params.Choice(TASK_TYPES),
    "ordering": params.Ordering(tuple(ORDERABLE), default=[("created_at", True)],
                                description="Comma-separated; prefix - for descending. Default -created_at."),
})


def owner_id() -> int:
    return int(get_jwt_identity())


def _allow_private() -> bool:
    return get_runtime().settings.webhook_allow_private_networks


def _locked(conn, schedule_id: uuid.UUID, owner: int):
    row = conn.execute(
        select(SCHEDULES).where(SCHEDULES.c.id == schedule_id, SCHEDULES.c.owner_id == owner).with_for_update()
    ).one_or_none()
    if row is None:
        raise ApiError(404, "Not found.")
    return row


def _db_now(conn):
    return conn.execute(select(func.now())).scalar()


def _filters(owner: int, query: dict) -> list:
    clauses = [SCHEDULES.c.owner_id == owner]
    if query["enabled"] is not None:
        clauses.append(SCHEDULES.c.enabled.is_(query["enabled"]))
    if query["task_type"] is not None:
        clauses.append(SCHEDULES.c.task_type == query["task_type"])
    return clauses


def _ordering(query: dict) -> list:
    order = [(ORDERABLE[name].desc() if desc else ORDERABLE[name].asc()).nulls_last() for name, desc in query["ordering"]]
    return order + [SCHEDULES.c.id]


@bp.get("/")
@operation("List the caller's schedules", query=LIST, ok={200: page_of("Schedule")})
def list_schedules():
    query = LIST.read()
    page, size = query["page"], query["page_size"]
    where = _filters(owner_id(), query)
    order = _ordering(query)
    with db.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(SCHEDULES).where(*where)).scalar()
        rows = conn.execute(select(SCHEDULES).where(*where).order_by(*order).limit(size).offset((page - 1) * size)).all()
    return jsonify(envelope(count, page, size, [to_json(r) for r in rows]))


@bp.post("/")
@operation("Create a recurring schedule", body=SCHEDULE, ok={201: ref("Schedule")})
def create_schedule():
    owner = owner_id()
    values = read_schedule(json_body(), _allow_private())
    try:
        with db.engine.begin() as conn:
            now = _db_now(conn)
            values["next_run_at"] = first_run(values, now)
            row = conn.execute(
                insert(SCHEDULES).values(owner_id=owner, **values).returning(*SCHEDULES.c)
            ).one()
    except IntegrityError as exc:
        if getattr(exc.orig, "pgcode", None) == FOREIGN_KEY_VIOLATION:  # the owner was deleted
            raise ApiError(401, "User not found.") from None
        raise
    return jsonify(to_json(row)), 201


@bp.get("/<uuid:schedule_id>/")
@operation("One schedule", ok={200: ref("Schedule")})
def get_schedule(schedule_id: uuid.UUID):
    with db.engine.connect() as conn:
        row = conn.execute(
            select(SCHEDULES).where(SCHEDULES.c.id == schedule_id, SCHEDULES.c.owner_id == owner_id())
        ).one_or_none()
    if row is None:
        raise ApiError(404, "Not found.")
    return jsonify(to_json(row))


@bp.patch("/<uuid:schedule_id>/")
@operation("Change some fields of a schedule", body=SCHEDULE, partial=True, ok={200: ref("Schedule")})
def update_schedule(schedule_id: uuid.UUID):
    return _save(schedule_id, partial=True)


@bp.put("/<uuid:schedule_id>/")
@operation("Replace a schedule (an absent callback_secret is kept)", body=SCHEDULE, ok={200: ref("Schedule")})
def replace_schedule(schedule_id: uuid.UUID):
    return _save(schedule_id, partial=False)


def _save(schedule_id: uuid.UUID, partial: bool):
    body = json_body()
    owner = owner_id()
    with db.engine.begin() as conn:
        current = _locked(conn, schedule_id, owner)
        stored = as_body(current)
        merged = merge_patch(stored, body) if partial else merge_put(stored, body)
        values = read_schedule(merged, _allow_private(), current=stored)
        retimed = any(values[k] != stored[k] for k in TIMING_FIELDS)
        if not values["enabled"]:
            values["next_run_at"] = None
        elif retimed or not current.enabled or current.next_run_at is None:
            values["next_run_at"] = first_run(values, _db_now(conn))
        row = conn.execute(
            update(SCHEDULES).where(SCHEDULES.c.id == schedule_id)
            .values(**values, updated_at=func.now()).returning(*SCHEDULES.c)
        ).one()
    return jsonify(to_json(row))


@bp.delete("/<uuid:schedule_id>/")
@operation("Delete a schedule", ok={204: None})
def delete_schedule(schedule_id: uuid.UUID):
    """The schedule and its fire history go; the tasks it created stay."""
    with db.engine.begin() as conn:
        gone = conn.execute(
            delete(SCHEDULES).where(SCHEDULES.c.id == schedule_id, SCHEDULES.c.owner_id == owner_id())
        ).rowcount
    if not gone:
        raise ApiError(404, "Not found.")
    return "", 204


@bp.post("/<uuid:schedule_id>/pause/")
@operation("Pause a schedule", ok={200: ref("Schedule")})
def pause_schedule(schedule_id: uuid.UUID):
    """No fire until resumed (next_run_at becomes null). Pausing a paused schedule is a no-op."""
    with db.engine.begin() as conn:
        current = _locked(conn, schedule_id, owner_id())
        if not current.enabled:
            return jsonify(to_json(current))
        row = conn.execute(
            update(SCHEDULES).where(SCHEDULES.c.id == schedule_id)
            .values(enabled=False, next_run_at=None, updated_at=func.now()).returning(*SCHEDULES.c)
        ).one()
    return jsonify(to_json(row))


@bp.post("/<uuid:schedule_id>/resume/")
@operation("Resume a schedule", ok={200: ref("Schedule")}, errors=(400,))
def resume_schedule(schedule_id: uuid.UUID):
    """Fires again from the next fire time after now: fires that fell while paused are not
    caught up. Resuming an enabled schedule is a no-op."""
    with db.engine.begin() as conn:
        current = _locked(conn, schedule_id, owner_id())
        if current.enabled and current.next_run_at is not None:
            return jsonify(to_json(current))
        values = {**as_body(current), "enabled": True}
        row = conn.execute(
            update(SCHEDULES).where(SCHEDULES.c.id == schedule_id)
            .values(enabled=True, next_run_at=first_run(values, _db_now(conn)), updated_at=func.now())
            .returning(*SCHEDULES.c)
        ).one()
    return jsonify(to_json(row))

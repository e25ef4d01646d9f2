"""Every task status change, as one SQL statement: a conditional UPDATE plus its outbox row.

Each statement is built once with SQLAlchemy, compiled once, and run as a server-side
prepared statement (see `shared.prepared`). `create`, `claim` and `succeed` also have a batch
form taking arrays: one statement for a whole batch of tasks (see `shared.group_commit`), each
row with its own guard. Each returns the changed task rows joined with their
new event (`event_id`, `event_at`, `webhook_event`), or nothing when the guard did not match
because the task had already moved on: a duplicate message, a late worker or a cancel race
can never move a task backwards or finish it twice. Callers hand the rows to
`shared.handoff.Handoff.submit` once committed.
"""
from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any, Sequence

from sqlalchemy import (
    JSON,
    Connection,
    Integer,
    Interval,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from . import statuses
from .models import DeadLetter, Task, TaskEvent
from .prepared import Prepared

TASKS = Task.__table__
EVENTS = TaskEvent.__table__
DEAD = DeadLetter.__table__

# Columns a new task is inserted with; `fields.row_values` in the gateway supplies all of them.
CREATE_COLUMNS = (
    "id", "owner_id", "name", "task_type", "payload", "priority", "queue", "status", "max_retries",
    "retry_delay", "timeout", "scheduled_at", "enqueued_at", "tags", "metadata", "idempotency_key",
    "callback_url", "callback_headers", "callback_secret", "callback_events", "callback_max_attempts",
)


# What the worker's transitions return: what it runs the task with, what the handoff publishes
# (shared.events.from_transition, with the webhook hint) and sends (a hand-back's message).
# Converting the other columns (timestamps, tags, metadata, the callback's headers...) on every
# claim and outcome would cost the worker more than the statement; API transitions return all.
WORKER_COLUMNS = (
    "id", "owner_id", "status", "task_type", "queue", "timeout", "attempts", "retry_count", "max_retries",
    "retry_delay", "result", "error_message", "enqueued_at", "callback_url", "callback_events",
)


def _statuses(values) -> list:
    """Status constants rendered into the SQL (a plain IN list, so the statement can be prepared)."""
    return [literal_column(f"'{v}'", String) for v in values]


def _with_event(changed, webhook_event=literal(""), columns: Sequence[str] | None = None):
    """Append one TaskEvent per changed row and select both (of the task, only `columns` if given)."""
    event = (
        insert(EVENTS)
        .from_select(
            ["task_id", "owner_id", "status", "result", "error_message", "webhook_event"],
            select(changed.c.id, changed.c.owner_id, changed.c.status, changed.c.result, changed.c.error_message, webhook_event),
        )
        .returning(EVENTS.c.id, EVENTS.c.task_id, EVENTS.c.created_at, EVENTS.c.webhook_event)
        .cte("e")
    )
    return select(
        *([changed.c[name] for name in columns] if columns else [changed]),
        event.c.id.label("event_id"),
        event.c.created_at.label("event_at"),
        event.c.webhook_event.label("webhook_event"),
    ).join_from(
        changed, event, event.c.task_id == changed.c.id
    )


def _update(from_statuses: tuple, to_status: str, sets: dict, guards: Sequence = (), picked=None):
    where = [TASKS.c.status.in_(_statuses(from_statuses)), *guards]
    where.append(TASKS.c.id == (picked.c.id if picked is not None else bindparam("task_id")))
    changed = (
        update(TASKS)
        .where(*where)
        .values(status=to_status, updated_at=func.now(), **sets)
        .returning(*TASKS.c)
        .cte("t")
    )
    return changed


def _unnest(**columns):
    """`unnest(CAST(CAST($1 AS TEXT[]) AS t1[]), ...) AS v(col1, ...)`, from col=(parameter, type):
    one row per item of a batch, its values passed as one array of strings per column (psycopg2
    sends a list as a text array, which EXECUTE would not coerce to uuid[] or jsonb[] itself)."""
    arrays = [cast(cast(bindparam(param), ARRAY(String)), ARRAY(type_)) for param, type_ in columns.values()]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name="v")


# Parameter names never equal a column name: SQLAlchemy reserves those for SET clauses.
OWNER = TASKS.c.owner_id == bindparam("owner")
OUR_CLAIM = TASKS.c.attempts == bindparam("claim")
ERROR_SETS = {"error_message": bindparam("error"), "traceback": bindparam("error_traceback"), "retry_count": bindparam("failures")}


@cache
def _statements() -> dict[str, Any]:
    done = {"completed_at": func.now(), "lease_expires_at": None}
    s = {}
    # The hot three come in two forms: one row (plain parameters) and a batch (arrays, see
    # _unnest, for shared.group_commit). A lone row takes the first: measured here, the array
    # form of create cost 0.3 ms of Postgres CPU for one row against 0.19 ms.
    created = insert(TASKS).values({c: bindparam(f"new_{c}", type_=TASKS.c[c].type) for c in CREATE_COLUMNS})
    s["create"] = _with_event(created.returning(*TASKS.c).cte("t"))
    new = _unnest(**{c: (f"new_{c}", TASKS.c[c].type) for c in CREATE_COLUMNS})
    created = insert(TASKS).from_select(CREATE_COLUMNS, select(*(new.c[c] for c in CREATE_COLUMNS)))
    s["create_batch"] = _with_event(created.returning(*TASKS.c).cte("t"))
    claim_sets = {
        "started_at": func.now(), "completed_at": None, "attempts": TASKS.c.attempts + 1,
        "lease_expires_at": func.now() + bindparam("lease", type_=Interval()), "worker_id": bindparam("worker"),
    }
    claimed = (*WORKER_COLUMNS, "payload")
    s["claim"] = _with_event(_update((statuses.QUEUED,), statuses.RUNNING, claim_sets), columns=claimed)
    s["claim_batch"] = _with_event(_update((statuses.QUEUED,), statuses.RUNNING, claim_sets,
                                           picked=_unnest(id=("task_ids", TASKS.c.id.type))), columns=claimed)
    s["succeed"] = _with_event(_update((statuses.RUNNING,), statuses.SUCCESS, {
        **done, "result": bindparam("outcome", type_=JSONB()),
    }, [OUR_CLAIM]), columns=WORKER_COLUMNS)
    succeeded = _unnest(id=("task_ids", TASKS.c.id.type), claim=("claims", Integer()), outcome=("outcomes", JSONB()))
    s["succeed_batch"] = _with_event(_update((statuses.RUNNING,), statuses.SUCCESS, {
        **done, "result": succeeded.c.outcome,
    }, [TASKS.c.attempts == succeeded.c.claim], picked=succeeded), columns=WORKER_COLUMNS)
    s["retry_later"] = _with_event(_update((statuses.RUNNING,), statuses.RETRY, {
        **ERROR_SETS, "lease_expires_at": None, "scheduled_at": func.now() + bindparam("delay", type_=Interval()),
    }, [OUR_CLAIM]), columns=WORKER_COLUMNS)
    failed = _update((statuses.RUNNING,), statuses.FAILURE, {**done, **ERROR_SETS}, [OUR_CLAIM])
    s["fail"] = _with_event(failed, columns=WORKER_COLUMNS).add_cte(
        insert(DEAD).from_select(
            ["owner_id", "original_task_id", "task_name", "task_type", "payload", "priority",
             "error_message", "traceback", "retry_count"],
            select(failed.c.owner_id, failed.c.id, failed.c.name, failed.c.task_type, failed.c.payload,
                   failed.c.priority, failed.c.error_message, failed.c.traceback, failed.c.retry_count),
        ).cte("dead")
    )
    s["hand_back"] = _with_event(_update((statuses.RUNNING,), statuses.QUEUED, {
        "lease_expires_at": None, "started_at": None, "enqueued_at": func.now(),
    }, [OUR_CLAIM]), columns=WORKER_COLUMNS)
    s["cancel"] = _with_event(_update(statuses.CANCELLABLE, statuses.REVOKED, done, [OWNER]))
    s["manual_retry"] = _with_event(_update(statuses.RETRYABLE, statuses.QUEUED, {
        "retry_count": 0, "attempts": 0, "result": None, "error_message": "", "traceback": "",
        "started_at": None, "completed_at": None, "scheduled_at": None, "lease_expires_at": None,
        "enqueued_at": func.now(),
    }, [OWNER]))
    due = (
        select(TASKS.c.id)
        .where(TASKS.c.status.in_(_statuses(statuses.WAITING)), TASKS.c.scheduled_at <= func.now())
        .order_by(TASKS.c.scheduled_at)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    s["release_due"] = _with_event(_update(statuses.WAITING, statuses.QUEUED, {"enqueued_at": func.now()}, picked=due))
    expired = (
        select(TASKS.c.id)
        .where(TASKS.c.status.in_(_statuses([statuses.RUNNING])), TASKS.c.lease_expires_at < func.now())
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    s["recover_lease"] = _with_event(_update((statuses.RUNNING,), statuses.QUEUED, {
        "enqueued_at": func.now(), "lease_expires_at": None, "started_at": None, "worker_id": "",
    }, picked=expired))
    current = select(TASKS).where(TASKS.c.id == bindparam("task_id"), OWNER).cte("t")
    s["announce"] = _with_event(current, bindparam("webhook_event"))
    return s


@cache
def _prepared(transition: str) -> Prepared:
    return Prepared.from_statement(transition, _statements()[transition])


def run(conn: Connection, transition: str, /, **params: Any) -> list:
    """Execute the named transition; returns the changed rows (empty when the guard failed).

    Rows have attribute access (`row.status`) and `row._mapping`, like SQLAlchemy rows.
    """
    return _prepared(transition).run(conn, **params)


def by_id(rows: list) -> dict:
    """Transition rows by task id (as text): how a group commit hands each submitter its row."""
    return {str(row.id): row for row in rows}


def run_one(conn: Connection, transition: str, /, **params: Any):
    rows = run(conn, transition, **params)
    return rows[0] if rows else None


def create(conn: Connection, values: dict[str, Any]):
    """INSERT a task (every column of CREATE_COLUMNS) with its first event."""
    return run(conn, "create", **{f"new_{c}": values[c] for c in CREATE_COLUMNS})[0]


def create_many(conn: Connection, rows: list[dict[str, Any]]) -> list:
    """INSERT tasks (dicts of every column of CREATE_COLUMNS) with their first events, in one
    statement; returns the new rows in no particular order."""
    if len(rows) == 1:
        return [create(conn, rows[0])]
    arrays = {f"new_{c}": [_as_text(r[c], TASKS.c[c].type) for r in rows] for c in CREATE_COLUMNS}
    return run(conn, "create_batch", **arrays)


def claim_many(conn: Connection, task_ids: list[str], lease, worker: str) -> list:
    """queued -> running for each task (a worker's claim), in one statement."""
    if len(task_ids) == 1:
        return run(conn, "claim", task_id=task_ids[0], lease=lease, worker=worker)
    return run(conn, "claim_batch", task_ids=task_ids, lease=lease, worker=worker)


def succeed_many(conn: Connection, outcomes: list[tuple]) -> list:
    """running -> success for each (task id, our claim, result), in one statement."""
    if len(outcomes) == 1:
        task_id, claim, result = outcomes[0]
        return run(conn, "succeed", task_id=task_id, claim=claim, outcome=result)
    return run(conn, "succeed_batch", task_ids=[o[0] for o in outcomes], claims=[str(o[1]) for o in outcomes],
               outcomes=[json.dumps(o[2]) for o in outcomes])


def _as_text(value: Any, type_) -> str | None:
    """A value as the text Postgres parses into its column (see _unnest)."""
    if isinstance(type_, JSON):
        return json.dumps(value)
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)



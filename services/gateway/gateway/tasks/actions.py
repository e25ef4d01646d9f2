"""Task operations shared by the JSON API and the admin dashboard: cancel and manual retry.

Both are one guarded transition (`shared.transitions`: a conditional UPDATE plus its outbox
row, for the task's owner), then the post-commit handoff (the event on the stream and, for a
retry, the Dramatiq message). The API calls them for the caller's own tasks; the admin calls
them with the task's owner, so a staff action follows exactly the same status rules.
"""
from __future__ import annotations

import uuid

from shared import transitions

from ..errors import ApiError
from ..runtime import get_runtime
from . import queries

VERBS = {"cancel": "cancel", "manual_retry": "retry"}


def cancel(task_id: uuid.UUID, owner: int):
    """Revoke the task (pending/scheduled/queued/retry/running); 400 when it has finished."""
    return _transition_or_400(task_id, "cancel", owner)


def retry(task_id: uuid.UUID, owner: int):
    """Queue a failed or revoked task again with a fresh retry budget; 400 otherwise."""
    return _transition_or_400(task_id, "manual_retry", owner)


def _transition_or_400(task_id: uuid.UUID, transition: str, owner: int):
    runtime = get_runtime()
    conn = runtime.connection()
    row = transitions.run_one(conn, transition, task_id=task_id, owner=owner)
    if row is None:
        current = queries.get_owned(conn, task_id, owner)  # 404 when not the owner's
        raise ApiError(400, f"Cannot {VERBS[transition]} task with status: {current.status}")
    runtime.after_commit([row])
    return row

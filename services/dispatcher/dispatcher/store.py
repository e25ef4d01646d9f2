"""The lease lifecycle of a delivery in Postgres: claim when due, renew while sending, complete.

A pending delivery is due when `next_attempt_at <= now()`. Claiming it (FOR UPDATE SKIP
LOCKED, so replicas never take the same row) counts the attempt, stamps `claimed_by` and
pushes `next_attempt_at` to the end of a lease that the claimer renews while the send runs.
Completing it records the attempt and either finishes the row or sets its retry time.
If the claimer dies (kill -9, node loss) the lease runs out, the row is due again, and the
next claimer records the cut-short attempt as interrupted and sends again: nothing pending
is ever lost, and receivers dedupe the rare double send by `webhook-id`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from shared.webhooks import FAILURE, PENDING, SUCCESS

CLAIM = text("""
WITH picked AS (
    SELECT id, claimed_by AS previous_holder
    FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, claimed_by = :me, next_attempt_at = now() + make_interval(secs => :lease)
FROM picked, tasks t
WHERE d.id = picked.id AND t.id = d.task_id
RETURNING d.id, d.task_id, d.event, d.attempts, d.max_attempts, d.request_url, d.request_headers,
          d.request_body, t.callback_secret, picked.previous_holder
""")

RECORD_ATTEMPT = text("""
INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)
VALUES (:id, :attempt, :code, :error, :duration_ms)
""")

RENEW = text("""
UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => :lease)
WHERE id = ANY(CAST(:ids AS uuid[])) AND claimed_by = :me AND status = 'pending'
""")

# Guarded by holder and attempt number: a sender whose lease was taken over changes nothing.
FINISH = text("""
UPDATE webhook_deliveries
SET status = :status, claimed_by = '', last_attempt_at = now(),
    next_attempt_at = CASE WHEN CAST(:delay AS double precision) IS NULL THEN NULL
                           ELSE now() + make_interval(secs => CAST(:delay AS double precision)) END,
    response_status_code = :code, response_body = :body, error_message = :error
WHERE id = :id AND claimed_by = :me AND attempts = :attempt AND status = 'pending'
RETURNING task_id
""")

# The reference's per-task summary: the latest attempt of any of the task's deliveries.
SUMMARIZE_TASK = text("""
UPDATE tasks
SET callback_status = :status, callback_attempts = callback_attempts + :counted,
    callback_last_attempt_at = now(), callback_last_response_code = :code, callback_last_error = :error
WHERE id = :task_id
""")

PENDING_RETRIES = text("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND claimed_by = '' AND attempts > 0")


@dataclass(frozen=True)
class Claimed:
    """A delivery this dispatcher holds the lease of, with what sending it needs."""

    id: uuid.UUID
    task_id: uuid.UUID
    event: str
    attempt: int  # the number of the attempt about to be made (1-based)
    max_attempts: int
    url: str
    headers: dict[str, str]
    body: str
    secret: str
    interrupted: bool  # the previous attempt's sender died before finishing it


@dataclass(frozen=True)
class Outcome:
    status: str  # the delivery's new status: pending (retry), success or failure
    code: int | None
    error: str
    response_body: str = ""
    delay: float | None = None  # seconds until the retry, when status is pending
    duration_ms: int | None = None
    record_attempt: bool = True


class Store:
    def __init__(self, engine: Engine, me: str, lease_seconds: float):
        self.engine, self.me, self.lease = engine, me, float(lease_seconds)

    def claim(self, limit: int) -> list[Claimed]:
        """Take up to `limit` due deliveries; record the attempts their dead senders cut short."""
        with self.engine.begin() as conn:
            rows = conn.execute(CLAIM, {"limit": limit, "me": self.me, "lease": self.lease}).all()
            cut_short = [
                {"id": r.id, "attempt": r.attempts - 1, "code": None, "duration_ms": None,
                 "error": f"Interrupted: dispatcher {r.previous_holder} stopped before the attempt finished"}
                for r in rows if r.previous_holder
            ]
            if cut_short:
                conn.execute(RECORD_ATTEMPT, cut_short)
        return [
            Claimed(r.id, r.task_id, r.event, r.attempts, r.max_attempts, r.request_url, dict(r.request_headers or {}),
                    r.request_body, r.callback_secret or "", bool(r.previous_holder))
            for r in rows
        ]

    def renew(self, ids: list[uuid.UUID]) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(RENEW, {"ids": [str(i) for i in ids], "lease": self.lease, "me": self.me})

    def complete(self, delivery: Claimed, outcome: Outcome) -> bool:
        """Record the attempt and its consequence; False when the lease had been taken over."""
        params: dict[str, Any] = {
            "id": delivery.id, "attempt": delivery.attempt, "me": self.me, "status": outcome.status,
            "delay": outcome.delay if outcome.status == PENDING else None, "code": outcome.code,
            "body": outcome.response_body, "error": outcome.error, "duration_ms": outcome.duration_ms,
        }
        with self.engine.begin() as conn:
            if outcome.record_attempt:
                conn.execute(RECORD_ATTEMPT, params)
            held = conn.execute(FINISH, params).first()
            if held is not None:
                conn.execute(SUMMARIZE_TASK, {
                    "task_id": held.task_id, "status": outcome.status, "code": outcome.code,
                    "error": outcome.error, "counted": 1 if outcome.record_attempt else 0,
                })
        return held is not None

    def pending_retries(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(PENDING_RETRIES).scalar() or 0)


__all__ = ["Claimed", "Outcome", "Store", "PENDING", "SUCCESS", "FAILURE"]

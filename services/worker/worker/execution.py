"""Running one task: claim it, run its handler, record the outcome.

Every step is a conditional transition (shared.transitions), so a duplicate message, a
stale worker or a cancel race can never run a finished task or finish a task twice.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import traceback as tb
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from shared import statuses, transitions
from shared.backoff import backoff_seconds
from shared.group_commit import GroupCommit
from shared.handoff import Handoff

from . import metrics
from .context import TaskContext, TaskError, TaskInterrupted, TaskTimeout
from .handlers import get_handler

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 4000
MAX_TRACEBACK_CHARS = 16000


@dataclass
class Outcome:
    status: str  # success, error, or interrupted
    result: object = None
    error: str = ""
    traceback: str = ""
    reason: str = ""


@dataclass
class Executor:
    engine: Engine
    handoff: Handoff
    worker_id: str
    lease_seconds: int
    allow_private_networks: bool
    active: dict[str, TaskContext] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Claims and successes of concurrent threads go to Postgres as one statement (group commit).
    claims: GroupCommit = field(init=False)
    successes: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.claims = GroupCommit(self._claim_batch, key=str)
        self.successes = GroupCommit(self._succeed_batch, key=lambda item: item[0])

    def execute(self, task_id: str) -> None:
        # One pool checkout for the claim and the outcome (the pool has a connection per thread).
        with self.engine.connect() as conn:
            claimed = self.claims.submit(conn, task_id)
            if claimed is None:
                metrics.STALE_MESSAGES.inc()
                return
            metrics.STARTED.labels(claimed.task_type, claimed.queue).inc()
            ctx = TaskContext(task_id, claimed.timeout, allow_private_networks=self.allow_private_networks)
            with self.lock:
                self.active[task_id] = ctx
            metrics.RUNNING.inc()
            started = time.perf_counter()
            try:
                outcome = run_handler(claimed.task_type, claimed.payload, ctx)
            finally:
                # No longer interruptible: the lease heartbeat leaves it alone from here on (its
                # outcome may commit in another thread's statement before ours returns).
                with self.lock:
                    self.active.pop(task_id, None)
                metrics.RUNNING.dec()
                metrics.DURATION.labels(claimed.task_type).observe(time.perf_counter() - started)
            self._record(conn, claimed, outcome)

    def interrupt_all(self, reason: str) -> None:
        with self.lock:
            for ctx in self.active.values():
                ctx.interrupt(reason)

    def _commit(self, rows: list):
        """Hand the rows of a committed transition (autocommit engine: one statement, one round
        trip) to the handoff (publish events, send messages); returns the first, if any."""
        self.handoff.submit(rows)
        return rows[0] if rows else None

    def _claim_batch(self, conn, task_ids: list[str]) -> dict:
        rows = transitions.claim_many(conn, task_ids, timedelta(seconds=self.lease_seconds), self.worker_id)
        self.handoff.submit(rows)
        return transitions.by_id(rows)

    def _succeed_batch(self, conn, outcomes: list[tuple]) -> dict:
        """outcomes: (task id, our claim, result)."""
        rows = transitions.succeed_many(conn, outcomes)
        self.handoff.submit(rows)
        return transitions.by_id(rows)

    def _record(self, conn, task, outcome: Outcome) -> None:
        """Commit the outcome of our claim; `attempts` guards against a lease taken over meanwhile."""
        ours = {"task_id": task.id, "claim": task.attempts}
        if outcome.status == "success":
            final = self.successes.submit(conn, (str(task.id), task.attempts, outcome.result))
        elif outcome.status == "interrupted":
            if outcome.reason == "shutdown":  # hand the task back so another worker runs it
                self._commit(transitions.run(conn, "hand_back", **ours))
            metrics.FINISHED.labels(task.task_type, outcome.reason).inc()
            return
        else:
            final = self._commit(self._fail(conn, task, ours, outcome))
            if final is not None and final.status == statuses.RETRY:
                metrics.RETRIES.labels(task.task_type).inc()
            elif final is not None and final.status == statuses.FAILURE:  # the dead letter came with it
                metrics.DEAD_LETTERED.labels(task.task_type).inc()
        metrics.FINISHED.labels(task.task_type, final.status if final else "stale").inc()

    @staticmethod
    def _fail(conn, task, ours: dict, outcome: Outcome):
        """Retry with backoff or, at the max_retries-th failure, failure plus a dead letter."""
        failures = task.retry_count + 1
        error = {"error": outcome.error, "error_traceback": outcome.traceback, "failures": failures}
        if failures < max(task.max_retries, 1):
            delay = timedelta(seconds=backoff_seconds(task.retry_delay, failures))
            return transitions.run(conn, "retry_later", **ours, **error, delay=delay)
        return transitions.run(conn, "fail", **ours, **error)


def run_handler(task_type: str, payload, ctx: TaskContext) -> Outcome:
    """Run the handler and turn whatever happens into an Outcome; never raises."""
    try:
        handler = get_handler(task_type)
        if handler is None:
            raise TaskError(f"Unknown task type: {task_type}")
        result = handler(payload, ctx)
        json.dumps(result)  # a result we cannot store is a failure, not a crashed worker
        return Outcome("success", result=result)
    except TaskInterrupted as exc:
        return Outcome("interrupted", reason=exc.reason)
    except (TaskError, TaskTimeout) as exc:
        return Outcome("error", error=str(exc)[:MAX_ERROR_CHARS])
    except Exception as exc:  # noqa: BLE001 - any handler bug fails the task, not the worker
        return Outcome(
            "error",
            error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS],
            traceback=tb.format_exc()[-MAX_TRACEBACK_CHARS:],
        )

"""The scheduler's snapshot gauges: messages waiting per Dramatiq queue and tasks per status.

Refreshed by the `refresh_gauges` job every SCHEDULER_GAUGES_SECONDS (15 s by default), cheaply:
one pipelined LLEN per queue, and one `SELECT status, count(*) FROM tasks GROUP BY status` in a
read-only transaction with a statement timeout, so a huge table can never pile the job up.
Every scheduler replica exports the same figures: aggregate them with max(), not sum().
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
from sqlalchemy import Engine, func, select, text

from shared import statuses
from shared.broker import queue_depths
from shared.models import Task

from . import metrics

TASKS = Task.__table__
STATEMENT_TIMEOUT_MS = 5000
COUNTS_BY_STATUS = select(TASKS.c.status, func.count()).group_by(TASKS.c.status)


@dataclass
class Gauges:
    engine: Engine
    redis: redis.Redis

    def refresh(self) -> None:
        """Refresh both; a Redis or Postgres failure leaves the other refreshed and is raised
        afterwards (the job wrapper logs and counts it; the gauges keep their last values)."""
        failure = None
        for refresh in (self.refresh_queue_depths, self.refresh_status_counts):
            try:
                refresh()
            except Exception as exc:  # noqa: BLE001
                failure = failure or exc
        if failure is not None:
            raise failure

    def refresh_queue_depths(self) -> dict[str, int]:
        depths = queue_depths(self.redis)
        for queue, depth in depths.items():
            metrics.QUEUE_DEPTH.labels(queue).set(depth)
        return depths

    def refresh_status_counts(self) -> dict[str, int]:
        with self.engine.begin() as conn:
            conn.execute(text(f"SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
            found = dict(conn.execute(COUNTS_BY_STATUS).all())
        counts = {status: int(found.get(status, 0)) for status in statuses.ALL}
        for status, count in counts.items():
            metrics.TASKS_BY_STATUS.labels(status).set(count)
        return counts

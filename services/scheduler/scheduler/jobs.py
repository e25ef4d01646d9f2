"""The scheduler's periodic jobs. Each is safe with several scheduler replicas running:
row-level `FOR UPDATE SKIP LOCKED` for releases, recoveries and schedule fires, a transaction-scoped
advisory lock for the lost-message sweep, and conditional transitions everywhere.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

import redis
from sqlalchemy import Engine, and_, func, or_, select, text, update

from shared import events, statuses, transitions
from shared.broker import TaskBroker, enqueue_task, make_broker, missing_messages
from shared.handoff import Handoff
from shared.models import Task
from shared.settings import Settings

from . import metrics, recurring

log = logging.getLogger(__name__)
TASKS = Task.__table__
BATCH = 1000
SWEEP_LOCK = 7_413_002


@dataclass
class Jobs:
    settings: Settings
    engine: Engine
    redis: redis.Redis
    handoff: Handoff
    sweep_cursor: tuple = field(default=None)
    broker: TaskBroker | None = field(default=None)  # made on first use (requeue_dead_workers)

    def release_due(self) -> int:
        """Move due `scheduled`/`retry` tasks to `queued` and send them, batch after batch."""
        total = 0
        while True:
            with self.engine.begin() as conn:
                rows = transitions.run(conn, "release_due", limit=BATCH)
            self.handoff.submit(rows)
            now = datetime.now(timezone.utc)
            for row in rows:
                metrics.LATENESS.observe(max(0.0, (now - row.scheduled_at).total_seconds()))
            metrics.RELEASED.inc(len(rows))
            total += len(rows)
            if len(rows) < BATCH:
                return total

    def recover_leases(self) -> int:
        """Requeue `running` tasks whose worker stopped renewing its lease (crash, kill -9)."""
        with self.engine.begin() as conn:
            rows = transitions.run(conn, "recover_lease", limit=BATCH)
        self.handoff.submit(rows)
        if rows:
            log.warning("recovered tasks with expired leases", extra={"count": len(rows)})
        metrics.LEASES_RECOVERED.inc(len(rows))
        return len(rows)

    def resend_lost(self) -> int:
        """Re-send `queued` tasks whose Dramatiq message is gone (Redis restart, crash before send).

        Walks the queued tasks older than LOST_MESSAGE_AFTER_SECONDS with a keyset cursor,
        one batch per run, asking Redis which messages still exist. First, messages that a
        worker fetched but never acknowledged before it died go back on their queues.
        """
        if self.broker is None:
            self.broker = make_broker(self.settings.redis_url)
        self.broker.requeue_dead_workers()
        with self.engine.begin() as conn:
            if not conn.execute(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK))).scalar():
                return 0  # another replica is sweeping
            candidates = conn.execute(self._sweep_query()).all()
            self.sweep_cursor = (candidates[-1].enqueued_at, candidates[-1].id) if len(candidates) == BATCH else None
            lost = missing_messages(self.redis, [(str(r.id), r.queue, r.enqueued_at) for r in candidates])
            if not lost:
                return 0
            resent = conn.execute(
                update(TASKS)
                .where(TASKS.c.id.in_(lost), TASKS.c.status == statuses.QUEUED)
                .values(enqueued_at=func.now())
                .returning(TASKS.c.id, TASKS.c.queue, TASKS.c.enqueued_at)
            ).all()
        for row in resent:
            enqueue_task(self.redis, row.id, row.queue, row.enqueued_at)
        log.warning("re-sent queued tasks whose message was lost", extra={"count": len(resent)})
        metrics.LOST_REQUEUED.inc(len(resent))
        return len(resent)

    def _sweep_query(self):
        age = text(f"interval '{int(self.settings.lost_message_after_seconds)} seconds'")
        query = select(TASKS.c.id, TASKS.c.queue, TASKS.c.enqueued_at).where(
            TASKS.c.status == statuses.QUEUED, TASKS.c.enqueued_at < func.now() - age
        )
        if self.sweep_cursor is not None:
            at, last_id = self.sweep_cursor
            query = query.where(or_(TASKS.c.enqueued_at > at, and_(TASKS.c.enqueued_at == at, TASKS.c.id > last_id)))
        return query.order_by(TASKS.c.enqueued_at, TASKS.c.id).limit(BATCH)

    def fire_schedules(self) -> int:
        """Create the task of every due recurring schedule fire, exactly once (see recurring)."""
        return recurring.fire_due(self.engine, self.handoff.submit, self.settings.schedule_misfire_grace_seconds)

    def relay_events(self) -> int:
        count = events.relay_unpublished(
            self.redis, self.engine, self.settings.events_stream, self.settings.events_maxlen, older_than_s=5
        )
        metrics.EVENTS_RELAYED.inc(count)
        return count

"""Re-derive deliveries whose stream event Redis lost.

Postgres is the source of truth, Redis may lose the stream. Periodically, find tasks that
finished within the last `webhook_reconcile_hours`, have a callback subscribed to their
terminal event, and have no delivery for that status change (matched on the key
(task_id, event, occurred_at = completed_at) that stream-recorded deliveries carry too),
and record the missing deliveries. Tasks finished less than one interval ago are left to the
stream. Only the latest terminal state of a task can be reconciled: if it was retried since,
it is running again and the lost event is not re-derived. One replica at a time (an advisory
lock); the unique key makes even concurrent runs harmless.
"""
from __future__ import annotations

import logging

from sqlalchemy import Engine, func, select, text

from shared import webhooks
from shared.settings import Settings

from . import metrics

log = logging.getLogger(__name__)
LOCK = 7_413_003
BATCH = 500
EVENT_OF_STATUS = "CASE t.status WHEN 'success' THEN 'task.succeeded' WHEN 'failure' THEN 'task.failed' ELSE 'task.revoked' END"
MISSING = text(f"""
SELECT t.* FROM tasks t
WHERE t.callback_url <> ''
  AND t.completed_at > now() - make_interval(secs => :lookback)
  AND t.completed_at < now() - make_interval(secs => :grace)
  AND t.status IN ('success', 'failure', 'revoked')
  AND (t.callback_events = '[]'::jsonb OR t.callback_events @> jsonb_build_array({EVENT_OF_STATUS}))
  AND NOT EXISTS (
      SELECT 1 FROM webhook_deliveries d
      WHERE d.task_id = t.id AND d.event = {EVENT_OF_STATUS} AND d.occurred_at = t.completed_at
  )
ORDER BY t.completed_at
LIMIT :limit
""")


def reconcile(engine: Engine, settings: Settings) -> int:
    """Record the missing deliveries; returns how many."""
    params = {"lookback": settings.webhook_reconcile_hours * 3600, "grace": settings.webhook_reconcile_seconds,
              "limit": BATCH}
    total = 0
    while True:
        with engine.begin() as conn:
            if not conn.execute(select(func.pg_try_advisory_xact_lock(LOCK))).scalar():
                return total  # another replica is on it
            tasks = conn.execute(MISSING, params).all()
            rows = [
                webhooks.new_delivery(t._mapping, webhooks.event_for(t.status), occurred_at=t.completed_at)
                for t in tasks
            ]
            inserted = webhooks.record(conn, rows)
        total += len(inserted)
        if inserted:
            metrics.RECORDED.labels("reconcile").inc(len(inserted))
            log.warning("recorded deliveries whose stream event was lost", extra={"count": len(inserted)})
        if len(tasks) < BATCH or not inserted:
            return total

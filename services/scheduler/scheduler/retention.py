"""Retention: the scheduler's `apply_retention` job, which keeps Postgres tables bounded.

What goes (each rule is off when its setting is 0, "keep forever"):

* Finished tasks (success, failure, revoked) completed more than RETENTION_TASKS_DAYS ago,
  together with everything that hangs off them: their webhook deliveries and attempts and
  their reprocessed dead letters. Two kinds are kept past that age:
  - a failed task whose dead letter was not reprocessed: the dead-letter list is an
    operator's work list, and deleting the task would delete the entry (ON DELETE CASCADE)
    before anyone looked at it. It goes once the entry is reprocessed or expires (below);
  - a task with a webhook delivery still pending: deleting it would drop a send in progress.
* Dead letters created more than RETENTION_DEAD_LETTERS_DAYS ago, reprocessed or not
  (default 0: kept until reprocessed). Their failed task then follows under the task rule.
* Finished webhook deliveries (and their attempts) queued more than RETENTION_DELIVERIES_DAYS
  ago, and never before the dispatcher's reconciliation window (WEBHOOK_RECONCILE_HOURS) has
  passed: inside it, a missing delivery of a finished task is re-derived and sent again.
* Schedule fires older than RETENTION_TASKS_DAYS, but at least a day: a fire record is the
  second guard against firing the same time twice, which only matters near `next_run_at`.
* Revoked refresh tokens and ended sessions an hour past their expiry (always on): every
  token they refuse has expired by then (the hour covers clock skew between hosts).

Not here, because they are bounded already: `task_events` (the outbox; rows are deleted once
published, and the relay job publishes leftovers), the `taskqueue:events` stream (every XADD
trims it to about EVENTS_STREAM_MAXLEN entries: its memory is bounded by that count times the
entry size whatever the rate, which an age-based trim would not improve, and trimming by age
could drop entries a lagging dispatcher has not read yet), and Dramatiq queues (acked
messages are removed).

How:
* One short transaction per batch of RETENTION_BATCH_SIZE rows, oldest first through the
  indexes of migration 0005, under statement and lock timeouts; at most MAX_BATCHES per rule
  per run, so a first run over a large backlog neither holds the job nor delays a SIGTERM for
  long (the next run continues).
* Rows are picked FOR UPDATE SKIP LOCKED: several scheduler replicas split the work instead
  of deleting the same rows, and no batch waits on a row the API or the dispatcher is changing.
* Each batch is one statement whose data-modifying CTEs delete the children before the parent
  (ON DELETE CASCADE then finds nothing left), so `taskqueue_scheduler_retention_deleted_total{table}`
  counts every table.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Engine, TextClause, text

from shared.settings import Settings

from . import metrics

log = logging.getLogger(__name__)
DAY = 86_400.0
MAX_BATCHES = 20
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 5_000
TOKEN_GRACE_SECONDS = 3_600.0
CUTOFF = "now() - make_interval(secs => :age)"

TASKS = text(f"""
WITH picked AS (
    SELECT t.id FROM tasks t
    WHERE t.status IN ('success', 'failure', 'revoked') AND t.completed_at < {CUTOFF}
      AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.original_task_id = t.id AND NOT d.reprocessed)
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries w WHERE w.task_id = t.id AND w.status = 'pending')
    ORDER BY t.completed_at LIMIT :limit
    FOR UPDATE SKIP LOCKED
),
deliveries AS (SELECT id FROM webhook_deliveries WHERE task_id IN (SELECT id FROM picked)),
attempts AS (DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM deliveries) RETURNING 1),
gone_deliveries AS (DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM deliveries) RETURNING 1),
gone_dead AS (DELETE FROM dead_letters WHERE original_task_id IN (SELECT id FROM picked) RETURNING 1),
gone AS (DELETE FROM tasks WHERE id IN (SELECT id FROM picked) RETURNING 1)
SELECT (SELECT count(*) FROM picked) AS picked, (SELECT count(*) FROM gone) AS tasks,
       (SELECT count(*) FROM gone_dead) AS dead_letters, (SELECT count(*) FROM gone_deliveries) AS webhook_deliveries,
       (SELECT count(*) FROM attempts) AS webhook_attempts
""")

DELIVERIES = text(f"""
WITH picked AS (
    SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND queued_at < {CUTOFF}
    ORDER BY queued_at LIMIT :limit
    FOR UPDATE SKIP LOCKED
),
attempts AS (DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM picked) RETURNING 1),
gone AS (DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM picked) RETURNING 1)
SELECT (SELECT count(*) FROM picked) AS picked, (SELECT count(*) FROM gone) AS webhook_deliveries,
       (SELECT count(*) FROM attempts) AS webhook_attempts
""")

DEAD_LETTERS = text(f"""
WITH picked AS (
    SELECT id FROM dead_letters WHERE created_at < {CUTOFF}
    ORDER BY created_at LIMIT :limit
    FOR UPDATE SKIP LOCKED
),
gone AS (DELETE FROM dead_letters WHERE id IN (SELECT id FROM picked) RETURNING 1)
SELECT (SELECT count(*) FROM picked) AS picked, (SELECT count(*) FROM gone) AS dead_letters
""")

SCHEDULE_FIRES = text(f"""
WITH picked AS (
    SELECT schedule_id, fire_at FROM schedule_fires WHERE fire_at < {CUTOFF}
    ORDER BY fire_at LIMIT :limit
    FOR UPDATE SKIP LOCKED
),
gone AS (
    DELETE FROM schedule_fires f USING picked p
    WHERE f.schedule_id = p.schedule_id AND f.fire_at = p.fire_at RETURNING 1
)
SELECT (SELECT count(*) FROM picked) AS picked, (SELECT count(*) FROM gone) AS schedule_fires
""")

REVOKED_TOKENS = text(f"""
WITH picked AS (
    SELECT jti FROM revoked_tokens WHERE expires_at < {CUTOFF}
    ORDER BY expires_at LIMIT :limit
    FOR UPDATE SKIP LOCKED
),
gone AS (DELETE FROM revoked_tokens WHERE jti IN (SELECT jti FROM picked) RETURNING 1)
SELECT (SELECT count(*) FROM picked) AS picked, (SELECT count(*) FROM gone) AS revoked_tokens
""")


def _days(days: float) -> float | None:
    """A retention in days as seconds; None (keep forever) for 0."""
    return days * DAY if days > 0 else None


def deliveries_age(s: Settings) -> float | None:
    """Never inside the reconciliation window (see the module docstring)."""
    age = _days(s.retention_deliveries_days)
    return None if age is None else max(age, s.webhook_reconcile_hours * 3600)


def schedule_fires_age(s: Settings) -> float | None:
    age = _days(s.retention_tasks_days)
    return None if age is None else max(age, DAY)


@dataclass(frozen=True)
class Rule:
    """One batch statement and the age (seconds; None: rule off) past which its rows go."""

    name: str
    statement: TextClause
    age: Callable[[Settings], float | None]


# Dead letters first: a failed task whose entry expires in this run can follow it at once.
RULES = (
    Rule("dead_letters", DEAD_LETTERS, lambda s: _days(s.retention_dead_letters_days)),
    Rule("tasks", TASKS, lambda s: _days(s.retention_tasks_days)),
    Rule("webhook_deliveries", DELIVERIES, deliveries_age),
    Rule("schedule_fires", SCHEDULE_FIRES, schedule_fires_age),
    Rule("revoked_tokens", REVOKED_TOKENS, lambda s: TOKEN_GRACE_SECONDS),
)


@dataclass
class Retention:
    engine: Engine
    settings: Settings

    def run(self) -> dict[str, int]:
        """Apply every enabled rule; returns rows deleted per table (and logs one line)."""
        started = time.monotonic()
        deleted: dict[str, int] = {}
        for rule in RULES:
            age = rule.age(self.settings)
            if age is not None:
                for table, count in self.apply(rule, age).items():
                    deleted[table] = deleted.get(table, 0) + count
        for table, count in deleted.items():
            metrics.RETENTION_DELETED.labels(table).inc(count)
        log.info("retention run", extra={"deleted": deleted, "seconds": round(time.monotonic() - started, 3)})
        return deleted

    def apply(self, rule: Rule, age: float) -> dict[str, int]:
        """Delete batch after batch until one comes back short (or MAX_BATCHES)."""
        limit = max(1, self.settings.retention_batch_size)
        totals: dict[str, int] = {}
        for _ in range(MAX_BATCHES):
            counts = self.batch(rule, age, limit)
            picked = counts.pop("picked")
            for table, count in counts.items():
                totals[table] = totals.get(table, 0) + count
            if picked < limit:
                break
        return totals

    def batch(self, rule: Rule, age: float, limit: int) -> dict[str, int]:
        with self.engine.begin() as conn:
            conn.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}; "
                              f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
            row = conn.execute(rule.statement, {"age": age, "limit": limit}).one()
        return {key: int(value) for key, value in row._mapping.items()}

"""Vacuum: the scheduler's `vacuum_hot_tables` job, for Postgres servers whose autovacuum is off.

Every task leaves dead row versions behind: its claim and its outcome each update its row, and
each status change inserts an outbox row (`task_events`) that is deleted once published.
Autovacuum reclaims them. A server with autovacuum off (some CI and test servers are set up
that way) lets them pile up, and every statement on these tables slows down as they do:
measured on such a server, submits/s and e2e tasks/s fell by about a quarter once a few hundred
thousand tasks had run, and came back after one VACUUM.

So when, and only when, the server's `autovacuum` is off, this job does its work for the tables
the queue churns: each whose dead rows passed autovacuum's own trigger (a threshold plus a
fraction of its live rows) is vacuumed. With autovacuum on it does nothing: the server's own
settings (and whoever tuned them) decide. Replicas take turns through an advisory lock, and
`SKIP_LOCKED` passes over a table someone else is vacuuming or altering.
"""
from __future__ import annotations

import logging

from sqlalchemy import Engine, text

from . import metrics

log = logging.getLogger(__name__)
HOT_TABLES = ("task_events", "tasks", "webhook_deliveries", "schedules")
THRESHOLD = 1_000  # dead rows, plus SCALE_FACTOR of the live ones (autovacuum: 50 and 0.2)
SCALE_FACTOR = 0.1
VACUUM_LOCK = 7_413_003  # advisory lock key (jobs.SWEEP_LOCK is 7_413_002)
LOCK_TIMEOUT_MS = 5_000

DEAD_ROWS = text("SELECT relname, n_dead_tup, n_live_tup FROM pg_stat_user_tables WHERE relname = ANY(:tables)")


def due(dead: int, live: int) -> bool:
    """Whether a table with these counts needs a vacuum (autovacuum's rule, our figures)."""
    return dead > THRESHOLD + SCALE_FACTOR * live


class Vacuum:
    def __init__(self, engine: Engine):
        self.engine = engine

    def run(self) -> list[str]:
        """Vacuum the hot tables that need it; returns their names (none when autovacuum is on)."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.execute(text("SHOW autovacuum")).scalar() == "on":
                return []
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": VACUUM_LOCK}).scalar():
                return []  # another replica is at it
            try:
                counts = conn.execute(DEAD_ROWS, {"tables": list(HOT_TABLES)}).all()
                tables = [name for name, dead, live in counts if due(dead, live)]
                conn.execute(text(f"SET lock_timeout = {LOCK_TIMEOUT_MS}"))
                for table in tables:  # names from HOT_TABLES only: safe to format in
                    conn.execute(text(f"VACUUM (ANALYZE, SKIP_LOCKED) {table}"))
                    metrics.VACUUMS.labels(table).inc()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": VACUUM_LOCK})
        if tables:
            log.info("vacuumed hot tables (the server's autovacuum is off)", extra={"tables": tables})
        return tables

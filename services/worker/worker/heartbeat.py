"""Lease renewal for running tasks, and the way a worker learns a task was revoked.

Every `interval` seconds one UPDATE extends the lease of every task this process runs.
A task missing from the result is no longer ours to run (revoked by the API, or recovered
by the scheduler after a stall), so its handler is interrupted.
"""
from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import func, update

from shared import statuses
from shared.models import Task

from .execution import Executor

log = logging.getLogger(__name__)
TASKS = Task.__table__


def renew(executor: Executor) -> None:
    with executor.lock:
        running = dict(executor.active)
    if not running:
        return
    with executor.engine.connect() as conn:  # autocommit: one statement
        kept = conn.execute(
            update(TASKS)
            .where(
                TASKS.c.id.in_(list(running)),
                TASKS.c.status == statuses.RUNNING,
                TASKS.c.worker_id == executor.worker_id,
            )
            .values(lease_expires_at=func.now() + timedelta(seconds=executor.lease_seconds))
            .returning(TASKS.c.id)
        ).scalars()
        kept_ids = {str(i) for i in kept}
    # A task that finished meanwhile (its outcome committed, so the UPDATE skipped it) is no
    # longer active: only the ones still running here were revoked or taken over.
    with executor.lock:
        lost = [(t, c) for t, c in running.items() if t not in kept_ids and executor.active.get(t) is c]
    for task_id, ctx in lost:
        log.info("task no longer ours; interrupting", extra={"task_id": task_id})
        ctx.interrupt("revoked")


def start(executor: Executor, interval: float, stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval):
            try:
                renew(executor)
            except Exception:  # noqa: BLE001 - keep beating; leases only expire if this keeps failing
                log.warning("lease renewal failed", exc_info=True)

    thread = threading.Thread(target=loop, name="lease-heartbeat", daemon=True)
    thread.start()
    return thread

"""What every producer does after committing transitions: publish their events and send the
messages of tasks that became `queued`.

A background thread does it in one Redis pipeline per batch (so under load one round trip
carries many tasks), then deletes the published outbox rows. Nothing is lost if this process
dies first or Redis is down: the rows are committed, the scheduler relays outbox rows left
behind and re-sends queued tasks whose message is missing.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Iterable

import redis
from sqlalchemy import Engine

from . import broker as task_broker
from .events import from_transition
from .statuses import QUEUED

log = logging.getLogger(__name__)
BATCH = 500


def flush(client: redis.Redis, engine: Engine, stream: str, maxlen: int, rows: list) -> None:
    """Publish the rows' events and queue their messages atomically, then drop the outbox rows."""
    pipe = client.pipeline(transaction=True)
    for row in rows:
        pipe.xadd(stream, from_transition(row), maxlen=maxlen, approximate=True)
        if row.status == QUEUED and not row.webhook_event:  # an announce changes no status: no message
            task_broker.add_message(pipe, row.id, row.queue, row.enqueued_at)
    pipe.execute()
    with engine.connect() as conn:
        conn.exec_driver_sql("DELETE FROM task_events WHERE id = ANY(%(ids)s)", {"ids": [r.event_id for r in rows]})
        conn.commit()  # no round trip on an autocommit engine


class Handoff:
    """Runs `flush` off the request/worker thread, batching whatever accumulated meanwhile."""

    def __init__(self, client: redis.Redis, engine: Engine, stream: str, maxlen: int):
        self._args = (client, engine, stream, maxlen)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, rows: Iterable) -> None:
        """Hand over committed transition rows (from shared.transitions)."""
        self._ensure_started()
        for row in rows:
            self._queue.put(row)

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued, then stop the thread (called on shutdown)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _ensure_started(self) -> None:
        # Started lazily so a process that forks after creating us (gunicorn) gets its own thread.
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="handoff", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            rows = [r for r in batch if r is not None]
            if rows:
                try:
                    flush(*self._args, rows)
                except Exception:  # noqa: BLE001 - the scheduler relays and re-sends what fails here
                    log.warning("handoff failed; the scheduler will recover %d row(s)", len(rows), exc_info=True)

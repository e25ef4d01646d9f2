"""What every producer does after committing transitions: publish their events and send the
messages of tasks that became `queued`.

A background thread does it in one Redis pipeline per batch (so under load one round trip
carries many tasks) as soon as rows arrive: a queued task's message is on the worker's path.
Deleting the published outbox rows is on nobody's path, so it waits up to DELETE_EVERY_S and
one DELETE then covers every batch published meanwhile (otherwise, at a few rows per batch, it
is a statement per task). Nothing is lost if this process dies first or Redis is down: the rows
are committed, the scheduler relays outbox rows left behind (only those older than its 5 s,
well beyond DELETE_EVERY_S, so a published row is not sent twice in normal operation;
consumers deduplicate on event_id anyway) and re-sends queued tasks whose message is missing.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Iterable

import redis
from sqlalchemy import Engine

from . import broker as task_broker
from .events import from_transition
from .statuses import QUEUED

log = logging.getLogger(__name__)
BATCH = 500
DELETE_EVERY_S = 0.2


def publish(client: redis.Redis, stream: str, maxlen: int, rows: list) -> None:
    """Publish the rows' events and queue their messages, atomically."""
    pipe = client.pipeline(transaction=True)
    for row in rows:
        pipe.xadd(stream, from_transition(row), maxlen=maxlen, approximate=True)
        if row.status == QUEUED and not row.webhook_event:  # an announce changes no status: no message
            task_broker.add_message(pipe, row.id, row.queue, row.enqueued_at)
    pipe.execute()


def delete_published(engine: Engine, event_ids: list[int]) -> None:
    """Drop outbox rows whose events are on the stream."""
    with engine.connect() as conn:
        conn.exec_driver_sql("DELETE FROM task_events WHERE id = ANY(%(ids)s)", {"ids": event_ids})
        conn.commit()  # no round trip on an autocommit engine


class Handoff:
    """Runs `publish` off the request/worker thread, batching whatever accumulated meanwhile, and
    `delete_published` at most every DELETE_EVERY_S."""

    def __init__(self, client: redis.Redis, engine: Engine, stream: str, maxlen: int):
        self._client, self._engine, self._stream, self._maxlen = client, engine, stream, maxlen
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
        # Started lazily so a process that forks after creating us gets its own thread.
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="handoff", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        published: list[int] = []  # event ids on the stream whose outbox rows are not deleted yet
        due = 0.0  # monotonic time by which `published` must be deleted
        stop = False
        while not stop:
            batch = self._next_batch(max(0.0, due - time.monotonic()) if published else None)
            stop = None in batch
            rows = [r for r in batch if r is not None]
            if rows:
                try:
                    publish(self._client, self._stream, self._maxlen, rows)
                    if not published:
                        due = time.monotonic() + DELETE_EVERY_S
                    published.extend(r.event_id for r in rows)
                except Exception:  # noqa: BLE001 - the scheduler relays and re-sends what fails here
                    log.warning("handoff failed; the scheduler will recover %d row(s)", len(rows), exc_info=True)
            if published and (stop or time.monotonic() >= due or len(published) >= BATCH):
                try:
                    delete_published(self._engine, published)
                except Exception:  # noqa: BLE001 - left in the outbox: relayed again later, deduplicated
                    log.warning("deleting %d published outbox row(s) failed", len(published), exc_info=True)
                published = []

    def _next_batch(self, timeout: float | None) -> list:
        """What arrived: waits for a first row (at most `timeout`, None = forever), then takes
        whatever else is queued, up to BATCH. An empty list on timeout."""
        try:
            batch = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

"""The event schema of the `taskqueue:events` stream, and its publisher.

Every committed status change has a TaskEvent row (the outbox). After commit the producer
hands the rows to an `EventPublisher`, whose thread XADDs them in batches and marks them
published; whatever a crash or a Redis outage leaves unpublished, the scheduler relays
(`relay_unpublished`). Consumers deduplicate on `event_id`.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
from datetime import datetime
from typing import Any, Iterable, Mapping

import redis
from sqlalchemy import Engine, func, select, text, update

from .models import TaskEvent

log = logging.getLogger(__name__)
EVENTS = TaskEvent.__table__
BATCH = 500


def encode(
    *,
    event_id: int,
    task_id: Any,
    owner_id: int,
    status: str,
    result: Any,
    error_message: str,
    timestamp: datetime,
    webhook_event: str = "",
) -> dict[str, str]:
    """Stream entry fields (all strings, as Redis stores them)."""
    return {
        "event_id": str(event_id),
        "task_id": str(task_id),
        "owner_id": str(owner_id),
        "status": status,
        "result": json.dumps(result),
        "error_message": error_message or "",
        "timestamp": timestamp.isoformat(),
        "webhook_event": webhook_event or "",
    }


def decode(fields: Mapping[bytes | str, bytes | str]) -> dict[str, Any]:
    """Inverse of `encode`, for consumers."""
    f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()}
    f["event_id"] = int(f["event_id"])
    f["owner_id"] = int(f["owner_id"])
    f["result"] = json.loads(f.get("result") or "null")
    return f


def from_transition(row) -> dict[str, str]:
    """Fields for a row returned by `shared.transitions` (task columns + event_id/event_at)."""
    return encode(
        event_id=row.event_id,
        task_id=row.id,
        owner_id=row.owner_id,
        status=row.status,
        result=row.result,
        error_message=row.error_message,
        timestamp=row.event_at,
    )


def from_outbox(row) -> dict[str, str]:
    return encode(
        event_id=row.id,
        task_id=row.task_id,
        owner_id=row.owner_id,
        status=row.status,
        result=row.result,
        error_message=row.error_message,
        timestamp=row.created_at,
        webhook_event=row.webhook_event,
    )


def xadd_all(client: redis.Redis, stream: str, maxlen: int, events: list[dict[str, str]]) -> None:
    """Append events to the stream in one round trip, trimming it to about `maxlen` entries."""
    pipe = client.pipeline(transaction=False)
    for fields in events:
        pipe.xadd(stream, fields, maxlen=maxlen, approximate=True)
    pipe.execute()


def write(client: redis.Redis, engine: Engine, stream: str, maxlen: int, events: list[dict[str, str]]) -> None:
    """XADD the events in one round trip, then mark their outbox rows published.

    Marking uses an asynchronous commit: losing it in a crash only means the relay
    publishes the event again, which consumers tolerate.
    """
    xadd_all(client, stream, maxlen, events)
    ids = [int(f["event_id"]) for f in events]
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(update(EVENTS).where(EVENTS.c.id.in_(ids)).values(published_at=func.now()))


class EventPublisher:
    """Publishes committed events off the request/worker thread, batching under load."""

    def __init__(self, client: redis.Redis, engine: Engine, stream: str, maxlen: int):
        self._client, self._engine, self._stream, self._maxlen = client, engine, stream, maxlen
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def publish(self, events: Iterable[dict[str, str]]) -> None:
        self._ensure_started()
        for fields in events:
            self._queue.put(fields)

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued, then stop the thread (called on shutdown)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _ensure_started(self) -> None:
        # Started lazily so a process that forks after creating us (gunicorn) gets its own thread.
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="event-publisher", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch, stop = ([first] if first is not None else []), first is None
            while not stop and len(batch) < BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                try:
                    write(self._client, self._engine, self._stream, self._maxlen, batch)
                except Exception:  # noqa: BLE001 - the relay re-publishes whatever fails here
                    log.warning("event publish failed; the scheduler will relay %d event(s)", len(batch), exc_info=True)
            if stop:
                return


def relay_unpublished(client: redis.Redis, engine: Engine, stream: str, maxlen: int, older_than_s: float) -> int:
    """Publish outbox rows a producer failed to publish (crash, Redis outage). Returns the count."""
    query = (
        select(EVENTS)
        .where(EVENTS.c.published_at.is_(None), EVENTS.c.created_at < func.now() - text(f"interval '{float(older_than_s)} seconds'"))
        .order_by(EVENTS.c.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    with engine.begin() as conn:
        rows = conn.execute(query).all()
        if not rows:
            return 0
        xadd_all(client, stream, maxlen, [from_outbox(r) for r in rows])
        conn.execute(update(EVENTS).where(EVENTS.c.id.in_([r.id for r in rows])).values(published_at=func.now()))
    return len(rows)

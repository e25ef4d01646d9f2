"""`python -m dispatcher`: the webhook dispatcher, until SIGTERM.

Threads of one process:
- stream: the consumer group on the event stream, recording deliveries (recorder);
- claimer + DISPATCHER_CONCURRENCY senders + lease heartbeat: sending due deliveries (deliverer);
- housekeeping: reconciliation, the pending-retries gauge, stale consumer cleanup;
- ops: /healthz and /metrics on DISPATCHER_METRICS_PORT.
SIGTERM: stop reading and claiming, let sends in flight finish (bounded by the HTTP timeouts),
leave the consumer group, exit 0. Whatever is left is in Postgres for the other replicas.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
import uuid

import redis
from sqlalchemy import Engine, text

from shared import logs, ops_server
from shared.db import make_engine
from shared.settings import Settings

from . import metrics
from .deliverer import Deliverer
from .reconcile import reconcile
from .recorder import record_events
from .sender import Sender
from .store import Store
from .stream import StreamConsumer

log = logging.getLogger("dispatcher")
GAUGE_SECONDS = 5.0
CONSUMER_CLEANUP_SECONDS = 600.0
STREAM_STALE_SECONDS = 60.0
READER_JOIN_SECONDS = 5.0  # the reader blocks at most BLOCK_MS, then sees the stop flag


def housekeeping(settings: Settings, engine: Engine, store: Store, consumer: StreamConsumer,
                 deliverer: Deliverer, stop: threading.Event) -> None:
    """Periodic jobs, each on its own interval; a failing one is retried at its next turn."""

    def reconcile_and_send() -> None:
        if reconcile(engine, settings):
            deliverer.poke()

    jobs = {
        "reconcile": (settings.webhook_reconcile_seconds, reconcile_and_send),
        "gauge": (GAUGE_SECONDS, lambda: metrics.PENDING_RETRIES.set(store.pending_retries())),
        "consumers": (CONSUMER_CLEANUP_SECONDS, consumer.forget_dead_consumers),
    }
    due = {name: 0.0 for name in jobs}
    while not stop.is_set():
        now = time.monotonic()
        for name, (interval, job) in jobs.items():
            if now >= due[name]:
                due[name] = now + interval
                try:
                    job()
                except Exception:  # noqa: BLE001
                    metrics.ERRORS.labels(name).inc()
                    log.warning("housekeeping job failed", extra={"job": name}, exc_info=True)
        stop.wait(max(0.05, min(due.values()) - time.monotonic()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="dispatcher", description=__doc__)
    parser.add_argument("--metrics-port", type=int, help="health/metrics port (default DISPATCHER_METRICS_PORT)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure("dispatcher", settings.log_level)

    me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    engine = make_engine(settings.database_url, pool_size=settings.dispatcher_concurrency + 4, application_name="dispatcher")
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=2)
    store = Store(engine, me, settings.webhook_lease_seconds)
    deliverer = Deliverer(settings, store, Sender(settings))

    def handle(entries) -> None:
        if record_events(engine, entries):
            deliverer.poke()

    consumer = StreamConsumer(client, settings.events_stream, me, int(settings.dispatcher_claim_idle_seconds * 1000), handle)
    stop = threading.Event()

    def health() -> dict:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        client.ping()
        age = time.monotonic() - consumer.last_ok
        if age > STREAM_STALE_SECONDS:
            raise RuntimeError(f"event stream not read for {age:.0f}s")
        return {"dispatcher_id": me, "in_flight": len(deliverer.in_flight)}

    ops = ops_server.serve(args.metrics_port or settings.dispatcher_metrics_port, health)
    deliverer.start()
    reader = threading.Thread(target=consumer.run, args=(stop,), name="stream", daemon=True)
    reader.start()
    chores = threading.Thread(target=housekeeping, args=(settings, engine, store, consumer, deliverer, stop),
                              name="housekeeping", daemon=True)
    chores.start()
    log.info("dispatcher started", extra={"dispatcher_id": me, "concurrency": settings.dispatcher_concurrency,
                                          "stream": settings.events_stream})

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down", extra={"in_flight": len(deliverer.in_flight)})
    reader.join(READER_JOIN_SECONDS)
    left = deliverer.drain(settings.webhook_connect_timeout + settings.webhook_read_timeout + 5)
    consumer.leave()
    ops.shutdown()
    log.info("dispatcher stopped", extra={"unfinished_sends": left})


if __name__ == "__main__":
    main()

"""`python -m worker --queues critical,high`: a worker process for the given priority queues."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import uuid

import dramatiq
import redis
from sqlalchemy import text

from shared import logs, ops_server
from shared.broker import make_broker
from shared.db import make_engine
from shared.handoff import Handoff
from shared.routing import QUEUES, parse_queues
from shared.settings import Settings

from . import actors, heartbeat
from .execution import Executor

log = logging.getLogger("worker")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="worker", description=__doc__)
    parser.add_argument("--queues", default=",".join(QUEUES), help="comma-separated queues to serve")
    parser.add_argument("--threads", type=int, default=None, help="worker threads (default WORKER_THREADS)")
    parser.add_argument("--metrics-port", type=int, help="health/metrics port (default WORKER_METRICS_PORT)")
    parser.add_argument("--shutdown-grace", type=float,
                        help="seconds running tasks get to finish on SIGTERM before they are handed back "
                             "(default WORKER_SHUTDOWN_GRACE)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    settings = Settings.from_env()
    logs.configure("worker", settings.log_level)
    queues = parse_queues(args.queues)
    threads = args.threads or settings.worker_threads

    engine = make_engine(settings.database_url, pool_size=threads + 2, application_name="worker", autocommit=True)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    broker = make_broker(settings.redis_url, idle_wait_ms=settings.worker_idle_poll_ms)
    handoff = Handoff(client, engine, settings.events_stream, settings.events_maxlen)
    executor = Executor(
        engine=engine,
        handoff=handoff,
        worker_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
        lease_seconds=settings.task_lease_seconds,
        allow_private_networks=settings.webhook_allow_private_networks,
    )
    actors.declare(broker, executor)

    def health() -> dict:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        client.ping()
        return {"queues": queues, "running": len(executor.active)}

    ops = ops_server.serve(args.metrics_port or settings.worker_metrics_port, health)
    stop, beating = threading.Event(), threading.Event()
    heartbeat.start(executor, settings.heartbeat_seconds, beating)
    # worker_timeout only paces idle worker threads' checks for shutdown (work wakes them at once)
    worker = dramatiq.Worker(broker, queues=set(queues), worker_threads=threads, worker_timeout=1000)
    worker.start()
    log.info("worker started", extra={"queues": queues, "threads": threads, "worker_id": executor.worker_id})

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    grace = args.shutdown_grace if args.shutdown_grace is not None else settings.worker_shutdown_grace
    shutdown(worker, executor, handoff, grace)
    beating.set()
    ops.shutdown()


def shutdown(worker: dramatiq.Worker, executor: Executor, handoff: Handoff, grace: float) -> None:
    """Finish what can finish within `grace`, hand the rest back to the queue, lose nothing."""
    log.info("shutting down", extra={"running": len(executor.active), "grace_s": grace})
    timer = threading.Timer(grace, executor.interrupt_all, args=("shutdown",))
    timer.daemon = True
    timer.start()
    worker.stop(timeout=int((grace + 30) * 1000))
    timer.cancel()
    handoff.close()
    log.info("worker stopped")


if __name__ == "__main__":
    main()

"""`python -m scheduler`: run the scheduler's jobs until SIGTERM."""
from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

import redis
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from shared import logs, ops_server
from shared.db import make_engine
from shared.handoff import Handoff
from shared.settings import Settings

from . import metrics
from .gauges import Gauges
from .jobs import Jobs
from .retention import Retention
from .vacuum import Vacuum

log = logging.getLogger("scheduler")
# Threads the jobs run on: as many as the schedule below has jobs, so none waits for another.
# The pool holds a connection for each (plus the handoff's and the health check's).
JOB_THREADS = 8


def guarded(name: str, fn, beats: dict):
    """Wrap a job so an error is logged and counted, and the job's last success is recorded."""

    def run():
        try:
            fn()
            beats[name] = time.monotonic()
        except Exception:  # noqa: BLE001 - the next run retries; Postgres still holds every task
            metrics.JOB_ERRORS.labels(name).inc()
            log.warning("job failed", extra={"job": name}, exc_info=True)

    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="scheduler", description=__doc__)
    parser.add_argument("--metrics-port", type=int, help="health/metrics port (default SCHEDULER_METRICS_PORT)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure("scheduler", settings.log_level)
    # APScheduler logs two INFO lines per run of a 50 ms job, and a warning whenever a run is
    # skipped because the previous one is still busy (expected under load): keep its errors only.
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, logging.getLogger().level))

    # Sized so the pool never opens and closes overflow connections as the jobs come and go.
    engine = make_engine(settings.database_url, pool_size=JOB_THREADS + 2, application_name="scheduler")
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    handoff = Handoff(client, engine, settings.events_stream, settings.events_maxlen)
    jobs = Jobs(settings, engine, client, handoff)
    gauges = Gauges(engine, client)

    beats: dict[str, float] = {}
    schedule = {
        "release_due": (jobs.release_due, settings.release_interval_ms / 1000),
        "recover_leases": (jobs.recover_leases, 2.0),
        "resend_lost": (jobs.resend_lost, 5.0),
        "relay_events": (jobs.relay_events, 1.0),
        "refresh_gauges": (gauges.refresh, settings.scheduler_gauges_seconds),  # queue depths, status counts
        "fire_schedules": (jobs.fire_schedules, settings.schedules_interval_ms / 1000),
    }
    if settings.retention_interval_seconds > 0:  # deletes old finished rows (see retention.py)
        schedule["apply_retention"] = (Retention(engine, settings).run, settings.retention_interval_seconds)
    if settings.vacuum_interval_seconds > 0:  # only acts when the server's autovacuum is off (see vacuum.py)
        schedule["vacuum_hot_tables"] = (Vacuum(engine).run, settings.vacuum_interval_seconds)
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(JOB_THREADS)}, timezone="UTC")
    for name, (fn, seconds) in schedule.items():
        scheduler.add_job(guarded(name, fn, beats), "interval", seconds=seconds, id=name,
                          max_instances=1, coalesce=True, misfire_grace_time=None)

    def health() -> dict:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        client.ping()
        age = time.monotonic() - beats.get("release_due", 0)
        if beats and age > 30:
            raise RuntimeError(f"release job has not succeeded for {age:.0f}s")
        return {"jobs": sorted(schedule)}

    ops = ops_server.serve(args.metrics_port or settings.scheduler_metrics_port, health)
    scheduler.start()
    log.info("scheduler started", extra={"jobs": sorted(schedule)})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    scheduler.shutdown(wait=True)  # lets a running job finish its transaction
    handoff.close()
    ops.shutdown()
    log.info("scheduler stopped")


if __name__ == "__main__":
    main()

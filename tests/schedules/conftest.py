"""Recurring schedules end to end: the real services as processes, on this package's own
database (taskqueue_schedules_test, recreated and migrated at start) and Redis db 7.

The package-scoped `system`: the gateway under gunicorn, one worker and TWO scheduler
replicas, the schedulers polling for due schedules every 200 ms with a 1 s misfire grace
(so a 2 s interval schedule shows on-time fires, missed fires and skips within seconds).
Tests stop and restart the schedulers through `system` (see `restart_schedulers`).
"""
from __future__ import annotations

import dataclasses
import os

import pytest
from e2e.e2e_helpers import Client, Db, System
from sqlalchemy.engine import make_url

DATABASE_NAME = "taskqueue_schedules_test"
REDIS_DB = 7
MISFIRE_GRACE_SECONDS = 1.0
PROCESS_ENV = {
    "SCHEDULER_SCHEDULES_INTERVAL_MS": "200",
    "SCHEDULE_MISFIRE_GRACE_SECONDS": str(MISFIRE_GRACE_SECONDS),
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "TASK_LEASE_SECONDS": "3",
    "WORKER_HEARTBEAT_SECONDS": "0.5",
    "LOST_MESSAGE_AFTER_SECONDS": "2",
    "PYTHONUNBUFFERED": "1",
    "LOG_LEVEL": "INFO",
}
_ACTIVE: list[System] = []


@pytest.fixture(scope="package")
def sched_settings(settings):
    """The session settings pointed at this package's own database and Redis db."""
    url = make_url(settings.database_url).set(database=DATABASE_NAME)
    redis_url = make_url(settings.redis_url).set(database=str(REDIS_DB))
    return dataclasses.replace(settings, database_url=url.render_as_string(hide_password=False),
                               redis_url=redis_url.render_as_string(hide_password=False))


@pytest.fixture(scope="package")
def sched_engine(sched_settings, recreate_database):
    from shared.db import make_engine
    from shared.migrate import upgrade

    recreate_database(sched_settings.database_url)
    upgrade(sched_settings.database_url)  # creates it again, then migrates from scratch
    engine = make_engine(sched_settings.database_url, pool_size=4, application_name="schedule-tests")
    yield engine
    engine.dispose()


@pytest.fixture(scope="package")
def sched_redis(sched_settings):
    import redis

    client = redis.Redis.from_url(sched_settings.redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="package")
def system(sched_settings, sched_engine, sched_redis, tmp_path_factory):
    env = {**os.environ, **PROCESS_ENV, "DATABASE_URL": sched_settings.database_url, "REDIS_URL": sched_settings.redis_url}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    sysm = System(tmp_path_factory.mktemp("schedule-logs"), env)
    _ACTIVE.append(sysm)
    try:
        sysm.start_gateway()
        sysm.start_scheduler()
        sysm.start_scheduler()
        sysm.start_worker(threads=4, wait=False)
        for svc in sysm.every_service:
            svc.wait_healthy(timeout=40)
    except BaseException as exc:
        tails = sysm.tails()
        sysm.shutdown()
        _ACTIVE.clear()
        pytest.fail(f"could not start the system: {exc}\n{tails}", pytrace=False)
    yield sysm
    sysm.shutdown()
    _ACTIVE.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _ACTIVE and "schedules" in str(item.path):
        report.sections.append(("service logs (tails)", _ACTIVE[0].tails()))


@pytest.fixture
def client(system):
    c = Client(system.base_url)
    yield c
    c.http.close()


@pytest.fixture
def db(sched_engine):
    return Db(sched_engine)

"""Recurring schedules end to end: the real services as processes, on this package's own
database (taskqueue_schedules_test, recreated and migrated at start) and Redis db 7.

The package-scoped `system`: the gateway (python -m gateway), one worker and TWO scheduler
replicas, the schedulers polling for due schedules every 200 ms with a 1 s misfire grace
(so a 2 s interval schedule shows on-time fires, missed fires and skips within seconds).
Tests stop and restart the schedulers through `system` (see `restart_schedulers`).
"""
from __future__ import annotations

import pytest
from e2e.e2e_helpers import FAST_RECOVERY, Client, Db, System, running

DATABASE_NAME = "taskqueue_schedules_test"
REDIS_DB = 7
MISFIRE_GRACE_SECONDS = 1.0
PROCESS_ENV = {
    "SCHEDULER_SCHEDULES_INTERVAL_MS": "200",
    "SCHEDULE_MISFIRE_GRACE_SECONDS": str(MISFIRE_GRACE_SECONDS),
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    **FAST_RECOVERY,
}


@pytest.fixture(scope="package")
def store(own_store):
    return own_store(DATABASE_NAME, REDIS_DB, "schedule-tests")


@pytest.fixture(scope="package")
def system(store, tmp_path_factory):
    sysm = System(tmp_path_factory.mktemp("schedule-logs"), store.process_env(**PROCESS_ENV))

    def start():
        sysm.start_gateway()
        sysm.start_scheduler()
        sysm.start_scheduler()
        sysm.start_worker(threads=4, wait=False)

    with running(sysm, start):
        yield sysm


@pytest.fixture
def client(system):
    c = Client(system.base_url)
    yield c
    c.http.close()


@pytest.fixture
def db(store):
    return Db(store.engine)

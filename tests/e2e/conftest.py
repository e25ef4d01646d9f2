"""End-to-end fixtures: the real services as real processes, driven over HTTP like a client.

The package-scoped `system` fixture starts, against the test database and Redis db:
- the gateway (2 processes) on a free port,
- one worker process serving every queue,
- two scheduler replicas (so every test also proves replicas never release anything twice),
each logging to its own file under a temporary directory. It waits for the gateway's /readyz
and every service's /healthz, and stops everything (SIGTERM, then SIGKILL) when the e2e tests are done.
Tests stop, SIGKILL and start worker processes through it. When a test fails, the tail of
every service log is attached to its report.
"""
from __future__ import annotations

import pytest
from support.databases import empty_everything

from .e2e_helpers import FAST_RECOVERY, Client, Db, EventLog, Store, System, running


@pytest.fixture(scope="package")
def system(settings, engine, redis_client, tmp_path_factory):
    """Gateway + 1 worker + 2 scheduler replicas, on the test database and Redis db.

    Package-scoped, so the services stop when the e2e tests are done (a worker left running
    would execute the tasks other test packages create). It starts from an empty database
    and Redis db, so nothing another package left queued runs here.
    """
    empty_everything(engine, redis_client)
    env = Store(settings, engine, redis_client).process_env(
        **FAST_RECOVERY, WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
    )
    sysm = System(tmp_path_factory.mktemp("e2e-logs"), env)

    def start():
        sysm.start_gateway()
        sysm.start_scheduler()
        sysm.start_scheduler()
        sysm.start_worker(wait=False)

    with running(sysm, start):
        yield sysm


@pytest.fixture
def worker_restored(system):
    """Tests that stop or kill workers leave the default single worker running afterwards."""
    system.ensure_one_worker()
    yield system
    system.ensure_one_worker()


@pytest.fixture
def client(system):
    c = Client(system.base_url)
    yield c
    try:  # nothing of this test keeps running into the next one
        c.cancel_unfinished()
    except Exception:  # noqa: BLE001
        pass
    c.http.close()


@pytest.fixture
def db(engine):
    return Db(engine)




@pytest.fixture
def events(redis_client):
    return EventLog(redis_client)

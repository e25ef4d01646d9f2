"""Webhook tests: the real services as processes, a real HTTP receiver, no mocks.

The package-scoped `system` runs, against its own database (taskqueue_webhooks_test,
recreated and migrated at start) and Redis db 5: the gateway under gunicorn (1 worker), one
worker, one scheduler and one dispatcher, with short webhook timings (retry base 0.5 s,
read timeout 2 s, lease 3 s, reconciliation every 1 s) so retries and recoveries happen
within seconds. Tests start extra dispatchers, SIGTERM or SIGKILL them; the function-scoped
`dispatcher` fixture puts back exactly one running dispatcher before and after each test.
The `receiver` answers webhook POSTs on 127.0.0.1 as each test scripts it.
"""
from __future__ import annotations

import dataclasses
import os

import pytest
from e2e.e2e_helpers import Client, Db, System
from sqlalchemy.engine import make_url

from .receiver import Receiver
from .system import WebhookSystem

DATABASE_NAME = "taskqueue_webhooks_test"
REDIS_DB = 5
PROCESS_ENV = {
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    "WEBHOOK_CONNECT_TIMEOUT": "2",
    "WEBHOOK_READ_TIMEOUT": "2",
    "WEBHOOK_LEASE_SECONDS": "3",
    "WEBHOOK_RECONCILE_SECONDS": "1",
    "DISPATCHER_CLAIM_IDLE_SECONDS": "2",
    "DISPATCHER_CONCURRENCY": "8",
    "TASK_LEASE_SECONDS": "3",
    "WORKER_HEARTBEAT_SECONDS": "0.5",
    "LOST_MESSAGE_AFTER_SECONDS": "2",
    "PYTHONUNBUFFERED": "1",
    "LOG_LEVEL": "INFO",
}
_ACTIVE: list[System] = []


@pytest.fixture(scope="package")
def wh_settings(settings):
    """The session settings pointed at this package's own database and Redis db."""
    url = make_url(settings.database_url).set(database=DATABASE_NAME)
    redis_url = make_url(settings.redis_url).set(database=str(REDIS_DB))
    return dataclasses.replace(settings, database_url=url.render_as_string(hide_password=False),
                               redis_url=redis_url.render_as_string(hide_password=False))


@pytest.fixture(scope="package")
def wh_engine(wh_settings, recreate_database):
    from shared.db import make_engine
    from shared.migrate import upgrade

    recreate_database(wh_settings.database_url)
    upgrade(wh_settings.database_url)  # creates it again, then migrates from scratch
    engine = make_engine(wh_settings.database_url, pool_size=4, application_name="webhook-tests")
    yield engine
    engine.dispose()


@pytest.fixture(scope="package")
def wh_redis(wh_settings):
    import redis

    client = redis.Redis.from_url(wh_settings.redis_url)
    client.flushdb()
    return client


@pytest.fixture(scope="package")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="package")
def system(wh_settings, wh_engine, wh_redis, tmp_path_factory):
    env = {**os.environ, **PROCESS_ENV, "DATABASE_URL": wh_settings.database_url, "REDIS_URL": wh_settings.redis_url}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    sysm = WebhookSystem(tmp_path_factory.mktemp("webhook-logs"), env)
    _ACTIVE.append(sysm)
    try:
        sysm.start_gateway()
        sysm.start_scheduler()
        sysm.start_worker(threads=4, wait=False)
        sysm.start_dispatcher(wait=False)
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
    if report.failed and _ACTIVE and "webhooks" in str(item.path):
        report.sections.append(("service logs (tails)", _ACTIVE[0].tails()))


@pytest.fixture
def dispatcher(system):
    """Exactly one dispatcher running before and after the test; yields the system."""
    system.ensure_one_dispatcher()
    yield system
    system.ensure_one_dispatcher()


@pytest.fixture
def client(system):
    c = Client(system.base_url)
    yield c
    c.http.close()


@pytest.fixture
def other_client(system):
    c = Client(system.base_url)
    yield c
    c.http.close()


@pytest.fixture
def db(wh_engine):
    return Db(wh_engine)

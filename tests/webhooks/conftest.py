"""Webhook tests: the real services as processes, a real HTTP receiver, no mocks.

The package-scoped `system` runs, against its own database (taskqueue_webhooks_test,
recreated and migrated at start) and Redis db 5: the gateway (1 process), one
worker, one scheduler and one dispatcher, with short webhook timings (retry base 0.5 s,
read timeout 2 s, lease 3 s, reconciliation every 1 s) so retries and recoveries happen
within seconds. Tests start extra dispatchers, SIGTERM or SIGKILL them; the function-scoped
`dispatcher` fixture puts back exactly one running dispatcher before and after each test.
The `receiver` answers webhook POSTs on 127.0.0.1 as each test scripts it.
"""
from __future__ import annotations

import pytest
from e2e.e2e_helpers import FAST_RECOVERY, Client, Db, running

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
    **FAST_RECOVERY,
}


@pytest.fixture(scope="package")
def store(own_store):
    return own_store(DATABASE_NAME, REDIS_DB, "webhook-tests")


@pytest.fixture(scope="package")
def system(store, tmp_path_factory):
    sysm = WebhookSystem(tmp_path_factory.mktemp("webhook-logs"), store.process_env(**PROCESS_ENV))

    def start():
        sysm.start_gateway()
        sysm.start_scheduler()
        sysm.start_worker(threads=4, wait=False)
        sysm.start_dispatcher(wait=False)

    with running(sysm, start):
        yield sysm


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
def db(store):
    return Db(store.engine)

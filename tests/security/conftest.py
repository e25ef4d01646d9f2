"""Security suite fixtures: the real services as processes, on this package's own database
(taskqueue_security_test, recreated and migrated at start) and Redis db 13.

The package-scoped `system` runs a strict gateway (private callback URLs refused, as in
production), a dev gateway (private callback URLs allowed, used only to create objects whose
webhooks go to the local `receiver`), one worker, one scheduler, one dispatcher and the
notifier, all logging (INFO, the documented default) to files the secrets checks read. The
JWT key is a per-run random value (`helpers.JWT_SECRET`) so tests can forge tokens with it.
"""
from __future__ import annotations

import pytest
from e2e.e2e_helpers import Db, running

from .helpers import JWT_SECRET
from .system import SecuritySystem

DATABASE_NAME = "taskqueue_security_test"
REDIS_DB = 13
PROCESS_ENV = {
    "JWT_SECRET_KEY": JWT_SECRET,
    "TASKQUEUE_ENV": "development",
    "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    "WEBHOOK_CONNECT_TIMEOUT": "2",
    "WEBHOOK_READ_TIMEOUT": "2",
    "WEBHOOK_LEASE_SECONDS": "3",
    "TASK_LEASE_SECONDS": "5",
    "WORKER_HEARTBEAT_SECONDS": "0.5",
    "WORKER_SHUTDOWN_GRACE": "1",
    "LOST_MESSAGE_AFTER_SECONDS": "2",
}


@pytest.fixture(scope="package")
def store(own_store):
    return own_store(DATABASE_NAME, REDIS_DB, "security-tests")


@pytest.fixture(scope="package")
def system(store, tmp_path_factory):
    env = store.process_env(**PROCESS_ENV)
    env.pop("WEBHOOK_ALLOW_PRIVATE_NETWORKS", None)  # strict unless a service sets it (system.py)
    sysm = SecuritySystem(tmp_path_factory.mktemp("security-logs"), env)

    def start():
        sysm.start_gateways()
        sysm.start_scheduler()
        sysm.start_worker(threads=4, wait=False)
        sysm.start_dispatcher()
        sysm.start_notifier()

    with running(sysm, start):
        yield sysm


@pytest.fixture
def db(store):
    return Db(store.engine)

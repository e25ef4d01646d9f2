"""Notifier fixtures: the real services as processes, on this package's own database and Redis db.

The package uses `taskqueue_notifier_test` and Redis db 4 (same servers as the rest of the
suite), recreated at start, so it never collides with another package's services or data.
The stack: the gateway (1 process), one worker, one scheduler and one notifier with a
small per-client buffer (so the slow-client test overflows it quickly). Tests that need a
notifier of their own (SIGTERM) start one through `stack.start_notifier()`.
"""
from __future__ import annotations

import pytest
from e2e.e2e_helpers import running

from .nf_helpers import Stack, User

DATABASE_NAME = "taskqueue_notifier_test"
REDIS_DB = 4
CLIENT_BUFFER = "32"


@pytest.fixture(scope="package")
def store(own_store):
    return own_store(DATABASE_NAME, REDIS_DB, "notifier-tests")


@pytest.fixture(scope="package")
def stack(store, tmp_path_factory):
    env = store.process_env(NOTIFIER_CLIENT_BUFFER=CLIENT_BUFFER, WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")
    system = Stack(tmp_path_factory.mktemp("notifier-logs"), env)

    def start():
        system.start_gateway()
        system.start_scheduler()
        system.start_worker(wait=False)
        system.start_notifier()

    with running(system, start):
        yield system


@pytest.fixture
def notifier(stack):
    return stack.notifier


@pytest.fixture
def user(stack):
    return User(stack.base_url)


@pytest.fixture
def other_user(stack):
    return User(stack.base_url)

"""Fixtures shared by every test layer: the test database and Redis, migrated and emptied.

`make test` exports DATABASE_URL/REDIS_URL pointing at the test database (taskqueue_test)
and Redis db 1; these defaults let a bare `pytest` work the same way.
"""
from __future__ import annotations

import dataclasses
import os
import uuid

import pytest

os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/taskqueue_test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
# Rate limiting stays on in every test (and in the services they start), but the suite registers
# and logs in hundreds of users from 127.0.0.1: lift the per-IP limit on those endpoints.
# tests/integration/test_rate_limit.py checks the limits themselves with small values.
os.environ.setdefault("RATELIMIT_AUTH", "100000/minute")

TABLES = ("webhook_deliveries", "dead_letters", "task_events", "revoked_tokens", "tasks", "users")


@pytest.fixture(scope="session")
def settings():
    from shared.settings import Settings

    return Settings.from_env()


def recreate_test_database(database_url: str) -> None:
    """Start every session from an empty database migrated from scratch (tests own it)."""
    from support.databases import drop_database

    drop_database(database_url, "test")


@pytest.fixture(scope="session")
def recreate_database():
    """`recreate_test_database`, for packages that keep a database of their own.

    A fixture because it cannot be imported: every conftest module is named `conftest`, so
    `from conftest import ...` finds whichever one pytest imported last (in a full run,
    tests/integration/conftest.py, which has no such function).
    """
    return recreate_test_database


@pytest.fixture(scope="session")
def own_store(settings, recreate_database):
    """Factory for packages that keep their data to themselves (and run their own services):
    `own_store(database_name, redis_db, application_name)` returns a `Store` whose database
    was recreated and migrated from scratch and whose Redis db was emptied; closed at the end."""
    import redis
    from e2e.e2e_helpers import Store
    from sqlalchemy.engine import make_url

    from shared.db import make_engine, sqlalchemy_url
    from shared.migrate import upgrade

    opened: list[Store] = []

    def open_store(database_name: str, redis_db: int, application_name: str) -> Store:
        database_url = make_url(sqlalchemy_url(settings.database_url)).set(database=database_name)
        redis_url = make_url(settings.redis_url).set(database=str(redis_db))
        own = dataclasses.replace(settings, database_url=database_url.render_as_string(hide_password=False),
                                  redis_url=redis_url.render_as_string(hide_password=False))
        recreate_database(own.database_url)
        upgrade(own.database_url)  # creates it again, then migrates from scratch
        store = Store(own, make_engine(own.database_url, pool_size=4, application_name=application_name),
                      redis.Redis.from_url(own.redis_url))
        store.redis.flushdb()
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.engine.dispose()
        store.redis.close()


@pytest.fixture(scope="package")
def receiver():
    """A real HTTP server on 127.0.0.1 recording the webhooks it gets (tests/webhooks/receiver.py)."""
    from webhooks.receiver import Receiver

    r = Receiver()
    yield r
    r.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report carries the log tails of every service running at the time."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        from e2e.e2e_helpers import RUNNING

        for system in RUNNING:
            report.sections.append(("service logs (tails)", system.tails()))


@pytest.fixture(scope="session")
def engine(settings):
    from shared.db import make_engine
    from shared.migrate import upgrade

    recreate_test_database(settings.database_url)
    upgrade(settings.database_url)
    eng = make_engine(settings.database_url, pool_size=4, application_name="tests")
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def redis_client(settings):
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    client.ping()
    return client


@pytest.fixture(scope="session")
def clean_slate(engine, redis_client):
    """Empty every table and the test Redis db once per session (tests use fresh users)."""
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    redis_client.flushdb()


def unique(prefix: str = "user") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"

"""Notifier fixtures: the real services as processes, on this package's own database and Redis db.

The package uses `taskqueue_notifier_test` and Redis db 4 (same servers as the rest of the
suite), recreated at start, so it never collides with another package's services or data.
The stack: the gateway (1 gunicorn worker), one worker, one scheduler and one notifier with a
small per-client buffer (so the slow-client test overflows it quickly). Tests that need a
notifier of their own (SIGTERM) start one through `stack.start_notifier()`.
"""
from __future__ import annotations

import dataclasses
import os
from urllib.parse import urlsplit, urlunsplit

import pytest

from .nf_helpers import Stack, User

DATABASE_NAME = "taskqueue_notifier_test"
REDIS_DB = "4"
CLIENT_BUFFER = "32"

_ACTIVE: list[Stack] = []


def package_urls(database_url: str, redis_url: str) -> tuple[str, str]:
    """The suite's servers, with this package's database name and Redis db."""
    from sqlalchemy.engine import make_url

    from shared.db import sqlalchemy_url

    db = make_url(sqlalchemy_url(database_url)).set(database=DATABASE_NAME).render_as_string(hide_password=False)
    parts = urlsplit(redis_url)
    return db, urlunsplit(parts._replace(path=f"/{REDIS_DB}"))


@pytest.fixture(scope="package")
def nf_settings():
    from shared.settings import Settings

    base = Settings.from_env()
    database_url, redis_url = package_urls(base.database_url, base.redis_url)
    return dataclasses.replace(base, database_url=database_url, redis_url=redis_url)


@pytest.fixture(scope="package")
def nf_engine(nf_settings, recreate_database):
    from shared.db import make_engine
    from shared.migrate import upgrade

    recreate_database(nf_settings.database_url)
    upgrade(nf_settings.database_url)
    engine = make_engine(nf_settings.database_url, pool_size=2, application_name="notifier-tests")
    yield engine
    engine.dispose()


@pytest.fixture(scope="package")
def nf_redis(nf_settings):
    import redis

    client = redis.Redis.from_url(nf_settings.redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="package")
def stack(nf_settings, nf_engine, nf_redis, tmp_path_factory):
    env = {
        **os.environ,
        "DATABASE_URL": nf_settings.database_url,
        "REDIS_URL": nf_settings.redis_url,
        "NOTIFIER_CLIENT_BUFFER": CLIENT_BUFFER,
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    system = Stack(tmp_path_factory.mktemp("notifier-logs"), env)
    _ACTIVE.append(system)
    try:
        system.start_gateway()
        system.start_scheduler()
        system.start_worker(wait=False)
        system.start_notifier()
        for svc in system.every_service:
            svc.wait_healthy(timeout=40)
    except BaseException as exc:
        tails = system.tails()
        system.shutdown()
        _ACTIVE.clear()
        pytest.fail(f"could not start the stack: {exc}\n{tails}", pytrace=False)
    yield system
    system.shutdown()
    _ACTIVE.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _ACTIVE:
        report.sections.append(("service logs (tails)", _ACTIVE[0].tails()))


@pytest.fixture
def notifier(stack):
    return stack.notifier


@pytest.fixture
def user(stack):
    return User(stack.base_url)


@pytest.fixture
def other_user(stack):
    return User(stack.base_url)

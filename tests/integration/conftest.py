"""Integration fixtures for the gateway: the real app on the test Postgres + Redis, no mocks.

Building blocks (on top of tests/conftest.py's `settings`, `engine`, `redis_client`,
`clean_slate`):

- `app` / `client`: `gateway.app.create_app(settings)` and its Flask test client.
- `make_user()`: registers a user through the API and returns an `ApiUser` (id, password,
  tokens, `headers`). Registration hashes a password with scrypt (~50-100 ms), so tests
  that do not mutate the user share the module-scoped `user` / `other_user`; tests that
  change a password, log out or edit the profile take the function-scoped `fresh_user`.
- `db`: a `Db` helper for direct SQL (counts, fixtures rows, inspections).
- `create_task(headers, **fields)`: POST a valid task, assert 201, return the body.
- `events(task_id)` / `queued_message(queue, task_id)`: what the app published to Redis.

These tests need the test database and Redis db to themselves: no worker or scheduler may
consume their queued tasks. tests/e2e keeps such processes running until the end of the
session, so the hook below runs every e2e test after the rest of the suite, and the last
integration test removes what the integration users left (users, tasks, queued messages).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from integration_helpers import API, ApiUser, Db, Events, drain, message_ids, unique
from sqlalchemy import text

HERE = Path(__file__).resolve().parent
E2E = HERE.parent / "e2e"
_STATE: dict[str, Any] = {"user_ids": set()}


def pytest_collection_modifyitems(session, config, items):
    """Run tests/e2e last (stable order otherwise): its session-scoped system of worker and
    scheduler processes would otherwise consume the tasks these tests inspect."""
    items.sort(key=lambda item: E2E in Path(str(item.path)).resolve().parents)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    leaving = nextitem is None or HERE not in Path(str(nextitem.path)).resolve().parents
    if leaving:
        _cleanup()


def _cleanup() -> None:
    """Delete the integration users (their tasks, dead letters and tokens cascade), their
    outbox rows, and their tasks' Dramatiq messages, so later tests start from a quiet queue."""
    ids = sorted(_STATE["user_ids"])
    engine, redis_client = _STATE.get("engine"), _STATE.get("redis")
    if not ids or engine is None:
        return
    for app in _STATE.get("apps", ()):
        drain(app)
    with engine.begin() as conn:
        tasks = conn.execute(text("SELECT id::text, queue FROM tasks WHERE owner_id = ANY(:ids)"), {"ids": ids}).all()
        conn.execute(text("DELETE FROM task_events WHERE owner_id = ANY(:ids)"), {"ids": ids})
        conn.execute(text("DELETE FROM users WHERE id = ANY(:ids)"), {"ids": ids})
    if redis_client is not None and tasks:
        pipe = redis_client.pipeline(transaction=False)
        for task_id, queue in tasks:
            for key in message_ids(redis_client, queue, task_id):
                pipe.hdel(f"dramatiq:{queue}.msgs", key)
                pipe.lrem(f"dramatiq:{queue}", 0, key)
        pipe.execute()
    _STATE["user_ids"].clear()


@pytest.fixture(scope="session")
def app(settings, engine, redis_client, clean_slate):
    from gateway.app import create_app

    application = create_app(settings)
    _STATE.update(engine=engine, redis=redis_client)
    _STATE.setdefault("apps", []).append(application)
    yield application
    drain(application)


@pytest.fixture(scope="session")
def events(app, db, redis_client, settings) -> Events:
    """`events(task_id)` -> the task's event statuses in order (outbox rows + stream entries)."""
    return Events(app, db, redis_client, settings.events_stream)


@pytest.fixture(scope="session")
def queued_message(app, redis_client):
    """`queued_message(queue, task_id)` -> the task's Dramatiq message in Redis, or None."""
    from integration_helpers import message

    return lambda queue, task_id: message(app, redis_client, queue, task_id)


@pytest.fixture(scope="session")
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def db(engine) -> Db:
    return Db(engine)


@pytest.fixture(scope="session")
def register(client) -> Callable[..., Any]:
    """POST /auth/register/ with a valid body, overridden by `fields`; returns the response."""

    def _register(**fields: Any):
        username = fields.pop("username", None) or unique()
        password = fields.pop("password", "s3cret-pass-123")
        body = {
            "username": username,
            "email": f"{username}@example.com",
            "password": password,
            "password_confirm": password,
            **fields,
        }
        response = client.post(f"{API}/auth/register/", json=body)
        if response.status_code == 201:
            _STATE["user_ids"].add(response.get_json()["user"]["id"])  # removed by _cleanup
        return response, body

    return _register


@pytest.fixture(scope="session")
def make_user(register) -> Callable[..., ApiUser]:
    def _make_user(**fields: Any) -> ApiUser:
        response, body = register(**fields)
        assert response.status_code == 201, response.get_json()
        data = response.get_json()
        return ApiUser(
            id=data["user"]["id"],
            username=body["username"],
            email=body["email"],
            password=body["password"],
            access=data["tokens"]["access"],
            refresh=data["tokens"]["refresh"],
        )

    return _make_user


@pytest.fixture(scope="module")
def user(make_user) -> ApiUser:
    """A user shared by a module's tests: never mutate it (password, tokens, profile)."""
    return make_user()


@pytest.fixture(scope="module")
def other_user(make_user) -> ApiUser:
    return make_user()


@pytest.fixture
def fresh_user(make_user) -> ApiUser:
    """A user of its own for a test that changes it."""
    return make_user()


@pytest.fixture(scope="session")
def create_task(client) -> Callable[..., dict]:
    def _create_task(headers: dict, expect: int = 201, extra_headers: dict | None = None, **fields: Any) -> dict:
        body = {"name": fields.pop("name", unique("task")), "task_type": fields.pop("task_type", "echo"), **fields}
        response = client.post(f"{API}/tasks/", json=body, headers={**headers, **(extra_headers or {})})
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    return _create_task

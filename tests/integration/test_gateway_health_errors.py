"""Probes (/healthz, /readyz), /metrics, JSON errors for unknown paths and methods, and the
gateway's behaviour when Redis is unreachable."""
from __future__ import annotations

import dataclasses

import pytest
from integration_helpers import API, assert_error, drain, unique


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    data = response.get_json()
    assert data["postgres"] == "ok" and data["redis"] == "ok"
    assert data["status"] == "ready"


def test_probes_need_no_auth_and_reject_writes(client):
    for path in ("/healthz", "/readyz"):
        assert client.get(path, headers={"Authorization": "Bearer garbage"}).status_code == 200
        assert_error(client.post(path), 405)


def test_metrics(client, user):
    client.get(f"{API}/tasks/", headers=user.headers)  # at least one counted request
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "# TYPE" in text
    assert "taskqueue_gateway_http_request" in text


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/nope"),
        ("get", "/api/v1/"),
        ("get", f"{API}/unknown/"),
        ("post", f"{API}/tasks/00000000-0000-0000-0000-000000000000/explode/"),
        ("get", f"{API}/dead-letters/abc/reprocess/"),
    ],
)
def test_unknown_paths_404_json(client, user, method, path):
    data = assert_error(getattr(client, method)(path, headers=user.headers), 404)
    assert data["error"] == "Not found."


@pytest.mark.parametrize(
    "method, path",
    [
        ("delete", f"{API}/tasks/"),
        ("put", f"{API}/tasks/"),
        ("get", f"{API}/auth/register/"),
        ("get", f"{API}/auth/token/"),
        ("delete", f"{API}/auth/profile/"),
        ("get", f"{API}/tasks/00000000-0000-0000-0000-000000000000/cancel/"),
        ("post", f"{API}/tasks/stats/"),
        ("patch", f"{API}/dead-letters/"),
    ],
)
def test_wrong_method_405_json(client, user, method, path):
    response = getattr(client, method)(path, headers=user.headers)
    data = assert_error(response, 405)
    assert data["error"] == "Method not allowed."
    assert response.headers.get("Allow")


def test_error_bodies_are_json_for_every_status(client, user):
    """One sample per status the API produces: 400, 401, 404, 405, 413."""
    samples = [
        (client.post(f"{API}/tasks/", json={}, headers=user.headers), 400),
        (client.get(f"{API}/tasks/"), 401),
        (client.get(f"{API}/tasks/not-a-uuid/", headers=user.headers), 404),
        (client.put(f"{API}/tasks/stats/", headers=user.headers), 405),
        (client.post(f"{API}/auth/register/", data=b"x" * (1024 * 1024 + 1), content_type="application/json"), 413),
    ]
    for response, status in samples:
        body = assert_error(response, status)
        assert response.mimetype == "application/json"
        assert "detail" in body


@pytest.fixture(scope="module")
def redis_down_app(settings, engine):
    """The same gateway, pointed at a Redis that is not there."""
    from gateway.app import create_app

    application = create_app(dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/1"))
    yield application
    drain(application)


def test_readyz_503_when_redis_down(redis_down_app):
    response = redis_down_app.test_client().get("/readyz")
    data = assert_error(response, 503)
    assert data["status"] == "not ready"
    assert data["postgres"] == "ok"
    assert data["redis"] != "ok"


def test_task_accepted_when_redis_down(redis_down_app, make_user, db):
    """Postgres is the source of truth: the task is durable and answered 201; the scheduler
    enqueues it later."""
    owner = make_user()
    client = redis_down_app.test_client()
    response = client.post(f"{API}/tasks/", json={"name": unique("durable"), "task_type": "echo"}, headers=owner.headers)
    assert response.status_code == 201
    task = response.get_json()
    assert task["status"] == "queued"
    drain(redis_down_app)
    row = db.task(task["id"])
    assert row.status == "queued" and row.owner_id == owner.id
    # the event was not published, so its outbox row is kept for the scheduler's relay
    assert [status for _, status in db.outbox(task["id"])] == ["queued"]

"""The gateway's webhook endpoints (history, replay, trigger_webhook), ownership, and the SSRF
guard at task creation and at delivery time."""
from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from .helpers import create_hooked, deliveries, delivery, settle, wait_deliveries

DELIVERY_FIELDS = {
    "id", "task", "owner", "event", "status", "attempts", "request_url", "request_headers", "request_body",
    "signature", "queued_at", "last_attempt_at", "response_status_code", "response_body", "error_message",
    "replay_of",
}


def test_delivery_history_fields_and_filters(dispatcher, client, receiver):
    path = receiver.new_path("history")
    receiver.script(path, 500, 200)
    task = create_hooked(client, receiver, path, callback_events=["task.succeeded", "task.updated"])
    [d] = wait_deliveries(client, task["id"], "success")
    assert set(d) == DELIVERY_FIELDS
    assert (d["task"], d["owner"], d["event"], d["request_url"]) == (task["id"], client.user_id, "task.succeeded",
                                                                      receiver.url(path))
    assert d["replay_of"] is None and d["queued_at"] and d["last_attempt_at"] and d["attempts"] == 2
    assert d["request_headers"]["X-Taskqueue-Event"] == "task.succeeded"
    detail = delivery(client, task["id"], d["id"])
    assert {k: detail[k] for k in DELIVERY_FIELDS} == d and len(detail["attempt_log"]) == 2

    trigger = client.post(f"/tasks/{task['id']}/trigger_webhook/", json={"event": "task.updated"}, expect=200).json()
    wait_deliveries(client, task["id"], "success", count=2)
    assert [x["event"] for x in deliveries(client, task["id"], event="task.updated")] == ["task.updated"]
    assert [x["id"] for x in deliveries(client, task["id"], limit=1)] == [trigger["delivery_id"]]  # newest first
    assert len(deliveries(client, task["id"], status="success")) == 2
    assert deliveries(client, task["id"], status="failure") == []
    for params in ({"status": "done"}, {"event": "task.exploded"}, {"limit": "x"}, {"limit": "0"}, {"limit": "5000"}):
        client.get(f"/tasks/{task['id']}/webhook-deliveries/", expect=400, **params)


def test_replay_sends_the_same_body_as_a_new_delivery(dispatcher, client, receiver):
    path = receiver.new_path("replay")
    task = create_hooked(client, receiver, path, callback_secret="k")
    [first_req] = receiver.wait_for(path)
    [original] = wait_deliveries(client, task["id"], "success")

    response = client.post(f"/tasks/{task['id']}/webhook-deliveries/{original['id']}/replay/", expect=201)
    replay = response.json()
    assert set(replay) == DELIVERY_FIELDS
    assert replay["replay_of"] == original["id"] and replay["id"] != original["id"]
    assert replay["status"] == "pending" and replay["attempts"] == 0
    assert replay["request_body"] == original["request_body"] and replay["signature"] == original["signature"]

    _, second_req = receiver.wait_for(path, 2)
    assert second_req.body == first_req.body
    assert second_req.header("X-Taskqueue-Signature") == first_req.header("X-Taskqueue-Signature")
    assert second_req.header("webhook-id") == replay["id"] != first_req.header("webhook-id")
    wait_deliveries(client, task["id"], "success", count=2)
    client.post(f"/tasks/{task['id']}/webhook-deliveries/{uuid.uuid4()}/replay/", expect=404)


def test_trigger_webhook(dispatcher, client, receiver, db):
    path = receiver.new_path("trigger")
    task = create_hooked(client, receiver, path, callback_events=["task.succeeded", "task.updated"])
    receiver.wait_for(path)
    wait_deliveries(client, task["id"], "success")

    body = client.post(f"/tasks/{task['id']}/trigger_webhook/", json={"event": "task.updated"}, expect=200).json()
    assert body["queued"] is True and body["event"] == "task.updated" and body["delivery_id"]
    _, req = receiver.wait_for(path, 2)
    assert req.header("X-Taskqueue-Event") == "task.updated" and req.header("webhook-id") == body["delivery_id"]
    assert json.loads(req.body)["task"]["status"] == "success"
    # Default event, as in the reference: the task's terminal status event (a new, manual delivery).
    default = client.post(f"/tasks/{task['id']}/trigger_webhook/", expect=200).json()
    assert default["event"] == "task.succeeded" and default["delivery_id"]
    receiver.wait_for(path, 3)
    wait_deliveries(client, task["id"], "success", count=3)
    settle(1.0)  # the stream handler sees the trigger events too: it must not add deliveries
    assert len(deliveries(client, task["id"])) == 3 and len(receiver.requests(path)) == 3
    assert db.scalar("SELECT count(DISTINCT event_id) FROM webhook_deliveries WHERE task_id = :t", t=task["id"]) == 3

    unsubscribed = client.post(f"/tasks/{task['id']}/trigger_webhook/", json={"event": "task.failed"}, expect=200)
    assert unsubscribed.json() == {"queued": True, "event": "task.failed", "delivery_id": None}
    plain = client.create("echo", {})
    assert client.post(f"/tasks/{plain['id']}/trigger_webhook/", expect=200).json()["delivery_id"] is None
    client.post(f"/tasks/{task['id']}/trigger_webhook/", json={"event": "task.exploded"}, expect=400)
    client.post(f"/tasks/{uuid.uuid4()}/trigger_webhook/", expect=404)
    settle(0.5)
    assert len(receiver.requests(path)) == 3


def test_every_delivery_endpoint_is_owner_only(dispatcher, client, other_client, receiver):
    path = receiver.new_path("owned")
    task = create_hooked(client, receiver, path)
    [d] = wait_deliveries(client, task["id"], "success")
    mine = create_hooked(other_client, receiver, receiver.new_path("other"))
    base = f"/tasks/{task['id']}/webhook-deliveries"
    for response in (
        other_client.get(f"{base}/", expect=None),
        other_client.get(f"{base}/{d['id']}/", expect=None),
        other_client.post(f"{base}/{d['id']}/replay/"),
        other_client.post(f"/tasks/{task['id']}/trigger_webhook/", json={}),
        # a delivery id paired with another task, even one the caller owns
        other_client.get(f"/tasks/{mine['id']}/webhook-deliveries/{d['id']}/", expect=None),
        other_client.post(f"/tasks/{mine['id']}/webhook-deliveries/{d['id']}/replay/"),
    ):
        assert response.status_code == 404, response.text
    assert len(deliveries(client, task["id"])) == 1
    settle(0.3)
    assert len(receiver.requests(path)) == 1
    client.http.headers.pop("Authorization")
    assert client.get(f"{base}/", expect=None).status_code == 401


# --- SSRF ------------------------------------------------------------------------------------------

@pytest.fixture
def guarded_app(store):
    """An in-process gateway with private networks NOT allowed (production's default)."""
    from gateway.app import create_app

    app = create_app(dataclasses.replace(store.settings, webhook_allow_private_networks=False))
    client = app.test_client()
    name = f"ssrf_{uuid.uuid4().hex[:8]}"
    r = client.post("/api/v1/auth/register/", json={"username": name, "email": f"{name}@example.com",
                                                   "password": "s3cret-pass-123", "password_confirm": "s3cret-pass-123"})
    assert r.status_code == 201, r.get_json()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {r.get_json()['tokens']['access']}"
    yield client
    app.extensions["taskqueue"].handoff.close()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/",
    "http://localhost/hook", "http://[::1]/hook", "http://2130706433/hook", "http://no-such-host.invalid/hook",
])
def test_private_callback_urls_are_refused_at_creation(guarded_app, db, url):
    before = db.scalar("SELECT count(*) FROM tasks")
    r = guarded_app.post("/api/v1/tasks/", json={"name": "ssrf", "task_type": "echo", "callback_url": url})
    assert r.status_code == 400
    body = r.get_json()
    assert "callback_url" in body and body["callback_url"][0].startswith("Callback URL refused")
    assert db.scalar("SELECT count(*) FROM tasks") == before


def test_private_callback_urls_allowed_when_configured(dispatcher, client, receiver):
    """The services here run with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true (local development)."""
    assert create_hooked(client, receiver, receiver.new_path("local"))["callback_url"].startswith("http://127.0.0.1")
    r = client.post("/tasks/", json={"name": "meta", "task_type": "echo", "callback_url": "http://169.254.169.254/"})
    assert r.status_code == 400 and "metadata" in r.json()["callback_url"][0]


def test_callback_url_rechecked_at_delivery_time(dispatcher, client, receiver, db):
    """A URL that turned unsafe after creation (here: changed in the database, as DNS
    rebinding would) is refused at send time: a failure, never retried, nothing sent."""
    path = receiver.new_path("rebound")
    later = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    task = create_hooked(client, receiver, path, scheduled_at=later, callback_max_attempts=5)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE tasks SET callback_url = 'http://169.254.169.254/latest/meta-data/' WHERE id = %s",
                             (task["id"],))
    [d] = wait_deliveries(client, task["id"], "failure")
    assert d["attempts"] == 1 and "refused" in d["error_message"] and "metadata" in d["error_message"]
    assert d["response_status_code"] is None
    t = client.task(task["id"])
    assert t["callback_status"] == "failure" and "metadata" in t["callback_last_error"]
    assert receiver.requests(path) == []

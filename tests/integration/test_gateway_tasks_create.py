"""POST /api/v1/tasks/: fields, defaults, routing, scheduling, validation, idempotency, auth."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from integration_helpers import API, assert_error, drain, unique

TASKS = f"{API}/tasks/"

TASK_FIELDS = {
    "id", "name", "task_type", "status", "priority", "queue", "payload", "result", "error_message",
    "retry_count", "max_retries", "retry_delay", "timeout", "scheduled_at", "created_at", "updated_at",
    "started_at", "completed_at", "tags", "metadata", "callback_url", "callback_headers", "callback_events",
    "callback_max_attempts", "callback_status", "callback_attempts", "callback_last_attempt_at",
    "callback_last_response_code", "callback_last_error",
}
DEFAULT_EVENTS = ["task.succeeded", "task.failed", "task.revoked"]


@pytest.fixture
def snapshot(app, db, user):
    """Rows owned by `user` before a request, to prove a rejected request wrote nothing
    (counted with the app's post-commit handoff drained, so nothing is in flight)."""

    class Snapshot:
        def __init__(self):
            self.counts = self.take()

        @staticmethod
        def take():
            drain(app)
            return {"tasks": db.task_count(user.id), "outbox": db.event_count(user.id),
                    "dead_letters": db.dead_letter_count(user.id)}

        def assert_unchanged(self):
            assert self.take() == self.counts

    return Snapshot


# --- success -------------------------------------------------------------------------------


def test_create_full_task(client, user, db, events, queued_message, redis_client):
    body = {
        "name": "full task",
        "task_type": "compute",
        "payload": {"operation": "sum", "numbers": [1, 2, 3]},
        "priority": 10,
        "max_retries": 5,
        "retry_delay": 7,
        "timeout": 42,
        "tags": ["alpha", "beta"],
        "metadata": {"source": "test", "n": 1},
        "callback_url": "https://hooks.example.com/receive",
        "callback_headers": {"X-Token": "abc"},
        "callback_secret": "top-secret-value",
        "callback_events": ["task.succeeded"],
        "callback_max_attempts": 9,
    }
    response = client.post(TASKS, json=body, headers=user.headers)
    assert response.status_code == 201
    task = response.get_json()
    assert set(task) == TASK_FIELDS
    assert "callback_secret" not in task
    assert "top-secret-value" not in response.get_data(as_text=True)
    for key in ("name", "task_type", "payload", "priority", "max_retries", "retry_delay", "timeout", "tags",
                "metadata", "callback_url", "callback_headers", "callback_events", "callback_max_attempts"):
        assert task[key] == body[key], key
    assert task["status"] == "queued"
    assert task["queue"] == "high"
    assert task["retry_count"] == 0
    assert task["result"] is None and task["error_message"] == ""
    assert task["scheduled_at"] is None and task["started_at"] is None and task["completed_at"] is None
    assert task["created_at"] and task["updated_at"]

    row = db.task(task["id"])
    assert row.owner_id == user.id
    assert (row.status, row.queue, row.priority, row.timeout) == ("queued", "high", 10, 42)
    assert row.callback_secret == "top-secret-value"  # stored, only never shown
    assert row.enqueued_at is not None
    entries = list(events.entries(task["id"]).values())
    assert [e["status"] for e in entries] == ["queued"]  # exactly one event: the creation
    assert entries[0]["owner_id"] == str(user.id)

    message = queued_message("high", task["id"])
    assert message is not None
    assert message["queue_name"] == "high"
    assert message["args"] == [task["id"]]
    assert message["message_id"].startswith(task["id"] + ".")  # one id per send of the task
    assert message["message_id"].encode() in redis_client.lrange("dramatiq:high", 0, -1)


@pytest.mark.parametrize(
    "priority, queue",
    [(1, "low"), (5, "default"), (10, "high"), (20, "critical"), (15, "high"), (0, "low"), (100, "critical"),
     (-5, "low"), (2, "default"), (9, "default"), (19, "high")],
)
def test_priority_routes_to_queue(create_task, user, db, queued_message, priority, queue):
    task = create_task(user.headers, priority=priority)
    assert (task["priority"], task["queue"], task["status"]) == (priority, queue, "queued")
    assert db.task(task["id"]).queue == queue
    assert queued_message(queue, task["id"]) is not None
    for other in {"low", "default", "high", "critical"} - {queue}:
        assert queued_message(other, task["id"]) is None


def test_defaults(create_task, user, db):
    task = create_task(user.headers, name="defaults")
    assert task["priority"] == 5 and task["queue"] == "default"
    assert task["max_retries"] == 3
    assert task["retry_delay"] == 60
    assert task["timeout"] == 300
    assert task["callback_max_attempts"] == 5
    assert task["payload"] == {} and task["tags"] == [] and task["metadata"] == {}
    assert task["callback_url"] == "" and task["callback_events"] == [] and task["callback_headers"] == {}
    row = db.task(task["id"])
    assert (row.max_retries, row.retry_delay, row.timeout, row.callback_max_attempts) == (3, 60, 300, 5)


def test_callback_events_default_when_url_given(create_task, user):
    task = create_task(user.headers, callback_url="http://example.com/hook")
    assert task["callback_events"] == DEFAULT_EVENTS
    assert task["callback_max_attempts"] == 5


def test_scheduled_in_future_has_no_message(create_task, user, db, events, queued_message):
    when = datetime.now(timezone.utc) + timedelta(hours=1)
    task = create_task(user.headers, scheduled_at=when.isoformat(), priority=20)
    assert task["status"] == "scheduled"
    assert datetime.fromisoformat(task["scheduled_at"]) == when
    row = db.task(task["id"])
    assert row.status == "scheduled" and row.enqueued_at is None
    assert events(task["id"]) == ["scheduled"]
    for queue in ("low", "default", "high", "critical"):
        assert queued_message(queue, task["id"]) is None


def test_scheduled_with_z_suffix_and_naive_is_utc(create_task, user):
    when = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0)
    z = create_task(user.headers, scheduled_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    naive = create_task(user.headers, scheduled_at=when.strftime("%Y-%m-%dT%H:%M:%S"))
    for task in (z, naive):
        assert task["status"] == "scheduled"
        assert datetime.fromisoformat(task["scheduled_at"]) == when


def test_scheduled_in_past_is_queued(create_task, user, queued_message):
    past = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    task = create_task(user.headers, scheduled_at=past)
    assert task["status"] == "queued"
    assert queued_message("default", task["id"]) is not None


def test_every_task_type_accepted(create_task, user):
    from shared.task_types import TASK_TYPES

    for task_type in TASK_TYPES:
        assert create_task(user.headers, task_type=task_type)["task_type"] == task_type
    assert set(TASK_TYPES) >= {"echo", "compute", "sleep", "http_request", "process_data", "send_email",
                               "resize_image", "generate_report"}


def test_float_integral_priority_accepted(create_task, user):
    assert create_task(user.headers, priority=20.0)["queue"] == "critical"


# --- validation: 400 and nothing written -----------------------------------------------------


def base_body(**overrides):
    return {"name": unique("bad"), "task_type": "echo", "payload": {"message": "hi"}, **overrides}


INVALID = [
    ("unknown type", {"task_type": "mine_bitcoin"}, "task_type"),
    ("type not string", {"task_type": 5}, "task_type"),
    ("name missing", {"name": None}, "name"),
    ("name blank", {"name": "   "}, "name"),
    ("name empty", {"name": ""}, "name"),
    ("name too long", {"name": "n" * 256}, "name"),
    ("name not string", {"name": ["x"]}, "name"),
    ("priority str", {"priority": "a"}, "priority"),
    ("priority bool", {"priority": True}, "priority"),
    ("priority float", {"priority": 1.5}, "priority"),
    ("priority huge", {"priority": 10**12}, "priority"),
    ("timeout zero", {"timeout": 0}, "timeout"),
    ("timeout too big", {"timeout": 3601}, "timeout"),
    ("timeout str", {"timeout": "10"}, "timeout"),
    ("max_retries negative", {"max_retries": -1}, "max_retries"),
    ("retry_delay negative", {"retry_delay": -1}, "retry_delay"),
    ("scheduled_at garbage", {"scheduled_at": "tomorrow-ish"}, "scheduled_at"),
    ("scheduled_at number", {"scheduled_at": 1700000000}, "scheduled_at"),
    ("scheduled_at bad date", {"scheduled_at": "2026-13-45T00:00:00Z"}, "scheduled_at"),
    ("scheduled_at year 10000 in UTC", {"scheduled_at": "9999-12-31T23:59:59-05:00"}, "scheduled_at"),
    ("scheduled_at year 1", {"scheduled_at": "0001-01-01T00:00:00+05:00"}, "scheduled_at"),
    ("tags not list", {"tags": "a,b"}, "tags"),
    ("tags not strings", {"tags": ["a", 1]}, "tags"),
    ("tags object", {"tags": {"a": 1}}, "tags"),
    ("metadata list", {"metadata": [1, 2]}, "metadata"),
    ("metadata string", {"metadata": "x"}, "metadata"),
    ("callback_url ftp", {"callback_url": "ftp://example.com/x"}, "callback_url"),
    ("callback_url no scheme", {"callback_url": "example.com/hook"}, "callback_url"),
    ("callback_url not string", {"callback_url": 5}, "callback_url"),
    ("callback_events unknown", {"callback_url": "http://e.com/h", "callback_events": ["task.exploded"]}, "callback_events"),
    ("callback_events not list", {"callback_url": "http://e.com/h", "callback_events": "task.failed"}, "callback_events"),
    ("callback_headers non-string", {"callback_headers": {"X-A": 1}}, "callback_headers"),
    ("callback_headers list", {"callback_headers": ["X-A"]}, "callback_headers"),
    ("callback_max_attempts zero", {"callback_max_attempts": 0}, "callback_max_attempts"),
]


@pytest.mark.parametrize("overrides, field", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_field_400_writes_nothing(client, user, db, overrides, field, snapshot):
    body = {k: v for k, v in base_body(**overrides).items() if v is not None}
    before = snapshot()
    data = assert_error(client.post(TASKS, json=body, headers=user.headers), 400)
    assert field in data, data
    assert isinstance(data[field], list) and data[field]
    before.assert_unchanged()


def test_all_errors_reported_at_once(client, user):
    data = assert_error(client.post(TASKS, json={"priority": "x", "timeout": 0}, headers=user.headers), 400)
    assert {"name", "task_type", "priority", "timeout"} <= set(data)


RAW_INVALID = [
    ("malformed", b'{"name": "x", "task_type": '),
    ("array", b'[{"name": "x", "task_type": "echo"}]'),
    ("string", b'"echo"'),
    ("nul in name", b'{"name": "a\\u0000b", "task_type": "echo"}'),
    ("nul in payload", b'{"name": "ab", "task_type": "echo", "payload": {"k": "\\u0000"}}'),
    ("nul in payload key", b'{"name": "ab", "task_type": "echo", "payload": {"\\u0000": 1}}'),
    ("NaN in payload", b'{"name": "ab", "task_type": "echo", "payload": {"x": NaN}}'),
    ("Infinity in payload", b'{"name": "ab", "task_type": "echo", "payload": [Infinity]}'),
    ("overflowing number", b'{"name": "ab", "task_type": "echo", "payload": {"x": 1e400}}'),
    ("nested too deeply", b'{"name": "ab", "task_type": "echo", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
]


@pytest.mark.parametrize("raw", [case[1] for case in RAW_INVALID], ids=[case[0] for case in RAW_INVALID])
def test_bad_json_body_400_writes_nothing(client, user, db, raw, snapshot):
    before = snapshot()
    assert_error(client.post(TASKS, data=raw, content_type="application/json", headers=user.headers), 400)
    before.assert_unchanged()


def test_empty_body_400(client, user, db, snapshot):
    before = snapshot()
    data = assert_error(client.post(TASKS, headers=user.headers), 400)
    assert "name" in data and "task_type" in data
    before.assert_unchanged()


def test_oversized_body_413_json(client, user, db, snapshot):
    before = snapshot()
    big = json.dumps({"name": "big", "task_type": "echo", "payload": {"blob": "x" * (1024 * 1024 + 1)}})
    response = client.post(TASKS, data=big, content_type="application/json", headers=user.headers)
    assert_error(response, 413)
    before.assert_unchanged()


def test_body_just_under_limit_accepted(client, user):
    # about 900 kB: below the 1 MB cap
    body = {"name": "biggish", "task_type": "echo", "payload": {"blob": "x" * 900_000}}
    assert client.post(TASKS, json=body, headers=user.headers).status_code == 201


def test_create_requires_auth(client):
    assert_error(client.post(TASKS, json=base_body()), 401)
    assert_error(client.post(TASKS, json=base_body(), headers={"Authorization": "Bearer not.a.jwt"}), 401)
    assert_error(client.post(TASKS, json=base_body(), headers={"Authorization": "Token abc"}), 401)


# --- idempotency -----------------------------------------------------------------------------


def test_idempotency_key_same_owner_returns_original(client, user, other_user, db, events, snapshot):
    key = unique("idem")
    headers = {**user.headers, "Idempotency-Key": key}
    first = client.post(TASKS, json=base_body(name="idem-1"), headers=headers)
    assert first.status_code == 201
    before = snapshot()
    second = client.post(TASKS, json=base_body(name="idem-2 (ignored)"), headers=headers)
    assert second.status_code == 201
    assert second.get_json()["id"] == first.get_json()["id"]
    assert second.get_json()["name"] == "idem-1"
    assert second.headers.get("Idempotent-Replayed") == "true"
    before.assert_unchanged()
    assert events(first.get_json()["id"]) == ["queued"]  # no second event for the replay
    assert db.scalar("SELECT count(*) FROM tasks WHERE owner_id = :o AND idempotency_key = :k", o=user.id, k=key) == 1

    # another owner with the same key gets a task of their own
    theirs = client.post(TASKS, json=base_body(name="idem-other"), headers={**other_user.headers, "Idempotency-Key": key})
    assert theirs.status_code == 201
    assert theirs.get_json()["id"] != first.get_json()["id"]
    assert db.task(theirs.get_json()["id"]).owner_id == other_user.id

    # without the header, identical bodies create distinct tasks
    a = client.post(TASKS, json=base_body(name="same"), headers=user.headers).get_json()
    b = client.post(TASKS, json=base_body(name="same"), headers=user.headers).get_json()
    assert a["id"] != b["id"]


def test_idempotency_key_too_long_400(client, user, db, snapshot):
    before = snapshot()
    assert_error(client.post(TASKS, json=base_body(), headers={**user.headers, "Idempotency-Key": "k" * 256}), 400)
    before.assert_unchanged()


def test_idempotency_key_expires_after_24h(client, user, db):
    key = unique("idem-old")
    headers = {**user.headers, "Idempotency-Key": key}
    first = client.post(TASKS, json=base_body(), headers=headers).get_json()
    db.execute("UPDATE tasks SET created_at = now() - interval '25 hours' WHERE id = :id", id=first["id"])
    second = client.post(TASKS, json=base_body(), headers=headers)
    assert second.status_code == 201
    assert second.get_json()["id"] != first["id"]


def test_concurrent_creates_share_a_statement_and_each_gets_its_own_task(app, user, other_user, db):
    """Requests that arrive while an INSERT is in flight share the next one (group commit):
    each still gets exactly its own task, owned by its own user."""
    creates = app.extensions["taskqueue"].creates
    insert, batches = creates._run, []

    def recording(conn, rows):
        batches.append(len(rows))
        if len(batches) == 1:
            time.sleep(0.3)  # the others queue up behind the first statement
        return insert(conn, rows)

    def post(i: int):
        owner = (user, other_user)[i % 2]
        body = {"name": f"grouped-{i}", "task_type": "echo", "payload": {"i": i}}
        return owner, i, app.test_client().post(TASKS, json=body, headers=owner.headers)

    creates._run = recording
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(post, range(32)))
    finally:
        creates._run = insert
    assert max(batches) > 1 and sum(batches) == 32
    for owner, i, response in results:
        assert response.status_code == 201, response.get_json()
        task = response.get_json()
        assert task["name"] == f"grouped-{i}" and task["payload"] == {"i": i}
        assert db.scalar("SELECT owner_id FROM tasks WHERE id = :id", id=task["id"]) == owner.id
    assert len({r.get_json()["id"] for _, _, r in results}) == 32

"""/api/v1/dead-letters/: list (paginated, filtered), detail, reprocess, owner scoping."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from integration_helpers import API, assert_error
from sqlalchemy import text

DEAD = f"{API}/dead-letters"
DETAIL_FIELDS = {"id", "original_task", "task_name", "task_type", "payload", "error_message", "traceback",
                 "retry_count", "created_at", "reprocessed", "reprocessed_at"}


@pytest.fixture(scope="module")
def dead_owner(make_user):
    return make_user()


@pytest.fixture(scope="module")
def kill(create_task, engine, db):
    """Create a task through the API and drive it to `failure` with the worker's transitions:
    claim, then fail (which writes the dead letter in the same statement). Returns (task, entry id)."""
    from shared import transitions

    def _kill(owner, error: str = "ValueError: boom", attempts: int = 1, **fields):
        task = create_task(owner.headers, **fields)
        for attempt in range(1, attempts + 1):
            with engine.begin() as conn:
                assert transitions.run_one(conn, "claim", task_id=task["id"], lease=timedelta(seconds=30), worker="t") is not None
                if attempt < attempts:
                    moved = transitions.run_one(conn, "retry_later", task_id=task["id"], claim=attempt,
                                                error=error, error_traceback="tb", failures=attempt, delay=timedelta(0))
                    assert moved is not None
                    conn.execute(RELEASE, {"id": task["id"]})
                else:
                    failed = transitions.run_one(conn, "fail", task_id=task["id"], claim=attempt, error=error,
                                                 error_traceback=f"Traceback (most recent call last):\n{error}",
                                                 failures=attempt)
                    assert failed is not None and failed.status == "failure"
        entry = db.scalar("SELECT id FROM dead_letters WHERE original_task_id = :t", t=task["id"])
        assert entry is not None
        return task, str(entry)

    return _kill


# Release a retried task straight back to queued (what the scheduler does when it is due).
RELEASE = text("UPDATE tasks SET status = 'queued' WHERE id = :id AND status = 'retry'")


@pytest.fixture(scope="module")
def entries(dead_owner, kill, client):
    """Three dead letters: two echo, one compute (the compute one reprocessed)."""
    a = kill(dead_owner, name="first echo", task_type="echo", payload={"message": "a"}, priority=20)
    b = kill(dead_owner, name="second echo", task_type="echo", payload={"message": "b"})
    c = kill(dead_owner, name="the compute", task_type="compute", payload={"operation": "sum", "numbers": [1]},
             attempts=3, max_retries=3)
    response = client.post(f"{DEAD}/{c[1]}/reprocess/", headers=dead_owner.headers)
    assert response.status_code == 201
    return {"a": a, "b": b, "c": c}


def listing(client, user, query: str = "", status: int = 200):
    response = client.get(f"{DEAD}/{query}", headers=user.headers)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_list(client, dead_owner, entries):
    page = listing(client, dead_owner)
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 3 and page["next"] is None and page["previous"] is None
    assert {e["id"] for e in page["results"]} == {entries[k][1] for k in "abc"}
    assert all(DETAIL_FIELDS <= set(e) for e in page["results"])


def test_list_paginated(client, dead_owner, entries):
    first = listing(client, dead_owner, "?page_size=2")
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    second = client.get(first["next"], headers=dead_owner.headers).get_json()
    assert len(second["results"]) == 1 and second["next"] is None and second["previous"]
    assert {e["id"] for e in first["results"] + second["results"]} == {entries[k][1] for k in "abc"}
    assert_error(client.get(f"{DEAD}/?page=3&page_size=2", headers=dead_owner.headers), 404)
    assert_error(client.get(f"{DEAD}/?page_size=101", headers=dead_owner.headers), 400)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?task_type=echo", {"a", "b"}),
        ("?task_type=compute", {"c"}),
        ("?task_type=sleep", set()),
        ("?reprocessed=true", {"c"}),
        ("?reprocessed=false", {"a", "b"}),
        ("?reprocessed=1", {"c"}),
        ("?reprocessed=0&task_type=echo", {"a", "b"}),
        ("?reprocessed=true&task_type=echo", set()),
    ],
)
def test_list_filters(client, dead_owner, entries, query, expected):
    page = listing(client, dead_owner, query)
    assert {e["id"] for e in page["results"]} == {entries[k][1] for k in expected}
    assert page["count"] == len(expected)


@pytest.mark.parametrize("query", ["?reprocessed=maybe", "?task_type=%00", "?page=0"])
def test_list_bad_filters_400(client, dead_owner, query):
    assert_error(client.get(f"{DEAD}/{query}", headers=dead_owner.headers), 400)


def test_list_scoped_to_owner(client, other_user, entries):
    page = listing(client, other_user, "?page_size=100")
    assert not {e["id"] for e in page["results"]} & {entries[k][1] for k in "abc"}


def test_detail(client, dead_owner, entries, db):
    task, entry_id = entries["a"]
    response = client.get(f"{DEAD}/{entry_id}/", headers=dead_owner.headers)
    assert response.status_code == 200
    data = response.get_json()
    assert DETAIL_FIELDS <= set(data)
    assert data["id"] == entry_id
    assert data["original_task"] == task["id"]
    assert data["task_name"] == "first echo"
    assert data["task_type"] == "echo"
    assert data["payload"] == {"message": "a"}
    assert data["error_message"] == "ValueError: boom"
    assert data["traceback"].startswith("Traceback (most recent call last):")
    assert data["retry_count"] == 1
    assert data["created_at"]
    assert data["reprocessed"] is False and data["reprocessed_at"] is None
    assert db.task(task["id"]).status == "failure"


def test_detail_after_retries(client, dead_owner, entries):
    data = listing(client, dead_owner, "?task_type=compute")["results"][0]
    assert data["retry_count"] == 3
    assert data["reprocessed"] is True and data["reprocessed_at"] is not None


def test_reprocess_creates_new_task(client, dead_owner, kill, db, events, queued_message):
    original, entry_id = kill(dead_owner, name="to reprocess", task_type="compute",
                              payload={"operation": "product", "numbers": [2, 3]}, priority=10, tags=["x"])
    response = client.post(f"{DEAD}/{entry_id}/reprocess/", headers=dead_owner.headers)
    assert response.status_code == 201
    new = response.get_json()
    assert new["id"] != original["id"]
    assert new["name"] == "[Reprocessed] to reprocess"
    assert (new["task_type"], new["payload"], new["priority"]) == ("compute", {"operation": "product", "numbers": [2, 3]}, 10)
    assert new["status"] == "queued" and new["queue"] == "high" and new["retry_count"] == 0
    assert db.task(new["id"]).owner_id == dead_owner.id
    assert events(new["id"]) == ["queued"]
    assert queued_message("high", new["id"]) is not None

    entry = client.get(f"{DEAD}/{entry_id}/", headers=dead_owner.headers).get_json()
    assert entry["reprocessed"] is True and entry["reprocessed_at"] is not None
    assert db.task(original["id"]).status == "failure"  # the original stays as it was

    # a second reprocess is refused and creates nothing
    before = db.task_count(dead_owner.id)
    second = client.post(f"{DEAD}/{entry_id}/reprocess/", headers=dead_owner.headers)
    assert_error(second, 400)
    assert db.task_count(dead_owner.id) == before


def test_reprocess_long_name_truncated_to_255(client, dead_owner, kill):
    _, entry_id = kill(dead_owner, name="n" * 255)
    new = client.post(f"{DEAD}/{entry_id}/reprocess/", headers=dead_owner.headers).get_json()
    assert len(new["name"]) == 255 and new["name"].startswith("[Reprocessed] nnn")


def test_other_users_entry_404(client, other_user, dead_owner, entries, db):
    _, entry_id = entries["b"]
    assert_error(client.get(f"{DEAD}/{entry_id}/", headers=other_user.headers), 404)
    tasks_before = db.task_count(other_user.id)
    assert_error(client.post(f"{DEAD}/{entry_id}/reprocess/", headers=other_user.headers), 404)
    assert db.task_count(other_user.id) == tasks_before
    row = db.one("SELECT reprocessed FROM dead_letters WHERE id = :id", id=entry_id)
    assert row.reprocessed is False


@pytest.mark.parametrize("bad", ["nope", "1", str(uuid.uuid4())])
def test_unknown_or_malformed_id_404(client, dead_owner, bad):
    assert_error(client.get(f"{DEAD}/{bad}/", headers=dead_owner.headers), 404)
    assert_error(client.post(f"{DEAD}/{bad}/reprocess/", headers=dead_owner.headers), 404)


def test_requires_auth(client, entries):
    _, entry_id = entries["a"]
    assert_error(client.get(f"{DEAD}/"), 401)
    assert_error(client.get(f"{DEAD}/{entry_id}/"), 401)
    assert_error(client.post(f"{DEAD}/{entry_id}/reprocess/"), 401)

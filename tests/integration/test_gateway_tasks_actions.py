"""GET /tasks/{id}/, POST /tasks/{id}/cancel/, POST /tasks/{id}/retry/, GET /tasks/stats/."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from integration_helpers import API, assert_error, drop_messages

TASKS = f"{API}/tasks"
STATS_KEYS = {"total", "pending", "scheduled", "queued", "running", "retry", "success", "failure", "revoked",
              "dead_letters", "avg_duration"}


def claim(engine, task_id: str):
    """Move a queued task to running the way a worker does."""
    from shared import transitions

    with engine.begin() as conn:
        return transitions.run_one(conn, "claim", task_id=task_id, lease=timedelta(seconds=30), worker="test-worker")


def fail(engine, task_id: str, attempt: int = 1, error: str = "boom"):
    """Fail a running task for good (failure + dead letter), as a worker does at its last attempt."""
    from shared import transitions

    with engine.begin() as conn:
        return transitions.run_one(
            conn, "fail", task_id=task_id, claim=attempt, error=error, error_traceback="Traceback: boom", failures=attempt
        )


def state(db, task_id: str):
    return db.one("SELECT status, retry_count, updated_at FROM tasks WHERE id = :id", id=task_id)


# --- detail ----------------------------------------------------------------------------------


def test_get_own_task(client, user, create_task):
    task = create_task(user.headers, payload={"message": "hi"}, tags=["t"])
    response = client.get(f"{TASKS}/{task['id']}/", headers=user.headers)
    assert response.status_code == 200
    assert response.get_json() == task


def test_get_other_users_task_404(client, user, other_user, create_task):
    task = create_task(other_user.headers)
    data = assert_error(client.get(f"{TASKS}/{task['id']}/", headers=user.headers), 404)
    assert task["id"] not in str(data)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%00"])
def test_non_uuid_id_404_json(client, user, bad_id):
    for method, suffix in (("get", ""), ("post", "cancel/"), ("post", "retry/")):
        assert_error(getattr(client, method)(f"{TASKS}/{bad_id}/{suffix}", headers=user.headers), 404)


def test_unknown_uuid_404(client, user):
    missing = uuid.uuid4()
    assert_error(client.get(f"{TASKS}/{missing}/", headers=user.headers), 404)
    assert_error(client.post(f"{TASKS}/{missing}/cancel/", headers=user.headers), 404)
    assert_error(client.post(f"{TASKS}/{missing}/retry/", headers=user.headers), 404)


def test_detail_requires_auth(client, user, create_task, db, events):
    task = create_task(user.headers)
    assert_error(client.get(f"{TASKS}/{task['id']}/"), 401)
    assert_error(client.post(f"{TASKS}/{task['id']}/cancel/"), 401)
    assert_error(client.post(f"{TASKS}/{task['id']}/retry/"), 401)
    assert events(task["id"]) == ["queued"]


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_queued(client, user, create_task, db, events):
    task = create_task(user.headers)
    response = client.post(f"{TASKS}/{task['id']}/cancel/", headers=user.headers)
    assert response.status_code == 200
    data = response.get_json()
    assert data["id"] == task["id"] and data["status"] == "revoked"
    assert data["completed_at"] is not None
    assert db.task(task["id"]).status == "revoked"
    assert events(task["id"]) == ["queued", "revoked"]


def test_cancel_scheduled(client, user, create_task, db, events):
    task = create_task(user.headers, scheduled_at="2099-01-01T00:00:00Z")
    assert client.post(f"{TASKS}/{task['id']}/cancel/", headers=user.headers).get_json()["status"] == "revoked"
    assert events(task["id"]) == ["scheduled", "revoked"]


def test_cancel_running(client, user, create_task, db, engine, events):
    task = create_task(user.headers)
    assert claim(engine, task["id"]) is not None
    response = client.post(f"{TASKS}/{task['id']}/cancel/", headers=user.headers)
    assert response.status_code == 200 and response.get_json()["status"] == "revoked"
    assert events(task["id"]) == ["queued", "running", "revoked"]


@pytest.mark.parametrize("status", ["pending", "retry"])
def test_cancel_pending_or_retry(client, user, create_task, db, status):
    task = create_task(user.headers)
    db.execute("UPDATE tasks SET status = :s WHERE id = :id", s=status, id=task["id"])
    response = client.post(f"{TASKS}/{task['id']}/cancel/", headers=user.headers)
    assert response.status_code == 200 and response.get_json()["status"] == "revoked"
    assert db.task(task["id"]).status == "revoked"


@pytest.mark.parametrize("terminal", ["revoked", "success", "failure"])
def test_cancel_terminal_400(client, user, create_task, db, terminal, events):
    task = create_task(user.headers)
    db.execute("UPDATE tasks SET status = :s WHERE id = :id", s=terminal, id=task["id"])
    before = state(db, task["id"])
    seen = events(task["id"])
    response = client.post(f"{TASKS}/{task['id']}/cancel/", headers=user.headers)
    assert response.status_code == 400
    assert response.get_json()["error"] == f"Cannot cancel task with status: {terminal}"
    assert state(db, task["id"]) == before
    assert events(task["id"]) == seen


def test_cancel_twice(client, user, create_task):
    task = create_task(user.headers)
    assert client.post(f"{TASKS}/{task['id']}/cancel/", headers=user.headers).status_code == 200
    second = client.post(f"{TASKS}/{task['id']}/cancel/", headers=user.headers)
    assert second.status_code == 400
    assert second.get_json() == {"error": "Cannot cancel task with status: revoked",
                                 "detail": "Cannot cancel task with status: revoked"}


def test_cancel_other_users_task_404_changes_nothing(client, user, other_user, create_task, db, events):
    task = create_task(other_user.headers)
    before, seen = state(db, task["id"]), events(task["id"])
    assert_error(client.post(f"{TASKS}/{task['id']}/cancel/", headers=user.headers), 404)
    assert state(db, task["id"]) == before
    assert events(task["id"]) == seen == ["queued"]


# --- retry -----------------------------------------------------------------------------------


def test_retry_revoked(client, user, create_task, db, redis_client, events, queued_message):
    task = create_task(user.headers, priority=20)
    client.post(f"{TASKS}/{task['id']}/cancel/", headers=user.headers)
    assert queued_message("critical", task["id"]) is not None
    drop_messages(redis_client, "critical", task["id"])  # as if a worker had consumed it
    db.execute("UPDATE tasks SET retry_count = 2, error_message = 'old' WHERE id = :id", id=task["id"])
    response = client.post(f"{TASKS}/{task['id']}/retry/", headers=user.headers)
    assert response.status_code == 200
    data = response.get_json()
    assert data["status"] == "queued" and data["retry_count"] == 0
    assert data["error_message"] == "" and data["completed_at"] is None and data["result"] is None
    row = db.task(task["id"])
    assert (row.status, row.retry_count, row.attempts) == ("queued", 0, 0)
    assert events(task["id"]) == ["queued", "revoked", "queued"]
    assert queued_message("critical", task["id"]) is not None  # sent again


def test_retry_failure_with_dead_letter(client, user, create_task, db, engine, events):
    task = create_task(user.headers)
    claim(engine, task["id"])
    assert fail(engine, task["id"]) is not None
    response = client.post(f"{TASKS}/{task['id']}/retry/", headers=user.headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "queued" and response.get_json()["retry_count"] == 0
    assert events(task["id"]) == ["queued", "running", "failure", "queued"]


@pytest.mark.parametrize("status", ["queued", "scheduled", "running", "success", "retry"])
def test_retry_not_retryable_400(client, user, create_task, db, status, events):
    task = create_task(user.headers)
    db.execute("UPDATE tasks SET status = :s WHERE id = :id", s=status, id=task["id"])
    before, seen = state(db, task["id"]), events(task["id"])
    response = client.post(f"{TASKS}/{task['id']}/retry/", headers=user.headers)
    assert response.status_code == 400
    assert response.get_json()["error"] == f"Cannot retry task with status: {status}"
    assert state(db, task["id"]) == before and events(task["id"]) == seen


def test_retry_other_users_task_404_changes_nothing(client, user, other_user, create_task, db, events):
    task = create_task(other_user.headers)
    client.post(f"{TASKS}/{task['id']}/cancel/", headers=other_user.headers)
    before, seen = state(db, task["id"]), events(task["id"])
    assert_error(client.post(f"{TASKS}/{task['id']}/retry/", headers=user.headers), 404)
    assert state(db, task["id"]) == before and before.status == "revoked"
    assert events(task["id"]) == seen


# --- stats -----------------------------------------------------------------------------------


def test_stats_exact_for_caller(client, make_user, other_user, create_task, db, engine):
    owner = make_user()
    empty = client.get(f"{TASKS}/stats/", headers=owner.headers)
    assert empty.status_code == 200
    assert empty.get_json() == {**{k: 0 for k in STATS_KEYS}, "avg_duration": None}

    statuses = ["queued", "queued", "scheduled", "running", "retry", "success", "success", "success",
                "failure", "revoked", "pending"]
    ids = [create_task(owner.headers)["id"] for _ in statuses]
    for task_id, status in zip(ids, statuses):
        db.execute("UPDATE tasks SET status = :s WHERE id = :id", s=status, id=task_id)
    # durations of the successes: 2 s, 4 s, 9 s -> 5.0; a failure's duration does not count
    for task_id, seconds in zip(ids[5:9], (2, 4, 9, 100)):
        db.execute(
            "UPDATE tasks SET started_at = now() - make_interval(secs => :s), completed_at = now() WHERE id = :id",
            s=seconds, id=task_id,
        )
    # two dead letters of the caller, via the worker's own transition
    for _ in range(2):
        dead = create_task(owner.headers)["id"]
        claim(engine, dead)
        fail(engine, dead)
    # noise from another user
    create_task(other_user.headers)

    response = client.get(f"{TASKS}/stats/", headers=owner.headers)
    assert response.status_code == 200
    stats = response.get_json()
    assert set(stats) == STATS_KEYS
    assert stats == {
        "total": 13,
        "pending": 1,
        "scheduled": 1,
        "queued": 2,
        "running": 1,
        "retry": 1,
        "success": 3,
        "failure": 3,
        "revoked": 1,
        "dead_letters": 2,
        "avg_duration": pytest.approx(5.0, abs=1e-3),
    }


def test_stats_requires_auth(client):
    assert_error(client.get(f"{TASKS}/stats/"), 401)

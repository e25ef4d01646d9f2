"""Helpers for the gateway integration tests (imported by conftest.py and the test modules)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

API = "/api/v1"


def unique(prefix: str = "user") -> str:
    # tests/conftest.py's helper, repeated: both files are modules named `conftest`, so
    # neither can be imported by name from a test module.
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@dataclass
class ApiUser:
    id: int
    username: str
    email: str
    password: str
    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


class Db:
    """Thin synchronous SQL helper over the session engine (autocommit per call)."""

    def __init__(self, engine):
        self.engine = engine

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def one(self, sql: str, **params: Any):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).one()

    def all(self, sql: str, **params: Any) -> list:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def execute(self, sql: str, **params: Any) -> Any:
        with self.engine.begin() as conn:
            return conn.execute(text(sql), params)

    # Per-owner counts, so concurrent test runs on the same database cannot disturb them.
    def task_count(self, owner_id: int) -> int:
        return self.scalar("SELECT count(*) FROM tasks WHERE owner_id = :o", o=owner_id)

    def event_count(self, owner_id: int) -> int:
        return self.scalar("SELECT count(*) FROM task_events WHERE owner_id = :o", o=owner_id)

    def dead_letter_count(self, owner_id: int) -> int:
        return self.scalar("SELECT count(*) FROM dead_letters WHERE owner_id = :o", o=owner_id)

    def task(self, task_id: str):
        return self.one("SELECT * FROM tasks WHERE id = :id", id=task_id)

    def outbox(self, task_id: str) -> list[tuple[int, str]]:
        rows = self.all("SELECT id, status FROM task_events WHERE task_id = :id ORDER BY id", id=task_id)
        return [(r.id, r.status) for r in rows]

    def user_row(self, username: str):
        return self.one("SELECT * FROM users WHERE username = :u", u=username)

    def user_exists(self, username: str) -> bool:
        return bool(self.scalar("SELECT count(*) FROM users WHERE lower(username) = lower(:u)", u=username))


def drain(app) -> None:
    """Wait until the app's post-commit work (event publishing, sending Dramatiq messages,
    done on a background thread) has finished: `close()` flushes what is queued and joins
    the thread; the next request starts a new one."""
    runtime = app.extensions["taskqueue"]
    for name in ("handoff", "publisher"):
        worker = getattr(runtime, name, None)
        if worker is not None and hasattr(worker, "close"):
            worker.close()


class Events:
    """Every status change of a task, as the outside world sees it: its outbox rows (the
    `task_events` table, written in the transition's statement) and the entries published on
    the `taskqueue:events` stream, merged by event id once the app's handoff has drained."""

    def __init__(self, app, db: Db, redis_client, stream: str):
        self.app, self.db, self.redis, self.stream = app, db, redis_client, stream

    def entries(self, task_id: str) -> dict[int, dict]:
        drain(self.app)
        found: dict[int, dict] = {}
        # Only the stream's entries since the task was created (stream ids are ms timestamps;
        # Postgres and Redis share this machine's clock, 5 s of slack).
        created_ms = self.db.scalar(
            "SELECT floor(extract(epoch FROM created_at) * 1000)::bigint FROM tasks WHERE id = :id", id=task_id
        )
        start = f"{max(0, created_ms - 5000)}-0" if created_ms is not None else "-"
        for _, fields in self.redis.xrange(self.stream, min=start):
            decoded = {k.decode(): v.decode() for k, v in fields.items()}
            if decoded.get("task_id") == str(task_id):
                found[int(decoded["event_id"])] = decoded
        for event_id, status in self.db.outbox(task_id):
            found.setdefault(event_id, {"event_id": str(event_id), "task_id": str(task_id), "status": status})
        return dict(sorted(found.items()))

    def __call__(self, task_id: str) -> list[str]:
        """The task's statuses, in order of their events."""
        return [e["status"] for e in self.entries(task_id).values()]


def message_ids(redis_client, queue: str, task_id: str) -> list[bytes]:
    """Ids of the task's messages in Redis (hash `dramatiq:<queue>.msgs`, ids "<task id>.<sent at>")."""
    return [key for key, _ in redis_client.hscan_iter(f"dramatiq:{queue}.msgs", match=f"{task_id}.*")]


def drop_messages(redis_client, queue: str, task_id: str) -> None:
    """Remove the task's messages, as if a worker had consumed them."""
    for key in message_ids(redis_client, queue, task_id):
        redis_client.hdel(f"dramatiq:{queue}.msgs", key)
        redis_client.lrem(f"dramatiq:{queue}", 0, key)


def message(app, redis_client, queue: str, task_id: str) -> dict | None:
    """The task's current Dramatiq message in Redis, if any."""
    import json

    drain(app)
    keys = message_ids(redis_client, queue, task_id)
    raw = redis_client.hget(f"dramatiq:{queue}.msgs", max(keys)) if keys else None
    return json.loads(raw) if raw is not None else None


def assert_error(response, status: int) -> dict:
    """The response has `status` and a JSON object body with an "error" key."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.is_json, response.headers.get("Content-Type")
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    return body

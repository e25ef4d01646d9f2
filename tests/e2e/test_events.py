"""Every status change of a task is published, in order, on the `taskqueue:events` stream."""
from __future__ import annotations

import json

from .e2e_helpers import wait_until

FIELDS = {"event_id", "task_id", "owner_id", "status", "result", "error_message", "timestamp"}


def test_status_changes_are_published_in_order_on_the_event_stream(client, db, events):
    task = client.create("echo", {"hello": "stream"}, name="evented")
    done = client.wait_status(task["id"], ("success", "failure"), timeout=10)
    assert done["status"] == "success"

    history = events.wait_for(task["id"], ["queued", "running", "success"])
    for e in history:
        assert FIELDS <= set(e), e
        assert e["task_id"] == task["id"]
        assert e["owner_id"] == str(client.user_id)
        assert e["error_message"] == ""
    assert json.loads(history[0]["result"]) is None
    assert json.loads(history[1]["result"]) is None
    assert json.loads(history[2]["result"]) == {"echoed": {"hello": "stream"}}
    assert history[0]["at"] <= history[1]["at"] <= history[2]["at"]
    # each status change is one stream entry (no duplicates of an event id)
    raw = [f for _, f in events.redis.xrange(events.stream) if f[b"task_id"].decode() == task["id"]]
    assert sorted(int(f[b"event_id"]) for f in raw) == [int(e["event_id"]) for e in history]

    # the outbox keeps nothing unpublished for this task: each row is marked published
    # (or, where the outbox deletes published rows, gone)
    if db.has_column("task_events", "published_at"):
        unpublished = "SELECT count(*) FROM task_events WHERE task_id = :t AND published_at IS NULL"
    else:
        unpublished = "SELECT count(*) FROM task_events WHERE task_id = :t"
    wait_until(lambda: db.scalar(unpublished, t=task["id"]) == 0, 10,
               message="every outbox row of the task to be published")
    remaining = [r.id for r in db.rows("SELECT id FROM task_events WHERE task_id = :t ORDER BY id", t=task["id"])]
    assert remaining in ([], [int(e["event_id"]) for e in history])  # the outbox ids are the event ids

"""A failing task is retried with growing backoff, then dead-lettered; reprocess runs it again."""
from __future__ import annotations

from datetime import datetime

BAD_PAYLOAD = {"operation": "modulo", "numbers": [1, 2]}


def test_failing_task_retries_with_growing_gaps_then_dead_letters_and_reprocesses(client, db, events):
    task = client.create("compute", BAD_PAYLOAD, max_retries=3, retry_delay=1, name="always fails")

    # in between attempts the task waits in `retry` with its next attempt scheduled
    waiting = client.wait_status(task["id"], "retry", timeout=10, interval=0.02)
    assert waiting["retry_count"] == 1
    assert "Unknown operation" in waiting["error_message"]
    assert waiting["scheduled_at"] is not None

    done = client.wait_status(task["id"], ("success", "failure", "revoked"), timeout=20)
    assert done["status"] == "failure"
    assert done["retry_count"] == 3
    assert "Unknown operation" in done["error_message"]

    # every attempt is a `running` event on the stream; the gaps between them grow
    history = events.wait_for(task["id"], [
        "queued", "running", "retry", "queued", "running", "retry", "queued", "running", "failure"])
    running = [e["at"] for e in history if e["status"] == "running"]
    gaps = [(b - a).total_seconds() for a, b in zip(running, running[1:])]
    # nominal backoff 1 s then 2 s (jitter only shortens by up to 20%)
    assert 0.8 <= gaps[0] < 1.8, gaps
    assert gaps[1] > gaps[0], gaps
    assert gaps[1] >= 1.6, gaps
    assert db.task_row(task["id"]).attempts == 3

    # the exhausted task is a dead letter
    letters = client.get("/dead-letters/").json()
    entry = next((d for d in letters["results"] if d["original_task"] == task["id"]), None)
    assert entry is not None, letters
    assert entry["task_type"] == "compute" and entry["payload"] == BAD_PAYLOAD
    assert entry["retry_count"] == 3 and "Unknown operation" in entry["error_message"]
    assert entry["reprocessed"] is False
    detail = client.get(f"/dead-letters/{entry['id']}/").json()
    assert detail["task_name"] == "always fails"

    # reprocess: a new task with the same type and payload, which runs (and fails again)
    r = client.post(f"/dead-letters/{entry['id']}/reprocess/", expect=201)
    new = r.json()
    assert new["id"] != task["id"]
    assert new["name"] == "[Reprocessed] always fails"
    assert (new["task_type"], new["payload"]) == ("compute", BAD_PAYLOAD)
    ran = client.wait_status(new["id"], ("retry", "failure"), timeout=10)
    assert "Unknown operation" in ran["error_message"]
    assert datetime.fromisoformat(ran["updated_at"]) >= datetime.fromisoformat(new["created_at"])
    assert events.statuses(new["id"])[:2] == ["queued", "running"]

    again = client.post(f"/dead-letters/{entry['id']}/reprocess/")
    assert again.status_code == 400, again.text
    assert client.get(f"/dead-letters/{entry['id']}/").json()["reprocessed"] is True

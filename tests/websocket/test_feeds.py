"""Live updates: one task's feed, the list feed (the caller's tasks only), snapshot on connect."""
from __future__ import annotations

from e2e.e2e_helpers import iso_in

from .nf_helpers import collect, finished, open_feed, quiet, stream_ids_increasing

UPDATE_FIELDS = {"type", "event_id", "stream_id", "task_id", "status", "result", "error_message", "timestamp"}


def distinct_in_order(statuses: list[str]) -> list[str]:
    return [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]


def test_one_task_feed_sends_snapshot_then_every_status_in_order(notifier, user):
    task = user.create("sleep", {"duration": 0.3}, scheduled_at=iso_in(1.0))
    with open_feed(notifier, user, task["id"]) as ws:
        messages = collect(ws, finished([task["id"]]))

    snapshot, updates = messages[0], messages[1:]
    assert set(snapshot) == UPDATE_FIELDS
    assert snapshot["type"] == "task_update" and snapshot["event_id"] is None and snapshot["stream_id"] is None
    assert snapshot["status"] == "scheduled" and snapshot["task_id"] == task["id"]
    assert distinct_in_order([m["status"] for m in messages]) == ["scheduled", "queued", "running", "success"]
    for m in updates:
        assert set(m) == UPDATE_FIELDS and m["task_id"] == task["id"]
        assert isinstance(m["event_id"], int) and m["timestamp"]
    assert stream_ids_increasing(updates)
    assert len({m["event_id"] for m in updates}) == len(updates)
    assert updates[-1]["result"] == {"slept_for": 0.3} and updates[-1]["error_message"] == ""


def test_list_feed_carries_only_the_callers_tasks(notifier, user, other_user):
    with open_feed(notifier, user) as mine, open_feed(notifier, other_user) as theirs:
        own = [user.create("echo", {"n": i})["id"] for i in range(2)]
        foreign = other_user.create("echo", {"n": 9})["id"]
        my_messages = collect(mine, finished(own))
        their_messages = collect(theirs, finished([foreign]))
        my_messages += quiet(mine, 0.3)
        their_messages += quiet(theirs, 0.3)

    assert {m["task_id"] for m in my_messages} == set(own)
    assert {m["task_id"] for m in their_messages} == {foreign}
    for task_id in own:
        statuses = [m["status"] for m in my_messages if m["task_id"] == task_id]
        assert statuses == ["queued", "running", "success"]
    assert stream_ids_increasing(my_messages)


def test_connecting_after_the_task_finished_still_tells_its_outcome(notifier, user):
    task = user.create("echo", {"hello": "world"})
    done = user.wait_status(task["id"], "success")
    with open_feed(notifier, user, task["id"]) as ws:
        first = collect(ws, lambda got: len(got) == 1)[0]
        later = quiet(ws, 0.3)

    assert first["event_id"] is None and first["status"] == "success"
    assert first["result"] == done["result"] and first["task_id"] == task["id"]
    # A late-published event of the same change may follow, never an older state.
    assert all(m["status"] == "success" for m in later)

"""Resume: reconnecting with last_event_id (the last stream_id received) misses nothing, repeats nothing."""
from __future__ import annotations

from e2e.e2e_helpers import wait_until

from .nf_helpers import collect, finished, open_feed, quiet, stream_ids_increasing

STREAM = "taskqueue:events"


def owner_events_after(redis_client, owner_id: int, after: str) -> list[dict]:
    """The stream's entries for `owner_id` after `after`, first copy of each event id only."""
    out, seen = [], set()
    for entry_id, raw in redis_client.xrange(STREAM, min=f"({after}", max="+"):
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        if int(fields["owner_id"]) == owner_id and fields["event_id"] not in seen:
            seen.add(fields["event_id"])
            out.append({"stream_id": entry_id.decode(), **fields})
    return out


def test_resume_after_disconnect_misses_nothing_and_repeats_nothing(notifier, user, other_user, store):
    with open_feed(notifier, user) as ws:
        first = user.create("echo", {"n": 1})["id"]
        before = collect(ws, finished([first]))
    last_seen = before[-1]["stream_id"]

    # While disconnected: two tasks of ours run to completion, another user's task too, and the
    # relay republishes one of our events (same event_id, new stream entry).
    missed = [user.create("echo", {"n": n})["id"] for n in (2, 3)]
    other_user.create("echo", {"n": 4})
    user.wait_all(missed)
    expected = wait_until(lambda: (lambda ev: ev if len(ev) == 6 else None)(
        owner_events_after(store.redis, user.user_id, last_seen)), 10, message="the missed events on the stream")
    republished = next(e for e in expected if e["task_id"] == missed[0] and e["status"] == "success")
    store.redis.xadd(STREAM, {k: v for k, v in republished.items() if k != "stream_id"})

    with open_feed(notifier, user, last_event_id=last_seen) as ws:
        replayed = collect(ws, finished(missed))
        replayed += quiet(ws, 0.3)
        # ... and the same connection carries on live.
        later = user.create("echo", {"n": 5})["id"]
        live = collect(ws, finished([later]))

    assert [m["event_id"] for m in replayed] == [int(e["event_id"]) for e in expected]
    assert [m["stream_id"] for m in replayed] == [e["stream_id"] for e in expected]
    assert stream_ids_increasing(replayed + live)
    for task_id in missed:
        assert [m["status"] for m in replayed if m["task_id"] == task_id] == ["queued", "running", "success"]
    assert first not in {m["task_id"] for m in replayed}
    assert [m["status"] for m in live] == ["queued", "running", "success"]


def test_resume_on_a_single_task_feed_skips_the_snapshot(notifier, user):
    with open_feed(notifier, user) as ws:  # open before the task exists: every event of it arrives
        task = user.create("sleep", {"duration": 0.4})
        got = collect(ws, lambda ms: any(m["status"] == "running" for m in ms))
    running = next(m for m in got if m["status"] == "running")
    user.wait_status(task["id"], "success")

    with open_feed(notifier, user, task["id"], last_event_id=running["stream_id"]) as ws:
        after = collect(ws, finished([task["id"]])) + quiet(ws, 0.3)
    assert [m["status"] for m in after] == ["success"]
    assert after[0]["event_id"] is not None


def test_resume_from_beyond_the_retention_says_so_then_sends_the_snapshot(notifier, user, store):
    # The list feed, open before the task exists, receives every event of it (a single-task
    # feed opened later may start from a snapshot that already says "success").
    with open_feed(notifier, user) as ws:
        task = user.create("echo", {"n": 1})
        seen = collect(ws, finished([task["id"]]))
    assert [m["status"] for m in seen] == ["queued", "running", "success"]
    store.redis.xtrim(STREAM, maxlen=0, approximate=False)  # retention ran out: every entry is gone

    # From an older entry, and from the newest one the stream ever had: nothing was added after
    # it, but once a client's entry is gone the notifier cannot tell what it missed.
    for last_seen in (seen[0]["stream_id"], seen[-1]["stream_id"]):
        with open_feed(notifier, user, task["id"], last_event_id=last_seen) as ws:
            got = collect(ws, lambda ms: len(ms) == 2) + quiet(ws, 0.3)
        assert got[0]["type"] == "replay_gap" and "refetch" in got[0]["detail"]
        assert got[1]["type"] == "task_update" and got[1]["event_id"] is None and got[1]["status"] == "success"
        assert len(got) == 2

        with open_feed(notifier, user, last_event_id=last_seen) as ws:  # the list feed has no snapshot
            assert [m["type"] for m in collect(ws, lambda ms: len(ms) == 1) + quiet(ws, 0.3)] == ["replay_gap"]


def test_resume_after_a_trim_says_so_then_sends_what_was_added_since(notifier, user, store):
    with open_feed(notifier, user) as ws:
        first = user.create("echo", {"n": 1})["id"]
        last_seen = collect(ws, finished([first]))[-1]["stream_id"]
    store.redis.xtrim(STREAM, maxlen=0, approximate=False)
    later = user.create("echo", {"n": 2})["id"]  # appended after the trim, while disconnected
    user.wait_status(later, "success")
    added = wait_until(lambda: (lambda ev: ev if len(ev) == 3 else None)(
        owner_events_after(store.redis, user.user_id, last_seen)), 10, message="the new task's events on the stream")

    with open_feed(notifier, user, last_event_id=last_seen) as ws:
        got = collect(ws, lambda ms: finished([later])(ms[1:])) + quiet(ws, 0.3)
        live_task = user.create("echo", {"n": 3})["id"]  # ... and the connection carries on live
        live = collect(ws, finished([live_task]))

    assert got[0]["type"] == "replay_gap"
    assert [m["stream_id"] for m in got[1:]] == [e["stream_id"] for e in added]
    assert [(m["task_id"], m["status"]) for m in got[1:]] == [(later, s) for s in ("queued", "running", "success")]
    assert [m["status"] for m in live] == ["queued", "running", "success"]
    assert stream_ids_increasing(got[1:] + live)

"""Resume: reconnecting with last_event_id (the last stream_id received) misses nothing, repeats nothing."""
from __future__ import annotations

from e2e.e2e_helpers import iso_in, wait_until

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


def test_resume_after_disconnect_misses_nothing_and_repeats_nothing(notifier, user, other_user, nf_redis):
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
        owner_events_after(nf_redis, user.user_id, last_seen)), 10, message="the missed events on the stream")
    republished = next(e for e in expected if e["task_id"] == missed[0] and e["status"] == "success")
    nf_redis.xadd(STREAM, {k: v for k, v in republished.items() if k != "stream_id"})

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
    task = user.create("sleep", {"duration": 0.4}, scheduled_at=iso_in(0.8))  # connected before it runs
    with open_feed(notifier, user, task["id"]) as ws:
        got = collect(ws, lambda ms: any(m["status"] == "running" and m["event_id"] for m in ms))
    running = next(m for m in got if m["status"] == "running" and m["event_id"])
    user.wait_status(task["id"], "success")

    with open_feed(notifier, user, task["id"], last_event_id=running["stream_id"]) as ws:
        after = collect(ws, finished([task["id"]])) + quiet(ws, 0.3)
    assert [m["status"] for m in after] == ["success"]
    assert after[0]["event_id"] is not None


def test_resume_from_beyond_the_retention_says_so_then_sends_the_snapshot(notifier, user, nf_redis):
    task = user.create("echo", {"n": 1})
    with open_feed(notifier, user, task["id"]) as ws:
        seen = collect(ws, finished([task["id"]]))
    last_seen = next(m["stream_id"] for m in seen if m["event_id"])
    nf_redis.xtrim(STREAM, maxlen=0, approximate=False)  # retention ran out: every entry is gone

    with open_feed(notifier, user, task["id"], last_event_id=last_seen) as ws:
        got = collect(ws, lambda ms: len(ms) == 2) + quiet(ws, 0.3)
    assert got[0]["type"] == "replay_gap" and "refetch" in got[0]["detail"]
    assert got[1]["type"] == "task_update" and got[1]["event_id"] is None and got[1]["status"] == "success"
    assert len(got) == 2

    with open_feed(notifier, user, last_event_id=last_seen) as ws:  # the list feed has no snapshot
        assert [m["type"] for m in collect(ws, lambda ms: len(ms) == 1) + quiet(ws, 0.3)] == ["replay_gap"]

"""Cross-owner probes on the notifier's websocket paths: B cannot subscribe to A's task (the
same refusal as an unknown task, before any data, with none of A's data in it), and B's
all-tasks feed, live or replayed from the start of the stream, never carries A's events.
A's own feeds receive them (the positive control)."""
from __future__ import annotations

import json
import uuid

import pytest

from .helpers import SecUser, leaks, marker, ws_messages, ws_open, ws_refusal, ws_url


@pytest.fixture(scope="module")
def pair(system):
    a, b = SecUser(system), SecUser(system)
    markers = [marker("wsname"), marker("wspayload")]
    task = a.create_task(name=markers[0], payload={"p": markers[1]})
    a.wait_task(task["id"], "success")
    return a, b, task, markers + [a.username]


def _done(task_id: str):
    return lambda got: any(m.get("task_id") == task_id and m.get("status") == "success" and m.get("event_id")
                           for m in got)


def test_subscribing_to_another_users_task_is_refused_like_an_unknown_task(system, pair):
    """B's handshake for A's task: 404, the same status and body as for a task id that does not
    exist, none of A's data; with the token in the header or in the query string."""
    a, b, task, markers = pair
    for headers, token in (({"Authorization": f"Bearer {b.access}"}, None), (None, b.access)):
        status, body, resp_headers = ws_refusal(ws_url(system, task["id"], token=token), headers)
        unknown_status, unknown_body, _ = ws_refusal(ws_url(system, str(uuid.uuid4()), token=token), headers)
        assert status == 404 and (status, body) == (unknown_status, unknown_body)
        text = body.decode(errors="replace") + json.dumps(resp_headers)
        assert not leaks(text, markers + ["success"]), text
    # also when asking to resume from the start of the stream
    status, _, _ = ws_refusal(ws_url(system, task["id"], last_event_id="0-0"), {"Authorization": f"Bearer {b.access}"})
    assert status == 404


def test_owner_can_subscribe_to_its_task(system, pair):
    """Positive control: A's handshake for the same task is accepted and gets its snapshot."""
    a, _, task, _ = pair
    with ws_open(system, a.access, task["id"]) as ws:
        first = ws_messages(ws, 5, until=lambda got: bool(got))
    assert first and first[0]["task_id"] == task["id"] and first[0]["status"] == "success"


def test_all_tasks_feed_never_carries_another_users_events(system, pair):
    """With A and B both on /ws/tasks/, A's new task (and a manual webhook event on A's old
    task) reach A's feed only; B's feed sees B's own task finish and nothing of A's."""
    a, b, old_task, markers = pair
    with ws_open(system, a.access) as a_feed, ws_open(system, b.access, header=False) as b_feed:
        new_name = marker("wslive")
        a_task = a.create_task(name=new_name, payload={"p": markers[1]})
        a.ok("POST", f"/tasks/{old_task['id']}/trigger_webhook/", json={"event": "task.updated"})
        a.wait_task(a_task["id"], "success")
        b_task = b.create_task()
        a_got = ws_messages(a_feed, 15, until=_done(a_task["id"]))
        b_got = ws_messages(b_feed, 15, until=_done(b_task["id"]))
        b_got += ws_messages(b_feed, 1.0)  # anything late
    assert _done(a_task["id"])(a_got), a_got
    assert _done(b_task["id"])(b_got), b_got
    a_ids = {a_task["id"], old_task["id"]}
    assert not [m for m in b_got if m.get("task_id") in a_ids]
    assert not leaks(json.dumps(b_got), markers + [new_name])


def test_replay_from_the_start_of_the_stream_skips_other_users_events(system, pair):
    """Resuming B's feed from the very first stream entry replays B's own events only, although
    the stream holds A's too."""
    a, b, old_task, markers = pair
    b_task = b.create_task()
    b.wait_task(b_task["id"], "success")
    with ws_open(system, b.access, last_event_id="0-0") as feed:
        got = ws_messages(feed, 10, until=_done(b_task["id"]))
    assert _done(b_task["id"])(got), got
    updates = [m for m in got if m.get("type") == "task_update"]
    own = {t["id"] for t in b.ok("GET", "/tasks/", params={"page_size": 100})["results"]}
    assert {m["task_id"] for m in updates} <= own
    assert not leaks(json.dumps(got), markers + [old_task["id"]])

"""The dispatcher's guarantees under failure: kill -9 mid-send, several replicas, Redis losing
the event stream, SIGTERM with a send in flight."""
from __future__ import annotations

import json
import signal
import threading
import time

from e2e.e2e_helpers import wait_until

from .helpers import create_hooked, deliveries, delivery, settle, wait_deliveries
from .receiver import Reply

STREAM = "taskqueue:events"


def stream_consumed(client) -> bool:
    """Every entry of the stream was read and acknowledged by the dispatchers' group."""
    last = client.xinfo_stream(STREAM)["last-generated-id"]
    group = next(g for g in client.xinfo_groups(STREAM) if g["name"] == b"dispatcher")
    return group["last-delivered-id"] == last and group["pending"] == 0


def test_kill9_mid_send_the_webhook_still_arrives_after_restart(dispatcher, client, receiver):
    path = receiver.new_path("kill9")
    release = threading.Event()
    receiver.script(path, Reply(200, hold=release))  # the first request is held open
    task = create_hooked(client, receiver, path, callback_secret="k")
    [first] = receiver.wait_for(path)  # recorded, claimed and being sent ...
    dispatcher.kill_dispatcher(dispatcher.dispatchers[0])  # ... when its dispatcher dies
    release.set()
    [d] = deliveries(client, task["id"])
    assert d["status"] == "pending"

    dispatcher.start_dispatcher()
    _, second = receiver.wait_for(path, 2, timeout=15)  # once the dead sender's lease ran out
    assert second.header("webhook-id") == first.header("webhook-id") == d["id"]  # receivers can dedupe
    assert second.body == first.body
    [d] = wait_deliveries(client, task["id"], "success")
    log = delivery(client, task["id"], d["id"])["attempt_log"]
    assert [a["attempt"] for a in log] == [1, 2]
    assert log[0]["error"].startswith("Interrupted") and log[1]["status_code"] == 200
    assert client.task(task["id"])["callback_status"] == "success"


def test_kill9_with_stream_entries_unacknowledged_loses_nothing(dispatcher, client, receiver, store):
    """Entries a dead replica read but never acknowledged are taken over by another one."""
    svc = dispatcher.dispatchers[0]
    svc.proc.send_signal(signal.SIGSTOP)  # it keeps its consumer but reads nothing more
    paths = [receiver.new_path("stopped") for _ in range(3)]
    try:
        tasks = [create_hooked(client, receiver, p) for p in paths]
        client.wait_all([t["id"] for t in tasks], statuses=("success",))
        dispatcher.start_dispatcher()
        for p in paths:  # the new replica reads them (if the stopped one never got them) or claims them
            receiver.wait_for(p, timeout=15)
    finally:
        dispatcher.kill_dispatcher(svc)
    for t, p in zip(tasks, paths):
        wait_deliveries(client, t["id"], "success")
        assert len(receiver.requests(p)) == 1


def test_two_replicas_deliver_each_event_exactly_once(dispatcher, client, receiver, db, store):
    dispatcher.start_dispatcher()
    paths = [receiver.new_path("replicas") for _ in range(24)]
    tasks = [create_hooked(client, receiver, p) for p in paths]
    for p in paths:
        receiver.wait_for(p, timeout=20)
    # The same events once more on the stream (a relay re-publishing, a replayed backlog).
    task_ids = {t["id"] for t in tasks}
    copies = [fields for _, fields in store.redis.xrange(STREAM)
              if fields[b"task_id"].decode() in task_ids and fields[b"status"] == b"success"]
    assert len(copies) == len(tasks)
    for fields in copies:
        store.redis.xadd(STREAM, fields)
    wait_until(lambda: stream_consumed(store.redis), 10, message="the dispatchers to read and acknowledge the copies")
    settle(0.5)
    for t, p in zip(tasks, paths):
        assert len(receiver.requests(p)) == 1, p
    counts = db.rows("SELECT task_id::text, count(*) FROM webhook_deliveries WHERE task_id = ANY(CAST(:ids AS uuid[])) "
                     "GROUP BY task_id", ids=list(task_ids))
    assert sorted(c for _, c in counts) == [1] * len(tasks)
    by = db.rows("SELECT DISTINCT claimed_by FROM webhook_deliveries")  # all finished: no lease held
    assert [r[0] for r in by] == [""]


def test_reconciliation_records_deliveries_whose_stream_event_was_lost(dispatcher, client, receiver, db, store):
    svc = dispatcher.dispatchers[0]
    svc.proc.send_signal(signal.SIGSTOP)  # it reads nothing while the event comes and goes
    try:
        path = receiver.new_path("lost")
        task = create_hooked(client, receiver, path)
        client.wait_status(task["id"], "success")
        wait_until(lambda: any(f[b"task_id"].decode() == task["id"] and f[b"status"] == b"success"
                               for _, f in store.redis.xrange(STREAM)), 5, message="the success event on the stream")
        store.redis.delete(STREAM)  # Redis lost the stream (and the consumer group with it)
    finally:
        svc.proc.send_signal(signal.SIGCONT)

    [req] = receiver.wait_for(path, timeout=15)
    assert json.loads(req.body)["event"] == "task.succeeded"
    [d] = wait_deliveries(client, task["id"], "success")
    row = db.rows("SELECT event_id, occurred_at FROM webhook_deliveries WHERE id = :d", d=d["id"])[0]
    assert row.event_id is None  # recorded by the reconciliation, not from the stream
    assert row.occurred_at == db.task_row(task["id"]).completed_at
    # The running dispatcher met NOGROUP and recreated its group.
    wait_until(lambda: store.redis.exists(STREAM) and any(g["name"] == b"dispatcher" for g in store.redis.xinfo_groups(STREAM)),
               5, message="the consumer group to be recreated")
    settle(1.5)  # a few more reconciliation rounds: still exactly one
    assert len(receiver.requests(path)) == 1 and len(deliveries(client, task["id"])) == 1
    later = receiver.new_path("after-loss")
    create_hooked(client, receiver, later)
    receiver.wait_for(later)  # and the stream works again


def test_stream_event_and_reconciliation_agree_on_the_status_change(dispatcher, client, receiver, db):
    """The key that lets reconciliation skip streamed deliveries: occurred_at = completed_at."""
    path = receiver.new_path("key")
    task = create_hooked(client, receiver, path)
    [d] = wait_deliveries(client, task["id"], "success")
    row = db.rows("SELECT event_id, occurred_at, queued_at FROM webhook_deliveries WHERE id = :d", d=d["id"])[0]
    t = db.task_row(task["id"])
    assert row.event_id is not None, (  # recorded from the stream, as normally
        f"reconciled instead: created {t.created_at}, completed {t.completed_at}, recorded {row.queued_at}")
    assert row.occurred_at == t.completed_at


def test_sigterm_finishes_the_send_in_flight_and_exits_0(dispatcher, client, receiver):
    path = receiver.new_path("sigterm")
    receiver.script(path, Reply(200, delay=1.0))
    task = create_hooked(client, receiver, path)
    receiver.wait_for(path)
    started = time.monotonic()
    svc = dispatcher.dispatchers[0]
    dispatcher.stop_dispatcher(svc)
    assert svc.proc.returncode == 0 and time.monotonic() - started < 8
    [d] = deliveries(client, task["id"])
    assert d["status"] == "success" and d["attempts"] == 1  # finished, not left to a lease
    assert len(receiver.requests(path)) == 1

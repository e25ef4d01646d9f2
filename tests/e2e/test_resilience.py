"""Nothing is lost when a worker dies, a worker is stopped, or Redis forgets everything."""
from __future__ import annotations

import time

from shared import broker

from .e2e_helpers import metric_value, wait_until

RUNNING = "taskqueue_worker_running_tasks"


def test_kill_9_of_the_worker_mid_task_the_task_still_finishes(client, system, db, events, worker_restored):
    task = client.create("sleep", {"duration": 3}, name="survives kill -9")
    client.wait_status(task["id"], "running", timeout=10)
    time.sleep(0.5)  # well inside the handler
    system.kill_worker()
    assert client.task(task["id"])["status"] == "running"  # nobody knows yet: only the lease expires

    system.start_worker()
    # lease (3 s) expires -> the scheduler requeues it -> the new worker runs it again (3 s)
    done = client.wait_status(task["id"], ("success", "failure", "revoked"), timeout=20, interval=0.1)
    assert done["status"] == "success", done
    assert done["result"] == {"slept_for": 3}
    row = db.task_row(task["id"])
    assert row.attempts == 2  # at-least-once: the killed attempt, then the recovered one
    events.wait_for(task["id"], ["queued", "running", "queued", "running", "success"])


def test_tasks_queued_when_redis_is_flushed_all_still_finish(client, system, redis_client, worker_restored):
    system.stop_all_workers()
    ids = [client.create("echo", {"i": i}, name=f"flushed {i}")["id"] for i in range(20)]
    # messages are sent right after the commit, off the request thread
    wait_until(lambda: redis_client.llen("dramatiq:default") >= 20, 5, message="the 20 messages in Redis")
    redis_client.flushdb()  # Redis restarted empty: every message is gone
    assert redis_client.llen("dramatiq:default") == 0

    system.start_worker()
    done = client.wait_all(ids, timeout=30)
    assert {t["status"] for t in done.values()} == {"success"}
    assert sorted(t["result"]["echoed"]["i"] for t in done.values()) == list(range(20))


def test_sigterm_of_the_worker_hands_the_running_task_back(client, system, db, events, redis_client,
                                                           worker_restored):
    task = client.create("sleep", {"duration": 60}, name="handed back on SIGTERM")
    client.wait_status(task["id"], "running", timeout=10)
    first_worker = db.task_row(task["id"]).worker_id

    took = system.stop_worker()
    assert took <= 10.0, f"the worker needed {took:.1f}s to stop"
    back = client.task(task["id"])
    assert back["status"] == "queued", back
    # its new message is in Redis already (not left to the scheduler's lost-message sweep)
    message_id = broker.message_id(task["id"], db.task_row(task["id"]).enqueued_at)
    assert redis_client.hexists(f"dramatiq:{back['queue']}.msgs", message_id)
    assert message_id.encode() in redis_client.lrange(f"dramatiq:{back['queue']}", 0, -1)
    assert back["started_at"] is None
    events.wait_for(task["id"], ["queued", "running", "queued"])

    # a new worker picks it up again
    worker = system.start_worker()
    started = time.monotonic()
    client.wait_status(task["id"], "running", timeout=10, interval=0.1)
    picked_up_after = time.monotonic() - started
    row = db.task_row(task["id"])
    assert row.worker_id and row.worker_id != first_worker
    assert row.attempts == 2
    assert picked_up_after < 2.0, f"the handed-back task waited {picked_up_after:.1f}s for the new worker"

    # cancel it to finish
    assert client.cancel(task["id"]).json()["status"] == "revoked"
    wait_until(lambda: metric_value(system.metrics(worker), RUNNING) == 0, 2.0, message="the sleep to stop")
    assert client.task(task["id"])["status"] == "revoked"

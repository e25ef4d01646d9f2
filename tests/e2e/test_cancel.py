"""Cancelling a running task stops its execution within 2 s, and it never succeeds afterwards."""
from __future__ import annotations

import time

from .e2e_helpers import metric_value, wait_until

RUNNING = "taskqueue_worker_running_tasks"
FINISHED = "taskqueue_worker_tasks_finished_total"


def test_cancel_of_a_running_sleep_stops_it(client, system, events, worker_restored):
    worker = system.worker
    revoked_before = metric_value(system.metrics(worker), FINISHED, {"task_type": "sleep", "outcome": "revoked"})
    task = client.create("sleep", {"duration": 60}, name="long sleep")
    client.wait_status(task["id"], "running", timeout=10)
    wait_until(lambda: metric_value(system.metrics(worker), RUNNING) == 1, 5, message="the worker to run it")

    r = client.cancel(task["id"])
    cancelled_at = time.monotonic()
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked"

    # the worker stops the handler within 2 s of the cancel
    wait_until(lambda: metric_value(system.metrics(worker), RUNNING) == 0, 2.0, interval=0.05,
               message="the running-tasks gauge to return to 0")
    stopped_after = time.monotonic() - cancelled_at
    assert stopped_after <= 2.0
    assert metric_value(system.metrics(worker), FINISHED, {"task_type": "sleep", "outcome": "revoked"}) == revoked_before + 1

    # and the task stays revoked: no success, ever
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert client.task(task["id"])["status"] == "revoked"
        time.sleep(0.25)
    events.wait_for(task["id"], ["queued", "running", "revoked"])
    final = client.task(task["id"])
    assert final["result"] is None and final["completed_at"] is not None
    again = client.cancel(task["id"])
    assert again.status_code == 400 and again.json()["error"] == "Cannot cancel task with status: revoked"
    assert worker.alive()

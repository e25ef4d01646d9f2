"""Priority under backlog: one worker serving every queue runs critical work first."""
from __future__ import annotations

from datetime import datetime

from .e2e_helpers import wait_until

LOW, CRITICAL = 1, 20


def test_critical_task_submitted_last_starts_before_90_percent_of_a_low_backlog(client, system, worker_restored):
    system.stop_all_workers()
    low_ids = [client.create("echo", {"i": i}, priority=LOW, name=f"backlog low {i}")["id"] for i in range(200)]
    critical = client.create("echo", {"urgent": True}, priority=CRITICAL, name="backlog critical")
    assert critical["queue"] == "critical"
    assert client.task(low_ids[0])["queue"] == "low"
    assert client.get("/tasks/stats/").json()["queued"] == 201  # nothing ran while no worker was up

    system.start_worker(threads=4)
    wait_until(lambda: client.get("/tasks/stats/").json()["success"] == 201, 60, 0.2,
               message="the 201 backlog tasks to succeed")

    tasks = {t["id"]: t for t in client.all_tasks()}
    critical_start = datetime.fromisoformat(tasks[critical["id"]]["started_at"])
    low_starts = [datetime.fromisoformat(tasks[i]["started_at"]) for i in low_ids]
    started_later = sum(1 for s in low_starts if s > critical_start)
    print(f"critical task started before {started_later} of {len(low_ids)} low tasks")
    assert started_later >= 0.9 * len(low_ids), (
        f"the critical task started before only {started_later} of {len(low_ids)} low tasks")

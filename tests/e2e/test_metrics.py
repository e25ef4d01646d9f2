"""Metrics of the running services: the gateway's /metrics sums both server processes, and the
worker counts retries and dead letters (metric definitions are unit-tested; this is the wiring)."""
from __future__ import annotations

from pathlib import Path

import requests

from .e2e_helpers import metric_value, wait_until

CREATED = "taskqueue_gateway_tasks_created_total"


def test_gateway_metrics_are_aggregated_across_server_processes(client, system):
    def created() -> float:
        return metric_value(requests.get(f"{system.base_url}/metrics", timeout=5).text, CREATED, {"task_type": "sleep"})

    before = created()
    for i in range(20):  # a new connection each time: the kernel spreads them over both workers
        r = requests.post(f"{client.base}/tasks/", headers=dict(client.http.headers), timeout=10,
                          json={"name": f"metrics {i}", "task_type": "sleep", "payload": {"duration": 0}})
        assert r.status_code == 201, r.text
    for _ in range(6):  # whichever worker answers the scrape reports the sum
        assert created() - before == 20
    files = list(Path(system.gateway.env["PROMETHEUS_MULTIPROC_DIR"]).glob("counter_*.db"))
    assert len(files) >= 2, files  # both worker processes recorded samples


def test_worker_counts_retries_and_dead_letters(client, system):
    def scrape(name: str) -> float:
        return metric_value(system.metrics(system.worker), name, {"task_type": "compute"})

    retries, dead = scrape("taskqueue_worker_retries_total"), scrape("taskqueue_worker_dead_lettered_total")
    task = client.create("compute", {"operation": "modulo", "numbers": [1]}, max_retries=2, retry_delay=1)
    assert client.wait_status(task["id"], ("success", "failure"), timeout=20)["status"] == "failure"
    wait_until(lambda: scrape("taskqueue_worker_dead_lettered_total") - dead == 1, 5)
    assert scrape("taskqueue_worker_retries_total") - retries == 1

"""The worker's metrics for each way an attempt ends: started/finished by task type and final
status, the execution-time histogram, retries and dead letters. The executor runs real handlers;
only its database statements are replaced by the row a transition would have returned."""
from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY
from worker.execution import Executor


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def run_attempt(monkeypatch, task_type: str, payload, final_status: str | None):
    """Execute one claimed task whose outcome transition returns `final_status` (None: lost claim)."""
    claimed = SimpleNamespace(id="t-1", task_type=task_type, queue="high", payload=payload, timeout=5,
                              attempts=1, retry_count=0, max_retries=3, retry_delay=1)
    rows = [] if final_status is None else [SimpleNamespace(id="t-1", status=final_status)]
    monkeypatch.setattr("worker.execution.transitions.run",
                        lambda conn, transition, **params: [claimed] if transition == "claim" else rows)
    executor = Executor(engine=SimpleNamespace(connect=nullcontext), handoff=SimpleNamespace(submit=lambda rows: None),
                        worker_id="w", lease_seconds=30, allow_private_networks=False)
    executor.execute("t-1")


@pytest.mark.parametrize(
    "payload, final, retries, dead",
    [
        ({"operation": "sum", "numbers": [1, 2]}, "success", 0, 0),
        ({"operation": "nope"}, "retry", 1, 0),  # the handler fails; another attempt is scheduled
        ({"operation": "nope"}, "failure", 0, 1),  # retries exhausted: failure plus a dead letter
        ({"operation": "nope"}, None, 0, 0),  # the lease was taken over meanwhile: nothing recorded
    ],
)
def test_attempt_outcomes(monkeypatch, payload, final, retries, dead):
    names = {
        "started": ("taskqueue_worker_tasks_started_total", {"task_type": "compute", "queue": "high"}),
        "finished": ("taskqueue_worker_tasks_finished_total", {"task_type": "compute", "outcome": final or "stale"}),
        "durations": ("taskqueue_worker_task_duration_seconds_count", {"task_type": "compute"}),
        "retries": ("taskqueue_worker_retries_total", {"task_type": "compute"}),
        "dead": ("taskqueue_worker_dead_lettered_total", {"task_type": "compute"}),
    }
    before = {key: sample(name, **labels) for key, (name, labels) in names.items()}
    run_attempt(monkeypatch, "compute", payload, final)
    delta = {key: sample(name, **labels) - before[key] for key, (name, labels) in names.items()}
    assert delta == {"started": 1, "finished": 1, "durations": 1, "retries": retries, "dead": dead}
    assert sample("taskqueue_worker_running_tasks") == 0

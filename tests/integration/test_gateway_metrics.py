"""The gateway's own Prometheus metrics on /metrics: tasks created by type and queue, API errors by
status, and the HTTP metrics of prometheus-flask-exporter under the taskqueue_gateway_ prefix."""
from __future__ import annotations

from integration_helpers import API, assert_error
from prometheus_client.parser import text_string_to_metric_families


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_tasks_created_by_type_and_queue(client, user, create_task):
    before = scrape(client)
    create_task(user.headers, task_type="compute", priority=20, payload={"operation": "sum", "numbers": [1]})
    create_task(user.headers, task_type="echo", priority=1)
    create_task(user.headers, task_type="echo", priority=1)
    key = "replayed-once"
    create_task(user.headers, task_type="echo", priority=1, extra_headers={"Idempotency-Key": key})
    create_task(user.headers, task_type="echo", priority=1, extra_headers={"Idempotency-Key": key})  # a replay
    create_task(user.headers, expect=400, task_type="nope")
    after = scrape(client)
    def created(task_type, queue):
        name = "taskqueue_gateway_tasks_created_total"
        return value(after, name, task_type=task_type, queue=queue) - value(before, name, task_type=task_type, queue=queue)

    assert created("compute", "critical") == 1
    assert created("echo", "low") == 3


def test_api_errors_by_status(client, user):
    before = scrape(client)
    assert_error(client.get(f"{API}/tasks/"), 401)
    assert_error(client.get(f"{API}/tasks/00000000-0000-0000-0000-000000000000/", headers=user.headers), 404)
    assert_error(client.get(f"{API}/tasks/00000000-0000-0000-0000-000000000000/", headers=user.headers), 404)
    assert client.get(f"{API}/tasks/", headers=user.headers).status_code == 200
    after = scrape(client)
    name = "taskqueue_gateway_api_errors_total"
    assert value(after, name, status="401") - value(before, name, status="401") == 1
    assert value(after, name, status="404") - value(before, name, status="404") == 2
    assert value(after, name, status="200") == 0


def test_http_metrics_use_the_taskqueue_prefix(client, user):
    client.get(f"{API}/tasks/", headers=user.headers)
    samples = scrape(client)
    names = {name for name, _ in samples}
    assert "taskqueue_gateway_http_request_duration_seconds_count" in names
    assert "taskqueue_gateway_http_request_total" in names
    assert not any(name.startswith("flask_") for name in names)
    assert value(samples, "taskqueue_gateway_http_request_total", method="GET", status="200") > 0

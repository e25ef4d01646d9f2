"""The gateway's Prometheus metrics: `/metrics` with the HTTP metrics of prometheus-flask-exporter
(`taskqueue_gateway_http_request_*`) plus business counters.

With more than one server process, `python -m gateway` sets PROMETHEUS_MULTIPROC_DIR before any
of them imports prometheus_client: every process then writes its samples to files in that
directory and `/metrics`, whichever process answers, aggregates them (prometheus_client's
multiprocess mode). Only counters and histograms live here, so the aggregate is a plain sum and
a process that exits leaves nothing stale. With one process the samples stay in memory.
"""
from __future__ import annotations

import os

from flask import Flask, Response
from prometheus_client import Counter

HTTP_PREFIX = "taskqueue_gateway"  # prometheus-flask-exporter's metrics: <prefix>_http_request_*
UNTRACKED_PATHS = ["/healthz", "/readyz", "/metrics"]  # probes and scrapes would drown the API figures

TASKS_CREATED = Counter(
    "taskqueue_gateway_tasks_created_total",
    "Tasks created through the API (POST /tasks/, dead-letter reprocess); idempotent replays excluded",
    ["task_type", "queue"],
)
API_ERRORS = Counter("taskqueue_gateway_api_errors_total", "API responses with a 4xx or 5xx status", ["status"])


def init_app(app: Flask) -> None:
    """Serve `/metrics` (aggregated across the server's processes when there are several)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import MultiprocessInternalPrometheusMetrics as Metrics
    else:
        from prometheus_flask_exporter import PrometheusMetrics as Metrics
    Metrics(app, group_by="url_rule", defaults_prefix=HTTP_PREFIX, excluded_paths=UNTRACKED_PATHS)
    app.after_request(_count_errors)


def _count_errors(response: Response) -> Response:
    if response.status_code >= 400:
        API_ERRORS.labels(str(response.status_code)).inc()
    return response

"""Process lifecycle: health and metrics, replicas side by side, SIGTERM closes clients with 1001."""
from __future__ import annotations

import requests
from e2e.e2e_helpers import metric_value

from .nf_helpers import close_code, collect, open_feed, synthetic_event

STREAM = "taskqueue:events"
METRICS = (
    "taskqueue_notifier_connections",
    "taskqueue_notifier_messages_sent_total",
    "taskqueue_notifier_fanout_lag_seconds_count",
    "taskqueue_notifier_slow_clients_closed_total",
)


def test_health_and_metrics(notifier, user):
    with open_feed(notifier, user):
        health = requests.get(notifier.health_url, timeout=2)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert health.json()["connections"] >= 1
        text = requests.get(notifier.metrics_url, timeout=2).text
    for name in METRICS:
        assert f"\n{name}" in text, name
    assert metric_value(text, "taskqueue_notifier_connections") >= 1


def test_replicas_each_serve_their_clients_and_sigterm_closes_with_1001(stack, user, store):
    replica = stack.start_notifier()
    replica.wait_healthy(timeout=20)
    with open_feed(stack.notifier, user) as first, open_feed(replica, user) as second:
        store.redis.xadd(STREAM, synthetic_event(20_000_001, user.user_id))
        for ws in (first, second):
            assert collect(ws, lambda got: len(got) == 1)[0]["event_id"] == 20_000_001

        replica.proc.terminate()  # SIGTERM
        assert close_code(second, timeout=10) == 1001
        assert replica.proc.wait(timeout=10) == 0
        # The other replica is unaffected.
        store.redis.xadd(STREAM, synthetic_event(20_000_002, user.user_id))
        assert collect(first, lambda got: len(got) == 1)[0]["event_id"] == 20_000_002

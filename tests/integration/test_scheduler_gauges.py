"""The scheduler's snapshot gauges (refresh_gauges job): queue depth per Dramatiq queue from Redis
and tasks per status from one GROUP BY, against the test database and Redis."""
from __future__ import annotations

import pytest
import redis
from integration_helpers import drain
from prometheus_client import REGISTRY
from scheduler.gauges import Gauges

from shared import statuses
from shared.routing import QUEUES


def gauge(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_refresh_exports_queue_depths_and_status_counts(app, engine, redis_client, db, user, create_task):
    create_task(user.headers, priority=20)
    create_task(user.headers, priority=1, scheduled_at="2099-01-01T00:00:00Z")
    drain(app)  # the messages are in Redis
    Gauges(engine, redis_client).refresh()
    for queue in QUEUES:
        assert gauge("taskqueue_scheduler_queue_depth", queue=queue) == redis_client.llen(f"dramatiq:{queue}")
    assert gauge("taskqueue_scheduler_queue_depth", queue="critical") >= 1
    expected = dict(db.all("SELECT status, count(*) FROM tasks GROUP BY status"))
    for status in statuses.ALL:  # every status is exported, 0 when there is none
        assert gauge("taskqueue_scheduler_tasks", status=status) == expected.get(status, 0), status
    assert gauge("taskqueue_scheduler_tasks", status="scheduled") >= 1


def test_a_redis_failure_still_refreshes_the_counts(engine, db, user, create_task):
    create_task(user.headers)
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        Gauges(engine, dead).refresh()
    assert gauge("taskqueue_scheduler_tasks", status="queued") == db.scalar(
        "SELECT count(*) FROM tasks WHERE status = 'queued'"
    )

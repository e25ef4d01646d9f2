"""Pure logic shared by every service: priority routing, retry backoff, settings."""
import pytest

from shared import routing
from shared.backoff import MAX_BACKOFF_SECONDS, backoff_seconds
from shared.settings import DEV_JWT_SECRET, Settings


@pytest.mark.parametrize(
    "priority, queue",
    [(20, "critical"), (100, "critical"), (19, "high"), (10, "high"), (9, "default"), (5, "default"),
     (2, "default"), (1, "low"), (0, "low"), (-5, "low")],
)
def test_priority_maps_to_queue(priority, queue):
    assert routing.queue_for_priority(priority) == queue


def test_each_queue_has_its_own_actor_and_critical_runs_first():
    assert len({routing.actor_name(q) for q in routing.QUEUES}) == 4
    order = sorted(routing.QUEUES, key=routing.ACTOR_PRIORITY.get)
    assert order == ["critical", "high", "default", "low"]


def test_parse_queues_orders_by_priority_and_rejects_unknown():
    assert routing.parse_queues("low, critical,low") == ["critical", "low"]
    with pytest.raises(ValueError):
        routing.parse_queues("critical,urgent")
    with pytest.raises(ValueError):
        routing.parse_queues(" , ")


def test_backoff_doubles_within_jitter_and_grows_strictly():
    for failures in range(1, 8):
        nominal = 2.0 * 2 ** (failures - 1)
        for _ in range(50):
            assert 0.8 * nominal <= backoff_seconds(2.0, failures) <= nominal
    # even the shortest draw of the next delay exceeds the longest draw of the previous one
    assert min(backoff_seconds(1, 2) for _ in range(200)) > max(backoff_seconds(1, 1) for _ in range(200))


def test_backoff_is_capped_at_an_hour():
    assert backoff_seconds(60, 30) <= MAX_BACKOFF_SECONDS
    assert backoff_seconds(0, 3) == 0


def test_settings_defaults_and_production_requires_a_secret(monkeypatch):
    for name in ("JWT_SECRET_KEY", "TASKQUEUE_ENV", "TASK_LEASE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.from_env()
    assert s.jwt_secret_key == DEV_JWT_SECRET and not s.production
    assert s.task_lease_seconds == 30 and s.events_stream == "taskqueue:events"
    assert s.redacted()["jwt_secret_key"] == "***"
    monkeypatch.setenv("TASKQUEUE_ENV", "production")
    with pytest.raises(RuntimeError):
        Settings.from_env()
    monkeypatch.setenv("JWT_SECRET_KEY", "s3cret")
    assert Settings.from_env().jwt_secret_key == "s3cret"

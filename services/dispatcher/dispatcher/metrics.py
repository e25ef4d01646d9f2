"""The dispatcher's Prometheus metrics (served on its ops port, 9103 by default)."""
from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "taskqueue_dispatcher_deliveries_total",
    "Webhook attempts by outcome: success, retry (another attempt scheduled), failure (given up)",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "taskqueue_dispatcher_attempt_seconds",
    "Duration of one webhook HTTP attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
)
PENDING_RETRIES = Gauge("taskqueue_dispatcher_pending_retries", "Pending deliveries waiting for a retry")
IN_FLIGHT = Gauge("taskqueue_dispatcher_in_flight", "Webhook sends in progress in this process")
EVENTS_READ = Counter("taskqueue_dispatcher_events_read_total", "Event stream entries handled")
RECORDED = Counter("taskqueue_dispatcher_deliveries_recorded_total", "Deliveries recorded", ["source"])
ERRORS = Counter("taskqueue_dispatcher_errors_total", "Loop iterations that raised", ["loop"])

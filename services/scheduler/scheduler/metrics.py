"""The scheduler's Prometheus metrics (served on its ops port, 9101 by default)."""
from prometheus_client import Counter, Histogram

RELEASED = Counter("taskqueue_scheduler_tasks_released_total", "Delayed/retrying tasks released to their queue")
LATENESS = Histogram(
    "taskqueue_scheduler_release_lateness_seconds",
    "How long after scheduled_at a task was released",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LOST_REQUEUED = Counter("taskqueue_scheduler_lost_messages_requeued_total", "Queued tasks re-sent after their message was lost")
LEASES_RECOVERED = Counter("taskqueue_scheduler_leases_recovered_total", "Running tasks requeued after their lease expired")
EVENTS_RELAYED = Counter("taskqueue_scheduler_events_relayed_total", "Outbox events published by the relay")
JOB_ERRORS = Counter("taskqueue_scheduler_job_errors_total", "Scheduler job runs that raised", ["job"])

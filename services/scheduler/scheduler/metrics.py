"""The scheduler's Prometheus metrics (served on its ops port, 9101 by default)."""
from prometheus_client import Counter, Gauge, Histogram

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
# Snapshots refreshed by the refresh_gauges job (gauges.py); every replica exports the same values.
QUEUE_DEPTH = Gauge(
    "taskqueue_scheduler_queue_depth", "Messages waiting in each Dramatiq queue (LLEN dramatiq:<queue>)", ["queue"]
)
TASKS_BY_STATUS = Gauge("taskqueue_scheduler_tasks", "Tasks in Postgres per status", ["status"])
SCHEDULES_FIRED = Counter("taskqueue_scheduler_schedules_fired_total", "Tasks created by recurring schedule fires")
SCHEDULE_LATENESS = Histogram(
    "taskqueue_scheduler_schedule_lateness_seconds",
    "How long after its fire time a recurring schedule's task was created",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
SCHEDULE_MISFIRES = Counter(
    "taskqueue_scheduler_schedule_misfires_total",
    "Due schedules that had missed fires (run_once: collapsed into one task; skip: none created)",
    ["policy"],
)
SCHEDULE_ERRORS = Counter("taskqueue_scheduler_schedule_errors_total", "Schedule fires that could not create their task")
RETENTION_DELETED = Counter(
    "taskqueue_scheduler_retention_deleted_total", "Rows deleted by the retention job (retention.py), per table", ["table"]
)
VACUUMS = Counter(
    "taskqueue_scheduler_vacuums_total",
    "VACUUMs of a hot table by the scheduler (only on a Postgres server whose autovacuum is off)",
    ["table"],
)

"""The worker's Prometheus metrics (served on its ops port, 9191 by default)."""
from prometheus_client import Counter, Gauge, Histogram

STARTED = Counter("taskqueue_worker_tasks_started_total", "Tasks claimed and started", ["task_type", "queue"])
FINISHED = Counter(
    "taskqueue_worker_tasks_finished_total", "Task attempts finished, by outcome", ["task_type", "outcome"]
)
DURATION = Histogram(
    "taskqueue_worker_task_duration_seconds",
    "Handler execution time",
    ["task_type"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
STALE_MESSAGES = Counter(
    "taskqueue_worker_stale_messages_total", "Messages ignored because the task was no longer queued"
)
RUNNING = Gauge("taskqueue_worker_running_tasks", "Tasks currently executing in this process")
RETRIES = Counter(
    "taskqueue_worker_retries_total", "Failed attempts scheduled for another try (status retry)", ["task_type"]
)
DEAD_LETTERED = Counter(
    "taskqueue_worker_dead_lettered_total",
    "Tasks that failed for good (retries exhausted): status failure plus a dead-letter row",
    ["task_type"],
)

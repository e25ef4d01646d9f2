"""One sample of the running system: RSS of every process (from /proc, gateway worker processes
included), Postgres connections and row counts, Redis memory, stream and queue lengths, and
progress counters (tasks finished by the workers, rows deleted by retention)."""
from __future__ import annotations

from dataclasses import dataclass, field

import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from shared.routing import QUEUES

TABLES = ("tasks", "webhook_deliveries", "webhook_attempts", "task_events", "dead_letters")
DISPATCHER_GROUP = "dispatcher"
COUNTS = text(
    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) AS pg_connections, "
    "pg_database_size(current_database()) AS database_bytes, "
    + ", ".join(f"(SELECT count(*) FROM {t}) AS {t}" for t in TABLES)
)


@dataclass
class Sample:
    t: float  # seconds since the steady load started
    rss_kb: dict[str, int] = field(default_factory=dict)  # process label -> resident set size
    pids: dict[str, int] = field(default_factory=dict)
    series: dict[str, float] = field(default_factory=dict)  # the figures that must stay bounded
    redis_used_memory: int = 0  # the whole Redis instance (shared with other users): informative only
    database_bytes: int = 0  # on disk, dead tuples included (autovacuum reuses them): informative only
    submitted: int = 0
    finished: float = 0  # tasks finished by the workers (their metric), cumulative
    deleted: float = 0  # task rows deleted by retention (the scheduler's metric), cumulative


def rss_kb(pid: int) -> int | None:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def processes(stack) -> dict[str, int]:
    """label -> pid: each service's main process by its name, its children as name.1, name.2..."""
    out = {}
    for svc in stack.services:
        pids = svc.pids()
        if pids:
            out[svc.name] = pids[0]
            out.update({f"{svc.name}.{i}": pid for i, pid in enumerate(sorted(pids[1:]), 1)})
    return out


def metric_sum(url: str, name: str, **labels: str) -> float:
    """Sum of one metric's samples at a /metrics URL (0 when unreachable)."""
    try:
        body = requests.get(url, timeout=3).text
    except requests.RequestException:
        return 0.0
    return sum(s.value for family in text_string_to_metric_families(body) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def redis_series(client: redis.Redis, stream: str) -> dict[str, float]:
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    for queue in QUEUES:
        pipe.llen(f"dramatiq:{queue}")
        pipe.hlen(f"dramatiq:{queue}.msgs")
    stream_len, *queues = pipe.execute()
    keys = list(client.scan_iter(count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key)
    groups = {g["name"].decode(): g for g in client.xinfo_groups(stream)} if stream_len else {}
    return {
        "stream_len": stream_len,
        "stream_pending": groups.get(DISPATCHER_GROUP, {}).get("pending", 0),
        "queued": sum(queues[0::2]),
        "stored_messages": sum(queues[1::2]),
        "redis_db_kb": sum(m or 0 for m in pipe.execute()) / 1024,
    }


def take(stack, engine: Engine, client: redis.Redis, stream: str, t: float, submitted: int) -> Sample:
    pids = processes(stack)
    sample = Sample(t=t, pids=pids, submitted=submitted)
    sample.rss_kb = {label: kb for label, pid in pids.items() if (kb := rss_kb(pid)) is not None}
    with engine.connect() as conn:
        sample.series.update(conn.execute(COUNTS).one()._mapping)
    sample.database_bytes = int(sample.series.pop("database_bytes"))
    sample.series.update(redis_series(client, stream))
    sample.redis_used_memory = int(client.info("memory")["used_memory"])
    sample.finished = sum(metric_sum(w.metrics_url, "taskqueue_worker_tasks_finished_total")
                          for w in stack.of_kind("worker"))
    sample.deleted = sum(metric_sum(s.metrics_url, "taskqueue_scheduler_retention_deleted_total", table="tasks")
                         for s in stack.of_kind("scheduler"))  # replicas split the rows between them
    return sample

"""The system under test: every service as real processes against the private servers."""
from __future__ import annotations

from pathlib import Path

from support.stack import Stack

from .servers import Servers


def service_env(servers: Servers) -> dict[str, str]:
    """Settings for the run. Shorter leases and retry bases than the defaults only make the
    recovery paths happen sooner, so a run with many crashes finishes in minutes."""
    return {
        "DATABASE_URL": servers.postgres.url,
        "REDIS_URL": servers.redis.url,
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "RATELIMIT_ENABLED": "false",
        "JWT_ACCESS_TOKEN_MINUTES": "600",
        "TASK_LEASE_SECONDS": "10",
        "WEBHOOK_RETRY_BASE_SECONDS": "1",
        "WEBHOOK_LEASE_SECONDS": "10",
        "WEBHOOK_RECONCILE_SECONDS": "10",
        "DISPATCHER_CLAIM_IDLE_SECONDS": "15",
        "DISPATCHER_CONCURRENCY": "8",
        "PYTHONUNBUFFERED": "1",
    }


def start(log_dir: Path, servers: Servers, workers: int, threads: int) -> Stack:
    """Gateway, `workers` workers on every queue, 2 schedulers, 2 dispatchers, the notifier."""
    stack = Stack(log_dir, service_env(servers))
    stack.add_gateway(workers=2, threads=8)
    for _ in range(workers):
        stack.add_worker(threads=threads)
    for _ in range(2):
        stack.add_scheduler()
    for _ in range(2):
        stack.add_dispatcher()
    stack.add_notifier()
    stack.wait_healthy(120)
    return stack

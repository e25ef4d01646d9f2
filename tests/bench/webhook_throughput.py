"""Benchmark: webhook deliveries per second from one dispatcher to a local receiver.

Starts its own services (gateway, worker, scheduler, dispatcher) on a scratch database
(taskqueue_webhook_bench, recreated) and Redis db 6, and a minimal HTTP receiver on
127.0.0.1 that answers 200 at once. Two measurements, each from the first to the last
webhook received:

- backlog: N tasks with a signed callback are created and finish while the dispatcher is
  stopped; then the dispatcher starts and drains the N events (stream read, delivery
  recorded, signed POST, attempt recorded): the dispatcher's own throughput.
- live: N more tasks with the dispatcher running (API -> worker -> stream -> dispatcher),
  plus the latency from the task's completed_at to the webhook's arrival (p50/p99).

    /tmp/venv/bin/python tests/bench/webhook_throughput.py --count 2000 --concurrency 16

Prints one JSON object. Everything runs on this machine: the figures include the services
and the receiver competing for the same cores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from e2e.e2e_helpers import Client  # noqa: E402
from webhooks.system import WebhookSystem  # noqa: E402

DATABASE = "postgresql://postgres@127.0.0.1:5432/taskqueue_webhook_bench"
REDIS = "redis://127.0.0.1:6379/6"


class Receiver:
    """Counts webhooks by webhook-id with their arrival time; answers 200 immediately."""

    def __init__(self):
        self.arrivals: dict[str, tuple[float, float, str]] = {}  # webhook-id -> (monotonic, wall, task id)
        self.duplicates = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now, wall = time.monotonic(), time.time()
                key = self.headers.get("webhook-id", "")
                with receiver.lock:
                    if key in receiver.arrivals:
                        receiver.duplicates += 1
                    else:
                        receiver.arrivals[key] = (now, wall, self.headers.get("X-Taskqueue-Task-Id", ""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"received {self.count()} of {count} webhooks")
            time.sleep(0.05)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def create_tasks(client: Client, count: int, url: str, clients: int) -> list[str]:
    def one(i: int) -> str:
        body = {"name": f"hook-{i}", "task_type": "echo", "payload": {"i": i}, "callback_url": url,
                "callback_secret": "bench-secret", "callback_events": ["task.succeeded"]}
        response = client.http.post(f"{client.base}/tasks/", json=body, timeout=30)
        response.raise_for_status()
        return response.json()["id"]

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(count)))


def wait_succeeded(client: Client, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/tasks/stats/").json()["success"] < total:
        if time.monotonic() > deadline:
            raise TimeoutError("tasks did not all succeed")
        time.sleep(0.2)


def span(receiver: Receiver, keys: set[str]) -> tuple[float, float]:
    times = sorted(receiver.arrivals[k][0] for k in keys)
    return times[0], times[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="webhooks per measurement")
    parser.add_argument("--concurrency", type=int, default=16, help="DISPATCHER_CONCURRENCY")
    parser.add_argument("--clients", type=int, default=8, help="concurrent API clients creating tasks")
    args = parser.parse_args()

    import redis

    from shared.migrate import upgrade

    _recreate(DATABASE)
    upgrade(DATABASE)
    redis.Redis.from_url(REDIS).flushdb()

    receiver = Receiver()
    env = {**os.environ, "DATABASE_URL": DATABASE, "REDIS_URL": REDIS, "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
           "DISPATCHER_CONCURRENCY": str(args.concurrency), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    system = WebhookSystem(Path(tempfile.mkdtemp(prefix="webhook-bench-")), env)
    try:
        system.start_gateway()
        system.start_scheduler()
        system.start_worker(threads=8, wait=False)
        for svc in system.every_service:
            svc.wait_healthy(timeout=60)
        client = Client(system.base_url)

        # backlog: the dispatcher alone drains N recorded events
        create_tasks(client, args.count, receiver.url, args.clients)
        wait_succeeded(client, args.count, timeout=args.count / 20 + 60)
        started = time.monotonic()
        dispatcher = system.start_dispatcher(wait=False)
        receiver.wait(args.count, timeout=args.count / 10 + 60)
        first, last = span(receiver, set(receiver.arrivals))
        backlog = {
            "webhooks": args.count,
            "deliveries_per_s": round((args.count - 1) / (last - first), 1),
            "first_to_last_s": round(last - first, 3),
            "start_to_last_s": round(last - started, 3),
        }

        # live: tasks created with the dispatcher running
        before = set(receiver.arrivals)
        created = time.monotonic()
        task_ids = create_tasks(client, args.count, receiver.url, args.clients)
        receiver.wait(2 * args.count, timeout=args.count / 10 + 60)
        live_keys = set(receiver.arrivals) - before
        first, last = span(receiver, live_keys)
        latencies = _latencies(client, receiver, live_keys, set(task_ids))
        live = {
            "webhooks": len(live_keys),
            "deliveries_per_s": round((len(live_keys) - 1) / (last - first), 1),
            "first_to_last_s": round(last - first, 3),
            "submit_to_last_s": round(last - created, 3),
            "completed_to_received_ms": {"p50": round(percentile(latencies, 50), 1),
                                         "p99": round(percentile(latencies, 99), 1)},
        }
        metrics = requests.get(dispatcher.metrics_url, timeout=5).text
        print(json.dumps({
            "dispatcher_concurrency": args.concurrency,
            "backlog": backlog,
            "live": live,
            "duplicates_received": receiver.duplicates,
            "attempts_total": _metric(metrics, "taskqueue_dispatcher_attempt_seconds_count"),
            "cpu_cores": os.cpu_count(),
        }, indent=2))
    finally:
        system.shutdown()


def _latencies(client: Client, receiver: Receiver, keys: set[str], task_ids: set[str]) -> list[float]:
    """completed_at (from the API) -> arrival at the receiver, in ms, for a sample of tasks."""
    arrival = {receiver.arrivals[k][2]: receiver.arrivals[k][1] for k in keys}
    out = []
    for task_id in list(task_ids)[:500]:
        completed = datetime.fromisoformat(client.task(task_id)["completed_at"]).timestamp()
        out.append((arrival[task_id] - completed) * 1000)
    return out


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def _recreate(database_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = create_engine(url.set(drivername="postgresql+psycopg2", database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


if __name__ == "__main__":
    main()

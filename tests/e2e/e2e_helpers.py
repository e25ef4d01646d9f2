"""Building blocks of the end-to-end tests: service processes, an API client, DB views, polling."""
from __future__ import annotations

import dataclasses
import os
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pytest
import requests
from sqlalchemy import text
from support.stack import ALL_QUEUES, GATEWAY_ARGS, Service, free_port

TERMINAL = ("success", "failure", "revoked")
LOG_TAIL_LINES = 40
EVENT_STREAM = "taskqueue:events"


# --------------------------------------------------------------------------- helpers


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05, message: str = ""):
    """Poll `predicate` until it returns something truthy; return that value or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {message or predicate!r} (last: {last!r})")
        time.sleep(interval)


def metric_value(metrics_text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if labels and not all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            continue
        total += float(value)
    return total


# --------------------------------------------------------------------------- processes


class System:
    """The running services plus the knobs tests need (workers on demand, metrics)."""

    gateway_workers = 2  # processes: the metrics tests check they are aggregated

    def __init__(self, log_dir: Path, env: dict[str, str]):
        self.log_dir, self.env = log_dir, env
        self.gateway: Service | None = None
        self.schedulers: list[Service] = []
        self.workers: list[Service] = []
        self.every_service: list[Service] = []
        self._counter = 0
        self.base_url = ""

    # -- lifecycle
    def start_gateway(self) -> None:
        self.gateway, self.base_url = self.gateway_process("gateway", self.gateway_workers)

    def gateway_process(self, name: str, workers: int, **env: str) -> tuple[Service, str]:
        """Start a gateway (`python -m gateway`, 4 threads per process) on a free port; returns it
        and its base URL. Several processes share their metrics through their own directory."""
        port = free_port()
        env = {**self.env, "GATEWAY_BIND": f"127.0.0.1:{port}", "GATEWAY_WORKERS": str(workers),
               "GATEWAY_THREADS": "4", "PROMETHEUS_MULTIPROC_DIR": str(self._new_dir(f"{name}-metrics")), **env}
        base_url = f"http://127.0.0.1:{port}"
        return self._spawn(name, [sys.executable, *GATEWAY_ARGS], env, f"{base_url}/readyz"), base_url

    def start_scheduler(self) -> Service:
        port = free_port()
        argv = [sys.executable, "-m", "scheduler", "--metrics-port", str(port)]
        svc = self._spawn(f"scheduler-{len(self.schedulers) + 1}", argv, dict(self.env), f"http://127.0.0.1:{port}/healthz")
        svc.metrics_url = f"http://127.0.0.1:{port}/metrics"
        self.schedulers.append(svc)
        return svc

    def start_worker(self, threads: int = 8, queues: str = ALL_QUEUES, wait: bool = True) -> Service:
        port = free_port()
        argv = [sys.executable, "-m", "worker", "--queues", queues, "--threads", str(threads), "--metrics-port", str(port)]
        svc = self._spawn(f"worker-{self._next()}", argv, dict(self.env), f"http://127.0.0.1:{port}/healthz")
        svc.metrics_url = f"http://127.0.0.1:{port}/metrics"
        self.workers.append(svc)
        if wait:
            svc.wait_healthy()
        return svc

    def stop_worker(self, worker: Service | None = None, timeout: float = 20) -> float:
        """SIGTERM one worker (the current one by default); returns how long it took to exit."""
        worker = worker or self.worker
        elapsed = worker.terminate(timeout)
        self.workers.remove(worker)
        return elapsed

    def kill_worker(self, worker: Service | None = None) -> None:
        worker = worker or self.worker
        worker.kill9()
        self.workers.remove(worker)

    def stop_all_workers(self) -> None:
        for w in list(self.workers):
            self.stop_worker(w)

    def ensure_one_worker(self) -> Service:
        """Back to the default topology: exactly one live worker on every queue."""
        for w in list(self.workers):
            if not w.alive():
                w.kill9()
                self.workers.remove(w)
        while len(self.workers) > 1:
            self.stop_worker(self.workers[0])
        if not self.workers:
            self.start_worker()
        return self.worker

    @property
    def worker(self) -> Service:
        assert self.workers, "no worker is running"
        return self.workers[-1]

    def shutdown(self) -> None:
        for svc in reversed(self.every_service):
            try:
                svc.terminate(timeout=15)
            except Exception:  # noqa: BLE001 - keep stopping the others
                svc.kill9()

    def tails(self) -> str:
        return "\n".join(s.tail() for s in self.every_service)

    # -- metrics
    @staticmethod
    def metrics(service: Service) -> str:
        return requests.get(service.metrics_url, timeout=2).text

    # -- internals
    def _spawn(self, name: str, argv: list[str], env: dict[str, str], health_url: str) -> Service:
        kind = name.rsplit("-", 1)[0] if name[-1].isdigit() else name  # "worker-2" -> "worker"
        svc = Service(name, kind, argv, env, self.log_dir / f"{name}.log", health_url).start()
        self.every_service.append(svc)
        return svc

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _new_dir(self, name: str) -> Path:
        path = self.log_dir / name
        path.mkdir(exist_ok=True)
        return path


# --------------------------------------------------------------------------- API client


@dataclasses.dataclass
class Store:
    """A test package's own database and Redis db, and the settings pointing at them."""

    settings: Any  # shared.settings.Settings
    engine: Any
    redis: Any

    def process_env(self, **extra: str) -> dict[str, str]:
        """The environment for service processes started against this store."""
        env = {**os.environ, "DATABASE_URL": self.settings.database_url, "REDIS_URL": self.settings.redis_url,
               "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO", **extra}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each gateway gets its own (see e2e_helpers)
        return env


# Recovery within seconds instead of the production half-minute: a killed worker's task comes
# back after 3 s, a lost message after 2 s. Every package that kills or loses things uses it.
FAST_RECOVERY = {"TASK_LEASE_SECONDS": "3", "WORKER_HEARTBEAT_SECONDS": "0.5", "LOST_MESSAGE_AFTER_SECONDS": "2"}

RUNNING: list[System] = []  # systems up right now: a failing test's report gets their log tails


@contextmanager
def running(system: System, start: Callable[[], object]) -> Iterator[System]:
    """`start()` the services, wait until every one is healthy, yield the system; shut it down
    afterwards whatever happened (a start failure fails the test with the services' logs)."""
    RUNNING.append(system)
    try:
        try:
            start()
            for svc in system.every_service:
                svc.wait_healthy(timeout=40)
        except BaseException as exc:  # noqa: BLE001 - includes KeyboardInterrupt: still clean up
            pytest.fail(f"could not start the services: {exc}\n{system.tails()}", pytrace=False)
        yield system
    finally:
        system.shutdown()
        RUNNING.remove(system)


class Client:
    """A real API user: registers, then calls the API with its Bearer token."""

    def __init__(self, base_url: str):
        self.base = f"{base_url}/api/v1"
        self.http = requests.Session()
        name = f"e2e_{uuid.uuid4().hex[:10]}"
        r = self.http.post(f"{self.base}/auth/register/", json={
            "username": name, "email": f"{name}@example.com",
            "password": "s3cret-pass-123", "password_confirm": "s3cret-pass-123",
        }, timeout=10)
        assert r.status_code == 201, r.text
        body = r.json()
        self.user_id = body["user"]["id"]
        self.http.headers["Authorization"] = f"Bearer {body['tokens']['access']}"

    def post(self, path: str, json=None, expect: int | None = None) -> requests.Response:
        r = self.http.post(f"{self.base}{path}", json=json, timeout=10)
        if expect is not None:
            assert r.status_code == expect, f"POST {path} -> {r.status_code} {r.text}"
        return r

    def get(self, path: str, expect: int | None = 200, **params) -> requests.Response:
        r = self.http.get(f"{self.base}{path}", params=params, timeout=10)
        if expect is not None:
            assert r.status_code == expect, f"GET {path} -> {r.status_code} {r.text}"
        return r

    def create(self, task_type: str, payload=None, **fields) -> dict:
        body = {"name": fields.pop("name", f"e2e {task_type}"), "task_type": task_type, "payload": payload or {}, **fields}
        return self.post("/tasks/", json=body, expect=201).json()

    def task(self, task_id: str) -> dict:
        return self.get(f"/tasks/{task_id}/").json()

    def cancel(self, task_id: str) -> requests.Response:
        return self.post(f"/tasks/{task_id}/cancel/")

    def wait_status(self, task_id: str, statuses: Iterable[str] | str, timeout: float = 15, interval: float = 0.05) -> dict:
        wanted = (statuses,) if isinstance(statuses, str) else tuple(statuses)
        seen: dict = {}

        def check():
            seen["task"] = self.task(task_id)
            return seen["task"] if seen["task"]["status"] in wanted else None

        return wait_until(check, timeout, interval, message=f"task {task_id} to reach {wanted}")

    def wait_all(self, task_ids: Iterable[str], statuses=TERMINAL, timeout: float = 30) -> dict[str, dict]:
        """Poll the list endpoint until every task is in one of `statuses`; returns them by id."""
        pending = set(task_ids)
        done: dict[str, dict] = {}
        wanted = (statuses,) if isinstance(statuses, str) else tuple(statuses)

        def check():
            for t in self.all_tasks():
                if t["id"] in pending and t["status"] in wanted:
                    done[t["id"]] = t
                    pending.discard(t["id"])
            return not pending

        wait_until(check, timeout, 0.2, message=f"{len(pending)} task(s) to reach {wanted}")
        return done

    def all_tasks(self) -> list[dict]:
        out, page = [], 1
        while True:
            body = self.get("/tasks/", page=page, page_size=100).json()
            out.extend(body["results"])
            if not body["next"]:
                return out
            page += 1

    def cancel_unfinished(self) -> None:
        for t in self.all_tasks():
            if t["status"] not in TERMINAL:
                self.cancel(t["id"])



class Db:
    def __init__(self, engine):
        self.engine = engine

    def task_row(self, task_id: str):
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT * FROM tasks WHERE id = :t"), {"t": task_id}).one()

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def has_column(self, table: str, column: str) -> bool:
        return bool(self.scalar(
            "SELECT 1 FROM information_schema.columns WHERE table_name = :t AND column_name = :c",
            t=table, c=column))


class EventLog:
    """The `taskqueue:events` stream, the durable record of every status change a test reads.

    Entries are de-duplicated on `event_id` (the relay may publish an event twice; consumers
    must tolerate that) and returned in event-id order, with `at` parsed from `timestamp`.
    """

    def __init__(self, redis_client, stream: str = EVENT_STREAM):
        self.redis, self.stream = redis_client, stream

    def by_task(self) -> dict[str, list[dict]]:
        seen: dict[int, dict] = {}
        for entry_id, fields in self.redis.xrange(self.stream):
            f = {k.decode(): v.decode() for k, v in fields.items()}
            f["entry_id"] = entry_id.decode()
            seen.setdefault(int(f["event_id"]), f)
        out: dict[str, list[dict]] = {}
        for event_id in sorted(seen):
            f = seen[event_id]
            f["at"] = datetime.fromisoformat(f["timestamp"])
            out.setdefault(f["task_id"], []).append(f)
        return out

    def of(self, task_id: str) -> list[dict]:
        return self.by_task().get(task_id, [])

    def statuses(self, task_id: str) -> list[str]:
        return [e["status"] for e in self.of(task_id)]

    def wait_for(self, task_id: str, expected: list[str], timeout: float = 10) -> list[dict]:
        """Wait until the task's events are exactly `expected` (they are published asynchronously)."""
        state: dict = {}

        def check():
            state["events"] = self.of(task_id)
            return [e["status"] for e in state["events"]] == expected

        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() >= deadline:
                got = [e["status"] for e in state["events"]]
                pytest.fail(f"events of task {task_id}: expected {expected}, got {got} after {timeout:g}s")
            time.sleep(0.05)
        return state["events"]


def iso_in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()

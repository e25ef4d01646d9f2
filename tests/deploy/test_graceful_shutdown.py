"""SIGTERM while busy, as Kubernetes and docker compose stop a container: nothing may be lost.

Each service runs as a real process (the same command its image runs) against its own database
(taskqueue_deploy_test, recreated here) and Redis db 6, gets work in flight, then SIGTERM. It
must exit 0 well inside the grace period the manifests give it, and:
- gateway (`python -m gateway`: a Granian main process plus its worker processes): a request that
  is still being received completes with its 201, every request answered 201 while shutting down
  is in Postgres, and no worker process outlives the main one;
- worker: a task that can finish within WORKER_SHUTDOWN_GRACE finishes, a long one returns to
  `queued` with its message back in Redis, and the next worker runs it;
- scheduler: stopped while releasing due tasks, it leaves each one released or still due, and the
  next scheduler releases the rest, each exactly once;
- dispatcher: a webhook being delivered completes and is recorded, and is not sent again;
- notifier: a connected websocket client is closed with 1001 (going away).
The dispatcher and notifier tests run when services/<name>/pyproject.toml exists and
`python -m <name>` imports; otherwise they are skipped with the reason.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

# tests/ is on sys.path (pytest's rootdir conftest): the same module names the e2e suite uses.
from e2e.e2e_helpers import Client, Service, System, free_port, wait_until

from .deploy_helpers import REPO, gateway_graceful_timeout

pytestmark = pytest.mark.timeout(240)

DB_NAME = "taskqueue_deploy_test"
REDIS_DB = "6"
WORKER_GRACE = 3.0  # WORKER_SHUTDOWN_GRACE for these processes (the manifests use 5)


def deploy_urls() -> tuple[str, str]:
    """The deploy test database and Redis db, on the Postgres/Redis the rest of the suite uses."""
    base_db = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/taskqueue"
    base_redis = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    db = urlsplit(base_db)._replace(path=f"/{DB_NAME}")
    rd = urlsplit(base_redis)._replace(path=f"/{REDIS_DB}")
    return urlunsplit(db), urlunsplit(rd)


DATABASE_URL, REDIS_URL = deploy_urls()


def importable(service: str) -> str | None:
    """None when `python -m <service>` can run here, else why not."""
    if not (REPO / "services" / service / "pyproject.toml").exists():
        return f"services/{service}/pyproject.toml does not exist yet"
    proc = subprocess.run([sys.executable, "-c", f"import {service}.__main__"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    if proc.returncode != 0:
        return f"`import {service}.__main__` fails: {proc.stderr.strip().splitlines()[-1:]}"
    return None


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def engine(recreate_database):  # tests/conftest.py (a fixture: `import conftest` is ambiguous)
    from shared.db import make_engine
    from shared.migrate import upgrade

    try:
        recreate_database(DATABASE_URL)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Postgres at {DATABASE_URL} is needed (make deploy-check starts one): {exc}", pytrace=False)
    upgrade(DATABASE_URL)
    eng = make_engine(DATABASE_URL, pool_size=2, application_name="deploy-tests")
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is needed (make deploy-check starts one): {exc}", pytrace=False)
    yield client
    client.close()


@pytest.fixture
def clean(engine, redis_client):
    """Each test starts from empty tables and an empty Redis db (no leftovers run into it)."""
    from support.databases import empty_everything

    empty_everything(engine, redis_client)


@pytest.fixture
def system(clean, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "WORKER_SHUTDOWN_GRACE": str(WORKER_GRACE),
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    sysm = System(tmp_path, env)
    yield sysm
    sysm.shutdown()


def sigterm(svc: Service, timeout: float) -> tuple[int, float]:
    """SIGTERM the process; returns (exit code, seconds it took). Fails if it outlives `timeout`."""
    started = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)
    try:
        code = svc.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        tail = svc.tail()
        svc.kill9()
        pytest.fail(f"{svc.name} still running {timeout:g}s after SIGTERM\n{tail}")
    return code, time.monotonic() - started


def start(system: System, name: str, argv: list[str], health_port: int) -> Service:
    svc = system._spawn(name, [sys.executable, *argv], dict(system.env), f"http://127.0.0.1:{health_port}/healthz")
    svc.wait_healthy(timeout=40)
    return svc


def running_pids(pids: list[int]) -> list[int]:
    """Those of `pids` that are still running (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            out.append(pid)
    return out


def task_status(engine, task_id: str) -> str:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT status FROM tasks WHERE id = :t"), {"t": task_id}).scalar_one()


def queued_task_ids(redis_client, queue: str) -> list[str]:
    """Task ids of the messages waiting in a queue's Redis list (one per list entry)."""
    from shared.broker import messages_key, queue_key

    out = []
    for mid in redis_client.lrange(queue_key(queue), 0, -1):
        body = redis_client.hget(messages_key(queue), mid)
        assert body is not None, f"list entry {mid!r} has no message body"
        out.append(json.loads(body)["args"][0])
    return out


# --------------------------------------------------------------------------- gateway


def test_gateway_completes_in_flight_requests(system, engine):
    system.start_gateway()  # python -m gateway, 2 worker processes
    gateway = system.gateway
    gateway.wait_healthy(timeout=40)
    workers = gateway.pids()[1:]  # Granian's worker processes, under the main one
    assert len(workers) >= 2, f"expected a main process and 2 worker processes: {gateway.pids()}"
    client = Client(system.base_url)
    port = int(system.base_url.rsplit(":", 1)[1])

    # 1. A request still being received when SIGTERM arrives: headers and half of the body now.
    body = json.dumps({"name": "sent across SIGTERM", "task_type": "echo", "payload": {"pad": "x" * 2000}}).encode()
    slow = socket.create_connection(("127.0.0.1", port), timeout=30)
    slow.sendall(
        b"POST /api/v1/tasks/ HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Authorization: {client.http.headers['Authorization']}\r\nContent-Length: {len(body)}\r\n".encode()
        + b"Connection: close\r\n\r\n" + body[: len(body) // 2])
    time.sleep(0.5)  # a worker now holds the request, waiting for the rest of the body

    # 2. Clients keep sending while the gateway shuts down: each 201 must be a stored task.
    created, errors, stop = [], [], threading.Event()

    def hammer():
        http = requests.Session()
        http.headers.update(client.http.headers)
        while not stop.is_set():
            try:
                r = http.post(f"{system.base_url}/api/v1/tasks/", json={"name": "load", "task_type": "echo"}, timeout=10)
            except requests.RequestException:
                time.sleep(0.02)  # refused/reset once the listeners close: never answered, nothing promised
                continue
            if r.status_code == 201:
                created.append(r.json()["id"])
            else:
                errors.append((r.status_code, r.text[:200]))

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(created) >= 20, timeout=20, message="load requests to be answered")

    gateway.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    time.sleep(1.0)
    assert gateway.alive(), "the gateway exited with a request still in flight"
    slow.sendall(body[len(body) // 2:])
    response = b""
    while chunk := slow.recv(65536):
        response += chunk
    slow.close()
    status_line, _, rest = response.partition(b"\r\n")
    assert b" 201 " in status_line, response[:500]
    slow_task = json.loads(rest.split(b"\r\n\r\n", 1)[1])

    grace = gateway_graceful_timeout()
    try:
        code = gateway.proc.wait(grace + 10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gateway still running {grace + 10}s after SIGTERM\n{gateway.tail()}")
    elapsed = time.monotonic() - started
    stop.set()
    for t in threads:
        t.join(15)
    assert code == 0, f"the gateway exited {code}\n{gateway.tail()}"
    assert elapsed < grace, f"shutdown took {elapsed:.1f}s (GRACEFUL_TIMEOUT_S {grace}s)"
    assert not running_pids(workers), f"worker processes outlived the main one: {running_pids(workers)}"
    assert not errors, f"requests failed during shutdown: {errors[:5]}"
    for task_id in [slow_task["id"], *created]:
        assert task_status(engine, task_id) == "queued", task_id


# --------------------------------------------------------------------------- worker


def test_worker_finishes_or_hands_back_running_tasks(system, engine, redis_client):
    system.start_gateway()
    system.gateway.wait_healthy(timeout=40)
    client = Client(system.base_url)
    worker = system.start_worker(threads=4, queues="critical,high,default,low")

    short = client.create("sleep", {"duration": WORKER_GRACE - 1.5}, name="finishes within the grace")
    long = client.create("sleep", {"duration": 120}, name="handed back")
    for task in (short, long):
        client.wait_status(task["id"], "running", timeout=15)

    code, elapsed = sigterm(worker, timeout=WORKER_GRACE + 30)
    system.workers.remove(worker)
    assert code == 0, f"worker exited {code}\n{worker.tail()}"
    assert elapsed < WORKER_GRACE + 10, f"worker took {elapsed:.1f}s to stop (grace {WORKER_GRACE}s)"
    assert client.task(short["id"])["status"] == "success"
    assert client.task(long["id"])["status"] == "queued", "a task interrupted by shutdown must go back to its queue"
    assert queued_task_ids(redis_client, "default") == [long["id"]], "its message must be back in Redis"

    system.start_worker(threads=4)  # the next worker picks it up: nothing was lost
    client.wait_status(long["id"], "running", timeout=15)
    client.cancel(long["id"])
    client.wait_status(long["id"], "revoked", timeout=15)


# --------------------------------------------------------------------------- scheduler


def test_scheduler_stops_cleanly_mid_release(system, engine, redis_client):
    system.start_gateway()
    system.gateway.wait_healthy(timeout=40)
    client = Client(system.base_url)
    due_at = datetime.now(timezone.utc) + timedelta(seconds=4)
    tasks = [client.create("echo", {"i": i}, name=f"due {i}", priority=1, scheduled_at=due_at.isoformat())["id"]
             for i in range(40)]
    assert {task_status(engine, t) for t in tasks} == {"scheduled"}

    scheduler = system.start_scheduler()
    scheduler.wait_healthy(timeout=40)
    time.sleep(max(0.0, (due_at - datetime.now(timezone.utc)).total_seconds()) + 0.02)  # releasing now
    code, elapsed = sigterm(scheduler, timeout=20)
    assert code == 0, f"scheduler exited {code}\n{scheduler.tail()}"
    assert elapsed < 10, f"scheduler took {elapsed:.1f}s to stop"
    states = {task_status(engine, t) for t in tasks}
    assert states <= {"scheduled", "queued"}, states
    released = [t for t in tasks if task_status(engine, t) == "queued"]
    assert sorted(queued_task_ids(redis_client, "low")) == sorted(released), "released == messages in Redis"

    system.start_scheduler().wait_healthy(timeout=40)  # the next scheduler releases the rest
    wait_until(lambda: all(task_status(engine, t) == "queued" for t in tasks), timeout=20,
               message="every due task to be released")
    time.sleep(1.0)  # a second release would show up as a duplicate message now
    assert sorted(queued_task_ids(redis_client, "low")) == sorted(tasks), "each task released exactly once"


# --------------------------------------------------------------------------- dispatcher


class SlowReceiver:
    """A webhook endpoint that takes `delay` seconds to answer 200; records what it received."""

    def __init__(self, delay: float):
        self.delay, self.received, self.started, self.answered = delay, [], threading.Event(), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append(json.loads(body))
                outer.started.set()
                time.sleep(outer.delay)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                outer.answered.append(time.monotonic())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_dispatcher_finishes_in_flight_deliveries(system, engine):
    reason = importable("dispatcher")
    if reason:
        pytest.skip(f"dispatcher not available: {reason}")
    from sqlalchemy import text

    receiver = SlowReceiver(delay=3.0)
    try:
        system.start_gateway()
        system.gateway.wait_healthy(timeout=40)
        client = Client(system.base_url)
        system.start_worker(threads=2)
        port = free_port()
        dispatcher = start(system, "dispatcher", ["-m", "dispatcher", "--metrics-port", str(port)], port)

        task = client.create("echo", {"hello": "webhook"}, callback_url=receiver.url, callback_secret="s3cret")
        client.wait_status(task["id"], "success", timeout=15)
        assert receiver.started.wait(20), f"no delivery reached the receiver\n{dispatcher.tail()}"

        code, elapsed = sigterm(dispatcher, timeout=45)  # the delivery is in flight (receiver sleeping)
        assert code == 0, f"dispatcher exited {code}\n{dispatcher.tail()}"
        assert receiver.answered, "the in-flight delivery was cut off"
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT status, attempts, response_status_code FROM webhook_deliveries WHERE task_id = :t"),
                {"t": task["id"]}).all()
        assert len(rows) == 1, rows
        status, attempts, code_recorded = rows[0]
        assert code_recorded == 200 and status != "pending" and attempts == 1, rows[0]

        port = free_port()  # a new dispatcher finds nothing left to send
        start(system, "dispatcher-2", ["-m", "dispatcher", "--metrics-port", str(port)], port)
        time.sleep(2.0)
        assert len(receiver.received) == 1, f"delivered {len(receiver.received)} times"
    finally:
        receiver.close()


# --------------------------------------------------------------------------- notifier


def test_notifier_closes_clients_with_1001(system):
    reason = importable("notifier")
    if reason:
        pytest.skip(f"notifier not available: {reason}")
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    system.start_gateway()
    system.gateway.wait_healthy(timeout=40)
    client = Client(system.base_url)
    ws_port, ops_port = free_port(), free_port()
    notifier = start(system, "notifier", ["-m", "notifier", "--host", "127.0.0.1", "--port", str(ws_port),
                                          "--metrics-port", str(ops_port)], ops_port)
    token = client.http.headers["Authorization"].split(" ", 1)[1]
    with connect(f"ws://127.0.0.1:{ws_port}/ws/tasks/?token={token}", open_timeout=10) as ws:
        task = client.create("echo", {"live": True})
        deadline = time.monotonic() + 15
        while True:  # the live update arrives: the connection is serving
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("type") == "task_update" and message.get("task_id") == task["id"]:
                break
        code, elapsed = sigterm(notifier, timeout=20)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
    assert code == 0, f"notifier exited {code}\n{notifier.tail()}"
    assert elapsed < 15, f"notifier took {elapsed:.1f}s to stop"


def test_helpers_point_at_the_deploy_databases():
    assert DATABASE_URL.endswith(f"/{DB_NAME}") and "test" in DB_NAME
    assert REDIS_URL.endswith(f"/{REDIS_DB}")
    assert Path(REPO / "tests" / "e2e" / "e2e_helpers.py").exists()

"""Building blocks of the notifier tests: the running stack, API users with tokens, ws clients.

Processes come from the end-to-end helpers (`e2e.e2e_helpers`); this adds the notifier
process, a single-worker gateway and users that keep both of their tokens.
"""
from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import datetime, timezone

import requests
from e2e.e2e_helpers import Client, Service, System, free_port
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

PASSWORD = "s3cret-pass-123"


class Stack(System):
    """Gateway (1 worker) + worker + scheduler + notifier, as real processes."""

    gateway_workers = 1

    def __init__(self, log_dir, env):
        super().__init__(log_dir, env)
        self.notifiers: list[Service] = []

    def start_notifier(self, **extra_env: str) -> Service:
        port, metrics_port = free_port(), free_port()
        env = {**self.env, "NOTIFIER_HOST": "127.0.0.1", "NOTIFIER_PORT": str(port),
               "NOTIFIER_METRICS_PORT": str(metrics_port), **extra_env}
        svc = self._spawn(f"notifier-{len(self.notifiers) + 1}", [sys.executable, "-m", "notifier"], env,
                          f"http://127.0.0.1:{metrics_port}/healthz")
        svc.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        svc.ws_base = f"ws://127.0.0.1:{port}"
        svc.port = port
        self.notifiers.append(svc)
        return svc

    @property
    def notifier(self) -> Service:
        return self.notifiers[0]


class User(Client):
    """A registered API user that keeps its access and refresh tokens."""

    def __init__(self, base_url: str):  # not super().__init__: that would register a second user
        self.base = f"{base_url}/api/v1"
        self.http = requests.Session()
        name = f"nf_{uuid.uuid4().hex[:10]}"
        r = self.http.post(f"{self.base}/auth/register/", json={
            "username": name, "email": f"{name}@example.com", "password": PASSWORD, "password_confirm": PASSWORD,
        }, timeout=10)
        assert r.status_code == 201, r.text
        body = r.json()
        self.user_id = body["user"]["id"]
        self.access, self.refresh = body["tokens"]["access"], body["tokens"]["refresh"]
        self.http.headers["Authorization"] = f"Bearer {self.access}"


def feed_url(notifier: Service, task_id: str | None = None, token: str | None = None, **params) -> str:
    path = "/ws/tasks/" if task_id is None else f"/ws/tasks/{task_id}/"
    if token is not None:
        params["token"] = token
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{notifier.ws_base}{path}{'?' + query if query else ''}"


def open_feed(notifier: Service, user: User, task_id: str | None = None, **params) -> ClientConnection:
    return connect(feed_url(notifier, task_id, token=user.access, **params), open_timeout=5, close_timeout=2)


def recv(ws: ClientConnection, timeout: float) -> dict | None:
    """The next message, or None if none arrives within `timeout`."""
    try:
        return json.loads(ws.recv(timeout=timeout))
    except TimeoutError:
        return None


def collect(ws: ClientConnection, done, timeout: float = 15) -> list[dict]:
    """Messages until `done(messages)` is true; fails at the deadline with what arrived."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        left = deadline - time.monotonic()
        message = recv(ws, max(0.0, left)) if left > 0 else None
        if message is None:
            raise AssertionError(f"timed out after {timeout}s; received {json.dumps(got, indent=1)}")
        got.append(message)
    return got


def quiet(ws: ClientConnection, seconds: float) -> list[dict]:
    """Everything that arrives within `seconds` (used to prove that nothing more comes)."""
    got, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        message = recv(ws, left)
        if message is not None:
            got.append(message)
    return got


def finished(task_ids, status: str = "success"):
    """A `collect` predicate: every task in `task_ids` has had an update with `status`."""
    wanted = set(task_ids)

    def check(messages: list[dict]) -> bool:
        return wanted <= {m["task_id"] for m in messages if m.get("status") == status and m.get("event_id")}

    return check


def refused(url: str, headers: dict | None = None) -> tuple[int, dict]:
    """Status and JSON body of a refused handshake (fails if the handshake succeeds)."""
    try:
        with connect(url, additional_headers=headers, open_timeout=5) as ws:
            raise AssertionError(f"handshake accepted; first message: {recv(ws, 0.3)}")
    except InvalidStatus as exc:
        return exc.response.status_code, json.loads(exc.response.body or b"{}")


def close_code(ws: ClientConnection, timeout: float = 10) -> int | None:
    """Read until the server closes the connection; returns the close code it sent."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    except TimeoutError:
        pass
    raise AssertionError(f"connection not closed within {timeout}s")


def synthetic_event(event_id: int, owner_id: int, task_id: str | None = None, result=None, status="success") -> dict:
    """Stream fields as a producer would XADD them (shared.events.encode)."""
    from shared import events

    return events.encode(event_id=event_id, task_id=task_id or uuid.uuid4(), owner_id=owner_id, status=status,
                         result=result, error_message="", timestamp=datetime.now(timezone.utc))


def stream_ids_increasing(messages: list[dict]) -> bool:
    ids = [tuple(int(p) for p in m["stream_id"].split("-")) for m in messages]
    return all(a < b for a, b in zip(ids, ids[1:]))

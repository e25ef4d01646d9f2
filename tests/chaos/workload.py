"""The tasks a chaos run submits, and the concurrent API clients that submit and cancel them.

Every submission carries its own Idempotency-Key and is retried on connection errors and
5xx answers (the gateway or Postgres may be down at that moment), so each planned task ends
with exactly one 201 (one task id) or is reported as not accepted.
"""
from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import requests

PRIORITIES = (1, 5, 10, 20)
RETRY_FOR_SECONDS = 300.0  # how long one submission keeps retrying through outages
CANCEL_RUNNING_WAIT = 120.0  # how long we wait for a long task to start before cancelling anyway


@dataclass
class Spec:
    """One planned task: its request body and what the run does with it afterwards."""

    key: str
    body: dict
    cancel: str | None = None  # "waiting" (cancel while scheduled/queued) or "running"
    delay: float = 0.0  # seconds ahead of submission for scheduled_at
    task_id: str | None = None
    accepted_at: float | None = None
    scheduled_at: str | None = None
    cancel_status: int | None = None  # HTTP status of the cancel call


def _ok_payload(rng: random.Random, receiver_url: str) -> tuple[str, dict]:
    """A task that succeeds: (task_type, payload), cheap types far more often than slow ones."""
    roll = rng.random()
    if roll < 0.35:
        return "echo", {"n": rng.randint(0, 10**6)}
    if roll < 0.60:
        return "compute", {"operation": rng.choice(["sum", "product", "average"]), "numbers": [rng.randint(1, 9) for _ in range(5)]}
    if roll < 0.78:
        return "process_data", {"data": list(range(rng.randint(1, 20))), "operation": rng.choice(["transform", "filter", "aggregate"])}
    if roll < 0.86:
        return "http_request", {"url": f"{receiver_url}/get/{rng.randint(0, 99)}"}
    if roll < 0.93:
        return "send_email", {"to": "chaos@example.com", "subject": "hi", "body": "chaos"}
    if roll < 0.97:
        return "resize_image", {"image_url": "https://example.com/a.png", "width": 10, "height": 10}
    return "generate_report", {"report_type": "summary", "output_format": "json"}


def plan(n: int, seed: int, receiver_url: str) -> list[Spec]:
    """The seeded mix: ~8% failing (retries, dead letters), ~12% delayed up to 30 s, ~20% with a
    webhook, ~3% cancelled while waiting, ~1% long sleeps cancelled while running."""
    rng = random.Random(seed)
    specs = []
    for i in range(n):
        roll = rng.random()
        body = {"name": f"chaos-{i}", "priority": rng.choice(PRIORITIES), "retry_delay": 1, "max_retries": 3}
        spec = Spec(key=f"chaos-{seed}-{i}-{uuid.uuid4().hex[:8]}", body=body)
        if roll < 0.01:
            body.update(task_type="sleep", payload={"duration": 30}, max_retries=1)
            spec.cancel = "running"
        elif roll < 0.04:
            body.update(task_type="echo", payload={"cancel": i})
            spec.cancel, spec.delay = "waiting", rng.uniform(15, 30)
        elif roll < 0.12:
            body.update(task_type="compute", payload={"operation": "explode", "numbers": [1]},
                        max_retries=rng.choice([0, 1, 2, 3]))
        else:
            body["task_type"], body["payload"] = _ok_payload(rng, receiver_url)
        if spec.cancel is None and rng.random() < 0.12:
            spec.delay = rng.uniform(1, 30)
        if rng.random() < 0.20:
            body["callback_url"] = f"{receiver_url}/hooks/{i}"
        specs.append(spec)
    return specs


class ApiUser:
    """One registered API user; each thread gets its own HTTP session."""

    def __init__(self, base_url: str):
        self.base = f"{base_url}/api/v1"
        self._local = threading.local()
        name = f"chaos_{uuid.uuid4().hex[:8]}"
        r = requests.post(f"{self.base}/auth/register/", json={
            "username": name, "email": f"{name}@example.com", "password": "chaos-pass-123", "password_confirm": "chaos-pass-123",
        }, timeout=30)
        r.raise_for_status()
        body = r.json()
        self.user_id, self.token = body["user"]["id"], body["tokens"]["access"]
        self.retries = 0  # requests repeated after a connection error or a 5xx
        self._count = threading.Lock()

    @property
    def http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers["Authorization"] = f"Bearer {self.token}"
        return self._local.session

    def call(self, method: str, path: str, deadline: float, **kw) -> requests.Response | None:
        """Retry through outages (connection errors, 5xx) until `deadline`; None if it never answered."""
        pause = 0.1
        while time.monotonic() < deadline:
            try:
                r = self.http.request(method, f"{self.base}{path}", timeout=15, **kw)
                if r.status_code < 500:
                    return r
            except requests.RequestException:
                self._local.__dict__.pop("session", None)  # a fresh connection next time
            with self._count:
                self.retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        return None


@dataclass
class Outcomes:
    accepted: dict[str, Spec] = field(default_factory=dict)  # task id -> spec
    not_accepted: list[Spec] = field(default_factory=list)
    replayed: int = 0  # 201s answered from the Idempotency-Key (the first attempt had committed)
    cancels: dict[str, int] = field(default_factory=dict)  # kind -> successful cancels
    lock: threading.Lock = field(default_factory=threading.Lock)


class Workload:
    """Submits every spec with `clients` threads; cancels the chosen ones as they come."""

    def __init__(self, user: ApiUser, specs: list[Spec], clients: int):
        self.user, self.specs, self.clients = user, specs, clients
        self.out = Outcomes()
        self._todo: queue.SimpleQueue = queue.SimpleQueue()
        self._running_cancels: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.submitted = threading.Event()

    def start(self) -> "Workload":
        for spec in self.specs:
            self._todo.put(spec)
        for i in range(self.clients):
            self._spawn(self._submit_loop, f"submit-{i}")
        for i in range(4):
            self._spawn(self._cancel_running_loop, f"cancel-{i}")
        return self

    def wait_submitted(self, progress_every: float = 30.0) -> None:
        """Block until every spec got its answer, printing the count now and then."""
        for t in self.threads[: self.clients]:
            while t.is_alive():
                t.join(progress_every)
                if t.is_alive():
                    print(f"  [{time.strftime('%H:%M:%S')}] accepted {len(self.out.accepted)}/{len(self.specs)}", flush=True)
        self.submitted.set()

    def join(self) -> None:
        for t in self.threads:
            t.join()

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def _submit_loop(self) -> None:
        while True:
            try:
                spec = self._todo.get_nowait()
            except queue.Empty:
                return
            self._submit(spec)

    def _submit(self, spec: Spec) -> None:
        body = dict(spec.body)
        if spec.delay:
            spec.scheduled_at = (datetime.now(timezone.utc) + timedelta(seconds=spec.delay)).isoformat()
            body["scheduled_at"] = spec.scheduled_at
        r = self.user.call("POST", "/tasks/", time.monotonic() + RETRY_FOR_SECONDS, json=body,
                           headers={"Idempotency-Key": spec.key})
        if r is None or r.status_code != 201:
            with self.out.lock:
                self.out.not_accepted.append(spec)
            if r is not None:
                print(f"  submission refused: {r.status_code} {r.text[:200]}", flush=True)
            return
        spec.task_id, spec.accepted_at = r.json()["id"], time.time()
        with self.out.lock:
            self.out.accepted[spec.task_id] = spec
            self.out.replayed += r.headers.get("Idempotent-Replayed") == "true"
        if spec.cancel == "waiting":
            self._cancel(spec, "waiting")
        elif spec.cancel == "running":
            self._running_cancels.put((time.monotonic(), spec))

    def _cancel_running_loop(self) -> None:
        """Cancel long sleeps once they run (or after CANCEL_RUNNING_WAIT, whatever they are doing)."""
        while not (self.submitted.is_set() and self._running_cancels.empty()):
            try:
                since, spec = self._running_cancels.get(timeout=0.5)
            except queue.Empty:
                continue
            r = self.user.call("GET", f"/tasks/{spec.task_id}/", time.monotonic() + 30)
            status = r.json().get("status") if r is not None and r.status_code == 200 else None
            if status == "running" or time.monotonic() - since > CANCEL_RUNNING_WAIT:
                self._cancel(spec, "running" if status == "running" else "late")
            elif status in ("success", "failure", "revoked"):
                continue
            else:
                time.sleep(0.05)
                self._running_cancels.put((since, spec))

    def _cancel(self, spec: Spec, kind: str) -> None:
        r = self.user.call("POST", f"/tasks/{spec.task_id}/cancel/", time.monotonic() + RETRY_FOR_SECONDS)
        spec.cancel_status = r.status_code if r is not None else None
        if spec.cancel_status == 200:
            with self.out.lock:
                self.out.cancels[kind] = self.out.cancels.get(kind, 0) + 1

"""What the soak submits: a seeded mix of task kinds, sent through the public HTTP API.

The mix touches every path that could leak: plain and CPU tasks, a simulated slow send,
webhooks (some refused by the receiver, so retried), delayed tasks (released by the
scheduler), delayed tasks cancelled at once, tasks that retry, and tasks that fail into
dead letters.
"""
from __future__ import annotations

import random
import threading
import uuid
from datetime import datetime, timedelta, timezone

import requests

API = "/api/v1"

# (kind, weight): shares of the submitted tasks.
MIX = (
    ("echo", 30), ("compute", 15), ("process_data", 12), ("send_email", 8), ("webhook", 12),
    ("delayed", 8), ("cancelled", 3), ("retrying", 4), ("failing", 4),
)
IMMEDIATE = tuple((kind, weight) for kind, weight in MIX if kind not in ("delayed", "cancelled"))


def _later(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def task_body(kind: str, rng: random.Random, hook_url: str) -> dict:
    """The POST /tasks/ body of one task of `kind`."""
    body = {"name": f"soak {kind}", "task_type": "echo", "priority": rng.choice((1, 5, 10, 20)),
            "payload": {"blob": "x" * rng.randint(10, 2000)}, "tags": ["soak", kind]}
    if kind == "compute":
        body.update(task_type="compute", payload={"operation": "sum", "numbers": list(range(rng.randint(1, 200)))})
    elif kind == "process_data":
        body.update(task_type="process_data", payload={"data": list(range(100)), "operation": "filter",
                                                       "predicate": "even"})
    elif kind == "send_email":
        body.update(task_type="send_email", payload={"to": "soak@example.com", "subject": "soak", "body": "hello"})
    elif kind == "webhook":
        body.update(callback_url=hook_url, callback_secret="soak-secret", callback_max_attempts=3)
    elif kind == "delayed":
        body.update(scheduled_at=_later(rng.uniform(2, 30)))
    elif kind == "cancelled":
        body.update(scheduled_at=_later(300))
    elif kind in ("retrying", "failing"):  # an unknown operation fails every attempt
        body.update(task_type="compute", payload={"operation": "unknown", "numbers": [1]},
                    max_retries=2 if kind == "retrying" else 0, retry_delay=1)
    return body


class Api:
    """One soak user's client; a requests session per thread (sessions are not thread-safe)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.access = ""
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def register(self) -> None:
        name = f"soak_{uuid.uuid4().hex[:10]}"
        body = {"username": name, "email": f"{name}@example.com", "password": "soak-pass-123456",
                "password_confirm": "soak-pass-123456"}
        response = self.session.post(f"{self.base_url}{API}/auth/register/", json=body, timeout=30)
        response.raise_for_status()
        self.access = response.json()["tokens"]["access"]

    def submit(self, kind: str, rng: random.Random, hook_url: str) -> bool:
        """Create one task of `kind` (cancelling it when the kind says so); True when accepted."""
        headers = {"Authorization": f"Bearer {self.access}"}
        response = self.session.post(f"{self.base_url}{API}/tasks/", json=task_body(kind, rng, hook_url),
                                     headers=headers, timeout=30)
        if response.status_code != 201:
            return False
        if kind == "cancelled":
            task_id = response.json()["id"]
            self.session.post(f"{self.base_url}{API}/tasks/{task_id}/cancel/", headers=headers, timeout=30)
        return True


def pick(rng: random.Random, mix=MIX) -> str:
    kinds, weights = zip(*mix)
    return rng.choices(kinds, weights)[0]

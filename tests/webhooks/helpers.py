"""Small helpers shared by the webhook tests (API polling around deliveries)."""
from __future__ import annotations

import base64
import time

import pytest


def whsec(callback_secret: str) -> str:
    """The Standard Webhooks secret a receiver configures, as documented for the dispatcher."""
    return "whsec_" + base64.b64encode(callback_secret.encode()).decode()


def create_hooked(client, receiver, path: str, task_type: str = "echo", payload=None, **fields) -> dict:
    """Create a task whose callback goes to `path` on the receiver."""
    return client.create(task_type, payload if payload is not None else {"hello": "world"},
                         callback_url=receiver.url(path), **fields)


def deliveries(client, task_id: str, **params) -> list[dict]:
    return client.get(f"/tasks/{task_id}/webhook-deliveries/", **params).json()


def delivery(client, task_id: str, delivery_id: str) -> dict:
    return client.get(f"/tasks/{task_id}/webhook-deliveries/{delivery_id}/").json()


def wait_deliveries(client, task_id: str, status: str, count: int = 1, timeout: float = 15.0) -> list[dict]:
    """Poll until the task has `count` deliveries in `status`; returns all its deliveries."""
    deadline = time.monotonic() + timeout
    while True:
        found = deliveries(client, task_id)
        if len([d for d in found if d["status"] == status]) >= count:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"task {task_id}: expected {count} {status} deliveries, got {found}")
        time.sleep(0.05)


def settle(seconds: float = 1.0) -> None:
    """Leave time for anything that should NOT happen (a duplicate, an unsubscribed event)."""
    time.sleep(seconds)

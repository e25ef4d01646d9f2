"""What a handler sees while it runs: its deadline and a way to wait that can be interrupted.

Handlers never call `time.sleep`; they call `ctx.sleep`, which returns early by raising when
the task is revoked, the worker is shutting down, or the task's time limit is reached. That is
how a cancelled 60 s sleep stops within the heartbeat interval instead of running on.
"""
from __future__ import annotations

import threading
import time


class TaskError(Exception):
    """A task failure with a clear, user-facing message (bad payload, unknown operation...)."""


class TaskTimeout(Exception):
    """The task ran past its `timeout`."""


class TaskInterrupted(Exception):
    """The task must stop now: `reason` is "revoked" or "shutdown"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TaskContext:
    def __init__(self, task_id: str, timeout_s: float, allow_private_networks: bool = False):
        self.task_id = task_id
        self.timeout_s = timeout_s
        # Settings.webhook_allow_private_networks: may http_request reach private addresses?
        self.allow_private_networks = allow_private_networks
        self.deadline = time.monotonic() + timeout_s
        self._stop = threading.Event()
        self._reason = ""

    def interrupt(self, reason: str) -> None:
        """Called from another thread (heartbeat, shutdown) to stop the handler."""
        self._reason = reason
        self._stop.set()

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def check(self) -> None:
        """Raise if the task was interrupted or is past its deadline."""
        if self._stop.is_set():
            raise TaskInterrupted(self._reason)
        if time.monotonic() >= self.deadline:
            raise TaskTimeout(f"Task timed out after {self.timeout_s:g}s")

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or raise as soon as the task is interrupted or times out."""
        end = time.monotonic() + max(0.0, seconds)
        while True:
            self.check()
            left = min(end, self.deadline) - time.monotonic()
            if left <= 0:
                if time.monotonic() >= end:
                    return
                continue  # deadline reached first: check() raises TaskTimeout
            self._stop.wait(left)

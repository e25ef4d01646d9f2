"""sleep: a long-running task for testing timeouts, cancellation and scaling.

Waits with `ctx.sleep`, so a revoke, a shutdown or the task's time limit stops it at once.
"""
from __future__ import annotations

import math
from typing import Any

from worker.context import TaskContext, TaskError

MAX_DURATION = 300  # seconds, as in the reference


def run(payload: Any, ctx: TaskContext) -> dict:
    if not isinstance(payload, dict):
        raise TaskError("sleep payload must be an object")
    duration = payload.get("duration", 1)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration):
        raise TaskError("'duration' must be a number of seconds")
    if duration < 0:
        raise TaskError("'duration' must not be negative")
    duration = min(duration, MAX_DURATION)
    ctx.sleep(duration)
    return {"slept_for": duration}

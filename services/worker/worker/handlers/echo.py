"""echo: returns the payload unchanged; the cheapest end-to-end probe of the whole pipeline."""
from __future__ import annotations

from typing import Any

from worker.context import TaskContext


def run(payload: Any, ctx: TaskContext) -> dict:
    return {"echoed": payload}

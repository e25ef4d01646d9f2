"""One handler per task type: `run(payload, ctx) -> JSON-serialisable result`.

Handlers are pure logic (no DB, no Redis): the worker runtime claims the task, builds the
TaskContext, calls the handler and records the outcome. A bad payload raises TaskError.
"""
from __future__ import annotations

from typing import Any, Callable

from shared.task_types import TASK_TYPES
from worker.context import TaskContext, TaskError
from worker.handlers import (
    compute,
    echo,
    generate_report,
    http_request,
    process_data,
    resize_image,
    send_email,
    sleep,
)

Handler = Callable[[Any, TaskContext], Any]

HANDLERS: dict[str, Handler] = {
    "echo": echo.run,
    "compute": compute.run,
    "sleep": sleep.run,
    "http_request": http_request.run,
    "process_data": process_data.run,
    "send_email": send_email.run,
    "resize_image": resize_image.run,
    "generate_report": generate_report.run,
}

if set(HANDLERS) != set(TASK_TYPES):  # the API and the worker must agree on the task types
    raise RuntimeError(f"handlers {sorted(HANDLERS)} do not match TASK_TYPES {sorted(TASK_TYPES)}")


def get_handler(task_type: str) -> Handler:
    """The handler for `task_type`; TaskError for a type this worker does not know."""
    handler = HANDLERS.get(task_type) if isinstance(task_type, str) else None
    if handler is None:
        raise TaskError(f"Unknown task type: {task_type!r}")
    return handler

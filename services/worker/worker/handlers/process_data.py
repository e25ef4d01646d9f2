"""process_data: transform, filter or aggregate a list of JSON values.

transform upper-cases strings and doubles numbers (anything else is kept as is); filter keeps
truthy items or even integers; aggregate wraps the list as {"count", "items"}.
"""
from __future__ import annotations

import math
from typing import Any

from worker.context import TaskContext, TaskError

OPERATIONS = ("transform", "filter", "aggregate")
PREDICATES = ("truthy", "even")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _transform(item: Any) -> Any:
    if isinstance(item, str):
        return item.upper()
    if not _is_number(item):
        return item
    doubled = item * 2
    if isinstance(doubled, float) and not math.isfinite(doubled):
        raise TaskError(f"doubling {item!r} overflows a floating-point number")
    return doubled


def run(payload: Any, ctx: TaskContext) -> dict:
    if not isinstance(payload, dict):
        raise TaskError("process_data payload must be an object")
    data = payload.get("data")
    if not isinstance(data, list):
        raise TaskError("'data' must be a list")
    operation = payload.get("operation", "transform")
    if operation not in OPERATIONS:
        raise TaskError(f"Unknown operation: {operation!r}; must be one of {', '.join(OPERATIONS)}")

    if operation == "transform":
        processed: Any = [_transform(item) for item in data]
    elif operation == "filter":
        predicate = payload.get("predicate", "truthy")
        if predicate not in PREDICATES:
            raise TaskError(f"Unknown predicate: {predicate!r}; must be one of {', '.join(PREDICATES)}")
        if predicate == "truthy":
            processed = [item for item in data if item]
        else:
            processed = [i for i in data if isinstance(i, int) and not isinstance(i, bool) and i % 2 == 0]
    else:
        processed = {"count": len(data), "items": data}
    return {"processed": processed, "count": len(data)}

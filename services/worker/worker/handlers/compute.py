"""compute: sum/product/average of a list of numbers.

Inputs are checked strictly (bools are not numbers, non-finite floats are refused) and huge
integer results are refused, because every result must be stored as JSON.
"""
from __future__ import annotations

import math
from typing import Any

from worker.context import TaskContext, TaskError

OPERATIONS = ("sum", "product", "average")
MAX_RESULT_BITS = 4096  # ~1233 decimal digits; far beyond any real use, still JSON-serialisable


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _apply(operation: str, numbers: list) -> int | float:
    if operation == "sum":
        return sum(numbers)
    if operation == "average":
        return sum(numbers) / len(numbers)
    result = 1
    for n in numbers:
        result *= n
        if isinstance(result, int) and result.bit_length() > MAX_RESULT_BITS:
            raise OverflowError
    return result


def run(payload: Any, ctx: TaskContext) -> dict:
    if not isinstance(payload, dict):
        raise TaskError("compute payload must be an object")
    operation = payload.get("operation", "sum")
    if operation not in OPERATIONS:
        raise TaskError(f"Unknown operation: {operation!r}; must be one of {', '.join(OPERATIONS)}")
    numbers = payload.get("numbers")
    if not isinstance(numbers, list) or not all(_is_number(n) for n in numbers):
        raise TaskError("'numbers' must be a list of numbers")
    if any(isinstance(n, float) and not math.isfinite(n) for n in numbers):
        raise TaskError("'numbers' must be finite")

    if operation == "average" and not numbers:
        raise TaskError("cannot average an empty list of numbers")
    try:
        result = _apply(operation, numbers)
    except OverflowError:
        raise TaskError("result is too large") from None
    if isinstance(result, float) and not math.isfinite(result):
        raise TaskError("result overflows a floating-point number")
    if isinstance(result, int) and result.bit_length() > MAX_RESULT_BITS:
        raise TaskError("result is too large")
    return {"operation": operation, "result": result}

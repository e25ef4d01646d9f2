"""`@operation(...)` on a view: the one record of what it takes (body, query, auth) and
returns, read by the OpenAPI document. With `auth=True` (the default) it also makes the view
require a bearer access token, so what is documented as protected is what is enforced."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from flask_jwt_extended import jwt_required

from .body import Body
from .params import Query

ATTRIBUTE = "openapi_operation"
JSON = "application/json"


@dataclass(frozen=True)
class Operation:
    summary: str
    ok: dict[int, dict[str, Any] | None]  # success status -> response schema (None: no body)
    auth: bool = True
    body: Body | None = None
    partial: bool = False  # the body is a partial update: no field is required
    query: Query | None = None
    errors: tuple[int, ...] = ()  # error statuses beyond those the document derives
    headers: tuple[dict[str, Any], ...] = ()  # header parameter objects
    content_type: str = JSON


def operation(summary: str, **spec: Any) -> Callable:
    """Record an `Operation` on the view (the attribute survives functools.wraps, so it is
    still found under the rate limiter's wrapper) and apply `jwt_required` when `auth`."""
    op = Operation(summary, **spec)

    def decorate(view: Callable) -> Callable:
        wrapped = jwt_required()(view) if op.auth else view
        setattr(wrapped, ATTRIBUTE, op)
        return wrapped

    return decorate


def operation_of(view: Callable | None) -> Operation | None:
    while view is not None:
        op = getattr(view, ATTRIBUTE, None)
        if op is not None:
            return op
        view = getattr(view, "__wrapped__", None)
    return None

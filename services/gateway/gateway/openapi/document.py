"""The OpenAPI 3.0 document, built from the app's URL map and each view's `@operation`
record: paths, methods and path parameters come from the routes themselves, bodies and
query parameters from the specs that validate them, so nothing is listed twice."""
from __future__ import annotations

import inspect
import re
from http import HTTPStatus
from typing import Any

from flask import Flask
from werkzeug.routing import Rule
from werkzeug.routing.converters import IntegerConverter, UUIDConverter

from ..ratelimit import EXEMPT_PATHS
from .operations import JSON, Operation, operation_of
from .responses import COMPONENTS, ref

AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
ERRORS = {
    400: "Invalid input: malformed JSON, or fields or parameters refused (each listed by name).",
    401: "Missing, invalid or expired credentials.",
    404: "Not found, or not the caller's.",
    413: "Request body too large.",
    429: "Rate limited: retry after Retry-After seconds.",
}
# Routes that other libraries register (no @operation of ours): endpoint -> description.
EXTERNAL = {
    "prometheus_metrics": Operation(
        "Prometheus metrics (aggregated across the server's processes)",
        ok={200: {"type": "string"}}, auth=False, content_type="text/plain",
    ),
}
_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def documented_rules(app: Flask) -> list[Rule]:
    """Every route of the API: all but the admin dashboard and static files."""
    return [
        rule for rule in app.url_map.iter_rules()
        if not rule.rule.startswith("/admin") and rule.endpoint != "static" and not rule.endpoint.endswith(".static")
    ]


def build(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(documented_rules(app), key=lambda r: r.rule):
        op = operation_of(app.view_functions[rule.endpoint]) or EXTERNAL.get(rule.endpoint)
        if op is None:
            continue  # tests/integration/test_openapi.py fails on such a route
        item = paths.setdefault(_ARGUMENT.sub(r"{\1}", rule.rule), {})
        for method in sorted(rule.methods - AUTOMATIC_METHODS):
            item[method.lower()] = _operation(app, rule, method, op)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "TaskQueue API",
            "version": "1.0.0",
            "description": "Submit tasks, follow them, manage dead letters, webhooks and recurring schedules. "
                           "Every error is JSON {\"error\", \"detail\"}; another user's object is a 404.",
        },
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                               "description": "An access token from POST /api/v1/auth/token/."}},
        },
    }


def _operation(app: Flask, rule: Rule, method: str, op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": f"{method.lower()}_{rule.endpoint.replace('.', '_')}",
        "summary": op.summary,
        "tags": [rule.endpoint.split(".")[0] if "." in rule.endpoint else "ops"],
        "security": [{"bearerAuth": []}] if op.auth else [],
    }
    doc = inspect.getdoc(app.view_functions[rule.endpoint])
    if doc:
        out["description"] = doc
    parameters = _path_parameters(rule) + (op.query.parameters() if op.query else []) + list(op.headers)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        schema = op.body.schema(partial=op.partial)
        out["requestBody"] = {"required": bool(schema.get("required")), "content": {JSON: {"schema": schema}}}
    out["responses"] = {**_successes(op), **_errors(rule, op)}
    return out


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    out = []
    for name, converter in rule._converters.items():  # noqa: SLF001 - werkzeug keeps them only here
        if isinstance(converter, UUIDConverter):
            schema = {"type": "string", "format": "uuid"}
        elif isinstance(converter, IntegerConverter):
            schema = {"type": "integer"}
        else:
            schema = {"type": "string"}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _successes(op: Operation) -> dict[str, Any]:
    out = {}
    for status, schema in op.ok.items():
        response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if schema is not None:
            response["content"] = {op.content_type: {"schema": schema}}
        out[str(status)] = response
    return out


def _errors(rule: Rule, op: Operation) -> dict[str, Any]:
    statuses = set(op.errors)
    if op.body is not None:
        statuses |= {400, 413}
    if op.query is not None:
        statuses |= {400, *op.query.errors}
    if op.auth:
        statuses.add(401)
    if rule.arguments:
        statuses.add(404)
    if rule.rule not in EXEMPT_PATHS:
        statuses.add(429)
    out = {}
    for status in sorted(statuses):
        response = {"description": ERRORS[status], "content": {JSON: {"schema": ref("Error")}}}
        if status == 429:
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
        out[str(status)] = response
    return out

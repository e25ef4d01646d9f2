"""JSON Schemas of what the API returns: the objects gateway/serializers.py (and
schedules.fields.to_json) build, their list envelopes, and the error shapes.

Objects are closed (`additionalProperties: false`, every key required): a serializer that
gains, loses or retypes a key no longer matches, and tests/integration/test_openapi.py and
the schemathesis run in tests/fuzz say so.
"""
from __future__ import annotations

from typing import Any

from shared import statuses, webhooks
from shared.routing import QUEUES
from shared.schedules import MISFIRE_POLICIES
from shared.task_types import TASK_TYPES

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
OBJECT: dict[str, Any] = {"type": "object"}
ANY: dict[str, Any] = {"description": "Any JSON value."}
STRINGS: dict[str, Any] = {"type": "array", "items": STRING}
HEADERS: dict[str, Any] = {"type": "object", "additionalProperties": STRING}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def closed(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    out = {"type": "object", "properties": properties, "additionalProperties": False}
    if properties:  # OpenAPI 3.0 wants a non-empty `required` list or none
        out["required"] = list(properties)
    if description:
        out["description"] = description
    return out


def ref(name: str) -> dict[str, str]:
    assert name in COMPONENTS, name
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(name: str) -> dict[str, Any]:
    """The DRF-style envelope of a paginated list of `name` objects."""
    return closed({
        "count": INTEGER,
        "next": nullable({"type": "string", "format": "uri"}),
        "previous": nullable({"type": "string", "format": "uri"}),
        "results": {"type": "array", "items": ref(name)},
    })


def list_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": ref(name)}


_TASK = {
    "id": UUID,
    "name": STRING,
    "task_type": {"type": "string", "enum": list(TASK_TYPES)},
    "status": {"type": "string", "enum": list(statuses.ALL)},
    "priority": INTEGER,
    "queue": {"type": "string", "enum": list(QUEUES)},
    "payload": ANY,
    "result": {"description": "The handler's result (null until success)."},
    "error_message": STRING,
    "created_at": TIME,
    "started_at": nullable(TIME),
    "completed_at": nullable(TIME),
    "tags": STRINGS,
    "metadata": OBJECT,
    "retry_count": INTEGER,
    "max_retries": INTEGER,
    "retry_delay": INTEGER,
    "timeout": INTEGER,
    "scheduled_at": nullable(TIME),
    "updated_at": TIME,
    "callback_url": STRING,
    "callback_headers": HEADERS,
    "callback_events": STRINGS,
    "callback_max_attempts": INTEGER,
    "callback_status": STRING,
    "callback_attempts": INTEGER,
    "callback_last_attempt_at": nullable(TIME),
    "callback_last_response_code": nullable(INTEGER),
    "callback_last_error": STRING,
}
_USER = {
    "id": INTEGER,
    "username": STRING,
    "email": STRING,
    "first_name": STRING,
    "last_name": STRING,
    "is_staff": BOOLEAN,
    "date_joined": TIME,
}
_DELIVERY = {
    "id": UUID,
    "task": UUID,
    "owner": INTEGER,
    "event": {"type": "string", "enum": list(webhooks.EVENTS)},
    "status": {"type": "string", "enum": list(webhooks.DELIVERY_STATUSES)},
    "attempts": INTEGER,
    "request_url": STRING,
    "request_headers": HEADERS,
    "request_body": STRING,
    "signature": STRING,
    "queued_at": TIME,
    "last_attempt_at": nullable(TIME),
    "response_status_code": nullable(INTEGER),
    "response_body": STRING,
    "error_message": STRING,
    "replay_of": nullable(UUID),
}
_ATTEMPT = {
    "attempt": INTEGER,
    "status_code": nullable(INTEGER),
    "error": STRING,
    "duration_ms": nullable(INTEGER),
    "created_at": TIME,
}
_TOKENS = {"access": STRING, "refresh": STRING}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "description": "Every error. A 400 for invalid fields also lists each one, DRF-style: "
                       '{"name": ["This field is required."]}.',
        "properties": {"error": STRING, "detail": STRING},
        "required": ["error", "detail"],
        "additionalProperties": STRINGS,
    },
    "Task": closed(_TASK, "A task; never its callback_secret."),
    "TaskActionResult": closed({**_TASK, "message": STRING}),
    "TaskStats": closed({
        "total": INTEGER,
        **{status: INTEGER for status in statuses.ALL},
        "dead_letters": INTEGER,
        "avg_duration": nullable({"type": "number", "description": "Seconds, over successful tasks."}),
    }),
    "User": closed(_USER),
    "TokenPair": closed(_TOKENS),
    "Login": closed({**_TOKENS, "user": closed({"id": INTEGER, "username": STRING, "email": STRING, "is_staff": BOOLEAN})}),
    "Registered": closed({"user": {"$ref": "#/components/schemas/User"}, "tokens": {"$ref": "#/components/schemas/TokenPair"},
                          "message": STRING}),
    "Message": closed({"message": STRING}),
    "Empty": closed({}),
    "DeadLetter": closed({
        "id": UUID,
        "original_task": UUID,
        "task_name": STRING,
        "task_type": STRING,
        "payload": ANY,
        "priority": INTEGER,
        "error_message": STRING,
        "traceback": STRING,
        "retry_count": INTEGER,
        "created_at": TIME,
        "reprocessed": BOOLEAN,
        "reprocessed_at": nullable(TIME),
        "reprocessed_task": nullable(UUID),
    }),
    "WebhookDelivery": closed(_DELIVERY),
    "WebhookDeliveryDetail": closed({**_DELIVERY, "attempt_log": {"type": "array", "items": closed(_ATTEMPT)}}),
    "WebhookTriggered": closed({"queued": BOOLEAN, "event": STRING, "delivery_id": nullable(UUID)}),
    "Schedule": closed({
        "id": UUID,
        "name": STRING,
        "cron": nullable(STRING),
        "interval_seconds": nullable(INTEGER),
        "timezone": STRING,
        "misfire_policy": {"type": "string", "enum": list(MISFIRE_POLICIES)},
        "enabled": BOOLEAN,
        "task_type": STRING,
        "payload": ANY,
        "priority": INTEGER,
        "queue": {"type": "string", "enum": list(QUEUES)},
        "max_retries": INTEGER,
        "retry_delay": INTEGER,
        "timeout": INTEGER,
        "tags": STRINGS,
        "metadata": OBJECT,
        "callback_url": STRING,
        "callback_headers": HEADERS,
        "callback_events": STRINGS,
        "callback_max_attempts": INTEGER,
        "next_run_at": nullable(TIME),
        "last_run_at": nullable(TIME),
        "last_task": nullable(UUID),
        "created_at": TIME,
        "updated_at": TIME,
    }, "A recurring schedule; never its callback_secret."),
    "Alive": closed({"status": {"type": "string", "enum": ["ok"]}}),
    "Ready": closed({"status": {"type": "string", "enum": ["ready"]}, "postgres": STRING, "redis": STRING}),
    "NotReady": closed({"status": {"type": "string", "enum": ["not ready"]}, "postgres": STRING, "redis": STRING,
                        "error": STRING}),
}

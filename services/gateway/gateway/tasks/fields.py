"""Validation of a new task's fields (the row values they become: shared.task_values).

The task template of a recurring schedule is read by the same field specs (`TEMPLATE`), so a
scheduled fire creates exactly the task that POST /tasks/ would have accepted.
"""
from __future__ import annotations

from typing import Any

from shared import statuses, webhooks
from shared.netguard import UnsafeURL, check_url
from shared.task_types import TASK_TYPES
from shared.task_values import BLANK, DEFAULTS, row_values  # noqa: F401 - re-exported for the gateway

from ..openapi.body import Body, Reader
from ..openapi.fields import AnyJSON, Choice, DateTime, Integer, Mapping, String, StringList

CALLBACK_EVENTS = webhooks.EVENTS
MAX_TIMEOUT = 3600


def _callback_url_problem(url: str, reader: Reader) -> str | None:
    """The SSRF guard at creation: http(s) only, and (unless the context allows private
    networks: settings.webhook_allow_private_networks, for local development) no host that is
    or resolves to a loopback, private, link-local or metadata address. A host that does not
    resolve is refused too. The dispatcher checks again at every send. `trusted_callback_url`
    (an already accepted URL, e.g. unchanged by a schedule update) is not resolved again."""
    if not url or url == reader.context.get("trusted_callback_url"):
        return None
    if not url.lower().startswith(("http://", "https://")):
        return "Enter a valid http(s) URL."
    try:
        check_url(url, reader.context.get("allow_private_networks", False))
    except UnsafeURL as exc:
        return f"Callback URL refused: {exc}."
    return None


def _callback_headers_problem(headers: dict, reader: Reader) -> str | None:
    """Header names must be HTTP tokens, values single-line, and none may override ours."""
    problem = next((p for p in (webhooks.header_problem(n, v) for n, v in headers.items()) if p), None)
    return f"{problem}." if problem else None


def default_callback_events(reader: Reader) -> None:
    """A callback URL without callback_events is told about the three terminal events."""
    values = reader.values
    if not values["callback_events"] and values["callback_url"]:
        values["callback_events"] = list(statuses.DEFAULT_CALLBACK_EVENTS)


# Every task field but name and scheduled_at (shared.task_values.TEMPLATE_FIELDS): the task
# template of a recurring schedule is read by the same specs.
TEMPLATE = {
    "task_type": Choice(TASK_TYPES, required=True),
    "payload": AnyJSON(description="Any JSON value; its meaning depends on task_type."),
    "priority": Integer(default=DEFAULTS["priority"], min_value=-1000, max_value=1000,
                        description="Queue: >=20 critical, >=10 high, <=1 low, else default."),
    "max_retries": Integer(default=DEFAULTS["max_retries"], min_value=0, max_value=100),
    "retry_delay": Integer(default=DEFAULTS["retry_delay"], min_value=0, max_value=86400, description="Seconds."),
    "timeout": Integer(default=DEFAULTS["timeout"], min_value=1, max_value=MAX_TIMEOUT, description="Seconds."),
    "tags": StringList(),
    "metadata": Mapping(),
    "callback_url": String(max_len=2048, check=_callback_url_problem, description="http(s) URL of a public host."),
    "callback_headers": Mapping(max_items=50, values_are_strings=True, check=_callback_headers_problem),
    "callback_events": StringList(choices=CALLBACK_EVENTS, max_items=len(CALLBACK_EVENTS),
                                  description="Default: the three terminal events when callback_url is set."),
    "callback_secret": String(max_len=255, description="Write-only: signs the webhook bodies."),
    "callback_max_attempts": Integer(default=DEFAULTS["callback_max_attempts"], min_value=1, max_value=20),
}

TASK = Body(
    {
        "name": String(required=True, max_len=255, blank=False),
        **TEMPLATE,
        "scheduled_at": DateTime(description="ISO 8601 (naive means UTC); in the future makes the task scheduled."),
    },
    rules=(default_callback_events,),
)


def read_task_fields(body: dict, allow_private_networks: bool = False) -> dict[str, Any]:
    """Validate a create-task body; raises one 400 listing every bad field."""
    return TASK.read(body, allow_private_networks=allow_private_networks)

"""Validation of a new task's fields (the row values they become: shared.task_values).

The task template of a recurring schedule is read by the same readers (`read_template_fields`),
so a scheduled fire creates exactly the task that POST /tasks/ would have accepted.
"""
from __future__ import annotations

from typing import Any

from shared import statuses, webhooks
from shared.netguard import UnsafeURL, check_url
from shared.task_types import TASK_TYPES
from shared.task_values import BLANK, DEFAULTS, row_values  # noqa: F401 - re-exported for the gateway

from ..validation import Fields

CALLBACK_EVENTS = webhooks.EVENTS
MAX_TIMEOUT = 3600


def read_task_fields(body: dict, allow_private_networks: bool = False) -> dict[str, Any]:
    """Validate a create-task body; raises one 400 listing every bad field.

    `allow_private_networks` (settings.webhook_allow_private_networks) lets callback URLs point
    at loopback/private addresses (local development); otherwise they are refused here.
    """
    f = Fields(body)
    values = {
        "name": f.string("name", required=True, max_len=255, blank=False),
        **read_template_fields(f, allow_private_networks),
        "scheduled_at": f.datetime("scheduled_at"),
    }
    f.finish()
    return values


def read_template_fields(
    f: Fields, allow_private_networks: bool = False, trusted_callback_url: str | None = None
) -> dict[str, Any]:
    """Every task field but name and scheduled_at (shared.task_values.TEMPLATE_FIELDS), with
    their defaults; errors are collected on `f`. `trusted_callback_url` (an already accepted
    URL, e.g. unchanged by a schedule update) skips the SSRF resolution for that exact URL."""
    body = f.data
    return {
        "task_type": f.choice("task_type", TASK_TYPES, required=True),
        "payload": body.get("payload") if body.get("payload") is not None else {},
        "priority": f.integer("priority", default=DEFAULTS["priority"], min_value=-1000, max_value=1000),
        "max_retries": f.integer("max_retries", default=DEFAULTS["max_retries"], min_value=0, max_value=100),
        "retry_delay": f.integer("retry_delay", default=DEFAULTS["retry_delay"], min_value=0, max_value=86400),
        "timeout": f.integer("timeout", default=DEFAULTS["timeout"], min_value=1, max_value=MAX_TIMEOUT),
        "tags": f.string_list("tags"),
        "metadata": f.mapping("metadata"),
        **read_callback_fields(f, allow_private_networks, trusted_callback_url),
    }


def read_callback_fields(
    f: Fields, allow_private_networks: bool = False, trusted_url: str | None = None
) -> dict[str, Any]:
    url = f.string("callback_url", max_len=2048)
    if url and url != trusted_url:
        _check_callback_url(f, url, allow_private_networks)
    headers = f.mapping("callback_headers", max_items=50, values_are_strings=True)
    problems = [webhooks.header_problem(name, value) for name, value in headers.items()]
    if any(problems) and "callback_headers" not in f.errors:
        f.fail("callback_headers", next(p for p in problems if p) + ".")
    events = f.string_list("callback_events", choices=CALLBACK_EVENTS, max_items=len(CALLBACK_EVENTS))
    return {
        "callback_url": url,
        "callback_headers": headers,
        "callback_secret": f.string("callback_secret", max_len=255),
        "callback_events": events or (list(statuses.DEFAULT_CALLBACK_EVENTS) if url else []),
        "callback_max_attempts": f.integer(
            "callback_max_attempts", default=DEFAULTS["callback_max_attempts"], min_value=1, max_value=20
        ),
    }


def _check_callback_url(f: Fields, url: str, allow_private_networks: bool) -> None:
    """The SSRF guard at creation: http(s) only, and (unless private networks are allowed) no
    host that is or resolves to a loopback, private, link-local or metadata address. A host
    that does not resolve is refused too. The dispatcher checks again at every send."""
    if not url.lower().startswith(("http://", "https://")):
        f.fail("callback_url", "Enter a valid http(s) URL.")
        return
    try:
        check_url(url, allow_private_networks)
    except UnsafeURL as exc:
        f.fail("callback_url", f"Callback URL refused: {exc}.")


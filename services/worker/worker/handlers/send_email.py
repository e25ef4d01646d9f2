"""send_email: validates the message and simulates sending it (0.5 s, as the reference).

A real provider (SMTP, SES...) would plug in here; the contract and result stay the same.
"""
from __future__ import annotations

import re
import time
from typing import Any

from worker.context import TaskContext, TaskError

SEND_DELAY_S = 0.5
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


def _text(payload: dict, key: str, default: str, single_line: bool) -> str:
    value = payload.get(key, default)
    if not isinstance(value, str):
        raise TaskError(f"'{key}' must be a string")
    if single_line and ("\r" in value or "\n" in value):
        raise TaskError(f"'{key}' must not contain line breaks")
    return value


def run(payload: Any, ctx: TaskContext) -> dict:
    if not isinstance(payload, dict):
        raise TaskError("send_email payload must be an object")
    if not payload.get("to"):
        raise TaskError("'to' email address is required")
    to = _text(payload, "to", "", single_line=True)
    if len(to) > 254 or not _EMAIL.match(to):
        raise TaskError(f"Invalid email address: {to!r}")
    subject = _text(payload, "subject", "No Subject", single_line=True)
    body = _text(payload, "body", "", single_line=False)

    ctx.sleep(SEND_DELAY_S)  # simulated provider round-trip
    return {
        "status": "sent",
        "to": to,
        "subject": subject,
        "body_length": len(body),
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

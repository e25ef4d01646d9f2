"""Validation of a schedule: its timing (cron or interval, time zone, misfire policy) and its
task template, read by the field specs of POST /tasks/ (`TEMPLATE`), so a fire creates
exactly the task that endpoint would have accepted."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from shared import schedules
from shared.routing import queue_for_priority
from shared.task_values import TEMPLATE_FIELDS

from ..errors import ValidationError
from ..openapi.body import Body, Reader
from ..openapi.fields import Boolean, Choice, Integer, String
from ..serializers import iso
from ..tasks.fields import TEMPLATE, default_callback_events

MAX_NAME = 200  # leaves room for " @ <fire time>" in the 255 characters of a task name
TIMING_FIELDS = ("cron", "interval_seconds", "timezone")
# Every column a request may set (callback_secret included: write-only, never returned).
WRITABLE = ("name", "cron", "interval_seconds", "timezone", "misfire_policy", "enabled", *TEMPLATE_FIELDS)


def _check_timing(reader: Reader) -> None:
    """Exactly one of cron and interval_seconds; a cron expression that parses in a known zone.
    "" means no cron (like null) and an empty timezone means UTC."""
    values, errors = reader.values, reader.errors
    cron = values["cron"] if values["cron"] and values["cron"].strip() else None
    interval = values["interval_seconds"]
    values["cron"], values["timezone"] = cron, values["timezone"] or "UTC"
    tz = None
    if "timezone" not in errors:
        try:
            tz = schedules.zone(values["timezone"])
        except schedules.ScheduleError as exc:
            reader.fail("timezone", str(exc))
    if "cron" in errors or "interval_seconds" in errors:
        return
    if cron is not None and interval is not None:
        message = "Give either cron or interval_seconds, not both."
    elif cron is None and interval is None:
        message = "Give either cron (5 fields, e.g. \"0 3 * * *\") or interval_seconds."
    else:
        message = None
    if message:
        reader.fail("cron", message)
        reader.fail("interval_seconds", message)
    elif cron is not None:  # checked in UTC when the zone is invalid: both errors at once
        try:
            schedules.check_cron(cron, tz or schedules.zone("UTC"), datetime.now(timezone.utc))
        except schedules.ScheduleError as exc:
            reader.fail("cron", str(exc))


SCHEDULE = Body(
    {
        "name": String(required=True, max_len=MAX_NAME, blank=False),
        **TEMPLATE,
        "misfire_policy": Choice(schedules.MISFIRE_POLICIES, default=schedules.RUN_ONCE,
                                 description="run_once: one task for the latest missed fire; skip: none when too late."),
        "enabled": Boolean(default=True),
        "cron": String(default=None, max_len=schedules.MAX_CRON_LENGTH,
                       description="5 fields (crontab semantics) or a macro such as @daily; or give interval_seconds."),
        "interval_seconds": Integer(default=None, min_value=schedules.MIN_INTERVAL_SECONDS,
                                    max_value=schedules.MAX_INTERVAL_SECONDS),
        "timezone": String(default="UTC", max_len=64, description="IANA zone name."),
    },
    rules=(default_callback_events, _check_timing),
)


def read_schedule(body: dict, allow_private_networks: bool = False, current: dict | None = None) -> dict[str, Any]:
    """Validate a whole schedule and return its column values; one 400 lists every bad field.

    `current` (for updates: the stored schedule as `as_body` gives it) is the schedule being
    replaced; its callback URL, already checked, is not resolved again.
    """
    return SCHEDULE.read(
        body, allow_private_networks=allow_private_networks, trusted_callback_url=(current or {}).get("callback_url")
    )


def first_run(values: dict[str, Any], now: datetime) -> datetime | None:
    """`next_run_at` of a schedule (re)started at `now`: None when disabled; 400 for a cron
    expression that matches no date."""
    if not values["enabled"]:
        return None
    timing = schedules.timing(values["cron"], values["interval_seconds"], values["timezone"])
    try:
        return schedules.first_fire(timing, now)
    except schedules.ScheduleError as exc:
        raise ValidationError({"cron": [str(exc)]}) from None


def as_body(row) -> dict[str, Any]:
    """A stored schedule as a request body (with its secret): the base a PATCH is applied to."""
    s = row._mapping
    return {name: s[name] for name in WRITABLE}


def merge_patch(current: dict[str, Any], body: dict) -> dict[str, Any]:
    """PATCH: the given fields over the stored ones. Setting cron clears interval_seconds and
    the reverse, unless the body gives both (which is then refused as both)."""
    merged = {**current, **body}
    if body.get("cron") not in (None, "") and "interval_seconds" not in body:
        merged["interval_seconds"] = None
    if body.get("interval_seconds") is not None and "cron" not in body:
        merged["cron"] = None
    return merged


def merge_put(current: dict[str, Any], body: dict) -> dict[str, Any]:
    """PUT replaces the schedule, except the write-only callback_secret: absent means keep
    it (a client cannot send back what it is never shown); "" clears it."""
    if "callback_secret" not in body and current.get("callback_secret"):
        return {**body, "callback_secret": current["callback_secret"]}
    return body


def to_json(row) -> dict[str, Any]:
    """The public shape of a schedule. Never the callback secret."""
    s = row._mapping
    return {
        "id": str(s["id"]),
        "name": s["name"],
        "cron": s["cron"],
        "interval_seconds": s["interval_seconds"],
        "timezone": s["timezone"],
        "misfire_policy": s["misfire_policy"],
        "enabled": s["enabled"],
        "task_type": s["task_type"],
        "payload": s["payload"],
        "priority": s["priority"],
        "queue": queue_for_priority(s["priority"]),
        "max_retries": s["max_retries"],
        "retry_delay": s["retry_delay"],
        "timeout": s["timeout"],
        "tags": s["tags"],
        "metadata": s["metadata"],
        "callback_url": s["callback_url"],
        "callback_headers": s["callback_headers"],
        "callback_events": s["callback_events"],
        "callback_max_attempts": s["callback_max_attempts"],
        "next_run_at": iso(s["next_run_at"]),
        "last_run_at": iso(s["last_run_at"]),
        "last_task": str(s["last_task_id"]) if s["last_task_id"] else None,
        "created_at": iso(s["created_at"]),
        "updated_at": iso(s["updated_at"]),
    }

"""What clients receive, rendered once per event (not once per recipient).

Every message is a `task_update`:
    {"type": "task_update", "event_id", "stream_id", "task_id", "status", "result",
     "error_message", "timestamp"}
`stream_id` is the Redis stream entry id: unlike `event_id` (unique, but allocated by several
producers and so not ordered), stream ids are totally ordered, which is what resuming needs.
A snapshot (the task's state read from Postgres on subscribe) has `event_id` and `stream_id`
null and `timestamp` = the task's last change.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from shared import events

StreamId = tuple[int, int]
ZERO: StreamId = (0, 0)


def parse_stream_id(value: str | bytes) -> StreamId:
    """`"1700000000000-3"` (or `"1700000000000"`) -> `(1700000000000, 3)`; ValueError otherwise."""
    text = value.decode() if isinstance(value, bytes) else value
    ms, sep, seq = text.partition("-")
    if not (ms.isascii() and ms.isdigit()) or (sep and not (seq.isascii() and seq.isdigit())):
        raise ValueError(f"not a stream id: {text!r}")
    return int(ms), int(seq or 0)


def format_stream_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry, with the routing keys and the client message already rendered."""

    sid: StreamId
    event_id: int
    owner_id: int
    task_id: str
    at: datetime  # when the change was committed
    at_epoch: float  # the same, as a Unix time (lag is measured once per recipient)
    text: str  # the task_update message


def render(*, event_id, stream_id, task_id, status, result, error_message, timestamp: str) -> str:
    return json.dumps({
        "type": "task_update",
        "event_id": event_id,
        "stream_id": stream_id,
        "task_id": task_id,
        "status": status,
        "result": result,
        "error_message": error_message,
        "timestamp": timestamp,
    })


def from_stream(stream_id: str | bytes, fields: Mapping[Any, Any]) -> Entry:
    """Decode a raw stream entry (shared.events schema); raises on a malformed one."""
    sid = parse_stream_id(stream_id)
    event = events.decode(fields)
    text = render(
        event_id=event["event_id"], stream_id=format_stream_id(sid), task_id=event["task_id"],
        status=event["status"], result=event["result"], error_message=event.get("error_message", ""),
        timestamp=event["timestamp"],
    )
    at = datetime.fromisoformat(event["timestamp"])
    return Entry(sid, event["event_id"], event["owner_id"], event["task_id"], at, at.timestamp(), text)


def routing_keys(fields: Mapping[Any, Any]) -> tuple[int, str]:
    """Owner and task of a raw entry (bytes keys and values, as redis-py returns them), read
    without decoding the rest: enough to tell whether anyone is subscribed. Raises when either
    is missing or unreadable."""
    return int(fields[b"owner_id"]), fields[b"task_id"].decode()


def snapshot(task) -> str:
    """The message for a task's current state (a `store.TaskState`)."""
    return render(
        event_id=None, stream_id=None, task_id=str(task.task_id), status=task.status, result=task.result,
        error_message=task.error_message or "", timestamp=task.updated_at.isoformat(),
    )


def notice(kind: str, detail: str) -> str:
    """A non-update message (only `replay_gap` today)."""
    return json.dumps({"type": kind, "detail": detail})

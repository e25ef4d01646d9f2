"""When to try a failed webhook again: the receiver's Retry-After, else exponential backoff."""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from shared.backoff import MAX_BACKOFF_SECONDS, backoff_seconds

MAX_RETRY_AFTER_SECONDS = MAX_BACKOFF_SECONDS  # a receiver cannot park a delivery for days


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), capped; None
    when absent or unparseable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def next_delay(base_seconds: float, attempt: int, retry_after: float | None) -> float:
    """Delay before the attempt after failed attempt number `attempt` (1-based)."""
    if retry_after is not None:
        return retry_after
    return backoff_seconds(base_seconds, attempt)

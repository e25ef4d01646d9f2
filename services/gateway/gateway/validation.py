"""Small typed readers for JSON request bodies that collect DRF-style field errors.

Usage: `f = Fields(body)`, read each field, then `f.finish()` raises one 400 with every error.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

from flask import request

from .errors import ApiError, ValidationError

MISSING = object()
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
INT32 = 2**31 - 1
# Datetimes outside this range overflow Python's datetime when read back in another zone.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9000, 1, 1, tzinfo=timezone.utc)


def json_body() -> dict:
    """The request's JSON object; 400 for anything else (malformed JSON, arrays, wrong type,
    values Postgres cannot store)."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nesting deeper than the parser allows
        raise ApiError(400, "Malformed JSON body: nested too deeply.") from None
    if body is None:
        raw = request.get_data(cache=True)
        if raw.strip():
            raise ApiError(400, "Malformed JSON body.")
        body = {}
    if not isinstance(body, dict):
        raise ApiError(400, "Expected a JSON object.")
    check_storable(body)
    return body


def check_storable(value: Any) -> None:
    """400 for what Python's JSON accepts but Postgres rejects (jsonb and text): NUL characters
    in strings or keys, and NaN/Infinity (including overflowing numbers such as 1e400)."""
    stack = [value]
    while stack:  # iterative: the body may be nested as deep as the parser allowed
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ApiError(400, "Strings may not contain NUL (\\u0000) characters.")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ApiError(400, "Numbers must be finite (no NaN or Infinity).")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_query_args() -> None:
    """400 for a NUL character in the query string (Postgres text cannot hold one)."""
    if any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        raise ApiError(400, "Query parameters may not contain NUL characters.")


class Fields:
    def __init__(self, data: dict):
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def _fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def present(self, name: str) -> bool:
        return name in self.data

    def string(self, name, *, required=False, default="", max_len=255, min_len=0, blank=True):
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None:
            if required:
                self._fail(name, "This field is required.")
            return default
        if not isinstance(value, str):
            self._fail(name, "Not a valid string.")
            return default
        if not blank and not value.strip():
            self._fail(name, "This field may not be blank.")
        elif len(value) > max_len:
            self._fail(name, f"Ensure this field has no more than {max_len} characters.")
        elif len(value) < min_len:
            self._fail(name, f"Ensure this field has at least {min_len} characters.")
        return value

    def integer(self, name, *, default, min_value=-INT32, max_value=INT32):
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                self._fail(name, "A valid integer is required.")
                return default
        if not min_value <= value <= max_value:
            self._fail(name, f"Ensure this value is between {min_value} and {max_value}.")
            return default
        return value

    def boolean(self, name, *, default=None):
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None:
            return default
        if not isinstance(value, bool):
            self._fail(name, "Must be a valid boolean.")
            return default
        return value

    def choice(self, name, choices, *, required=False, default=None):
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None:
            if required:
                self._fail(name, "This field is required.")
            return default
        if not isinstance(value, str) or value not in choices:
            self._fail(name, f'"{value}" is not a valid choice; expected one of: {", ".join(choices)}.')
            return default
        return value

    def email(self, name, *, required=False):
        value = self.string(name, required=required, max_len=254)
        if value and not EMAIL_RE.match(value):
            self._fail(name, "Enter a valid email address.")
        return value

    def mapping(self, name, *, default=None, max_items=100, values_are_strings=False):
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None:
            return {} if default is None else default
        if not isinstance(value, dict):
            self._fail(name, "Expected an object.")
            return {}
        if len(value) > max_items:
            self._fail(name, f"Ensure this object has no more than {max_items} keys.")
        elif values_are_strings and not all(isinstance(v, str) and len(v) <= 1024 for v in value.values()):
            self._fail(name, "Every value must be a string of at most 1024 characters.")
        return value

    def string_list(self, name, *, default=None, max_items=50, max_len=100, choices=None):
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None:
            return [] if default is None else default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._fail(name, "Expected a list of strings.")
            return []
        if len(value) > max_items:
            self._fail(name, f"Ensure this list has no more than {max_items} items.")
        elif any(len(v) > max_len for v in value):
            self._fail(name, f"Each item must have at most {max_len} characters.")
        elif choices is not None and any(v not in choices for v in value):
            self._fail(name, f'Unknown value; expected items from: {", ".join(choices)}.')
        return value

    def datetime(self, name):
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None or value == "":
            return None
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            self._fail(name, "Datetime has wrong format. Use ISO 8601, e.g. 2026-01-31T12:00:00Z.")
        elif not EARLIEST <= parsed <= LATEST:
            self._fail(name, f"Datetime must be between {EARLIEST.year} and {LATEST.year}.")
            return None
        return parsed

    def fail(self, name: str, message: str) -> None:
        self._fail(name, message)

    def finish(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def parse_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

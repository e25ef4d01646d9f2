"""Request-body field specs. Each reads one JSON value with the DRF-style messages clients
already know and describes itself as JSON Schema, so validation and the published document
come from the same object and cannot drift apart.

Absent and null mean the same thing (the field's default, or "This field is required."), as
they always have for this API; the schema says so with `nullable`.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable

INT32 = 2**31 - 1
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
# Datetimes outside this range overflow Python's datetime when read back in another zone.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9000, 1, 1, tzinfo=timezone.utc)
REQUIRED = "This field is required."

# check(value, reader) -> message or None: a rule beyond the type (SSRF, uniqueness, ...),
# run only when the value was given and passed the field's own checks.
Check = Callable[[Any, Any], "str | None"]


class Invalid(Exception):
    """A value the field refuses; the message is what the client sees."""


class Field:
    """One field of a JSON body. `default` may be a factory (dict, list) for mutable values."""

    def __init__(self, *, required: bool = False, default: Any = None, check: Check | None = None, description: str = ""):
        self.required, self._default, self.check, self.description = required, default, check, description

    @property
    def documented_required(self) -> bool:
        return self.required

    def default(self) -> Any:
        return self._default() if callable(self._default) else self._default

    def absent(self, value: Any) -> bool:
        return value is None

    def parse(self, value: Any) -> Any:
        """The value to use; raises Invalid."""
        return value

    def type_schema(self) -> dict[str, Any]:
        return {}

    def schema(self) -> dict[str, Any]:
        out = self.type_schema()
        if not self.documented_required:
            out["nullable"] = True
        if self.description:
            out["description"] = self.description
        return out


class String(Field):
    def __init__(self, *, max_len: int = 255, min_len: int = 0, blank: bool = True, default: Any = "", **kw):
        super().__init__(default=default, **kw)
        self.max_len, self.min_len, self.blank = max_len, min_len, blank

    def parse(self, value):
        if not isinstance(value, str):
            raise Invalid("Not a valid string.")
        if not self.blank and not value.strip():
            raise Invalid("This field may not be blank.")
        if len(value) > self.max_len:
            raise Invalid(f"Ensure this field has no more than {self.max_len} characters.")
        if len(value) < self.min_len:
            raise Invalid(f"Ensure this field has at least {self.min_len} characters.")
        return value

    def type_schema(self):
        out = {"type": "string", "maxLength": self.max_len}
        if self.min_len:
            out["minLength"] = self.min_len
        if not self.blank:
            out["pattern"] = r"\S"
        return out


class Email(String):
    def __init__(self, **kw):
        super().__init__(max_len=254, **kw)

    def parse(self, value):
        value = super().parse(value)
        if value and not EMAIL_RE.match(value):
            raise Invalid("Enter a valid email address.")
        return value

    def type_schema(self):
        return {**super().type_schema(), "format": "email"}


class Integer(Field):
    """An integer within bounds; an integral float (3.0) counts as one, a bool does not."""

    def __init__(self, *, min_value: int = -INT32, max_value: int = INT32, **kw):
        super().__init__(**kw)
        self.min_value, self.max_value = min_value, max_value

    def parse(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid("A valid integer is required.")
        if isinstance(value, float):
            if not value.is_integer():
                raise Invalid("A valid integer is required.")
            value = int(value)
        if not self.min_value <= value <= self.max_value:
            raise Invalid(f"Ensure this value is between {self.min_value} and {self.max_value}.")
        return value

    def type_schema(self):
        return {"type": "integer", "minimum": self.min_value, "maximum": self.max_value}


class Boolean(Field):
    def parse(self, value):
        if not isinstance(value, bool):
            raise Invalid("Must be a valid boolean.")
        return value

    def type_schema(self):
        return {"type": "boolean"}


class Choice(Field):
    def __init__(self, choices: tuple[str, ...], **kw):
        super().__init__(**kw)
        self.choices = tuple(choices)

    def parse(self, value):
        if not isinstance(value, str) or value not in self.choices:
            raise Invalid(f'"{value}" is not a valid choice; expected one of: {", ".join(self.choices)}.')
        return value

    def type_schema(self):
        return {"type": "string", "enum": list(self.choices)}


class Mapping(Field):
    """A JSON object of at most `max_items` keys; `values_are_strings` for HTTP headers."""

    def __init__(self, *, max_items: int = 100, values_are_strings: bool = False, **kw):
        super().__init__(default=dict, **kw)
        self.max_items, self.values_are_strings = max_items, values_are_strings

    def parse(self, value):
        if not isinstance(value, dict):
            raise Invalid("Expected an object.")
        if len(value) > self.max_items:
            raise Invalid(f"Ensure this object has no more than {self.max_items} keys.")
        if self.values_are_strings and not all(isinstance(v, str) and len(v) <= 1024 for v in value.values()):
            raise Invalid("Every value must be a string of at most 1024 characters.")
        return value

    def type_schema(self):
        values = {"type": "string", "maxLength": 1024} if self.values_are_strings else {}
        return {"type": "object", "maxProperties": self.max_items, "additionalProperties": values}


class StringList(Field):
    def __init__(self, *, max_items: int = 50, max_len: int = 100, choices: tuple[str, ...] | None = None, **kw):
        super().__init__(default=list, **kw)
        self.max_items, self.max_len, self.choices = max_items, max_len, choices

    def parse(self, value):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Invalid("Expected a list of strings.")
        if len(value) > self.max_items:
            raise Invalid(f"Ensure this list has no more than {self.max_items} items.")
        if any(len(v) > self.max_len for v in value):
            raise Invalid(f"Each item must have at most {self.max_len} characters.")
        if self.choices is not None and any(v not in self.choices for v in value):
            raise Invalid(f'Unknown value; expected items from: {", ".join(self.choices)}.')
        return value

    def type_schema(self):
        items = {"type": "string", "maxLength": self.max_len}
        if self.choices is not None:
            items["enum"] = list(self.choices)
        return {"type": "array", "maxItems": self.max_items, "items": items}


class DateTime(Field):
    """ISO 8601; a naive value is UTC; "" means absent."""

    def absent(self, value):
        return value is None or value == ""

    def parse(self, value):
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise Invalid("Datetime has wrong format. Use ISO 8601, e.g. 2026-01-31T12:00:00Z.")
        if not EARLIEST <= parsed <= LATEST:
            raise Invalid(f"Datetime must be between {EARLIEST.year} and {LATEST.year}.")
        return parsed

    def type_schema(self):
        return {"type": "string", "format": "date-time"}


class AnyJSON(Field):
    """Any JSON value, stored as given (a task's payload)."""

    def __init__(self, **kw):
        super().__init__(default=dict, **kw)


class Token(Field):
    """A JWT, judged by the token decoder: anything that is not a live token is its 401. With
    `required`, an empty value is first a 400 "This field is required." (logout)."""

    @property
    def documented_required(self) -> bool:
        return True

    def absent(self, value):
        return not value if self.required else value is None

    def type_schema(self):
        return {"type": "string", "minLength": 1, "maxLength": 4096}


def parse_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

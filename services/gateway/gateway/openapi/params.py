"""Query-string parameter specs: each parses one parameter with the API's messages and
documents itself as an OpenAPI parameter. A `Query` reads a list endpoint's parameters in
order and stops at the first bad one (a 400 naming it), as the list endpoints always have."""
from __future__ import annotations

from typing import Any, Callable

from flask import request

from ..errors import ValidationError
from ..validation import check_query_args
from .fields import Invalid


class Param:
    """`default` may be a factory (read per request, e.g. from settings). An empty value is
    absent unless `empty_is_absent` is false (then it is parsed, and refused)."""

    empty_is_absent = True

    def __init__(self, *, default: Any = None, description: str = "", error_key: str | None = None):
        self._default, self.description, self.error_key = default, description, error_key

    def default(self) -> Any:
        return self._default() if callable(self._default) else self._default

    def parse(self, raw: str) -> Any:
        return raw

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


class Text(Param):
    """Free text, stripped and cut to `max_len` characters (never refused)."""

    def __init__(self, *, max_len: int = 255, **kw):
        super().__init__(**kw)
        self.max_len = max_len

    def parse(self, raw):
        return raw.strip()[: self.max_len] or None


class Choice(Param):
    def __init__(self, choices: tuple[str, ...], **kw):
        super().__init__(**kw)
        self.choices = tuple(choices)

    def parse(self, raw):
        if raw not in self.choices:
            raise Invalid(f"Select a valid choice: {', '.join(self.choices)}.")
        return raw

    def schema(self):
        return {"type": "string", "enum": list(self.choices)}


class Flag(Param):
    def parse(self, raw):
        if raw.lower() not in ("true", "false", "1", "0"):
            raise Invalid("Must be true or false.")
        return raw.lower() in ("true", "1")

    def schema(self):
        return {"type": "string", "enum": ["true", "false", "1", "0"]}


class WholeNumber(Param):
    """An integer, optionally bounded ("Ensure this value is between ...")."""

    def __init__(self, *, min_value: int | None = None, max_value: int | None = None, **kw):
        super().__init__(**kw)
        self.min_value, self.max_value = min_value, max_value

    def parse(self, raw):
        try:
            value = int(raw)
        except ValueError:
            raise Invalid("Enter a whole number.") from None
        if self.min_value is not None and not self.min_value <= value <= self.max_value:
            raise Invalid(f"Ensure this value is between {self.min_value} and {self.max_value}.")
        return value

    def schema(self):
        out = {"type": "integer"}
        if self.min_value is not None:
            out.update(minimum=self.min_value, maximum=self.max_value)
        return out


class Ordering(Param):
    """Comma-separated field names, each optionally prefixed with - (descending); parsed to
    [(name, descending)]. An empty value means no ordering but the tie-breaker."""

    empty_is_absent = False

    def __init__(self, fields: tuple[str, ...], **kw):
        super().__init__(**kw)
        self.fields = tuple(fields)

    def parse(self, raw):
        items = [s.strip() for s in raw.split(",")]
        parsed = [(item.lstrip("-"), item.startswith("-")) for item in items if item]
        if any(name not in self.fields for name, _ in parsed):
            raise Invalid(f"Order by one of: {', '.join(self.fields)} (prefix - for descending).")
        return parsed

    def schema(self):
        names = "|".join(self.fields)
        return {"type": "string", "pattern": rf"^\s*-?({names})\s*(,\s*-?({names})\s*)*$"}


# rule(values): a check across parameters, run when each one parsed (raises ApiError).
Rule = Callable[[dict[str, Any]], None]


class Query:
    """`errors`: the error statuses the rules raise besides 400 (documented with the query)."""

    def __init__(self, params: dict[str, Param], rules: tuple[Rule, ...] = (), errors: tuple[int, ...] = ()):
        self.params, self.rules, self.errors = params, rules, errors

    def __add__(self, other: "Query") -> "Query":
        return Query({**self.params, **other.params}, self.rules + other.rules, self.errors + other.errors)

    def read(self) -> dict[str, Any]:
        """The request's parameters (defaults filled in); 400 for the first bad one, and for
        a NUL character anywhere in the query string (Postgres text cannot hold one)."""
        check_query_args()
        values = {}
        for name, param in self.params.items():
            raw = request.args.get(name)
            if raw is None or (raw == "" and param.empty_is_absent):
                values[name] = param.default()
                continue
            try:
                values[name] = param.parse(raw)
            except Invalid as exc:
                raise ValidationError({param.error_key or name: [str(exc)]}) from None
        for rule in self.rules:
            rule(values)
        return values

    def parameters(self) -> list[dict[str, Any]]:
        """The OpenAPI parameter objects."""
        out = []
        for name, param in self.params.items():
            spec = {"name": name, "in": "query", "required": False, "schema": param.schema()}
            if param.description:
                spec["description"] = param.description
            out.append(spec)
        return out

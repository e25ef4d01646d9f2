"""A request body declared once: its fields (in the order their errors are reported) and the
rules that span several fields. `Body.read` validates; `Body.schema` documents the same thing."""
from __future__ import annotations

from typing import Any, Callable

from ..errors import ValidationError
from .fields import REQUIRED, Field, Invalid

MISSING = object()


class Reader:
    """One read of one body: the values so far, DRF-style errors per field, and the request's
    context (e.g. `allow_private_networks`, the current user) for checks that need it."""

    def __init__(self, data: dict, context: dict[str, Any]):
        self.data, self.context = data, context
        self.values: dict[str, Any] = {}
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def read(self, name: str, field: Field) -> None:
        value = self.data.get(name, MISSING)
        if value is MISSING or field.absent(value):
            if field.required:
                self.fail(name, REQUIRED)
            self.values[name] = field.default()
            return
        try:
            self.values[name] = field.parse(value)
        except Invalid as exc:
            self.fail(name, str(exc))
            self.values[name] = field.default()
            return
        problem = field.check(value, self) if field.check else None
        if problem:
            self.fail(name, problem)


# rule(reader): a check across fields (or one that normalises values), run after every field.
Rule = Callable[[Reader], None]


class Body:
    def __init__(self, fields: dict[str, Field], rules: tuple[Rule, ...] = (), description: str = ""):
        self.fields, self.rules, self.description = fields, rules, description

    def read(self, data: dict, *, partial: bool = False, **context: Any) -> dict[str, Any]:
        """The validated values (defaults filled in); one 400 listing every bad field.
        `partial` reads only the fields present (PATCH of a profile)."""
        reader = Reader(data, context)
        for name, field in self.fields.items():
            if not partial or name in data:
                reader.read(name, field)
        for rule in self.rules:
            rule(reader)
        if reader.errors:
            raise ValidationError(reader.errors)
        return reader.values

    def schema(self, partial: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "properties": {n: f.schema() for n, f in self.fields.items()}}
        required = [n for n, f in self.fields.items() if f.documented_required]
        if required and not partial:
            out["required"] = required
        if self.description:
            out["description"] = self.description
        return out

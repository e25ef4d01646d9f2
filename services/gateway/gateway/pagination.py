"""DRF-style page-number pagination: `{count, next, previous, results}`.

As in DRF, a page past the last one is a 404 `Invalid page.` (page 1 is always valid).
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app, request

from .errors import ApiError
from .openapi.fields import Invalid
from .openapi.params import Param, Query

MAX_PAGE_SIZE = 100
MAX_PAGE = 10_000_000  # keeps OFFSET within bigint; nobody pages this far


class _PageNumber(Param):
    """`page` or `page_size`: both report under `page`, with one message for both."""

    empty_is_absent = False

    def __init__(self, low: int, high: int | None, **kw):
        super().__init__(error_key="page", **kw)
        self.low, self.high = low, high

    def parse(self, raw):
        try:
            value = int(raw)
        except ValueError:
            raise Invalid("page and page_size must be integers.") from None
        if value < self.low or (self.high is not None and value > self.high):
            raise Invalid(f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}.")
        return value

    def schema(self):
        out = {"type": "integer", "minimum": self.low}
        if self.high is not None:
            out["maximum"] = self.high
        return out


def _page_exists(values: dict) -> None:
    if values["page"] > MAX_PAGE:
        raise ApiError(404, "Invalid page.")


# The parameters of every paginated list; add the list's own (`PAGE + Query({...})`).
PAGE = Query(
    {
        "page": _PageNumber(1, None, default=1, description="A page past the last one is a 404."),
        "page_size": _PageNumber(1, MAX_PAGE_SIZE, default=lambda: current_app.config["TASKQUEUE"].default_page_size),
    },
    rules=(_page_exists,),
    errors=(404,),  # a page past the last one (here, or in `envelope`)
)


def _link(page: int) -> str:
    args = request.args.to_dict()
    args["page"] = str(page)
    return f"{request.base_url}?{urlencode(args)}"


def envelope(count: int, page: int, size: int, results: list) -> dict:
    last = max(1, -(-count // size))
    if page > last:
        raise ApiError(404, "Invalid page.")
    return {
        "count": count,
        "next": _link(page + 1) if page < last else None,
        "previous": _link(page - 1) if page > 1 and count else None,
        "results": results,
    }

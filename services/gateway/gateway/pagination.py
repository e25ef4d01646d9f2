"""DRF-style page-number pagination: `{count, next, previous, results}`.

As in DRF, a page past the last one is a 404 `Invalid page.` (page 1 is always valid).
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app, request

from .errors import ApiError, ValidationError
from .validation import check_query_args

MAX_PAGE_SIZE = 100
MAX_PAGE = 10_000_000  # keeps OFFSET within bigint; nobody pages this far


def page_params() -> tuple[int, int]:
    """`page` and `page_size` of a list request (whose query string is checked here too)."""
    check_query_args()
    try:
        page = int(request.args.get("page", 1))
        size = int(request.args.get("page_size", current_app.config["TASKQUEUE"].default_page_size))
    except ValueError:
        raise ValidationError({"page": ["page and page_size must be integers."]}) from None
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationError({"page": [f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}."]})
    if page > MAX_PAGE:
        raise ApiError(404, "Invalid page.")
    return page, size


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

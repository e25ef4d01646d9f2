"""DRF-style page-number pagination: `{count, next, previous, results}`."""
from __future__ import annotations

from flask import current_app, request

from .errors import ValidationError

MAX_PAGE_SIZE = 100


def page_params() -> tuple[int, int]:
    try:
        page = int(request.args.get("page", 1))
        size = int(request.args.get("page_size", current_app.config["TASKQUEUE"].default_page_size))
    except ValueError:
        raise ValidationError({"page": ["page and page_size must be integers."]}) from None
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationError({"page": [f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}."]})
    return page, size


def _link(page: int) -> str:
    args = request.args.to_dict()
    args["page"] = str(page)
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"{request.base_url}?{query}"


def envelope(count: int, page: int, size: int, results: list) -> dict:
    last = max(1, -(-count // size))
    return {
        "count": count,
        "next": _link(page + 1) if page < last else None,
        "previous": _link(page - 1) if page > 1 and count else None,
        "results": results,
    }

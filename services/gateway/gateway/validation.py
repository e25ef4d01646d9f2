"""The request's raw JSON body and query string, refused (400) when Postgres could not store
them. The fields inside are read by the specs of gateway.openapi."""
from __future__ import annotations

import math
from typing import Any

from flask import request

from .errors import ApiError

MAX_URL_BYTES = 4096  # path plus query string; what gunicorn and common proxies accept in a request line


def refuse_long_urls() -> None:
    """414 before any work for a URL over MAX_URL_BYTES: no filter or search needs more, and the
    app must not depend on the HTTP server in front of it to bound what it parses."""
    if len(request.path) + len(request.query_string) > MAX_URL_BYTES:
        raise ApiError(414, "Request URL too long.")


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
    and lone UTF-16 surrogates (e.g. "\\ud800", not valid UTF-8) in strings or keys, and
    NaN/Infinity (including overflowing numbers such as 1e400)."""
    stack = [value]
    while stack:  # iterative: the body may be nested as deep as the parser allowed
        item = stack.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ApiError(400, "Numbers must be finite (no NaN or Infinity).")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_text(text: str) -> None:
    """400 for a string Postgres text/jsonb cannot hold (see check_storable)."""
    if "\x00" in text:
        raise ApiError(400, "Strings may not contain NUL (\\u0000) characters.")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "Strings may not contain unpaired surrogates (\\ud800-\\udfff).") from None


def check_query_args() -> None:
    """400 for a NUL character in the query string (Postgres text cannot hold one)."""
    if any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        raise ApiError(400, "Query parameters may not contain NUL characters.")

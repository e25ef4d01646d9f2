"""http_request: GET a user-supplied URL and report its status code and body size.

The URL is chosen by an API user and fetched from inside our network, so:
- shared.netguard checks it, and every redirect target, before any request (SSRF);
- the connection itself re-resolves and re-checks the address it dials (shared.safe_http), so
  a DNS answer that changes after the check (rebinding) is refused too;
- connect/read timeouts never exceed the task's remaining time (max 30 s), the body is read
  in small pieces with a deadline/revoke check between them, and counting stops at 10 MB.
As in the reference, a final non-2xx status fails the task; redirects are followed (max 5).
"""
from __future__ import annotations

import math
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3

from shared import safe_http
from shared.netguard import UnsafeURL, check_url
from worker.context import TaskContext, TaskError

MAX_TIMEOUT_S = 30.0
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024
HEADERS = {"User-Agent": "TaskQueue-worker", "Accept-Encoding": "identity"}


def _parse(payload: Any) -> tuple[str, float]:
    if not isinstance(payload, dict):
        raise TaskError("http_request payload must be an object")
    url = payload.get("url")
    if not url:
        raise TaskError("URL is required")
    if not isinstance(url, str):
        raise TaskError("'url' must be a string")
    method = payload.get("method", "GET")
    if not isinstance(method, str) or method.upper() != "GET":
        raise TaskError("'method' must be GET (the only method http_request supports)")
    timeout = payload.get("timeout", MAX_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise TaskError("'timeout' must be a positive number of seconds")
    return url, min(float(timeout), MAX_TIMEOUT_S)


def _fetch(session: requests.Session, url: str, allow_private: bool, timeout: float, ctx: TaskContext) -> dict:
    original, redirects = url, 0
    while True:
        check_url(url, allow_private)
        ctx.check()
        wait = max(0.01, min(timeout, ctx.remaining()))
        resp = session.get(url, headers=HEADERS, timeout=(wait, wait), stream=True, allow_redirects=False)
        with resp:
            target = session.get_redirect_target(resp)
            if target is None:
                if not 200 <= resp.status_code < 300:
                    raise TaskError(f"HTTP request failed: HTTP {resp.status_code} {resp.reason or ''}".rstrip())
                received = 0
                while received < MAX_BODY_BYTES:
                    ctx.check()
                    chunk = resp.raw.read1(min(CHUNK_BYTES, MAX_BODY_BYTES - received), decode_content=False)
                    if not chunk:
                        break
                    received += len(chunk)
                result = {"url": original, "status_code": resp.status_code, "content_length": received}
                if received >= MAX_BODY_BYTES and resp.raw.read1(1, decode_content=False):
                    result["truncated"] = True  # content_length counts only the first MAX_BODY_BYTES
                return result
        redirects += 1
        if redirects > MAX_REDIRECTS:
            raise TaskError(f"HTTP request failed: more than {MAX_REDIRECTS} redirects")
        url = urljoin(resp.url, target)


def run(payload: Any, ctx: TaskContext) -> dict:
    url, timeout = _parse(payload)
    allow_private = bool(getattr(ctx, "allow_private_networks", False))
    try:
        with safe_http.session(allow_private) as session:
            return _fetch(session, url, allow_private, timeout, ctx)
    except UnsafeURL as exc:
        raise TaskError(f"URL refused: {exc}") from None
    except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
        raise TaskError(f"HTTP request timed out: {exc}") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise TaskError(f"HTTP request failed: {exc}") from None

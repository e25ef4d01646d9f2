"""One webhook HTTP attempt: SSRF-checked, signed, time-bounded, response body truncated.

The URL is checked again at send time (it may resolve elsewhere than at task creation) and the
connection itself only dials allowed addresses (shared.safe_http). A refused URL is final: no
retry can make it acceptable. Redirects are not followed (a 3xx is a failed attempt), so a
receiver cannot bounce our signed POST to another host.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
import urllib3

from shared import safe_http
from shared.netguard import UnresolvableHost, UnsafeURL, check_url
from shared.settings import Settings

from . import signing
from .retry import parse_retry_after
from .store import Claimed

MAX_RESPONSE_BYTES = 4096
CHUNK_BYTES = 1024


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str
    response_body: str
    duration: float
    retry_after: float | None = None
    refused: bool = False  # the URL is not allowed: never retry

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _text(raw: bytes | str) -> str:
    """Storable text: Postgres text columns cannot hold NUL characters."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text.replace("\x00", "\ufffd")


class Sender:
    def __init__(self, settings: Settings):
        self.allow_private = settings.webhook_allow_private_networks
        self.timeout = (settings.webhook_connect_timeout, settings.webhook_read_timeout)
        self._local = threading.local()  # one session (and keep-alive pool) per sending thread

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = safe_http.session(self.allow_private)
        return session

    def send(self, delivery: Claimed) -> AttemptResult:
        started = time.monotonic()

        def result(code=None, error="", body=b"", retry_after=None, refused=False) -> AttemptResult:
            return AttemptResult(code, _text(error), _text(body), time.monotonic() - started, retry_after, refused)

        try:
            check_url(delivery.url, self.allow_private)
            headers = signing.headers_for_send(delivery.headers, str(delivery.id), delivery.body, delivery.secret)
            with self._session().post(
                delivery.url, data=delivery.body.encode(), headers=headers, timeout=self.timeout,
                allow_redirects=False, stream=True,
            ) as response:
                body = self._read_some(response, started + sum(self.timeout))
                code = response.status_code
                if 200 <= code < 300:
                    return result(code, body=body)
                return result(code, f"Non-2xx response: {code}", body, parse_retry_after(response.headers.get("Retry-After")))
        except UnresolvableHost as exc:  # DNS may recover: retry
            return result(error=f"Callback host did not resolve: {exc}")
        except UnsafeURL as exc:
            return result(error=f"Callback URL refused: {exc}", refused=True)
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
            return result(error=f"Request timed out: {exc}")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            return result(error=f"Request failed: {exc}")

    @staticmethod
    def _read_some(response: requests.Response, deadline: float) -> bytes:
        """Up to MAX_RESPONSE_BYTES of the body, reading no later than `deadline`.

        A body read to its end lets the connection go back to the pool for the next send.
        """
        received = b""
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                received += chunk
                if len(received) > MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                    break
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            pass  # the status code already decided the attempt; the body is only informative
        return received[:MAX_RESPONSE_BYTES]

"""A `requests` session that only dials addresses the SSRF guard allows, checked at connect time.

`shared.netguard.check_url` vets a URL before a request, but a DNS name can resolve to a
public address for that check and to 127.0.0.1 a moment later (DNS rebinding). The
connections made here re-resolve the host and re-check every address they dial, so what is
refused before the request is refused at the socket too. Used by the worker's `http_request`
task type and by the webhook dispatcher.
"""
from __future__ import annotations

from functools import cache

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .netguard import resolve_checked


class _GuardedConnectionMixin:
    """Dial only addresses that pass the SSRF check, resolved at connect time."""

    allow_private = False

    def _new_conn(self):
        host, error = self._dns_host, None
        for ip in resolve_checked(host, self.port, allow_private=self.allow_private):
            self._dns_host = ip  # TLS still uses self.host for SNI and certificate checks
            try:
                return super()._new_conn()
            except (NewConnectionError, ConnectTimeoutError) as exc:
                error = exc
            finally:
                self._dns_host = host
        raise error


@cache
def _pool_classes(allow_private: bool) -> dict:
    """Pool classes whose connections apply the guard with this `allow_private` policy."""
    flag = {"allow_private": allow_private}
    http_conn = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), flag)
    https_conn = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), flag)
    return {
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


class GuardedAdapter(HTTPAdapter):
    __attrs__ = [*HTTPAdapter.__attrs__, "allow_private"]  # kept when requests pickles adapters

    def __init__(self, allow_private: bool = False, **kwargs):
        self.allow_private = allow_private
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.allow_private)


def session(allow_private: bool) -> requests.Session:
    """A session for user-chosen URLs: guarded connections, no proxies or .netrc from the
    environment (we dial directly, so the guard sees the real destination).

    With `allow_private` (local development) loopback and private addresses pass, cloud
    metadata addresses never do.
    """
    s = requests.Session()
    s.trust_env = False
    adapter = GuardedAdapter(allow_private)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s

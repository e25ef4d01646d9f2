"""Rate limits (the `limits` package, fixed windows), counted in Redis so every gateway replica
shares them.

- `RATELIMIT_DEFAULT` (e.g. `100000/minute`): one budget per caller over every endpoint; the
  caller is the user of a valid access token, else the client IP.
- `RATELIMIT_AUTH` (e.g. `10/minute`): per client IP on `/auth/token/`, on `/auth/register/` and
  on the admin login form (brute force, mass sign-up), on top of the default budget; a bearer
  token cannot lift it.
- The client IP is the TCP peer, unless `RATELIMIT_TRUSTED_PROXIES` = N > 0 proxies sit in front
  of the gateway: then it is the Nth address from the right of `X-Forwarded-For` (werkzeug's
  ProxyFix), so a client cannot pick its own IP by sending that header.
- `/healthz`, `/readyz` and `/metrics` are never limited.
- Over the limit: 429 `{"error", "detail"}` with `Retry-After`; every limited response carries
  `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (epoch seconds).
- Fail open: when Redis is unreachable each process counts in memory (same limits, per process)
  and tries Redis again every FALLBACK_SECONDS; an error inside the limiter never fails a request.

The check is two hooks (`RateLimiter`) rather than flask-limiter: that extension re-parses its
limit strings and resolves per-route/blueprint scopes on every request, about a tenth of the
gateway's CPU on the task-submission hot path; here the limits are parsed once at startup.

Fixed windows; keys are `taskqueue:ratelimit:LIMITER/<caller>/<scope>/<limit>` and expire with
their window. Large limits are counted locally and synced to Redis every 50 ms, small ones (the
auth limits) at every hit: see `SharedCounterStorage`.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from typing import Callable

from flask import Flask, Response, g, make_response, request
from flask_jwt_extended import decode_token
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.settings import Settings

from .errors import error_response

log = logging.getLogger(__name__)
KEY_PREFIX = "taskqueue:ratelimit"
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Password-taking endpoints limited per client IP by RATELIMIT_AUTH (method None: all methods).
AUTH_ENDPOINTS = {"auth.token": None, "auth.register": None, "admin.login": ["POST"]}
STORAGE_TIMEOUT_SECONDS = 1.0  # a Redis that hangs costs a request at most this before falling back
FALLBACK_SECONDS = 5.0  # after a storage error, count in memory this long before trying Redis again
MAX_TOKEN_CHARS = 4096


# INCRBY + EXPIRE as limits' own script does, also returning the TTL (what the headers need).
INCR_WINDOW_LUA = """
local amount = tonumber(ARGV[2])
local current = redis.call("incrby", KEYS[1], amount)
if current == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""


class _Window:
    """One fixed window as this process sees it: Redis's last total, plus its own hits not yet
    sent (`pending`) or being sent (`sending`)."""

    __slots__ = ("count", "pending", "sending", "expiry", "resets_at")

    def __init__(self, count: int, expiry: int, ttl: int):
        self.count, self.pending, self.sending, self.expiry = count, 0, 0, expiry
        self.resets_at = time.monotonic() + max(ttl, 0)

    @property
    def seen(self) -> int:
        return self.count + self.sending + self.pending


class SharedCounterStorage(RedisStorage):
    """limits' Redis storage (fixed windows), without a Redis round trip on most requests.

    A blocking round trip per request is what a rate limit costs a threaded gateway most: each one
    makes the request thread wait for the GIL again. So each process keeps, per window key, the
    count Redis last reported plus the hits it has not sent yet; a background thread sends those
    every SYNC_SECONDS in one pipeline and learns everyone's total back.
    - A window's first hit in this process, and every hit on a limit below EXACT_BELOW per window
      (the auth limits), go to Redis at once: small limits are exact across every replica.
    - A large limit (the per-user default) may be overshot by what each process lets through on
      a stale total: about SYNC_SECONDS of its traffic for the caller.
    - The X-RateLimit-* headers are answered from the same state, without asking Redis again.
    If Redis is unreachable a request's own round trip fails and `RateLimiter` falls back to memory.
    """

    # limits registers every storage class under its schemes: a scheme of our own keeps this
    # class from replacing limits' plain Redis storage for "redis://" URLs.
    STORAGE_SCHEME = ["taskqueue+redis", "taskqueue+rediss"]
    SYNC_SECONDS = 0.05
    EXACT_BELOW = 1000
    SWEEP_SECONDS = 10.0  # how often windows that have ended are forgotten

    def __init__(self, uri: str, **options) -> None:
        """`uri`: the Redis URL the counters live in."""
        self._url = uri
        self._client_options = {k: v for k, v in options.items() if k not in ("key_prefix", "wrap_exceptions")}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._unsent: set[str] = set()  # keys with hits not yet sent to Redis
        self._swept = time.monotonic()
        self._syncer: tuple[int, threading.Thread] | None = None
        super().__init__(self._url, **options)

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_incr_window = self.get_connection().register_script(INCR_WINDOW_LUA)

    # -- what FixedWindowRateLimiter calls
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        if not self._exact(key):
            with self._lock:
                window = self._windows.get(key)
                if window is not None and window.resets_at > time.monotonic():
                    window.pending += amount
                    self._unsent.add(key)
                    self._ensure_syncer()
                    return window.seen
        return self._incr_now(key, expiry, amount)

    def get(self, key: str) -> int:
        window = self._live(key)
        return window.seen if window is not None else super().get(key)

    def get_expiry(self, key: str) -> float:
        window = self._live(key)
        if window is None:
            return super().get_expiry(key)
        return time.time() + max(window.resets_at - time.monotonic(), 0)

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)
        super().clear(key)

    # -- internals
    @classmethod
    def _exact(cls, key: str) -> bool:
        """Keys end with /<amount>/<multiples>/<granularity> (limits' RateLimitItem.key_for)."""
        try:
            return int(key.rsplit("/", 3)[1]) < cls.EXACT_BELOW
        except (IndexError, ValueError):
            return True

    def _live(self, key: str) -> _Window | None:
        window = self._windows.get(key)
        return window if window is not None and window.resets_at > time.monotonic() else None

    def _incr_now(self, key: str, expiry: int, amount: int) -> int:
        count, ttl = self.lua_incr_window([self.prefixed_key(key)], [expiry, amount], client=self._thread_client())
        with self._lock:
            window = self._windows.get(key)
            if window is None or window.resets_at <= time.monotonic():
                window = self._windows[key] = _Window(int(count), expiry, int(ttl))
            else:
                window.count = int(count)
            return window.seen

    def _thread_client(self):
        """A client holding one connection, per thread (the server's threads are long-lived): a
        request's round trip skips the shared pool's locking and bookkeeping."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.dependency.from_url(
                self._url, single_connection_client=True, **self._client_options
            )
        return client

    def _ensure_syncer(self) -> None:  # under self._lock
        pid = os.getpid()  # a forked server process starts its own thread
        if self._syncer is None or self._syncer[0] != pid or not self._syncer[1].is_alive():
            thread = threading.Thread(target=self._sync_forever, name="ratelimit-sync", daemon=True)
            self._syncer = (pid, thread)
            thread.start()

    def _sync_forever(self) -> None:
        while True:
            time.sleep(self.SYNC_SECONDS)
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - Redis away: the hits are kept and sent next time
                log.debug("rate limit sync failed", exc_info=True)

    def sync(self) -> None:
        """Send the hits counted locally, and learn every window's total back."""
        now = time.monotonic()
        with self._lock:
            unsent, self._unsent = self._unsent, set()
            live = [(key, w) for key, w in ((k, self._windows.get(k)) for k in unsent)
                    if w is not None and w.pending and w.resets_at > now]  # hits of an ended window are moot
            batch = [(key, w.expiry, w.pending) for key, w in live]
            for _, w in live:
                w.sending, w.pending = w.pending, 0
            if now - self._swept > self.SWEEP_SECONDS:
                self._forget_expired()
                self._swept = now
        if not batch:
            return
        pipe = self.get_connection().pipeline(transaction=False)
        for key, expiry, pending in batch:
            self.lua_incr_window([self.prefixed_key(key)], [expiry, pending], client=pipe)
        try:
            results = pipe.execute()
        except Exception:
            with self._lock:  # not sent: send them next time
                for key, _, _ in batch:
                    window = self._windows.get(key)
                    if window is not None:
                        window.sending, window.pending = 0, window.pending + window.sending
                        self._unsent.add(key)
            raise
        with self._lock:
            for (key, _, _), (count, ttl) in zip(batch, results):
                window = self._windows.get(key)
                if window is not None:  # Redis's total now includes what was being sent
                    window.count, window.sending = int(count), 0
                    window.resets_at = time.monotonic() + max(int(ttl), 0)

    def _forget_expired(self) -> None:  # under self._lock
        now = time.monotonic()
        for key in [k for k, w in self._windows.items() if w.resets_at <= now]:
            del self._windows[key]
            self._unsent.discard(key)


def client_ip() -> str:
    """The client address (after ProxyFix when proxies are trusted)."""
    return f"ip:{request.remote_addr or 'unknown'}"


def make_caller_key(cache_size: int = 2048):
    """The default limit's key: `user:<id>` for a request with a valid access token, else
    `ip:<client address>`.

    The token's signature and expiry are checked here (a forged token cannot spend someone
    else's budget), but a missing or bad one is not an error at this point: the view's own
    authentication answers it. Verified tokens are remembered per process (a client sends the
    same access token for its whole lifetime), so the hot path does not pay for decoding the
    JWT twice; a logged-out token still counts against its user, which only spends that
    user's own budget.
    """

    @functools.lru_cache(maxsize=cache_size)
    def subject(token: str) -> tuple[str, float] | None:
        try:
            claims = decode_token(token)
        except Exception:  # noqa: BLE001 - expired, forged, malformed: counted by IP
            return None
        if claims.get("type") != "access" or not claims.get("sub"):
            return None
        return str(claims["sub"]), float(claims.get("exp") or 0)

    def caller_key() -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token and len(token) <= MAX_TOKEN_CHARS:
            known = subject(token)
            if known is not None and known[1] > time.time():
                return f"user:{known[0]}"
        return client_ip()

    return caller_key


class RateLimiter:
    """The default budget per caller on every request, plus the auth budget per client IP on
    AUTH_ENDPOINTS. A request spends each budget in turn and is refused (429) by the first one
    it exceeds; the response's X-RateLimit-* headers describe the budget closest to running out."""

    def __init__(self, storage: RedisStorage, default: list[RateLimitItem], auth: list[RateLimitItem],
                 caller_key: Callable[[], str]):
        self.shared = FixedWindowRateLimiter(storage)
        self.memory = FixedWindowRateLimiter(MemoryStorage())
        self.default, self.auth, self.caller_key = default, auth, caller_key
        self._shared_after = 0.0  # monotonic time from which Redis is tried again

    def before_request(self) -> Response | None:
        if request.path in EXEMPT_PATHS:
            return None
        try:
            return self._spend(self._budgets())
        except Exception:  # noqa: BLE001 - a limiter bug must never fail a request
            log.exception("rate limit check failed; request let through")
            return None

    def _budgets(self) -> list[tuple[RateLimitItem, str, str]]:
        budgets = []
        endpoint = request.endpoint
        if endpoint in AUTH_ENDPOINTS:
            methods = AUTH_ENDPOINTS[endpoint]
            if methods is None or request.method in methods:
                budgets += [(item, client_ip(), endpoint) for item in self.auth]
        caller = self.caller_key()
        return budgets + [(item, caller, "global") for item in self.default]

    def _spend(self, budgets) -> Response | None:
        tightest = None
        for item, key, scope in budgets:
            allowed, stats = self._hit(item, key, scope)
            if tightest is None or stats.remaining <= tightest[1].remaining:
                tightest = (item, stats)
            if not allowed:
                g.rate_limit = (item, stats)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                response = make_response(error_response(429, f"Request was throttled. Expected available in {wait} seconds."))
                response.headers["Retry-After"] = str(wait)
                return response
        g.rate_limit = tightest
        return None

    def _hit(self, item: RateLimitItem, key: str, scope: str):
        """Spend one hit on the shared counters, or in memory while Redis is failing."""
        if time.monotonic() >= self._shared_after:
            try:
                return self.shared.hit(item, key, scope), self.shared.get_window_stats(item, key, scope)
            except Exception:  # noqa: BLE001 - Redis away (or hanging): fail open, counted locally
                log.warning("rate limit storage unreachable; counting in memory for %ss", FALLBACK_SECONDS, exc_info=True)
                self._shared_after = time.monotonic() + FALLBACK_SECONDS
        return self.memory.hit(item, key, scope), self.memory.get_window_stats(item, key, scope)

    @staticmethod
    def after_request(response: Response) -> Response:
        spent = g.get("rate_limit")
        if spent is not None:
            item, stats = spent
            response.headers["X-RateLimit-Limit"] = str(item.amount)
            response.headers["X-RateLimit-Remaining"] = str(stats.remaining)
            response.headers["X-RateLimit-Reset"] = str(int(stats.reset_time))
        return response


def init_app(app: Flask, settings: Settings) -> RateLimiter | None:
    """Apply the trusted-proxy rule and, when enabled, the limits (malformed ones fail here)."""
    if settings.ratelimit_trusted_proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.ratelimit_trusted_proxies)
    if not settings.ratelimit_enabled:
        return None
    default, auth = parse_many(settings.ratelimit_default), parse_many(settings.ratelimit_auth)  # ValueError if malformed
    for value, items in ((settings.ratelimit_default, default), (settings.ratelimit_auth, auth)):
        if not items:
            raise ValueError(f"empty rate limit: {value!r}")
    storage = SharedCounterStorage(
        settings.ratelimit_storage_url or settings.redis_url,
        key_prefix=KEY_PREFIX,
        socket_connect_timeout=STORAGE_TIMEOUT_SECONDS,
        socket_timeout=STORAGE_TIMEOUT_SECONDS,
    )
    limiter = RateLimiter(storage, default, auth, make_caller_key())
    app.before_request(limiter.before_request)
    app.after_request(limiter.after_request)
    return limiter

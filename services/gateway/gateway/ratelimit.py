"""Rate limits (flask-limiter), counted in Redis so every gateway replica shares them.

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
  and goes back to Redis once it answers again; an error inside the limiter never fails a request.

Fixed windows; keys are `taskqueue:ratelimit:LIMITER/<caller>/<scope>/<limit>` and expire with
their window. Large limits are counted locally and synced to Redis every 50 ms, small ones (the
auth limits) at every hit: see `SharedCounterStorage`.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time

from flask import Flask, Response, request
from flask_jwt_extended import decode_token
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse_many
from limits.storage import RedisStorage
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.settings import Settings

from .errors import error_response

log = logging.getLogger(__name__)
KEY_PREFIX = "taskqueue:ratelimit"
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Password-taking endpoints limited per client IP by RATELIMIT_AUTH (method None: all methods).
AUTH_ENDPOINTS = {"auth.token": None, "auth.register": None, "admin.login": ["POST"]}
STORAGE_TIMEOUT_SECONDS = 1.0  # a Redis that hangs costs a request at most this before falling back
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
    If Redis is unreachable a request's own round trip fails and flask-limiter falls back to memory.
    """

    STORAGE_SCHEME = ["taskqueue+redis", "taskqueue+rediss"]
    SYNC_SECONDS = 0.05
    EXACT_BELOW = 1000
    SWEEP_SECONDS = 10.0  # how often windows that have ended are forgotten

    def __init__(self, uri: str, **options) -> None:
        self._url = uri.removeprefix("taskqueue+")
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
        """A client holding one connection, per thread (gunicorn's threads live as long as the
        process): a request's round trip skips the shared pool's locking and bookkeeping."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.dependency.from_url(
                self._url, single_connection_client=True, **self._client_options
            )
        return client

    def _ensure_syncer(self) -> None:  # under self._lock
        pid = os.getpid()  # a forked process (gunicorn worker) starts its own thread
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
    same access token for its whole lifetime; access tokens are never revoked early), so the
    hot path does not pay for decoding the JWT twice.
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


def init_app(app: Flask, settings: Settings) -> Limiter | None:
    """Apply the trusted-proxy rule and, when enabled, the limits. Call after registering the
    blueprints (the auth views are wrapped)."""
    if settings.ratelimit_trusted_proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.ratelimit_trusted_proxies)
    if not settings.ratelimit_enabled:
        return None
    for value in (settings.ratelimit_default, settings.ratelimit_auth):
        if not parse_many(value):  # raises ValueError on a malformed limit: fail at startup
            raise ValueError(f"empty rate limit: {value!r}")
    # Registered before the limiter's own after_request hook, so it runs after it (Flask runs them
    # in reverse): flask-limiter puts Retry-After on every response; only a 429 means it.
    app.after_request(_retry_after_only_when_limited)
    limiter = Limiter(
        make_caller_key(),
        app=app,
        application_limits=[settings.ratelimit_default],
        storage_uri="taskqueue+" + (settings.ratelimit_storage_url or settings.redis_url),
        storage_options={
            "key_prefix": KEY_PREFIX,
            "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS,
            "socket_timeout": STORAGE_TIMEOUT_SECONDS,
        },
        strategy="fixed-window",
        headers_enabled=True,
        retry_after="delta-seconds",
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    # Its INFO line per rejected request would flood the logs under attack; 429s are counted in
    # taskqueue_gateway_api_errors_total. Storage fallback and recovery are still logged.
    logging.getLogger("flask-limiter").setLevel(logging.WARNING)
    limiter.request_filter(lambda: request.path in EXEMPT_PATHS)
    for endpoint, methods in AUTH_ENDPOINTS.items():
        if endpoint in app.view_functions:
            limit = limiter.limit(settings.ratelimit_auth, key_func=client_ip, methods=methods)
            app.view_functions[endpoint] = limit(app.view_functions[endpoint])

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(_exc: RateLimitExceeded):
        message = "Request was throttled."
        try:
            current = limiter.current_limit
            if current is not None:
                message += f" Expected available in {max(1, int(current.reset_at - time.time()))} seconds."
        except Exception:  # noqa: BLE001 - the storage went away meanwhile: the short message will do
            pass
        return error_response(429, message)

    return limiter


def _retry_after_only_when_limited(response: Response) -> Response:
    if response.status_code != 429:
        response.headers.pop("Retry-After", None)
    return response

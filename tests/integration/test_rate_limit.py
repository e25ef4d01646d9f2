"""Rate limits (gateway.ratelimit, counters in the test Redis): the gateway app built with small limits.

Each test sends from client addresses of its own (REMOTE_ADDR), so counters never carry over
from one test to the next; users come from the session app (no small limits there).
"""
from __future__ import annotations

import dataclasses
import itertools
import time
import uuid

import pytest
from flask import Flask
from integration_helpers import API, assert_error, drain

DEFAULT, AUTH = 5, 3  # requests per minute in the apps below
HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
_hosts = itertools.count(1)


def fresh_ip() -> str:
    """A client address no other test (or earlier run within the minute) has used."""
    n, run = next(_hosts), uuid.uuid4().int
    return f"10.{run % 250 + 1}.{(run >> 8) % 250 + 1}.{n % 250 + 1}"


def from_ip(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}


@pytest.fixture(scope="module")
def make_app(settings, engine, clean_slate):
    """`make_app(**settings overrides)` -> a gateway app with small limits (5/min, 3/min on auth)."""
    from gateway.app import create_app

    apps = []

    def _make(**overrides):
        values = {"ratelimit_enabled": True, "ratelimit_default": f"{DEFAULT}/minute",
                  "ratelimit_auth": f"{AUTH}/minute", "ratelimit_trusted_proxies": 0, **overrides}
        application = create_app(dataclasses.replace(settings, **values))
        apps.append(application)
        return application

    yield _make
    from gateway.extensions import db

    for application in apps:  # give their database connections back
        drain(application)
        with application.app_context():
            db.engine.dispose()
        application.extensions["taskqueue"].autocommit.dispose()


@pytest.fixture(scope="module")
def limited(make_app):
    return make_app().test_client()


def profile(client, user, ip):
    return client.get(f"{API}/auth/profile/", headers=user.headers, **from_ip(ip))


def verify(client, token, ip, **extra):
    """An anonymous call (no Authorization header) that succeeds: POST /auth/token/verify/."""
    return client.post(f"{API}/auth/token/verify/", json={"token": token}, **from_ip(ip), **extra)


def test_over_the_limit_429_json_with_retry_after_and_ratelimit_headers(limited, make_user):
    user, ip = make_user(), fresh_ip()
    for n in range(DEFAULT):
        response = profile(limited, user, ip)
        assert response.status_code == 200, response.get_json()
        assert response.headers["X-RateLimit-Limit"] == str(DEFAULT)
        assert response.headers["X-RateLimit-Remaining"] == str(DEFAULT - 1 - n)
        reset = int(response.headers["X-RateLimit-Reset"])
        assert time.time() - 1 <= reset <= time.time() + 61
        assert "Retry-After" not in response.headers  # only a 429 says when to come back
    response = profile(limited, user, ip)
    body = assert_error(response, 429)
    assert body["detail"] == body["error"]
    assert body["error"].startswith("Request was throttled. Expected available in ")
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    assert response.headers["X-RateLimit-Limit"] == str(DEFAULT)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= time.time()


def test_each_user_has_a_budget_of_its_own(limited, make_user):
    first, second, ip = make_user(), make_user(), fresh_ip()  # same address: keyed by user, not IP
    assert all(profile(limited, first, ip).status_code == 200 for _ in range(DEFAULT))
    assert_error(profile(limited, first, ip), 429)
    assert profile(limited, second, ip).status_code == 200
    assert profile(limited, second, ip).headers["X-RateLimit-Remaining"] == str(DEFAULT - 2)
    assert_error(profile(limited, first, fresh_ip()), 429)  # a new address does not reset a user


def test_anonymous_calls_are_limited_per_client_ip(limited, make_user):
    token, ip, other = make_user().access, fresh_ip(), fresh_ip()
    assert all(verify(limited, token, ip).status_code == 200 for _ in range(DEFAULT))
    assert_error(verify(limited, token, ip), 429)
    assert verify(limited, token, other).status_code == 200


def test_invalid_or_forged_tokens_count_against_the_ip(limited, make_user, settings):
    """Only a valid access token selects the user's budget: a forged one cannot spend it."""
    import jwt

    user, ip = make_user(), fresh_ip()
    claims = {"sub": str(user.id), "type": "access", "exp": int(time.time()) + 600}
    forged = jwt.encode(claims, "not-the-gateway-key-but-long-enough-for-hs256")
    for token in ("garbage", forged, user.refresh, forged, "x" * 5000):
        assert_error(limited.get(f"{API}/tasks/", headers={"Authorization": f"Bearer {token}"}, **from_ip(ip)), 401)
    assert_error(limited.get(f"{API}/tasks/", headers={"Authorization": f"Bearer {forged}"}, **from_ip(ip)), 429)
    response = profile(limited, user, ip)  # the user's own budget is untouched
    assert response.status_code == 200 and response.headers["X-RateLimit-Remaining"] == str(DEFAULT - 1)


def test_x_forwarded_for_is_ignored_without_trusted_proxies(limited, make_user):
    token, ip = make_user().access, fresh_ip()
    for _ in range(DEFAULT):
        assert verify(limited, token, ip, headers={"X-Forwarded-For": fresh_ip()}).status_code == 200
    assert_error(verify(limited, token, ip, headers={"X-Forwarded-For": fresh_ip()}), 429)


def test_x_forwarded_for_is_honoured_behind_one_trusted_proxy(make_app, make_user):
    client = make_app(ratelimit_trusted_proxies=1).test_client()
    token, proxy, client_ip, other_client = make_user().access, fresh_ip(), fresh_ip(), fresh_ip()
    for n in range(DEFAULT):
        # What the client put in the header itself (left of the proxy's entry) is not trusted.
        spoofed = {"X-Forwarded-For": f"{fresh_ip()}, {client_ip}"}
        assert verify(client, token, proxy, headers=spoofed).status_code == 200, n
    assert_error(verify(client, token, proxy, headers={"X-Forwarded-For": client_ip}), 429)
    assert verify(client, token, proxy, headers={"X-Forwarded-For": other_client}).status_code == 200


def test_token_and_register_have_a_stricter_per_ip_limit(limited, make_user):
    user, ip = make_user(), fresh_ip()
    login = {"username": user.username, "password": "wrong-password"}
    for _ in range(AUTH):
        assert_error(limited.post(f"{API}/auth/token/", json=login, **from_ip(ip)), 401)
    assert_error(limited.post(f"{API}/auth/token/", json={**login, "password": user.password}, **from_ip(ip)), 429)
    # A valid bearer token does not lift the per-IP login limit.
    assert_error(limited.post(f"{API}/auth/token/", json=login, headers=user.headers, **from_ip(ip)), 429)
    # Another address may log in; the default limit of the first one is not used up.
    response = limited.post(f"{API}/auth/token/", json={**login, "password": user.password}, **from_ip(fresh_ip()))
    assert response.status_code == 200 and response.headers["X-RateLimit-Limit"] == str(AUTH)

    ip = fresh_ip()
    for _ in range(AUTH):
        assert_error(limited.post(f"{API}/auth/register/", json={}, **from_ip(ip)), 400)
    assert_error(limited.post(f"{API}/auth/register/", json={}, **from_ip(ip)), 429)
    assert_error(limited.post(f"{API}/auth/register/", json={}, **from_ip(fresh_ip())), 400)


def test_probes_and_metrics_are_exempt(limited):
    ip = fresh_ip()
    for _ in range(DEFAULT + 3):
        for path in ("/healthz", "/readyz", "/metrics"):
            response = limited.get(path, **from_ip(ip))
            assert response.status_code == 200, path
            assert not any(h in response.headers for h in HEADERS), path


def test_disabled_means_no_limits_and_no_headers(make_app, make_user):
    client, user, ip = make_app(ratelimit_enabled=False).test_client(), make_user(), fresh_ip()
    for _ in range(DEFAULT * 3):
        response = profile(client, user, ip)
        assert response.status_code == 200
        assert not any(h in response.headers for h in HEADERS)


def test_redis_down_fails_open(make_app, make_user):
    """Counters cannot reach Redis: requests are still answered, counted in memory per process."""
    client = make_app(ratelimit_storage_url="redis://127.0.0.1:1/0").test_client()
    user, ip = make_user(), fresh_ip()
    started = time.monotonic()
    for _ in range(DEFAULT):
        response = profile(client, user, ip)
        assert response.status_code == 200, response.get_json()
    assert time.monotonic() - started < 5
    assert_error(profile(client, user, ip), 429)  # the limits still hold, per process
    assert profile(client, make_user(), ip).status_code == 200


def test_counters_are_shared_through_redis(make_app, make_user):
    """Two gateway replicas (two apps) spend the same budget."""
    first, second = make_app().test_client(), make_app().test_client()
    user, ip = make_user(), fresh_ip()
    for n in range(DEFAULT):
        assert profile(first if n % 2 else second, user, ip).status_code == 200
    assert_error(profile(first, user, ip), 429)
    assert_error(profile(second, user, ip), 429)


def test_malformed_limits_fail_at_startup(settings):
    from gateway import ratelimit

    for bad in ("lots", "5/fortnight", ""):
        with pytest.raises(ValueError):
            ratelimit.init_app(Flask(__name__), dataclasses.replace(settings, ratelimit_default=bad))


def test_admin_login_form_has_the_auth_limit_on_post_only(make_app):
    import re

    limited, ip = make_app(ratelimit_default="100/minute").test_client(), fresh_ip()
    page = limited.get("/admin/login/", **from_ip(ip))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    form = {"csrf_token": token.group(1), "username": "nobody", "password": "wrong"}
    for _ in range(AUTH):
        assert limited.post("/admin/login/", data=form, **from_ip(ip)).status_code == 200  # the form again
    assert_error(limited.post("/admin/login/", data=form, **from_ip(ip)), 429)
    for _ in range(AUTH):  # showing the form is not a login attempt
        assert limited.get("/admin/login/", **from_ip(ip)).status_code == 200


# --------------------------------------------------------------------------- the shared counters


@pytest.fixture
def counters(settings):
    """`counters()` -> a SharedCounterStorage and its fixed-window limiter, as one gateway
    process has them (two calls = two processes sharing Redis)."""
    from gateway.ratelimit import KEY_PREFIX, SharedCounterStorage
    from limits.strategies import FixedWindowRateLimiter

    made = []

    def _make():
        storage = SharedCounterStorage(settings.redis_url, key_prefix=KEY_PREFIX)
        made.append(storage)
        return storage, FixedWindowRateLimiter(storage)

    yield _make


def test_large_limits_are_counted_locally_and_synced_through_redis(counters, redis_client):
    from limits import parse

    (first, first_limiter), (second, second_limiter) = counters(), counters()
    limit, caller = parse("2000/minute"), f"user:{uuid.uuid4().hex}"
    key = f"taskqueue:ratelimit:{limit.key_for(caller, 'global')}"
    assert all(first_limiter.hit(limit, caller, "global") for _ in range(1500))
    assert int(redis_client.get(key)) == 1  # only the window's first hit went to Redis at once
    first.sync()
    assert int(redis_client.get(key)) == 1500
    # Another process learns the total with its first hit, then counts on from there.
    assert all(second_limiter.hit(limit, caller, "global") for _ in range(500))
    assert not second_limiter.hit(limit, caller, "global")
    assert second_limiter.get_window_stats(limit, caller, "global").remaining == 0
    second.sync()
    first.sync()  # nothing of its own left to send: its view still predates the second's hits
    assert first_limiter.hit(limit, caller, "global")  # within one sync's worth of overshoot
    first.sync()
    assert not first_limiter.hit(limit, caller, "global")
    assert int(redis_client.get(key)) >= 2001


def test_small_limits_are_exact_across_processes(counters):
    from limits import parse

    (_, first), (_, second) = counters(), counters()
    limit, caller = parse("6/minute"), f"ip:{fresh_ip()}"
    assert [(first if n % 2 else second).hit(limit, caller, "auth.token") for n in range(8)] == [True] * 6 + [False] * 2


def test_unsent_hits_survive_a_failed_sync(counters, redis_client, monkeypatch):
    import redis as redis_lib
    from limits import parse

    storage, limiter = counters()
    limit, caller = parse("5000/minute"), f"user:{uuid.uuid4().hex}"
    key = f"taskqueue:ratelimit:{limit.key_for(caller, 'global')}"
    for _ in range(10):
        limiter.hit(limit, caller, "global")
    dead = redis_lib.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    with monkeypatch.context() as patched:
        patched.setattr(storage, "get_connection", lambda readonly=False: dead)
        with pytest.raises(redis_lib.ConnectionError):
            storage.sync()
        assert limiter.get_window_stats(limit, caller, "global").remaining == 5000 - 10
    storage.sync()
    assert int(redis_client.get(key)) == 10

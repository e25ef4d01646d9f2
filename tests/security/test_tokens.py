"""Forged, expired, misused and revoked tokens get 401 on the REST API and at the websocket
handshake; genuine ones are accepted (the positive control that makes each refusal meaningful).

Forgeries start from a real token the gateway issued (so every claim the server expects is
present, `sid` included once it exists) and change one thing.
"""
from __future__ import annotations

import json
import time

import pytest

from .helpers import (
    JWT_SECRET,
    SecUser,
    assert_json_error,
    b64url,
    claims_of,
    forge,
    header_of,
    ws_open,
    ws_refusal,
    ws_url,
)

REST_PROBES = [("GET", "/auth/profile/"), ("GET", "/tasks/"), ("GET", "/tasks/stats/"), ("GET", "/schedules/"),
               ("GET", "/dead-letters/"), ("POST", "/tasks/")]


def _tamper_signature(token: str) -> str:
    head, payload, sig = token.split(".")
    flipped = ("A" if sig[10] != "A" else "B")
    return f"{head}.{payload}.{sig[:10]}{flipped}{sig[11:]}"


def _swap_payload(token: str, **changes) -> str:
    """The original header and signature over a modified payload."""
    head, _, sig = token.split(".")
    claims = {**claims_of(token), **changes}
    return f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"


def forgeries(user, other) -> dict[str, str]:
    """Every bad access token, by name. `user` owns the real tokens they are derived from."""
    real = claims_of(user.access)
    now = int(time.time())
    return {
        "tampered-signature": _tamper_signature(user.access),
        "payload-swapped-to-other-user": _swap_payload(user.access, sub=str(other.id)),
        "payload-made-staff": _swap_payload(user.access, is_staff=True),
        "alg-none": forge(real, alg="none"),
        "alg-None": forge(real, alg="None"),
        "alg-NONE-with-signature": forge(real, alg="NONE", key=JWT_SECRET, sign_as="HS256"),
        "hs512-right-key": forge(real, alg="HS512"),
        "hs384-right-key": forge(real, alg="HS384"),
        "rs256-header-hmac-signed": forge(real, alg="RS256", sign_as="HS256"),
        "es256-header-hmac-signed": forge(real, alg="ES256", sign_as="HS256"),
        "wrong-key": forge(real, key="not-the-server-key"),
        "empty-key": forge(real, key=""),
        "expired": forge({**real, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        "not-yet-valid": forge({**real, "iat": now, "nbf": now + 3600, "exp": now + 7200}),
        "refresh-as-access": user.refresh,
        "garbage": "garbage",
        "three-dots": "a.b.c",
        "only-header": user.access.split(".")[0],
        "huge": "x" * 5000,  # over the 4096-character cap, under the HTTP header limits
        "kid-injection": forge(real, header={"kid": "../../../../dev/null"}, key=""),
        "jku-header": forge(real, header={"jku": "http://127.0.0.1:1/jwks.json"}, key="attacker"),
        # signed with the right key, yet not a token the gateway issues (only a key holder could)
        "right-key-no-expiry": forge({k: v for k, v in real.items() if k != "exp"}),
        "right-key-no-session": forge({k: v for k, v in real.items() if k != "sid"}),
    }


@pytest.fixture(scope="module")
def pair(system):
    return SecUser(system), SecUser(system)


FORGERIES = [
    "tampered-signature", "payload-swapped-to-other-user", "payload-made-staff", "alg-none", "alg-None",
    "alg-NONE-with-signature", "hs512-right-key", "hs384-right-key", "rs256-header-hmac-signed",
    "es256-header-hmac-signed", "wrong-key", "empty-key", "expired", "not-yet-valid",
    "refresh-as-access", "garbage", "three-dots", "only-header", "huge",
    "kid-injection", "jku-header", "right-key-no-expiry", "right-key-no-session",
]


def test_forgery_list_is_complete(pair):
    """Every forgery built is exercised below (the parametrized list cannot silently drift)."""
    assert sorted(forgeries(*pair)) == sorted(FORGERIES)


def test_genuine_token_is_accepted_everywhere(pair, system):
    """Positive control: the real access token passes every probe, REST and websocket."""
    user, _ = pair
    assert header_of(user.access)["alg"] == "HS256"
    for method, path in REST_PROBES:
        r = user.call(method, path, json={"name": "ok", "task_type": "echo"} if method == "POST" else None)
        assert r.status_code in (200, 201), (method, path, r.status_code, r.text)
    assert user.ok("POST", "/auth/token/verify/", json={"token": user.access}, auth=False) == {}
    with ws_open(system, user.access):
        pass
    with ws_open(system, user.access, header=False):
        pass


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_access_token_is_401_on_rest(pair, name):
    """A forged/expired/misused access token is refused with 401 JSON on every authenticated
    endpoint, and creates nothing."""
    user, other = pair
    token = forgeries(user, other)[name]
    before = user.task_count()
    for method, path in REST_PROBES:
        r = user.call(method, path, token=token, json={"name": "forged", "task_type": "echo"} if method == "POST" else None)
        assert_json_error(r, 401)
    assert user.task_count() == before


@pytest.mark.parametrize("name", [n for n in FORGERIES if n != "refresh-as-access"])
def test_forged_token_fails_verify(pair, name):
    """POST /auth/token/verify/ says 401 for every forgery (a refresh token is legitimately
    verifiable there, so it is left out)."""
    user, other = pair
    assert_json_error(user.post("/auth/token/verify/", json={"token": forgeries(user, other)[name]}, auth=False), 401)


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_access_token_is_refused_at_websocket_handshake(pair, system, name):
    """The notifier refuses the same tokens with HTTP 401 before any data, in the Authorization
    header and in `?token=`."""
    user, other = pair
    token = forgeries(user, other)[name]
    status, body, _ = ws_refusal(ws_url(system), {"Authorization": f"Bearer {token}"})
    assert status == 401, body
    status, body, _ = ws_refusal(ws_url(system, token=token))
    assert status == 401, body


@pytest.mark.parametrize("name", ["tampered", "alg-none", "hs512", "expired", "access-as-refresh", "garbage", "forged-jti"])
def test_bad_refresh_tokens_get_401(pair, name):
    """POST /auth/token/refresh/ accepts only a genuine, live refresh token: forged, expired or
    access tokens get 401 and issue nothing."""
    user, _ = pair
    real = claims_of(user.refresh)
    now = int(time.time())
    token = {
        "tampered": _tamper_signature(user.refresh),
        "alg-none": forge(real, alg="none"),
        "hs512": forge(real, alg="HS512"),
        "expired": forge({**real, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        "access-as-refresh": user.access,
        "garbage": "garbage",
        "forged-jti": _swap_payload(user.refresh, jti="0" * 32),
    }[name]
    body = assert_json_error(user.post("/auth/token/refresh/", json={"refresh": token}, auth=False), 401)
    assert "access" not in body and "refresh" not in body


def test_revoked_refresh_token_gets_401(system):
    """After logout, the refresh token it named cannot be used again (refresh -> 401), and
    logging out with it again does not resurrect anything."""
    user = SecUser(system)
    refresh = user.refresh
    user.ok("POST", "/auth/logout/", json={"refresh": refresh})
    assert_json_error(user.post("/auth/token/refresh/", json={"refresh": refresh}, auth=False), 401)
    assert_json_error(user.post("/auth/token/verify/", json={"token": refresh}, auth=False), 401)


def test_rotated_refresh_token_gets_401(system):
    """Refresh rotation: once a refresh token has been exchanged, exchanging it again is 401
    (a stolen, already used refresh token is worthless); the new one works."""
    user = SecUser(system)
    old = user.refresh
    user.rotate()
    assert_json_error(user.post("/auth/token/refresh/", json={"refresh": old}, auth=False), 401)
    user.rotate()  # the newest one still works


def test_websocket_without_token_or_with_wrong_scheme_is_401(system, pair):
    """No token, an empty one, or a token under a non-Bearer scheme: 401 at the handshake."""
    user, _ = pair
    for headers in (None, {"Authorization": "Bearer "}, {"Authorization": f"Basic {user.access}"}):
        status, _, _ = ws_refusal(ws_url(system), headers)
        assert status == 401
    status, _, _ = ws_refusal(ws_url(system, token=""))
    assert status == 401

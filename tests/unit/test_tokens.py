"""shared.tokens accepts exactly the gateway's live access tokens (as flask-jwt-extended issues them)."""
from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from flask import Flask
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token

from shared.tokens import InvalidToken, decode_access_token, user_id

SECRET = "unit-test-secret-unit-test-secret-0123"


@pytest.fixture(scope="module")
def issue():
    """Tokens minted by flask-jwt-extended configured like the gateway."""
    app = Flask(__name__)
    app.config.update(JWT_SECRET_KEY=SECRET, JWT_ACCESS_TOKEN_EXPIRES=timedelta(minutes=5))
    JWTManager(app)

    def mint(kind: str = "access", session: bool = True, additional_claims=None, **kwargs) -> str:
        claims = {"sid": "unit-session", "gen": 0} if session else {}
        with app.app_context():
            make = create_access_token if kind == "access" else create_refresh_token
            return make(identity="42", additional_claims={**claims, **(additional_claims or {})}, **kwargs)

    return mint


def test_token_without_a_session_is_refused(issue):
    """Every token the gateway issues names its session; one without was minted elsewhere."""
    with pytest.raises(InvalidToken):
        decode_access_token(issue(session=False), SECRET)


def test_gateway_access_token_is_accepted(issue):
    claims = decode_access_token(issue(additional_claims={"username": "ann", "is_staff": False}), SECRET)
    assert user_id(claims) == 42 and claims["type"] == "access" and claims["username"] == "ann"


def test_refresh_token_is_refused(issue):
    with pytest.raises(InvalidToken):
        decode_access_token(issue("refresh"), SECRET)


def test_expired_token_is_refused(issue):
    with pytest.raises(InvalidToken):
        decode_access_token(issue(expires_delta=timedelta(seconds=-1)), SECRET)


def test_wrong_secret_is_refused(issue):
    with pytest.raises(InvalidToken):
        decode_access_token(issue(), "another-secret-another-secret-0123456")


@pytest.mark.parametrize("drop, override", [
    ("exp", {}),
    ("sub", {}),
    ("type", {}),
    (None, {"sub": "4 2"}),  # not a user id
    (None, {"sub": 42}),  # not the gateway's string subject
])
def test_incomplete_or_odd_claims_are_refused(drop, override):
    claims = {"sub": "42", "type": "access", "exp": int(time.time()) + 60, **override}
    claims.pop(drop, None)
    with pytest.raises(InvalidToken):
        decode_access_token(jwt.encode(claims, SECRET, algorithm="HS256"), SECRET)


@pytest.mark.parametrize("token", [None, "", "x" * 5000, "not.a.jwt", 123])
def test_garbage_is_refused(token):
    with pytest.raises(InvalidToken):
        decode_access_token(token, SECRET)


def test_algorithm_none_is_refused():
    token = jwt.encode({"sub": "42", "type": "access", "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(InvalidToken):
        decode_access_token(token, SECRET)

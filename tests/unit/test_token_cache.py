"""The gateway's verified-token cache saves re-parsing a token, never a check: an expired token
is refused even after a hit, and a token that differs in any byte is verified afresh."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask import Flask
from flask_jwt_extended import create_access_token, decode_token
from gateway.extensions import VerifiedTokenCache
from jwt import ExpiredSignatureError, InvalidSignatureError

SECRET = "unit-test-secret-unit-test-secret-0123"


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config.update(JWT_SECRET_KEY=SECRET, JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=1))
    VerifiedTokenCache(app)
    with app.app_context():
        yield app


def test_a_cached_token_still_expires(app):
    token = create_access_token(identity="7")
    assert decode_token(token)["sub"] == "7"
    assert decode_token(token)["sub"] == "7"  # from the cache
    time.sleep(1.2)
    with pytest.raises(ExpiredSignatureError):
        decode_token(token)


def test_a_changed_signature_is_verified_again(app):
    token = create_access_token(identity="7")
    decode_token(token)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    with pytest.raises(InvalidSignatureError):
        decode_token(forged)


def test_callers_get_a_copy(app):
    token = create_access_token(identity="7")
    decode_token(token)["sub"] = "8"
    assert decode_token(token)["sub"] == "7"

"""Access-token checks for services that are not Flask apps (the notifier, any future one).

The gateway issues tokens with flask-jwt-extended (HS256, `settings.jwt_secret_key`); this
module accepts exactly those access tokens, with PyJWT alone, so a service can authenticate
API users without importing the gateway. Access tokens are stateless (only refresh tokens
are revocable), so no database lookup is needed here.
"""
from __future__ import annotations

from typing import Any

import jwt

MAX_TOKEN_LENGTH = 4096  # a real token is a few hundred bytes; refuse to parse anything huge
ALGORITHMS = ["HS256"]  # pinned: never let the token's header pick the algorithm ("none", RS/HS confusion)


class InvalidToken(Exception):
    """The token is missing, malformed, badly signed, expired or not an access token."""


def decode_access_token(token: Any, secret: str) -> dict[str, Any]:
    """Verified claims of a live access token; raises `InvalidToken` for anything else.

    `sub` is the user id (a string of digits, as the gateway issues it); refresh tokens are
    refused because they are meant only for `/auth/token/refresh/`.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("no token")
    try:
        claims = jwt.decode(token, secret, algorithms=ALGORITHMS, options={"require": ["exp", "sub", "type"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if claims.get("type") != "access":
        raise InvalidToken("not an access token")
    sub = claims["sub"]
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit()):
        raise InvalidToken("malformed subject")
    return claims


def user_id(claims: dict[str, Any]) -> int:
    """The authenticated user's id from verified claims."""
    return int(claims["sub"])

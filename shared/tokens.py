"""Access-token checks for services that are not Flask apps (the notifier, any future one).

The gateway issues tokens with flask-jwt-extended (HS256, `settings.jwt_secret_key`); this
module accepts exactly those access tokens, with PyJWT alone, so a service can authenticate
API users without importing the gateway.

A signature is not enough: every token belongs to a session (`sid`, shared by the access and
refresh tokens of one login and kept across refresh rotation) and to the user's token
generation (`gen`). `session_is_live` is the one check, used by the gateway for every
authenticated request and by the notifier at the handshake: the user is active, the session
was not logged out, and no password change since the token was issued ended it.
"""
from __future__ import annotations

from typing import Any

import jwt
from sqlalchemy import Connection

from .prepared import Prepared

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
        claims = jwt.decode(token, secret, algorithms=ALGORITHMS, options={"require": ["exp", "sub", "type", "sid"]})
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


# One round trip: an unknown or inactive user, a logged-out session or a generation ended by a
# password change (unless this session made the change) all read as not live.
SESSION_LIVE = Prepared("session_live", """
SELECT u.is_active
   AND (%(gen)s >= u.token_generation OR u.kept_session = %(sid)s)
   AND NOT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = %(sid)s)
  FROM users u WHERE u.id = %(user_id)s
""", ["live"])


def session_is_live(conn: Connection, claims: dict[str, Any]) -> bool:
    """Whether verified claims still belong to a live session (see the module docstring)."""
    rows = SESSION_LIVE.run(conn, user_id=int(claims["sub"]), gen=int(claims.get("gen") or 0), sid=str(claims["sid"]))
    return bool(rows and rows[0].live)

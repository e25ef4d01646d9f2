"""JWT issuing and revocation on top of flask-jwt-extended.

Access tokens carry username/email/is_staff claims. Both tokens of a pair carry the session id
(`sid`, kept across refresh rotation) and the user's token generation (`gen`); every presented
token is checked with `shared.tokens.session_is_live`, so logout ends the session's access
tokens too, and a password change ends every other session. A refresh token is also spent by
rotation: its jti is checked against `revoked_tokens`.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from flask import Flask
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from shared.models import RevokedToken, User
from shared.tokens import session_is_live

from ..errors import ApiError, error_response
from ..extensions import db, jwt
from ..runtime import get_runtime


def issue_pair(user: User, sid: str | None = None) -> dict[str, str]:
    """A token pair of session `sid` (a new session when None) in the user's current generation."""
    session = {"sid": sid or uuid.uuid4().hex, "gen": user.token_generation or 0}
    claims = {"username": user.username, "email": user.email, "is_staff": user.is_staff, **session}
    return {
        "access": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh": create_refresh_token(identity=str(user.id), additional_claims=session),
    }


def is_live(claims: dict) -> bool:
    """The session check of every presented token (one prepared statement, outside the ORM session)."""
    return session_is_live(get_runtime().connection(), claims)


def is_revoked(jti: str) -> bool:
    return db.session.execute(select(RevokedToken.jti).where(RevokedToken.jti == jti)).first() is not None


def decode_refresh(token) -> dict:
    """Decode a refresh token from a request body; 401 for anything not a live refresh token."""
    claims = decode_any(token)
    if claims.get("type") != "refresh" or is_revoked(claims["jti"]) or not is_live(claims):
        raise ApiError(401, "Token is invalid or expired.")
    return claims


def decode_any(token) -> dict:
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise ApiError(401, "Token is invalid or expired.")
    try:
        claims = decode_token(token)
    except (PyJWTError, Exception):  # noqa: BLE001 - flask-jwt-extended raises several types
        raise ApiError(401, "Token is invalid or expired.") from None
    if not well_formed(claims):
        raise ApiError(401, "Token is invalid or expired.")
    return claims


def well_formed(claims: dict) -> bool:
    """Whether claims have what every token we issue has: flask-jwt-extended checks `exp` only
    when present and reads a missing type as "access", so a token signed with our key by
    something else (another app sharing the secret during a migration) would pass without this."""
    return "exp" in claims and bool(claims.get("sid")) and claims.get("type") in ("access", "refresh")


def revoke(claims: dict) -> None:
    """Spend a decoded refresh token (rotation; idempotent)."""
    _revoke_key(claims["jti"], int(claims["sub"]), datetime.fromtimestamp(claims["exp"], timezone.utc))


def end_session(claims: dict) -> None:
    """Log out the session of decoded claims: every token of it is refused from now on. A
    session lives as long as its newest refresh token, so the row is kept that long."""
    lifetime = timedelta(days=get_runtime().settings.refresh_token_days)
    _revoke_key(claims.get("sid") or claims["jti"], int(claims["sub"]), datetime.now(timezone.utc) + lifetime)


def _revoke_key(key: str, user_id: int, expires: datetime) -> None:
    db.session.execute(
        insert(RevokedToken).values(jti=key, user_id=user_id, expires_at=expires).on_conflict_do_nothing()
    )


def init(app: Flask) -> None:
    """Configure flask-jwt-extended and make all its failures 401 JSON."""

    @jwt.token_in_blocklist_loader
    def _revoked(_header, payload):
        if not well_formed(payload):
            return True
        if payload["type"] == "refresh" and is_revoked(payload["jti"]):
            return True
        return not is_live(payload)

    def unauthorized(message: str):
        return error_response(401, message)

    jwt.unauthorized_loader(lambda reason: unauthorized("Authentication credentials were not provided."))
    jwt.invalid_token_loader(lambda reason: unauthorized("Token is invalid or expired."))
    jwt.expired_token_loader(lambda _h, _p: unauthorized("Token is invalid or expired."))
    jwt.revoked_token_loader(lambda _h, _p: unauthorized("Token has been revoked."))
    jwt.needs_fresh_token_loader(lambda _h, _p: unauthorized("Fresh token required."))
    jwt.user_lookup_error_loader(lambda _h, _p: unauthorized("User not found."))

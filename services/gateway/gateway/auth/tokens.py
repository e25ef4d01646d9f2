"""JWT issuing and revocation on top of flask-jwt-extended.

Access tokens carry username/email/is_staff claims. Refresh tokens are revocable (logout,
rotation); their jti is checked against `revoked_tokens` whenever one is presented.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from jwt import PyJWTError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from shared.models import RevokedToken, User

from ..errors import ApiError, error_response
from ..extensions import db, jwt


def issue_pair(user: User) -> dict[str, str]:
    claims = {"username": user.username, "email": user.email, "is_staff": user.is_staff}
    return {
        "access": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh": create_refresh_token(identity=str(user.id)),
    }


def is_revoked(jti: str) -> bool:
    return db.session.execute(select(RevokedToken.jti).where(RevokedToken.jti == jti)).first() is not None


def decode_refresh(token) -> dict:
    """Decode a refresh token from a request body; 401 for anything not a live refresh token."""
    claims = decode_any(token)
    if claims.get("type") != "refresh" or is_revoked(claims["jti"]):
        raise ApiError(401, "Token is invalid or expired.")
    return claims


def decode_any(token) -> dict:
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise ApiError(401, "Token is invalid or expired.")
    try:
        return decode_token(token)
    except (PyJWTError, Exception):  # noqa: BLE001 - flask-jwt-extended raises several types
        raise ApiError(401, "Token is invalid or expired.") from None


def revoke(claims: dict) -> None:
    """Revoke a decoded refresh token (idempotent)."""
    expires = datetime.fromtimestamp(claims["exp"], timezone.utc)
    db.session.execute(
        insert(RevokedToken)
        .values(jti=claims["jti"], user_id=int(claims["sub"]), expires_at=expires)
        .on_conflict_do_nothing()
    )


def init(app: Flask) -> None:
    """Configure flask-jwt-extended and make all its failures 401 JSON."""

    @jwt.token_in_blocklist_loader
    def _revoked(_header, payload):
        # Only refresh tokens are revocable; access tokens are short-lived and checked statelessly.
        return payload.get("type") == "refresh" and is_revoked(payload["jti"])

    def unauthorized(message: str):
        return error_response(401, message)

    jwt.unauthorized_loader(lambda reason: unauthorized("Authentication credentials were not provided."))
    jwt.invalid_token_loader(lambda reason: unauthorized("Token is invalid or expired."))
    jwt.expired_token_loader(lambda _h, _p: unauthorized("Token is invalid or expired."))
    jwt.revoked_token_loader(lambda _h, _p: unauthorized("Token has been revoked."))
    jwt.needs_fresh_token_loader(lambda _h, _p: unauthorized("Fresh token required."))
    jwt.user_lookup_error_loader(lambda _h, _p: unauthorized("User not found."))

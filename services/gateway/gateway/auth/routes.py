from __future__ import annotations

from flask import jsonify
from flask_jwt_extended import get_jwt, get_jwt_identity
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shared.models import User

from .. import serializers
from ..errors import ApiError, ValidationError
from ..extensions import db
from ..openapi.operations import operation
from ..openapi.responses import ref
from ..validation import json_body
from . import bp, passwords, tokens
from .schemas import CHANGE_PASSWORD, LOGIN, LOGOUT, PROFILE, REFRESH, REGISTER, VERIFY


def current_user() -> User:
    user = db.session.get(User, int(get_jwt_identity()))
    if user is None or not user.is_active:
        raise ApiError(401, "User not found.")
    return user


@bp.post("/register/")
@operation("Create an account (and a token pair)", auth=False, body=REGISTER, ok={201: ref("Registered")})
def register():
    values = REGISTER.read(json_body())
    user = User(
        username=values["username"],
        email=values["email"],
        password_hash=passwords.hash_password(values["password"]),
        first_name=values["first_name"],
        last_name=values["last_name"],
        is_staff=False,
        is_active=True,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent registration took the name
        db.session.rollback()
        raise ValidationError({"username": ["A user with that username already exists."]}) from None
    body = {"user": serializers.user(user), "tokens": tokens.issue_pair(user), "message": "User registered successfully."}
    return jsonify(body), 201


@bp.post("/token/")
@operation("Log in: a token pair", auth=False, body=LOGIN, ok={200: ref("Login")}, errors=(401,))
def token():
    values = LOGIN.read(json_body())
    username, password = values["username"], values["password"]
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if not passwords.verify_password(user.password_hash if user else None, password) or not user.is_active:
        raise ApiError(401, "No active account found with the given credentials.")
    pair = tokens.issue_pair(user)
    return jsonify({**pair, "user": {"id": user.id, "username": user.username, "email": user.email, "is_staff": user.is_staff}})


@bp.post("/token/refresh/")
@operation("A new token pair; the presented refresh token is spent", auth=False, body=REFRESH,
           ok={200: ref("TokenPair")}, errors=(401,))
def refresh():
    claims = tokens.decode_refresh(REFRESH.read(json_body())["refresh"])
    user = db.session.get(User, int(claims["sub"]))
    if user is None or not user.is_active:
        raise ApiError(401, "Token is invalid or expired.")
    tokens.revoke(claims)  # rotation: the presented refresh token is now spent
    pair = tokens.issue_pair(user, sid=claims.get("sid"))
    db.session.commit()
    return jsonify(pair)


@bp.post("/token/verify/")
@operation("Check a token", auth=False, body=VERIFY, ok={200: ref("Empty")}, errors=(401,))
def verify():
    claims = tokens.decode_any(VERIFY.read(json_body())["token"])
    spent = claims.get("type") == "refresh" and tokens.is_revoked(claims["jti"])
    if spent or not tokens.is_live(claims):
        raise ApiError(401, "Token is invalid or expired.")
    return jsonify({})


@bp.post("/logout/")
@operation("Log out: end the session of this refresh token (its access tokens too)", body=LOGOUT, ok={200: ref("Message")})
def logout():
    current_user()  # 401 for a deleted or deactivated user (their revoked_tokens row could not exist)
    claims = tokens.decode_any(LOGOUT.read(json_body())["refresh"])
    if claims.get("type") != "refresh" or claims.get("sub") != get_jwt_identity():
        raise ApiError(400, "Invalid refresh token.")
    tokens.end_session(claims)  # its access tokens too, not only this refresh token
    db.session.commit()
    return jsonify({"message": "Successfully logged out."})


@bp.get("/profile/")
@operation("The caller's profile", ok={200: ref("User")})
def profile():
    return jsonify(serializers.user(current_user()))


@bp.route("/profile/", methods=["PATCH", "PUT"])
@operation("Change the caller's profile (only the fields given)", body=PROFILE, partial=True, ok={200: ref("User")})
def update_profile():
    user = current_user()
    changes = PROFILE.read(json_body(), partial=True, user_id=user.id)
    for name, value in changes.items():
        setattr(user, name, value)
    db.session.commit()
    return jsonify(serializers.user(user))


@bp.post("/change-password/")
@operation("Change the caller's password", body=CHANGE_PASSWORD, ok={200: ref("Message")})
def change_password():
    user = current_user()
    new = CHANGE_PASSWORD.read(json_body(), user=user)["new_password"]
    user.password_hash = passwords.hash_password(new)
    # Every other session ends now (their tokens carry an older generation); this one stays.
    user.token_generation = (user.token_generation or 0) + 1
    user.kept_session = get_jwt().get("sid")
    db.session.commit()
    return jsonify({"message": "Password changed successfully."})

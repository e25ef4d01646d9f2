from __future__ import annotations

import re

from flask import jsonify
from flask_jwt_extended import get_jwt, get_jwt_identity, jwt_required
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shared.models import User

from .. import serializers
from ..errors import ApiError, ValidationError
from ..extensions import db
from ..validation import Fields, json_body
from . import bp, passwords, tokens

USERNAME_RE = re.compile(r"^[\w.@+-]+$")


def current_user() -> User:
    user = db.session.get(User, int(get_jwt_identity()))
    if user is None or not user.is_active:
        raise ApiError(401, "User not found.")
    return user


def _check_username(f: Fields, username: str, exclude_id: int | None = None) -> None:
    if not username:
        return
    if not USERNAME_RE.match(username):
        f.fail("username", "Enter a valid username: letters, digits and @/./+/-/_ only.")
        return
    taken = select(User.id).where(func.lower(User.username) == username.lower())
    if exclude_id is not None:
        taken = taken.where(User.id != exclude_id)
    if db.session.execute(taken).first():
        f.fail("username", "A user with that username already exists.")


def _new_password(f: Fields, name: str, confirm_name: str) -> str:
    password = f.string(name, required=True, max_len=passwords.MAX_LENGTH, min_len=passwords.MIN_LENGTH)
    confirm = f.string(confirm_name, required=True, max_len=passwords.MAX_LENGTH)
    if password and confirm and password != confirm:
        f.fail(confirm_name, "Passwords do not match.")
    return password


@bp.post("/register/")
def register():
    f = Fields(json_body())
    username = f.string("username", required=True, max_len=150, blank=False)
    email = f.email("email", required=True)
    password = _new_password(f, "password", "password_confirm")
    first_name = f.string("first_name", max_len=150)
    last_name = f.string("last_name", max_len=150)
    _check_username(f, username)
    f.finish()
    user = User(
        username=username,
        email=email,
        password_hash=passwords.hash_password(password),
        first_name=first_name,
        last_name=last_name,
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
def token():
    f = Fields(json_body())
    username = f.string("username", required=True, max_len=150)
    password = f.string("password", required=True, max_len=passwords.MAX_LENGTH)
    f.finish()
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if not passwords.verify_password(user.password_hash if user else None, password) or not user.is_active:
        raise ApiError(401, "No active account found with the given credentials.")
    pair = tokens.issue_pair(user)
    return jsonify({**pair, "user": {"id": user.id, "username": user.username, "email": user.email, "is_staff": user.is_staff}})


@bp.post("/token/refresh/")
def refresh():
    body = json_body()
    claims = tokens.decode_refresh(body.get("refresh"))
    user = db.session.get(User, int(claims["sub"]))
    if user is None or not user.is_active:
        raise ApiError(401, "Token is invalid or expired.")
    tokens.revoke(claims)  # rotation: the presented refresh token is now spent
    pair = tokens.issue_pair(user, sid=claims.get("sid"))
    db.session.commit()
    return jsonify(pair)


@bp.post("/token/verify/")
def verify():
    claims = tokens.decode_any(json_body().get("token"))
    spent = claims.get("type") == "refresh" and tokens.is_revoked(claims["jti"])
    if spent or not tokens.is_live(claims):
        raise ApiError(401, "Token is invalid or expired.")
    return jsonify({})


@bp.post("/logout/")
@jwt_required()
def logout():
    current_user()  # 401 for a deleted or deactivated user (their revoked_tokens row could not exist)
    body = json_body()
    if not body.get("refresh"):
        raise ValidationError({"refresh": ["This field is required."]})
    claims = tokens.decode_any(body["refresh"])
    if claims.get("type") != "refresh" or claims.get("sub") != get_jwt_identity():
        raise ApiError(400, "Invalid refresh token.")
    tokens.end_session(claims)  # its access tokens too, not only this refresh token
    db.session.commit()
    return jsonify({"message": "Successfully logged out."})


@bp.get("/profile/")
@jwt_required()
def profile():
    return jsonify(serializers.user(current_user()))


@bp.route("/profile/", methods=["PATCH", "PUT"])
@jwt_required()
def update_profile():
    user = current_user()
    f = Fields(json_body())
    changes = {}
    if f.present("username"):
        changes["username"] = f.string("username", max_len=150, blank=False)
        _check_username(f, changes["username"], exclude_id=user.id)
    if f.present("email"):
        changes["email"] = f.email("email", required=True)
    for name in ("first_name", "last_name"):
        if f.present(name):
            changes[name] = f.string(name, max_len=150)
    f.finish()
    for name, value in changes.items():
        setattr(user, name, value)
    db.session.commit()
    return jsonify(serializers.user(user))


@bp.post("/change-password/")
@jwt_required()
def change_password():
    user = current_user()
    f = Fields(json_body())
    old = f.string("old_password", required=True, max_len=passwords.MAX_LENGTH)
    new = _new_password(f, "new_password", "new_password_confirm")
    if old and not passwords.verify_password(user.password_hash, old):
        f.fail("old_password", "Old password is incorrect.")
    f.finish()
    user.password_hash = passwords.hash_password(new)
    # Every other session ends now (their tokens carry an older generation); this one stays.
    user.token_generation = (user.token_generation or 0) + 1
    user.kept_session = get_jwt().get("sid")
    db.session.commit()
    return jsonify({"message": "Password changed successfully."})

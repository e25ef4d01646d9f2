"""The auth endpoints' request bodies (validation and OpenAPI from the same specs)."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from shared.models import User

from ..extensions import db
from ..openapi.body import Body, Reader
from ..openapi.fields import Email, String, Token
from . import passwords

USERNAME_RE = re.compile(r"^[\w.@+-]+$")
USERNAME_FORMAT = "Enter a valid username: letters, digits and @/./+/-/_ only."


def _username_problem(username: str, reader: Reader) -> str | None:
    """Letters, digits and @/./+/-/_ only, and not taken in any letter case (by another user
    than `user_id` of the context, for a profile update)."""
    if not USERNAME_RE.match(username):
        return USERNAME_FORMAT
    taken = select(User.id).where(func.lower(User.username) == username.lower())
    if reader.context.get("user_id") is not None:
        taken = taken.where(User.id != reader.context["user_id"])
    if db.session.execute(taken).first():
        return "A user with that username already exists."
    return None


def _same_as(other: str):
    """A confirmation field: must equal the field `other` (when both are given)."""

    def problem(value: str, reader: Reader) -> str | None:
        original = reader.data.get(other)
        return "Passwords do not match." if isinstance(original, str) and original and value != original else None

    return problem


def _old_password_correct(reader: Reader) -> None:
    old = reader.values["old_password"]
    if old and not passwords.verify_password(reader.context["user"].password_hash, old):
        reader.fail("old_password", "Old password is incorrect.")


def _username(**kw) -> String:
    return String(max_len=150, blank=False, check=_username_problem, **kw)


def _new_password(**kw) -> String:
    return String(required=True, max_len=passwords.MAX_LENGTH, min_len=passwords.MIN_LENGTH, **kw)


def _confirmation(of: str) -> String:
    return String(required=True, max_len=passwords.MAX_LENGTH, check=_same_as(of))


REGISTER = Body({
    "username": _username(required=True),
    "email": Email(required=True),
    "password": _new_password(),
    "password_confirm": _confirmation("password"),
    "first_name": String(max_len=150),
    "last_name": String(max_len=150),
})
LOGIN = Body({
    "username": String(required=True, max_len=150),
    "password": String(required=True, max_len=passwords.MAX_LENGTH),
})
REFRESH = Body({"refresh": Token(description="A refresh token; anything else is a 401.")})
VERIFY = Body({"token": Token(description="An access or refresh token; anything else is a 401.")})
LOGOUT = Body({"refresh": Token(required=True, description="The caller's refresh token, revoked.")})
# Read with partial=True: only the fields given change; a given username or email may not be null.
PROFILE = Body({
    "username": _username(required=True),
    "email": Email(required=True),
    "first_name": String(max_len=150),
    "last_name": String(max_len=150),
})
# Read with the context user=<the caller> (the old password is checked against theirs).
CHANGE_PASSWORD = Body(
    {
        "old_password": String(required=True, max_len=passwords.MAX_LENGTH),
        "new_password": _new_password(),
        "new_password_confirm": _confirmation("new_password"),
    },
    rules=(_old_password_correct,),
)

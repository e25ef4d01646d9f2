"""Session login for the admin dashboard: active staff users only.

The session (Flask's signed cookie) holds the user id and an HMAC of the user's password
hash. Every request reloads the user, so deactivating a user, taking away `is_staff` or
changing the password ends their admin sessions at once. Passwords are checked with the
API's scrypt helpers, which spend the same time on unknown usernames (no enumeration).
"""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from flask import current_app, g, session
from sqlalchemy import select

from shared.models import User

from ..auth import passwords
from ..extensions import db

USER_KEY = "admin_user_id"
CHECK_KEY = "admin_auth"
_MISSING = object()


def _check_value(user: User) -> str:
    key = str(current_app.secret_key).encode()
    return hmac.new(key, f"admin-session:{user.id}:{user.password_hash}".encode(), hashlib.sha256).hexdigest()


def authenticate(username: str, password: str) -> User | None:
    """The active staff user with these credentials, else None (same answer for every failure)."""
    if not username or not password or len(username) > 150 or len(password) > passwords.MAX_LENGTH:
        passwords.verify_password(None, password[: passwords.MAX_LENGTH])  # same cost as a real check
        return None
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if not passwords.verify_password(user.password_hash if user else None, password):
        return None
    if not (user.is_active and user.is_staff):
        return None
    return user


def login(user: User) -> None:
    session.clear()  # a fresh session: no fixation, and a new CSRF token
    session[USER_KEY] = user.id
    session[CHECK_KEY] = _check_value(user)
    session.permanent = True  # expires after ADMIN_SESSION_HOURS
    g.tq_admin_user = user


def logout() -> None:
    session.clear()
    g.tq_admin_user = None


def current_staff() -> User | None:
    """The logged-in staff user of this request, or None (also clears a stale session)."""
    cached = g.get("tq_admin_user", _MISSING)
    if cached is not _MISSING:
        return cached
    user = None
    user_id = session.get(USER_KEY)
    if isinstance(user_id, int):
        candidate = db.session.get(User, user_id)
        if (
            candidate is not None
            and candidate.is_active
            and candidate.is_staff
            and hmac.compare_digest(str(session.get(CHECK_KEY, "")), _check_value(candidate))
        ):
            user = candidate
    if user is None and USER_KEY in session:
        session.clear()
    g.tq_admin_user = user
    return user


def safe_next(target: str | None, default: str) -> str:
    """Only a path inside the dashboard may be a post-login destination (no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//") or "\\" in target:
        return default
    if not (parts.path == "/admin" or parts.path.startswith("/admin/")) or parts.path.startswith("/admin/logout"):
        return default
    return target

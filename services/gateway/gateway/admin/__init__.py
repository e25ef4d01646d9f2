"""The admin dashboard at /admin/ (flask-admin), for staff users only.

- Login: a Flask session cookie (signed with ADMIN_SESSION_SECRET, HttpOnly, SameSite=Lax,
  Secure in production, path /admin so API requests never carry it); only active staff
  users get in (`auth.py`). Everyone else, anonymous or not staff, gets the login page.
- CSRF: flask-wtf's CSRFProtect, checked for every POST under /admin only; the JSON API (JWT
  in a header, no cookies) stays CSRF-free.
- Views (`views.py`): an overview, then read-only lists and details of users, tasks, dead
  letters and webhook deliveries. Rows are never created, edited or deleted here: the only
  writes are the actions (cancel/retry tasks, reprocess dead letters, replay deliveries),
  which call the same functions as the API (`gateway.*.actions`), so they follow the same
  status rules and produce the same events.
"""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_wtf.csrf import CSRFError, CSRFProtect

from shared.settings import Settings

from . import auth, views

URL = "/admin"
SESSION_COOKIE = "taskqueue_admin_session"


def init_admin(app: Flask, settings: Settings) -> Admin:
    app.secret_key = settings.admin_session_secret
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_PATH=URL,  # only the dashboard ever sees the cookie
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.admin_session_hours),
        # CSRFProtect checks nothing by itself: the hook below asks it to, for /admin only.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session it is bound to
    )
    app.session_interface = DashboardSessions()
    csrf = CSRFProtect(app)

    @app.before_request
    def _admin_csrf():
        if _is_admin_path(request.path):
            csrf.protect()  # GET/HEAD/OPTIONS pass; any other method needs a valid token

    @app.after_request
    def _admin_headers(response):
        if _is_admin_path(request.path):
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            if not request.path.startswith(f"{URL}/static/"):
                response.headers["Cache-Control"] = "no-store"
        return response

    @app.context_processor
    def _admin_user():
        return {"tq_admin_user": auth.current_staff() if _is_admin_path(request.path) else None}

    app.register_error_handler(CSRFError, views.csrf_failed)
    # Our templates (login, overview, details with action buttons), found by name.
    app.register_blueprint(Blueprint("taskqueue_admin", __name__, template_folder="templates"))

    admin = Admin(
        app,
        name="TaskQueue",
        url=URL,
        index_view=views.OverviewView(name="Overview", url=URL),
        theme=Bootstrap4Theme(base_template="tq_admin/base.html", fluid=True),
    )
    views.add_model_views(admin)
    return admin


class DashboardSessions(SecureCookieSessionInterface):
    """Only the dashboard has sessions (its cookie is scoped to /admin): an API request gets
    Flask's null session instead of paying for reading and verifying a cookie it never sends."""

    def open_session(self, app, request):
        if not _is_admin_path(request.path):
            return None  # Flask falls back to its null session, which refuses writes
        return super().open_session(app, request)


def _is_admin_path(path: str) -> bool:
    return path == URL or path.startswith(URL + "/")

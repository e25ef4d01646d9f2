"""Driving the admin dashboard (/admin/) over real HTTP with its session cookie and CSRF token."""
from __future__ import annotations

import html
import re

import requests

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page: str) -> str:
    match = TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return html.unescape(match.group(1))


def admin_login(base_url: str, username: str, password: str) -> tuple[requests.Session, requests.Response]:
    """A fresh browser-like session that submits the login form; returns it and the answer
    (a redirect into the dashboard on success, the login page again on refusal)."""
    s = requests.Session()
    form = s.get(f"{base_url}/admin/login/", timeout=10)
    assert form.status_code == 200, form.status_code
    r = s.post(f"{base_url}/admin/login/", data={"username": username, "password": password,
                                                 "csrf_token": csrf_token(form.text)},
               allow_redirects=False, timeout=10)
    return s, r


def is_login_redirect(r: requests.Response) -> bool:
    return r.status_code == 302 and "/admin/login/" in r.headers.get("Location", "")


def make_staff(engine, user_id: int) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET is_staff = true WHERE id = :id"), {"id": user_id})

"""The admin dashboard (/admin/) through the Flask test client, on the real Postgres + Redis.

Login is for active staff only; every POST under /admin needs the CSRF token; actions go
through the API's own functions (so they produce the same transitions and events); model
views are read-only. Each test logs in with a client of its own (its own cookie jar).
"""
from __future__ import annotations

import dataclasses
import html
import os
import random
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from integration_helpers import API, unique

ADMIN = "/admin"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
REPO = Path(__file__).resolve().parents[2]
LOGIN_ERROR = "Please enter the username and password of an active staff account."


# --- helpers ---------------------------------------------------------------------------------


def csrf_token(response) -> str:
    match = TOKEN.search(response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return html.unescape(match.group(1))


def new_client(app):
    """A test client with a cookie jar and a client address of its own (the login form is
    rate limited per address, like /auth/token/)."""
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    return c


def login(app, username: str, password: str, **extra):
    """A fresh client that GETs the login page and POSTs the form with its token."""
    c = new_client(app)
    token = csrf_token(c.get(f"{ADMIN}/login/"))
    response = c.post(f"{ADMIN}/login/", data={"username": username, "password": password, "csrf_token": token, **extra})
    return c, response


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith(f"{ADMIN}/login/")


def page(c, path: str, **kwargs) -> str:
    response = c.get(path, **kwargs)
    assert response.status_code == 200, (path, response.status_code, response.headers.get("Location"))
    return response.get_data(as_text=True)


def act(c, view: str, action: str, ids, follow: bool = True):
    """POST a flask-admin action (what the list's "With selected" menu and the details page
    buttons send) with a valid CSRF token; returns the page it redirects to."""
    token = csrf_token(c.get(f"{ADMIN}/{view}/"))
    data = {"csrf_token": token, "action": action, "rowid": [str(i) for i in ids], "url": f"{ADMIN}/{view}/"}
    return c.post(f"{ADMIN}/{view}/action/", data=data, follow_redirects=follow)


def claim(engine, task_id: str):
    from shared import transitions

    with engine.begin() as conn:
        return transitions.run_one(conn, "claim", task_id=task_id, lease=timedelta(seconds=30), worker="admin-test")


def fail_for_good(engine, task_id: str, error: str = "boom"):
    from shared import transitions

    with engine.begin() as conn:
        return transitions.run_one(
            conn, "fail", task_id=task_id, claim=1, error=error, error_traceback=f"Traceback: {error}", failures=1
        )


@pytest.fixture(scope="module")
def staff(make_user, db):
    user = make_user()
    db.execute("UPDATE users SET is_staff = true WHERE id = :id", id=user.id)
    return user


@pytest.fixture
def admin(app, staff):
    """A client logged in as the module's staff user."""
    c, response = login(app, staff.username, staff.password)
    assert response.status_code == 302 and response.headers["Location"] == f"{ADMIN}/", response.get_data(as_text=True)
    return c


# --- access ----------------------------------------------------------------------------------


def test_anonymous_gets_the_login_page_never_data(app, user, create_task):
    task = create_task(user.headers, name=unique("secret-task"), payload={"card": "4111"})
    c = new_client(app)
    for path in (f"{ADMIN}/", f"{ADMIN}/tasks/", f"{ADMIN}/tasks/details/?id={task['id']}", f"{ADMIN}/users/",
                 f"{ADMIN}/dead-letters/", f"{ADMIN}/webhook-deliveries/", f"{ADMIN}/tasks/?search={task['name']}"):
        response = c.get(path)
        assert is_login_redirect(response), (path, response.status_code)
        followed = c.get(path, follow_redirects=True)
        body = followed.get_data(as_text=True)
        assert followed.status_code == 200 and 'id="tq-login-form"' in body
        for text in (response.get_data(as_text=True), body):  # (`next` echoes the path, nothing else)
            assert "4111" not in text and user.username not in text and "tq-status-counts" not in text
            assert text.count(task["name"]) <= text.count("next")


def test_login_page_sets_a_scoped_httponly_lax_cookie(app):
    response = new_client(app).get(f"{ADMIN}/login/")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("taskqueue_admin_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # development; production: see test_production_cookie_is_secure
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"


def test_production_cookie_is_secure(settings):
    from gateway.admin import init_admin

    app = Flask("prod-admin")
    init_admin(app, dataclasses.replace(settings, env="production"))
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.secret_key == settings.admin_session_secret != settings.jwt_secret_key


def test_non_staff_login_refused(app, user):
    c, response = login(app, user.username, user.password)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert LOGIN_ERROR in body and 'id="tq-login-form"' in body
    assert is_login_redirect(c.get(f"{ADMIN}/tasks/"))


def test_wrong_password_and_unknown_user_refused_alike(app, staff):
    _, wrong = login(app, staff.username, "not-the-password")
    _, unknown = login(app, unique("nobody"), "whatever-password")
    for response in (wrong, unknown):
        assert response.status_code == 200 and LOGIN_ERROR in response.get_data(as_text=True)


def test_inactive_staff_refused(app, make_user, db):
    user = make_user()
    db.execute("UPDATE users SET is_staff = true, is_active = false WHERE id = :id", id=user.id)
    _, response = login(app, user.username, user.password)
    assert response.status_code == 200 and LOGIN_ERROR in response.get_data(as_text=True)


def test_staff_login_with_csrf_token_shows_the_dashboard(admin, staff):
    body = page(admin, f"{ADMIN}/")
    assert 'id="tq-status-counts"' in body and staff.username in body and 'id="tq-logout"' in body
    for view in ("users", "tasks", "dead-letters", "webhook-deliveries"):
        assert f'href="{ADMIN}/{view}/"' in body


def test_login_redirects_to_next_inside_admin_only(app, staff):
    first = new_client(app).get(f"{ADMIN}/tasks/?search=x")
    assert first.headers["Location"] == f"{ADMIN}/login/?next=/admin/tasks/?search%3Dx"
    _, response = login(app, staff.username, staff.password, next="/admin/tasks/?search=x")
    assert response.headers["Location"] == "/admin/tasks/?search=x"
    for evil in ("https://evil.example/admin/", "//evil.example/admin/", "/api/v1/tasks/", "/\\evil.example"):
        _, response = login(app, staff.username, staff.password, next=evil)
        assert response.headers["Location"] == f"{ADMIN}/", evil


# --- CSRF ------------------------------------------------------------------------------------


def test_login_without_or_with_a_bad_csrf_token_is_400(app, staff):
    c = new_client(app)
    c.get(f"{ADMIN}/login/")
    for data in ({}, {"csrf_token": "forged"}):
        response = c.post(f"{ADMIN}/login/", data={"username": staff.username, "password": staff.password, **data})
        assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    assert is_login_redirect(c.get(f"{ADMIN}/"))  # not logged in


def test_action_without_csrf_token_is_400_and_changes_nothing(admin, user, create_task, db, events):
    task = create_task(user.headers)
    response = admin.post(f"{ADMIN}/tasks/action/", data={"action": "cancel", "rowid": task["id"]})
    assert response.status_code == 400
    assert db.task(task["id"]).status == "queued" and events(task["id"]) == ["queued"]


def test_csrf_token_of_another_session_is_refused(app, admin, user, create_task, db):
    task = create_task(user.headers)
    foreign = csrf_token(new_client(app).get(f"{ADMIN}/login/"))
    response = admin.post(f"{ADMIN}/tasks/action/", data={"action": "cancel", "rowid": task["id"], "csrf_token": foreign})
    assert response.status_code == 400 and db.task(task["id"]).status == "queued"


def test_json_api_stays_csrf_free(admin, user):
    """A client holding an admin session still uses the API with its JWT and no CSRF token."""
    response = admin.post(f"{API}/tasks/", json={"name": unique("api"), "task_type": "echo"}, headers=user.headers)
    assert response.status_code == 201, response.get_json()
    login_response = admin.post(f"{API}/auth/token/", json={"username": user.username, "password": user.password})
    assert login_response.status_code == 200


def test_anonymous_action_with_valid_token_does_nothing(app, user, create_task, db):
    task = create_task(user.headers)
    c = new_client(app)
    token = csrf_token(c.get(f"{ADMIN}/login/"))
    response = c.post(f"{ADMIN}/tasks/action/", data={"action": "cancel", "rowid": task["id"], "csrf_token": token})
    assert is_login_redirect(response)
    assert db.task(task["id"]).status == "queued"


# --- overview --------------------------------------------------------------------------------


def test_overview_counts_depths_dead_letters_and_failing_webhooks(admin, user, create_task, db, redis_client, app):
    from integration_helpers import drain

    from shared.broker import queue_depths

    task = create_task(user.headers, callback_url="http://127.0.0.1:9/hook")
    trigger = admin.post(f"{API}/tasks/{task['id']}/trigger_webhook/", json={"event": "task.succeeded"},
                         headers=user.headers)
    delivery_id = trigger.get_json()["delivery_id"]
    marker = unique("receiver-exploded")
    db.execute("UPDATE webhook_deliveries SET status = 'failure', last_attempt_at = now(), error_message = :e "
               "WHERE id = :id", e=marker, id=delivery_id)
    drain(app)
    body = page(admin, f"{ADMIN}/")
    counts = dict(db.all("SELECT status, count(*) FROM tasks GROUP BY status"))
    for status in ("pending", "scheduled", "queued", "running", "retry", "success", "failure", "revoked"):
        shown = re.search(rf'<tr data-status="{status}">.*?<td class="text-right tq-count">(\d+)</td>', body, re.S)
        assert shown and int(shown.group(1)) == counts.get(status, 0), status
    for queue, depth in queue_depths(redis_client).items():
        shown = re.search(rf'<tr data-queue="{queue}"><td>{queue}</td><td class="text-right tq-count">(\d+)</td>', body)
        assert shown and int(shown.group(1)) == depth, queue
    dead = db.one("SELECT count(*) AS total, count(*) FILTER (WHERE NOT reprocessed) AS waiting FROM dead_letters")
    assert f'<span class="tq-count" id="tq-dead-waiting">{dead.waiting}</span>' in body
    assert f'<span id="tq-dead-total">{dead.total}</span>' in body
    failing = db.scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'failure' "
                        "AND coalesce(last_attempt_at, queued_at) >= now() - interval '24 hours'")
    assert failing >= 1
    assert f'<span class="tq-count" id="tq-failing-deliveries">{failing}</span>' in body
    assert marker in body  # the newest failure is listed


# --- tasks -----------------------------------------------------------------------------------


def test_task_list_filters_and_search(admin, make_user, create_task):
    owner = make_user()
    tag = unique("flt")
    echo = create_task(owner.headers, name=f"{tag}-echo", task_type="echo", priority=5)
    compute = create_task(owner.headers, name=f"{tag}-compute", task_type="compute", priority=20,
                          payload={"operation": "sum", "numbers": [1]})
    later = create_task(owner.headers, name=f"{tag}-later", scheduled_at="2099-01-01T00:00:00Z")

    def names(query: str) -> set[str]:
        body = page(admin, f"{ADMIN}/tasks/?{query}")
        return {n for n in (echo["name"], compute["name"], later["name"]) if f">{n}</a>" in body}

    assert names(f"search={tag}") == {echo["name"], compute["name"], later["name"]}
    assert names(f"search={tag}-comp") == {compute["name"]}
    assert names(f"search={tag}&flt0_status_equals=scheduled") == {later["name"]}
    assert names(f"search={tag}&flt0_task_type_equals=compute") == {compute["name"]}
    assert names(f"search={tag}&flt0_queue_equals=critical") == {compute["name"]}
    assert names(f"flt0_owner_username_is={owner.username.upper()}") == {echo["name"], compute["name"], later["name"]}
    assert names(f"flt0_owner_id_equals={owner.id}&flt1_task_type_equals=echo") == {echo["name"], later["name"]}
    assert names(f"flt0_id_equals={echo['id']}") == {echo["name"]}
    assert names("flt0_id_equals=not-a-uuid&search=" + tag) == {echo["name"], compute["name"], later["name"]}


def test_task_details_show_payload_result_error_traceback_never_the_secret(admin, user, create_task, engine):
    task = create_task(user.headers, payload={"numbers": [4, 2], "note": "<b>html</b>"},
                       callback_url="http://127.0.0.1:9/hook", callback_secret="sekrit-value-123")
    claim(engine, task["id"])
    fail_for_good(engine, task["id"], error="division by zero")
    body = page(admin, f"{ADMIN}/tasks/details/?id={task['id']}")
    assert task["name"] in body and user.username in body
    assert "&#34;numbers&#34;" in body or "&quot;numbers&quot;" in body  # pretty JSON, escaped
    assert "<b>html</b>" not in body
    assert "division by zero" in body and "Traceback: division by zero" in body
    assert "sekrit-value-123" not in body
    assert 'id="tq-action-retry"' in body and 'id="tq-action-cancel"' not in body  # failure: retry only
    assert page(admin, f"{ADMIN}/tasks/details/?id=not-a-uuid", follow_redirects=True)


def test_cancel_action_revokes_a_queued_task_through_the_transition(admin, user, create_task, db, events):
    task = create_task(user.headers)
    body = page(admin, f"{ADMIN}/tasks/details/?id={task['id']}")
    assert 'id="tq-action-cancel"' in body
    response = act(admin, "tasks", "cancel", [task["id"]])
    assert response.status_code == 200
    assert "Cancel: 1 task done." in response.get_data(as_text=True)
    row = db.task(task["id"])
    assert row.status == "revoked" and row.completed_at is not None
    assert events(task["id"]) == ["queued", "revoked"]  # the transition's outbox event, published


def test_cancel_from_the_details_page_returns_to_it(admin, user, create_task, db):
    task = create_task(user.headers, scheduled_at="2099-01-01T00:00:00Z")
    details = f"{ADMIN}/tasks/details/?id={task['id']}"
    token = csrf_token(admin.get(details))
    response = admin.post(f"{ADMIN}/tasks/action/",
                          data={"csrf_token": token, "action": "cancel", "rowid": task["id"], "url": details})
    assert response.status_code == 302 and response.headers["Location"] == details
    body = page(admin, details)
    assert 'data-status="revoked"' in body and "Cancel: 1 task done." in body
    assert db.task(task["id"]).status == "revoked"


def test_cancel_refuses_finished_tasks_like_the_api(admin, user, create_task, db, events):
    task = create_task(user.headers)
    db.execute("UPDATE tasks SET status = 'success' WHERE id = :id", id=task["id"])
    body = act(admin, "tasks", "cancel", [task["id"]]).get_data(as_text=True)
    assert "Cannot cancel task with status: success" in body
    assert db.task(task["id"]).status == "success" and events(task["id"]) == ["queued"]


def test_bulk_cancel(admin, user, create_task, db, events):
    tasks = [create_task(user.headers) for _ in range(3)]
    body = act(admin, "tasks", "cancel", [t["id"] for t in tasks]).get_data(as_text=True)
    assert "Cancel: 3 tasks done." in body
    for t in tasks:
        assert db.task(t["id"]).status == "revoked" and events(t["id"]) == ["queued", "revoked"]


def test_bulk_retry_across_owners(admin, user, other_user, create_task, client, db, events, queued_message):
    revoked = [create_task(u.headers, priority=10) for u in (user, other_user)]
    for t, u in zip(revoked, (user, other_user)):
        assert client.post(f"{API}/tasks/{t['id']}/cancel/", headers=u.headers).status_code == 200
        db.execute("UPDATE tasks SET retry_count = 2, error_message = 'old' WHERE id = :id", id=t["id"])
    still_queued = create_task(user.headers)
    missing = uuid.uuid4()
    ids = [t["id"] for t in revoked] + [still_queued["id"], missing, "garbage"]
    body = act(admin, "tasks", "retry", ids).get_data(as_text=True)
    assert "Retry: 2 tasks done." in body
    assert "Cannot retry task with status: queued" in body
    assert f"{missing}: not found" in body and "garbage: not a valid id" in body
    for t in revoked:
        row = db.task(t["id"])
        assert (row.status, row.retry_count, row.error_message) == ("queued", 0, "")
        assert events(t["id"]) == ["queued", "revoked", "queued"]
        assert queued_message("high", t["id"]) is not None  # sent to its queue again, as the API does
    assert db.task(still_queued["id"]).status == "queued" and events(still_queued["id"]) == ["queued"]


# --- dead letters and webhook deliveries -----------------------------------------------------


def test_reprocess_dead_letter(admin, user, create_task, db, engine, events):
    task = create_task(user.headers, name=unique("doomed"), payload={"x": 1}, priority=20)
    claim(engine, task["id"])
    fail_for_good(engine, task["id"])
    entry = db.one("SELECT id FROM dead_letters WHERE original_task_id = :id", id=task["id"]).id
    body = page(admin, f"{ADMIN}/dead-letters/details/?id={entry}")
    assert 'id="tq-action-reprocess"' in body and "Traceback: boom" in body
    before = db.task_count(user.id)
    body = act(admin, "dead-letters", "reprocess", [entry]).get_data(as_text=True)
    assert "Reprocess: 1 dead letter done." in body
    new = db.one("SELECT * FROM tasks WHERE name = :n", n=f"[Reprocessed] {task['name']}")
    assert (new.owner_id, new.task_type, new.payload, new.priority, new.status) == (user.id, "echo", {"x": 1}, 20, "queued")
    assert events(str(new.id)) == ["queued"]
    marked = db.one("SELECT reprocessed, reprocessed_task_id FROM dead_letters WHERE id = :id", id=entry)
    assert marked.reprocessed and marked.reprocessed_task_id == new.id
    again = act(admin, "dead-letters", "reprocess", [entry]).get_data(as_text=True)
    assert "Dead letter entry has already been reprocessed." in again
    assert db.task_count(user.id) == before + 1


def test_replay_delivery(admin, user, client, create_task, db):
    task = create_task(user.headers, callback_url="http://127.0.0.1:9/hook", callback_secret="s3cret")
    trigger = client.post(f"{API}/tasks/{task['id']}/trigger_webhook/", json={"event": "task.succeeded"},
                          headers=user.headers)
    original = trigger.get_json()["delivery_id"]
    body = page(admin, f"{ADMIN}/webhook-deliveries/details/?id={original}")
    assert 'id="tq-action-replay"' in body and "no attempt yet" in body
    body = act(admin, "webhook-deliveries", "replay", [original]).get_data(as_text=True)
    assert "Replay: 1 delivery done." in body
    replay = db.one("SELECT * FROM webhook_deliveries WHERE replay_of_id = :id", id=original)
    first = db.one("SELECT * FROM webhook_deliveries WHERE id = :id", id=original)
    assert (replay.status, replay.task_id, replay.owner_id) == ("pending", first.task_id, user.id)
    assert replay.request_body == first.request_body and replay.signature == first.signature
    assert replay.request_headers["webhook-id"] == str(replay.id) != first.request_headers["webhook-id"]


def test_delivery_list_filtered_by_task(admin, user, client, create_task):
    task = create_task(user.headers, callback_url="http://127.0.0.1:9/hook")
    delivery = client.post(f"{API}/tasks/{task['id']}/trigger_webhook/", json={"event": "task.failed"},
                           headers=user.headers).get_json()["delivery_id"]
    body = page(admin, f"{ADMIN}/webhook-deliveries/?flt0_task_equals={task['id']}")
    assert f"/admin/webhook-deliveries/details/?id={delivery}" in body
    assert f"flt0_task_equals={task['id']}" in page(admin, f"{ADMIN}/tasks/details/?id={task['id']}")


# --- read-only -------------------------------------------------------------------------------


def test_model_views_are_read_only(admin, user, create_task, db):
    task = create_task(user.headers)
    before = db.task(task["id"])
    for path in (f"{ADMIN}/tasks/new/", f"{ADMIN}/tasks/edit/?id={task['id']}", f"{ADMIN}/users/new/"):
        response = admin.get(path)
        assert response.status_code == 302 and "/new/" not in response.headers["Location"], path
    token = csrf_token(admin.get(f"{ADMIN}/tasks/"))
    admin.post(f"{ADMIN}/tasks/edit/?id={task['id']}", data={"csrf_token": token, "status": "success", "name": "x"})
    admin.post(f"{ADMIN}/tasks/delete/", data={"csrf_token": token, "id": task["id"]})
    admin.post(f"{ADMIN}/tasks/new/", data={"csrf_token": token, "name": "forged", "status": "success"})
    assert admin.post(f"{ADMIN}/tasks/ajax/update/",
                      data={"csrf_token": token, "list_form_pk": task["id"], "status": "success"}).status_code == 404
    act(admin, "tasks", "delete", [task["id"]])
    assert db.task(task["id"]) == before
    body = page(admin, f"{ADMIN}/tasks/details/?id={task['id']}")
    assert "/admin/tasks/edit/" not in body and "/admin/tasks/delete/" not in body


def test_users_view_never_shows_password_hashes(admin, staff, db):
    stored = db.user_row(staff.username).password_hash
    for path in (f"{ADMIN}/users/?search={staff.username}", f"{ADMIN}/users/details/?id={staff.id}"):
        body = page(admin, path)
        assert staff.username in body and stored not in body and "scrypt:" not in body


# --- sessions --------------------------------------------------------------------------------


def test_logout(app, staff):
    c, _ = login(app, staff.username, staff.password)
    assert c.get(f"{ADMIN}/").status_code == 200
    assert c.post(f"{ADMIN}/logout/").status_code == 400  # CSRF applies to logout too
    assert c.get(f"{ADMIN}/").status_code == 200
    token = csrf_token(c.get(f"{ADMIN}/"))
    response = c.post(f"{ADMIN}/logout/", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == f"{ADMIN}/login/"
    assert is_login_redirect(c.get(f"{ADMIN}/"))
    assert is_login_redirect(c.get(f"{ADMIN}/tasks/"))


def test_losing_staff_or_changing_password_ends_the_session(app, make_user, db, client):
    user = make_user()
    db.execute("UPDATE users SET is_staff = true WHERE id = :id", id=user.id)
    c, _ = login(app, user.username, user.password)
    assert c.get(f"{ADMIN}/").status_code == 200
    db.execute("UPDATE users SET is_staff = false WHERE id = :id", id=user.id)
    assert is_login_redirect(c.get(f"{ADMIN}/"))

    db.execute("UPDATE users SET is_staff = true WHERE id = :id", id=user.id)
    c, _ = login(app, user.username, user.password)
    assert c.get(f"{ADMIN}/").status_code == 200
    changed = client.post(f"{API}/auth/change-password/", headers=user.headers, json={
        "old_password": user.password, "new_password": "an0ther-pass-456", "new_password_confirm": "an0ther-pass-456"})
    assert changed.status_code == 200
    assert is_login_redirect(c.get(f"{ADMIN}/"))


# --- createsuperuser -------------------------------------------------------------------------


def run_createsuperuser(settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.createsuperuser", *args],
        env={**os.environ, "DATABASE_URL": settings.database_url, **env},
        cwd=REPO, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )


def test_createsuperuser_creates_a_staff_user_from_env(app, settings, db):
    username = unique("root")
    try:
        done = run_createsuperuser(settings, "--no-input", TASKQUEUE_SUPERUSER_USERNAME=username,
                                   TASKQUEUE_SUPERUSER_EMAIL=f"{username}@example.com",
                                   TASKQUEUE_SUPERUSER_PASSWORD="very-secret-42")
        assert done.returncode == 0, done.stderr
        assert f"created staff user '{username}'" in done.stdout
        row = db.user_row(username)
        assert row.is_staff and row.is_active and row.password_hash.startswith("scrypt:")
        c, response = login(app, username, "very-secret-42")
        assert response.status_code == 302 and c.get(f"{ADMIN}/").status_code == 200
    finally:
        db.execute("DELETE FROM users WHERE username = :u", u=username)


def test_createsuperuser_upgrades_an_existing_user(app, settings, make_user, db):
    user = make_user()
    done = run_createsuperuser(settings, "--no-input", "--username", user.username)
    assert done.returncode == 0, done.stderr
    assert "is now active staff" in done.stdout
    row = db.user_row(user.username)
    assert row.is_staff and row.email == user.email
    _, response = login(app, user.username, user.password)  # the password is unchanged
    assert response.status_code == 302


def test_createsuperuser_refuses_bad_or_missing_input(settings, db):
    username = unique("bad")
    missing = run_createsuperuser(settings, "--no-input", "--username", username)
    assert missing.returncode == 2 and "email: This field is required." in missing.stderr
    weak = run_createsuperuser(settings, "--no-input", "--username", username, "--email", "x@example.com",
                               "--password", "short")
    assert weak.returncode == 2 and "at least 8 characters" in weak.stderr
    assert not db.user_exists(username)

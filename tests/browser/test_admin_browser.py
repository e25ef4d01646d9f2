"""A staff user logs in to /admin/ in a real headless chromium, finds a task, cancels it and
sees it revoked, against a real gateway process (no worker needed: the task waits for a
scheduled_at in the future)."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

PASSWORD = "browser-staff-pass-1"


@pytest.fixture
def staff_and_task(store):
    """A staff user and another user's scheduled task, written straight to the database."""
    from gateway.auth.passwords import hash_password
    from gateway.tasks.fields import row_values

    from shared import transitions

    tag = uuid.uuid4().hex[:8]
    with store.engine.begin() as conn:
        staff_id, owner_id = (
            conn.execute(
                text("INSERT INTO users (username, email, password_hash, is_staff) VALUES (:u, :e, :p, :s) RETURNING id"),
                {"u": f"{name}_{tag}", "e": f"{name}_{tag}@example.com", "p": hash_password(PASSWORD), "s": is_staff},
            ).scalar_one()
            for name, is_staff in (("staff", True), ("owner", False))
        )
        fields = {"name": f"browser-task-{tag}", "task_type": "echo", "payload": {"hello": "browser"},
                  "scheduled_at": datetime.now(timezone.utc) + timedelta(hours=1)}
        task = transitions.create(conn, row_values(owner_id, fields))
    assert task.status == "scheduled"
    return {"username": f"staff_{tag}", "task_id": str(task.id), "task_name": task.name}


def stream_statuses(redis_client, task_id: str) -> list[str]:
    out = []
    for _, fields in redis_client.xrange("taskqueue:events"):
        decoded = {k.decode(): v.decode() for k, v in fields.items()}
        if decoded.get("task_id") == task_id:
            out.append(decoded["status"])
    return out


def test_staff_logs_in_finds_a_task_cancels_it_and_sees_it_revoked(gateway, page, staff_and_task, store):
    name, task_id = staff_and_task["task_name"], staff_and_task["task_id"]

    # Anonymous: the dashboard answers with its login page.
    page.goto(f"{gateway}/admin/tasks/")
    assert "/admin/login/" in page.url
    assert page.locator("#tq-login-form").is_visible()
    assert name not in page.content()

    # Log in (the form carries its CSRF token) and land where we were going.
    page.fill("#username", staff_and_task["username"])
    page.fill("#password", PASSWORD)
    page.click("#tq-login")
    page.wait_for_url(f"{gateway}/admin/tasks/")
    assert page.locator("#tq-admin-user").inner_text() == staff_and_task["username"]

    # Find the task with the list's search box, open it.
    page.fill("input[name=search]", name)
    page.press("input[name=search]", "Enter")
    page.wait_for_url("**/admin/tasks/?*search=*")
    link = page.get_by_role("link", name=name, exact=True)
    assert link.count() == 1
    link.click()
    page.wait_for_url("**/admin/tasks/details/?id=*")
    assert page.locator(".tq-status").first.inner_text() == "scheduled"
    assert "browser" in page.locator("pre.tq-json").first.inner_text()

    # Cancel it (confirming the dialog) and see it revoked on the page it returns to.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#tq-action-cancel button")
    page.wait_for_selector('.tq-status[data-status="revoked"]')
    assert page.locator(".tq-status").first.inner_text() == "revoked"
    assert "Cancel: 1 task done." in page.content()
    assert page.locator("#tq-action-cancel").count() == 0 and page.locator("#tq-action-retry").count() == 1

    # It went through the transition: revoked in Postgres, and the event is on the stream.
    with store.engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM tasks WHERE id = :id"), {"id": task_id}).scalar_one()
    assert status == "revoked"
    deadline = time.monotonic() + 10
    while stream_statuses(store.redis, task_id)[-1:] != ["revoked"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stream_statuses(store.redis, task_id)[-1:] == ["revoked"]

    # The list, filtered on revoked, shows it too; then log out.
    page.goto(f"{gateway}/admin/tasks/?flt0_status_equals=revoked&search={name}")
    assert page.get_by_role("link", name=name, exact=True).count() == 1
    page.click("#tq-logout")
    page.wait_for_url("**/admin/login/")
    page.goto(f"{gateway}/admin/tasks/details/?id={task_id}")
    assert "/admin/login/" in page.url and name not in page.content()

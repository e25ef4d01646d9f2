"""The admin dashboard refuses everyone but active staff: anonymous visitors, non-staff users
(with the right password, or with an API token) get the login page and none of the data, on
every page, details page and action. A staff login (the positive control) sees the data."""
from __future__ import annotations

import pytest
import requests

from .admin_helpers import admin_login, csrf_token, is_login_redirect, make_staff
from .helpers import SecUser, assert_no_leak, marker


@pytest.fixture(scope="module")
def data(system, store):
    owner = SecUser(system)
    markers = [marker("adminname"), marker("adminpayload")]
    task = owner.create_task(name=markers[0], task_type="compute", payload={"operation": "nope", "p": markers[1]},
                             max_retries=0)
    owner.wait_task(task["id"], "failure")
    staff = SecUser(system)
    make_staff(store.engine, staff.id)
    return owner, staff, task, markers


def pages(system, task_id: str, owner_id: int) -> list[str]:
    base = f"{system.base_url}/admin"
    return [f"{base}/", f"{base}/tasks/", f"{base}/tasks/details/?id={task_id}", f"{base}/users/",
            f"{base}/users/details/?id={owner_id}", f"{base}/dead-letters/", f"{base}/webhook-deliveries/",
            f"{base}/tasks/?search=adminname", f"{base}/tasks/?flt0_status_equals=failure"]


def assert_refused(session: requests.Session, system, data) -> None:
    owner, _, task, markers = data
    for url in pages(system, task["id"], owner.id):
        r = session.get(url, allow_redirects=False, timeout=10)
        assert is_login_redirect(r), (url, r.status_code, r.headers.get("Location"))
        # (a details URL names the task id itself: the redirect's `next` may repeat what was asked)
        secrets = markers + [owner.username] + ([] if task["id"] in url else [task["id"]])
        assert_no_leak(r, secrets)
        followed = session.get(url, timeout=10)
        assert followed.status_code == 200 and 'name="password"' in followed.text, url
        assert_no_leak(followed, secrets)


def test_anonymous_visitors_get_the_login_page(system, data):
    """No session cookie: every admin page redirects to the login page, which shows no data."""
    assert_refused(requests.Session(), system, data)


def test_non_staff_user_cannot_log_in_nor_see_anything(system, data):
    """A non-staff user with the right password is refused at login (no session), then gets
    the login page everywhere; their API token does not open the dashboard either."""
    owner, _, _, _ = data
    session, r = admin_login(system.base_url, owner.username, owner.password)
    assert r.status_code == 200 and "active staff account" in r.text
    assert_refused(session, system, data)
    session.headers["Authorization"] = f"Bearer {owner.access}"
    assert_refused(session, system, data)


def test_actions_without_staff_session_do_nothing(system, data):
    """An admin action POSTed by a non-staff user (with a CSRF token from the login page) is
    refused and the task is unchanged (it would otherwise be retried)."""
    owner, _, task, _ = data
    session = requests.Session()
    token = csrf_token(session.get(f"{system.base_url}/admin/login/", timeout=10).text)
    r = session.post(f"{system.base_url}/admin/tasks/action/", allow_redirects=False, timeout=10,
                     data={"csrf_token": token, "action": "retry", "rowid": [task["id"]], "url": "/admin/tasks/"})
    assert r.status_code in (302, 400, 403), r.status_code
    assert r.status_code != 302 or is_login_redirect(r)
    assert owner.task(task["id"])["status"] == "failure"


def test_staff_login_sees_the_data(system, data):
    """Positive control: a staff user logs in and the same pages show the task."""
    _, staff, task, markers = data
    session, r = admin_login(system.base_url, staff.username, staff.password)
    assert r.status_code == 302 and not is_login_redirect(r), r.status_code
    page = session.get(f"{system.base_url}/admin/tasks/details/?id={task['id']}", timeout=10)
    assert page.status_code == 200 and markers[0] in page.text


def test_staff_session_ends_when_staff_status_is_removed(system, store):
    """A logged-in staff user who loses staff status is back at the login page on the very next
    request (the session is re-checked against the database every time)."""
    from sqlalchemy import text

    staff = SecUser(system)
    make_staff(store.engine, staff.id)
    session, r = admin_login(system.base_url, staff.username, staff.password)
    assert r.status_code == 302 and not is_login_redirect(r)
    assert session.get(f"{system.base_url}/admin/tasks/", allow_redirects=False, timeout=10).status_code == 200
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE users SET is_staff = false WHERE id = :id"), {"id": staff.id})
    assert is_login_redirect(session.get(f"{system.base_url}/admin/tasks/", allow_redirects=False, timeout=10))

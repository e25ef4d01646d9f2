"""SSRF at the API: callback URLs aimed at the inside of the network are refused with 400 at
creation (tasks and schedules, on the strict gateway: WEBHOOK_ALLOW_PRIVATE_NETWORKS unset),
nothing is stored, and nothing ever reaches a private target at run or send time.
DNS rebinding (public at creation, private at send) is covered in test_rebinding.py."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from .helpers import SecUser, assert_json_error, marker, wait_for

REFUSED = [
    # private
    "http://10.0.0.1/hook", "http://10.255.255.254:8080/", "http://172.16.0.1/", "http://172.31.255.1/",
    "http://192.168.0.1/", "http://192.168.1.100:9000/hook",
    # loopback
    "http://127.0.0.1/", "http://127.0.0.1:6379/", "http://127.1.2.3/", "http://[::1]/", "http://[::1]:8000/",
    "http://localhost/", "http://LOCALHOST:8000/", "http://localhost./", "http://api.localhost/",
    "http://0.0.0.0/", "http://0/", "http://[::]/",
    # link-local and metadata
    "http://169.254.1.1/", "http://[fe80::1]/", "http://[fe80::1%25eth0]/", "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://metadata/", "http://[fd00:ec2::254]/",
    "http://169.254.170.2/v2/credentials", "http://100.100.100.200/latest/meta-data/",
    # IPv4 inside IPv6
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/",
    # other spellings of 127.0.0.1 / 169.254.169.254
    "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/", "http://0x7f000001/", "http://017700000001/",
    "http://127.1/", "http://2852039166/", "http://0xa9fea9fe/",
    # userinfo tricks
    "http://example.com@127.0.0.1/", "http://user:pass@127.0.0.1/", "http://93.184.216.34@169.254.169.254/",
    "http://127.0.0.1#@example.com/", "http://127.0.0.1\\@example.com/",
    # schemes
    "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://example.com/", "dict://127.0.0.1:6379/info",
    "javascript:alert(1)", "data:text/plain,hi", "ldap://127.0.0.1/", "ws://127.0.0.1:8001/ws/tasks/",
    "//127.0.0.1/hook", "http:///hook", "http://", "127.0.0.1:8000",
    # whitespace / control characters
    "http://127.0.0.1 /", " http://127.0.0.1/", "http://127.0.0.1/\r\nX-Injected: 1",
]


@pytest.fixture(scope="module")
def owner(system):
    return SecUser(system)


def _rows(db, table: str, owner_id: int) -> int:
    return db.scalar(f"SELECT count(*) FROM {table} WHERE owner_id = :o", o=owner_id)


@pytest.mark.parametrize("url", REFUSED)
def test_internal_callback_url_is_refused_at_task_creation(owner, db, url):
    """POST /tasks/ with the URL: 400 naming callback_url, and no task stored."""
    before = _rows(db, "tasks", owner.id)
    r = owner.post("/tasks/", json={"name": "ssrf", "task_type": "echo", "callback_url": url,
                                    "callback_secret": "s"})
    body = assert_json_error(r, 400)
    assert "callback_url" in body, body
    assert _rows(db, "tasks", owner.id) == before


@pytest.mark.parametrize("url", REFUSED[::3])
def test_internal_callback_url_is_refused_for_schedules(owner, db, url):
    """POST /schedules/ (a template that would fire forever): 400 and no schedule; PATCH of an
    existing schedule to such a URL: 400 and the schedule unchanged."""
    before = _rows(db, "schedules", owner.id)
    r = owner.post("/schedules/", json={"name": "ssrf", "interval_seconds": 3600, "task_type": "echo",
                                        "callback_url": url})
    assert "callback_url" in assert_json_error(r, 400)
    assert _rows(db, "schedules", owner.id) == before
    schedule = owner.ok("POST", "/schedules/", 201, json={"name": "ok", "interval_seconds": 3600, "task_type": "echo"})
    r = owner.call("PATCH", f"/schedules/{schedule['id']}/", json={"callback_url": url})
    assert "callback_url" in assert_json_error(r, 400)
    assert owner.ok("GET", f"/schedules/{schedule['id']}/") == schedule


def test_public_literal_address_is_accepted(owner):
    """Positive control: a public address passes the same check (so the refusals above are
    about the target, not about callback URLs in general)."""
    task = owner.create_task(callback_url="http://93.184.216.34/hook", scheduled_at="2030-01-01T00:00:00Z",
                             callback_max_attempts=1)
    assert task["callback_url"] == "http://93.184.216.34/hook"
    owner.ok("POST", f"/tasks/{task['id']}/cancel/")


def test_strict_worker_http_request_never_reaches_a_private_target(owner, receiver):
    """The http_request task type aimed at the local receiver (loopback) fails with a clear
    error; the receiver sees no request. (The same URL on the dev gateway is not involved:
    the worker applies its own policy.)"""
    path = f"/hooks/{marker('ssrf')}"
    task = owner.create_task(task_type="http_request", payload={"url": receiver.url(path)}, max_retries=0)
    done = owner.wait_task(task["id"])
    assert done["status"] == "failure", done
    assert done["error_message"], done
    assert receiver.requests(path) == []


def test_dispatcher_refuses_a_metadata_target_at_send(owner, db, receiver):
    """A delivery whose task's URL was changed to a metadata address after creation (stands in
    for a name that now resolves there) is refused by the dispatcher at send time: the delivery
    fails at once, as final, with a 'refused' error, and no attempt is retried."""
    task = owner.create_task(callback_url="http://93.184.216.34/hook", callback_events=["task.updated"],
                             scheduled_at="2030-01-01T00:00:00Z")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE tasks SET callback_url = 'http://169.254.169.254/latest/meta-data/' WHERE id = :t"),
                     {"t": task["id"]})
    sent = owner.ok("POST", f"/tasks/{task['id']}/trigger_webhook/", json={"event": "task.updated"})
    path = f"/tasks/{task['id']}/webhook-deliveries/{sent['delivery_id']}/"
    delivery = wait_for(lambda: (d := owner.ok("GET", path))["status"] != "pending" and d, 15, "the delivery to finish")
    assert delivery["status"] == "failure" and delivery["attempts"] == 1, delivery
    assert "refused" in delivery["error_message"].lower() and "metadata" in delivery["error_message"], delivery
    owner.ok("POST", f"/tasks/{task['id']}/cancel/")

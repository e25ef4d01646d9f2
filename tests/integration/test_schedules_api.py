"""/api/v1/schedules/: CRUD, validation, pause/resume, owner scoping, next_run_at in time zones
(DST included), the write-only callback secret, and the scheduler's fire against the real
database (one task per fire, misfire policies, two concurrent firers)."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from integration_helpers import API, assert_error, unique

SCHEDULES = f"{API}/schedules"
FIELDS = {
    "id", "name", "cron", "interval_seconds", "timezone", "misfire_policy", "enabled", "task_type", "payload",
    "priority", "queue", "max_retries", "retry_delay", "timeout", "tags", "metadata", "callback_url",
    "callback_headers", "callback_events", "callback_max_attempts", "next_run_at", "last_run_at", "last_task",
    "created_at", "updated_at",
}
SECRET = "never-shown-s3cret"


def at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def make_schedule(client):
    def _make(headers: dict, expect: int = 201, **fields) -> dict:
        body = {"name": fields.pop("name", unique("sched")), "task_type": fields.pop("task_type", "echo"), **fields}
        if "cron" not in body and "interval_seconds" not in body:
            body["interval_seconds"] = 3600
        response = client.post(f"{SCHEDULES}/", json=body, headers=headers)
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    return _make


def schedule_count(db, owner_id: int) -> int:
    return db.scalar("SELECT count(*) FROM schedules WHERE owner_id = :o", o=owner_id)


# --- create --------------------------------------------------------------------------------


def test_create_interval_schedule_with_defaults(client, user, make_schedule, db):
    before = now()
    s = make_schedule(user.headers, name="every hour", interval_seconds=3600, payload={"x": 1})
    assert set(s) == FIELDS
    assert s["name"] == "every hour" and s["interval_seconds"] == 3600 and s["cron"] is None
    assert s["timezone"] == "UTC" and s["misfire_policy"] == "run_once" and s["enabled"] is True
    assert s["priority"] == 5 and s["queue"] == "default" and s["max_retries"] == 3 and s["timeout"] == 300
    assert s["payload"] == {"x": 1} and s["tags"] == [] and s["metadata"] == {}
    assert s["last_run_at"] is None and s["last_task"] is None
    first = at(s["next_run_at"])
    assert before + timedelta(seconds=3599) <= first <= now() + timedelta(seconds=3602)
    assert first.microsecond == 0
    row = db.one("SELECT owner_id, enabled, next_run_at FROM schedules WHERE id = :id", id=s["id"])
    assert row.owner_id == user.id and row.enabled and row.next_run_at == first


def test_create_full_template(client, user, make_schedule, db):
    s = make_schedule(
        user.headers, cron="15 3 * * 1-5", timezone="Europe/Paris", misfire_policy="skip", task_type="compute",
        payload={"operation": "sum", "numbers": [1, 2]}, priority=20, max_retries=1, retry_delay=5, timeout=30,
        tags=["nightly"], metadata={"team": "ops"}, callback_url="https://hooks.example.com/x",
        callback_headers={"X-A": "b"}, callback_secret=SECRET, callback_events=["task.failed"], callback_max_attempts=2,
    )
    assert s["queue"] == "critical" and s["misfire_policy"] == "skip" and s["task_type"] == "compute"
    assert s["callback_events"] == ["task.failed"] and s["callback_max_attempts"] == 2
    assert "callback_secret" not in s and SECRET not in str(s)
    assert db.scalar("SELECT callback_secret FROM schedules WHERE id = :id", id=s["id"]) == SECRET
    local = at(s["next_run_at"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute, local.second) == (3, 15, 0) and local.isoweekday() <= 5


def test_callback_url_gets_default_events(user, make_schedule):
    s = make_schedule(user.headers, callback_url="https://hooks.example.com/y")
    assert s["callback_events"] == ["task.succeeded", "task.failed", "task.revoked"]


def test_create_paused(user, make_schedule):
    s = make_schedule(user.headers, enabled=False)
    assert s["enabled"] is False and s["next_run_at"] is None


@pytest.mark.parametrize("zone_name", ["Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_cron_next_run_is_local_time_of_its_zone(user, make_schedule, zone_name):
    """09:00 every day in the zone: the first 09:00 local after now, at that date's UTC offset."""
    tz = ZoneInfo(zone_name)
    before = now()
    s = make_schedule(user.headers, cron="0 9 * * *", timezone=zone_name)
    local_now = before.astimezone(tz)
    expected = datetime(local_now.year, local_now.month, local_now.day, 9, tzinfo=tz)
    if expected.astimezone(timezone.utc) < before:
        day = local_now.date() + timedelta(days=1)
        expected = datetime(day.year, day.month, day.day, 9, tzinfo=tz)
    assert at(s["next_run_at"]) == expected.astimezone(timezone.utc)
    assert s["timezone"] == zone_name


def _next_transition(tz: ZoneInfo, start: datetime) -> datetime:
    """The first local midnight whose UTC offset differs from the day before (a DST change)."""
    day = start.astimezone(tz).date()
    previous = datetime(day.year, day.month, day.day, 12, tzinfo=tz).utcoffset()
    for _ in range(400):
        day += timedelta(days=1)
        offset = datetime(day.year, day.month, day.day, 12, tzinfo=tz).utcoffset()
        if offset != previous:
            return datetime(day.year, day.month, day.day, tzinfo=tz)
        previous = offset
    raise AssertionError("no DST change within a year")


@pytest.mark.parametrize("zone_name", ["Europe/Paris", "America/New_York"])
def test_cron_next_run_across_the_next_dst_change(user, make_schedule, zone_name):
    """A yearly cron on the day before and the day after the zone's next DST change: each
    lands on 12:00 local, with the UTC offset in force on its own date."""
    tz = ZoneInfo(zone_name)
    change = _next_transition(tz, now())
    for day in (change - timedelta(days=1), change + timedelta(days=1)):
        s = make_schedule(user.headers, cron=f"0 12 {day.day} {day.month} *", timezone=zone_name)
        expected = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        assert at(s["next_run_at"]) == expected.astimezone(timezone.utc), (zone_name, day, s["next_run_at"])
    before = datetime(change.year, change.month, change.day, 12, tzinfo=tz) - timedelta(days=1)
    after = datetime(change.year, change.month, change.day, 12, tzinfo=tz) + timedelta(days=1)
    assert before.utcoffset() != after.utcoffset()


def test_cron_day_of_week_is_crontab_numbering(user, make_schedule):
    """0 = Sunday, as in crontab (APScheduler 3.x alone would read it as Monday)."""
    s = make_schedule(user.headers, cron="0 6 * * 0")
    assert at(s["next_run_at"]).strftime("%a") == "Sun"


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, fields",
    [
        ({"cron": "61 * * * *"}, {"cron"}),
        ({"cron": "* * *"}, {"cron"}),
        ({"cron": "* * * * * *"}, {"cron"}),
        ({"cron": "0 0 30 2 *"}, {"cron"}),
        ({"cron": "every day"}, {"cron"}),
        ({"cron": 5}, {"cron"}),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, {"timezone"}),
        ({"cron": "0 9 * * *", "timezone": "utc"}, {"timezone"}),
        ({"cron": "0 9 * * *", "timezone": "../../etc/passwd"}, {"timezone"}),
        ({"interval_seconds": 60, "timezone": 3}, {"timezone"}),
        ({"cron": "0 9 * * *", "interval_seconds": 60}, {"cron", "interval_seconds"}),
        ({}, {"cron", "interval_seconds"}),
        ({"cron": "", "interval_seconds": None}, {"cron", "interval_seconds"}),
        ({"interval_seconds": 0}, {"interval_seconds"}),
        ({"interval_seconds": -5}, {"interval_seconds"}),
        ({"interval_seconds": 10**9}, {"interval_seconds"}),
        ({"interval_seconds": "60"}, {"interval_seconds"}),
        ({"interval_seconds": 1.5}, {"interval_seconds"}),
        ({"interval_seconds": 60, "misfire_policy": "catch_up"}, {"misfire_policy"}),
        ({"interval_seconds": 60, "enabled": "yes"}, {"enabled"}),
        ({"interval_seconds": 60, "name": " "}, {"name"}),
        ({"interval_seconds": 60, "name": "x" * 201}, {"name"}),
        ({"interval_seconds": 60, "task_type": "nope"}, {"task_type"}),
        ({"interval_seconds": 60, "timeout": 0}, {"timeout"}),
        ({"interval_seconds": 60, "priority": "high"}, {"priority"}),
        ({"interval_seconds": 60, "tags": "a,b"}, {"tags"}),
        ({"interval_seconds": 60, "metadata": []}, {"metadata"}),
        ({"interval_seconds": 60, "callback_url": "ftp://x.example.com/"}, {"callback_url"}),
        ({"interval_seconds": 60, "callback_url": "http://169.254.169.254/latest/"}, {"callback_url"}),
        ({"interval_seconds": 60, "callback_headers": {"X-A": 1}}, {"callback_headers"}),
        ({"interval_seconds": 60, "callback_events": ["task.exploded"]}, {"callback_events"}),
    ],
)
def test_invalid_schedules_are_400_with_field_errors(client, user, db, body, fields):
    before = schedule_count(db, user.id)
    payload = {"name": "bad", "task_type": "echo", **body}
    data = assert_error(client.post(f"{SCHEDULES}/", json=payload, headers=user.headers), 400)
    assert fields <= set(data), data
    assert schedule_count(db, user.id) == before


def test_all_errors_at_once(client, user):
    data = assert_error(client.post(f"{SCHEDULES}/", json={"cron": "61 * * * *", "timezone": "Nowhere"},
                                    headers=user.headers), 400)
    assert {"name", "task_type", "cron", "timezone"} <= set(data)


def test_malformed_bodies(client, user):
    assert_error(client.post(f"{SCHEDULES}/", data="{nope", content_type="application/json", headers=user.headers), 400)
    assert_error(client.post(f"{SCHEDULES}/", json=[1, 2], headers=user.headers), 400)


def test_unauthenticated_is_401(client):
    assert_error(client.get(f"{SCHEDULES}/"), 401)
    assert_error(client.post(f"{SCHEDULES}/", json={"name": "x"}), 401)


# --- list and detail -------------------------------------------------------------------------


def test_list_is_paginated_and_scoped(client, make_user, make_schedule):
    owner, other = make_user(), make_user()
    created = [make_schedule(owner.headers, name=f"s{i}") for i in range(3)]
    make_schedule(other.headers)
    make_schedule(owner.headers, name="paused", enabled=False)
    body = client.get(f"{SCHEDULES}/?page_size=2", headers=owner.headers).get_json()
    assert body["count"] == 4 and len(body["results"]) == 2 and body["next"] and body["previous"] is None
    page2 = client.get(f"{SCHEDULES}/?page_size=2&page=2", headers=owner.headers).get_json()
    assert len(page2["results"]) == 2 and page2["next"] is None and page2["previous"]
    ids = {s["id"] for s in body["results"] + page2["results"]}
    assert {s["id"] for s in created} < ids
    enabled = client.get(f"{SCHEDULES}/?enabled=true", headers=owner.headers).get_json()
    assert enabled["count"] == 3 and all(s["enabled"] for s in enabled["results"])
    by_name = client.get(f"{SCHEDULES}/?ordering=name", headers=owner.headers).get_json()["results"]
    assert [s["name"] for s in by_name] == sorted(s["name"] for s in by_name)
    assert all("callback_secret" not in s for s in by_name)
    assert_error(client.get(f"{SCHEDULES}/?enabled=maybe", headers=owner.headers), 400)
    assert_error(client.get(f"{SCHEDULES}/?ordering=secret", headers=owner.headers), 400)
    assert_error(client.get(f"{SCHEDULES}/?page=99", headers=owner.headers), 404)


def test_get_own_schedule(client, user, make_schedule):
    s = make_schedule(user.headers)
    response = client.get(f"{SCHEDULES}/{s['id']}/", headers=user.headers)
    assert response.status_code == 200 and response.get_json() == s


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123"])
def test_non_uuid_and_unknown_ids_404(client, user, bad_id):
    assert_error(client.get(f"{SCHEDULES}/{bad_id}/", headers=user.headers), 404)
    assert_error(client.get(f"{SCHEDULES}/{uuid.uuid4()}/", headers=user.headers), 404)


# --- update ----------------------------------------------------------------------------------


def test_patch_template_keeps_next_run(client, user, make_schedule):
    s = make_schedule(user.headers, interval_seconds=7200)
    response = client.patch(f"{SCHEDULES}/{s['id']}/", json={"name": "renamed", "priority": 10, "payload": {"n": 2}},
                            headers=user.headers)
    assert response.status_code == 200, response.get_json()
    got = response.get_json()
    assert got["name"] == "renamed" and got["priority"] == 10 and got["queue"] == "high" and got["payload"] == {"n": 2}
    assert got["next_run_at"] == s["next_run_at"] and got["interval_seconds"] == 7200
    assert at(got["updated_at"]) >= at(s["updated_at"])


def test_patch_cron_replaces_interval_and_recomputes(client, user, make_schedule):
    s = make_schedule(user.headers, interval_seconds=7200)
    got = client.patch(f"{SCHEDULES}/{s['id']}/", json={"cron": "0 6 * * *", "timezone": "Asia/Tokyo"},
                       headers=user.headers).get_json()
    assert got["cron"] == "0 6 * * *" and got["interval_seconds"] is None and got["timezone"] == "Asia/Tokyo"
    local = at(got["next_run_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute) == (6, 0) and at(got["next_run_at"]) - now() <= timedelta(days=1)
    back = client.patch(f"{SCHEDULES}/{s['id']}/", json={"interval_seconds": 120}, headers=user.headers).get_json()
    assert back["cron"] is None and back["interval_seconds"] == 120
    assert timedelta(seconds=110) <= at(back["next_run_at"]) - now() <= timedelta(seconds=122)


def test_patch_invalid_changes_nothing(client, user, make_schedule):
    s = make_schedule(user.headers, cron="0 6 * * *")
    for body, field in [({"cron": "61 * * * *"}, "cron"), ({"timezone": "Nowhere/Land"}, "timezone"),
                        ({"cron": "0 1 * * *", "interval_seconds": 60}, "cron"), ({"task_type": "nope"}, "task_type"),
                        ({"name": ""}, "name")]:
        data = assert_error(client.patch(f"{SCHEDULES}/{s['id']}/", json=body, headers=user.headers), 400)
        assert field in data
    assert client.get(f"{SCHEDULES}/{s['id']}/", headers=user.headers).get_json() == s


def test_put_replaces_the_schedule(client, user, make_schedule, db):
    s = make_schedule(user.headers, interval_seconds=600, tags=["a"], priority=20, callback_url="https://h.example.com/",
                      callback_secret=SECRET)
    body = {"name": "replaced", "task_type": "sleep", "payload": {"duration": 1}, "cron": "30 4 * * *",
            "callback_url": "https://h.example.com/"}
    got = client.put(f"{SCHEDULES}/{s['id']}/", json=body, headers=user.headers).get_json()
    assert got["name"] == "replaced" and got["task_type"] == "sleep" and got["interval_seconds"] is None
    assert got["tags"] == [] and got["priority"] == 5  # replaced by the defaults
    assert got["cron"] == "30 4 * * *" and at(got["next_run_at"]).strftime("%H:%M") == "04:30"
    # the write-only secret is kept when a PUT does not mention it
    assert db.scalar("SELECT callback_secret FROM schedules WHERE id = :id", id=s["id"]) == SECRET
    assert "callback_secret" not in got
    # ... and cleared with ""
    client.patch(f"{SCHEDULES}/{s['id']}/", json={"callback_secret": ""}, headers=user.headers)
    assert db.scalar("SELECT callback_secret FROM schedules WHERE id = :id", id=s["id"]) == ""
    assert_error(client.put(f"{SCHEDULES}/{s['id']}/", json={"name": "no timing", "task_type": "echo"},
                            headers=user.headers), 400)


def test_patch_enabled_false_then_true(client, user, make_schedule):
    s = make_schedule(user.headers)
    off = client.patch(f"{SCHEDULES}/{s['id']}/", json={"enabled": False}, headers=user.headers).get_json()
    assert off["enabled"] is False and off["next_run_at"] is None
    on = client.patch(f"{SCHEDULES}/{s['id']}/", json={"enabled": True}, headers=user.headers).get_json()
    assert on["enabled"] is True and at(on["next_run_at"]) > now()


def test_callback_secret_is_never_returned(client, user, make_schedule):
    s = make_schedule(user.headers, callback_url="https://hooks.example.com/z", callback_secret=SECRET)
    responses = [
        client.get(f"{SCHEDULES}/{s['id']}/", headers=user.headers),
        client.get(f"{SCHEDULES}/", headers=user.headers),
        client.patch(f"{SCHEDULES}/{s['id']}/", json={"callback_secret": SECRET + "2"}, headers=user.headers),
        client.put(f"{SCHEDULES}/{s['id']}/", json={"name": "p", "task_type": "echo", "interval_seconds": 60,
                                                    "callback_url": "https://hooks.example.com/z"}, headers=user.headers),
        client.post(f"{SCHEDULES}/{s['id']}/pause/", headers=user.headers),
        client.post(f"{SCHEDULES}/{s['id']}/resume/", headers=user.headers),
    ]
    for r in responses:
        assert r.status_code == 200, r.get_json()
        assert SECRET not in r.get_data(as_text=True) and "callback_secret" not in r.get_data(as_text=True)


# --- pause / resume / delete -----------------------------------------------------------------


def test_pause_and_resume(client, user, make_schedule, db):
    s = make_schedule(user.headers, cron="*/5 * * * *")
    paused = client.post(f"{SCHEDULES}/{s['id']}/pause/", headers=user.headers)
    assert paused.status_code == 200
    assert paused.get_json()["enabled"] is False and paused.get_json()["next_run_at"] is None
    again = client.post(f"{SCHEDULES}/{s['id']}/pause/", headers=user.headers)
    assert again.status_code == 200 and again.get_json() == paused.get_json()
    resumed = client.post(f"{SCHEDULES}/{s['id']}/resume/", headers=user.headers).get_json()
    nxt = at(resumed["next_run_at"])
    assert resumed["enabled"] is True and now() < nxt <= now() + timedelta(minutes=5) and nxt.minute % 5 == 0
    twice = client.post(f"{SCHEDULES}/{s['id']}/resume/", headers=user.headers).get_json()
    assert twice["next_run_at"] == resumed["next_run_at"]


def test_delete(client, user, make_schedule, db):
    s = make_schedule(user.headers)
    response = client.delete(f"{SCHEDULES}/{s['id']}/", headers=user.headers)
    assert response.status_code == 204 and response.get_data() == b""
    assert_error(client.get(f"{SCHEDULES}/{s['id']}/", headers=user.headers), 404)
    assert_error(client.delete(f"{SCHEDULES}/{s['id']}/", headers=user.headers), 404)
    assert db.scalar("SELECT count(*) FROM schedules WHERE id = :id", id=s["id"]) == 0


def test_other_users_schedule_is_404_on_every_path(client, user, other_user, make_schedule):
    s = make_schedule(other_user.headers, callback_url="https://hooks.example.com/o", callback_secret=SECRET)
    base = f"{SCHEDULES}/{s['id']}"
    calls = [
        client.get(f"{base}/", headers=user.headers),
        client.patch(f"{base}/", json={"name": "mine now"}, headers=user.headers),
        client.put(f"{base}/", json={"name": "mine", "task_type": "echo", "interval_seconds": 5}, headers=user.headers),
        client.delete(f"{base}/", headers=user.headers),
        client.post(f"{base}/pause/", headers=user.headers),
        client.post(f"{base}/resume/", headers=user.headers),
    ]
    for response in calls:
        data = assert_error(response, 404)
        assert SECRET not in str(data) and s["name"] not in str(data)
    listed = client.get(f"{SCHEDULES}/", headers=user.headers).get_json()["results"]
    assert s["id"] not in {x["id"] for x in listed}
    assert client.get(f"{base}/", headers=other_user.headers).get_json() == s  # untouched


def test_methods_not_allowed(client, user, make_schedule):
    s = make_schedule(user.headers)
    assert_error(client.get(f"{SCHEDULES}/{s['id']}/pause/", headers=user.headers), 405)
    assert_error(client.delete(f"{SCHEDULES}/", headers=user.headers), 405)


# --- firing (the scheduler's job, against this database) -------------------------------------


def fire(engine, grace: float = 60.0) -> list:
    from scheduler.recurring import fire_due

    rows: list = []
    fire_due(engine, rows.extend, grace)
    return rows


def make_due(db, schedule_id: str, seconds_ago: float) -> datetime:
    """Move the schedule's next fire into the past (as if every scheduler had been down)."""
    from sqlalchemy import text

    with db.engine.begin() as conn:
        return conn.execute(text(
            "UPDATE schedules SET next_run_at = date_trunc('second', now()) - make_interval(secs => :s) "
            "WHERE id = :id RETURNING next_run_at"), {"id": schedule_id, "s": seconds_ago}).scalar_one()


def tasks_of(db, schedule_id: str) -> list:
    return db.all("SELECT f.fire_at, t.* FROM schedule_fires f JOIN tasks t ON t.id = f.task_id "
                  "WHERE f.schedule_id = :id ORDER BY f.fire_at", id=schedule_id)


def test_fire_creates_one_task_from_the_template(client, user, make_schedule, engine, db):
    s = make_schedule(user.headers, name="tpl", interval_seconds=3600, task_type="compute", priority=10,
                      payload={"operation": "sum", "numbers": [2, 3]}, max_retries=2, retry_delay=7, timeout=40,
                      tags=["sched"], metadata={"k": "v"}, callback_url="https://hooks.example.com/t",
                      callback_secret=SECRET, callback_max_attempts=3)
    due = make_due(db, s["id"], 1)
    created = [r for r in fire(engine) if r.owner_id == user.id]
    assert len(created) == 1
    task = created[0]
    assert task.name == f"tpl @ {due.astimezone(timezone.utc).isoformat()}"
    assert (task.status, task.queue, task.task_type, task.priority) == ("queued", "high", "compute", 10)
    assert task.payload == {"operation": "sum", "numbers": [2, 3]} and task.tags == ["sched"]
    assert (task.max_retries, task.retry_delay, task.timeout) == (2, 7, 40) and task.metadata == {"k": "v"}
    assert task.callback_secret == SECRET and task.callback_max_attempts == 3
    assert task.callback_events == ["task.succeeded", "task.failed", "task.revoked"]
    got = client.get(f"{SCHEDULES}/{s['id']}/", headers=user.headers).get_json()
    assert got["last_task"] == str(task.id) and at(got["last_run_at"]) == due
    assert at(got["next_run_at"]) == due + timedelta(seconds=3600)
    api_task = client.get(f"{API}/tasks/{task.id}/", headers=user.headers).get_json()
    assert api_task["name"] == task.name and api_task["status"] == "queued"
    assert [r.id for r in tasks_of(db, s["id"])] == [task.id]
    assert [r for r in fire(engine) if r.owner_id == user.id] == []  # nothing due any more


def test_run_once_collapses_missed_fires_into_one(user, make_schedule, engine, db):
    s = make_schedule(user.headers, interval_seconds=10, misfire_policy="run_once")
    due = make_due(db, s["id"], 55)  # fires at -55, -45, ..., -5 were all missed
    fire(engine)
    tasks = tasks_of(db, s["id"])
    assert len(tasks) == 1 and tasks[0].fire_at == due + timedelta(seconds=50)
    nxt = db.scalar("SELECT next_run_at FROM schedules WHERE id = :id", id=s["id"])
    assert nxt == due + timedelta(seconds=60) and nxt > now() - timedelta(seconds=1)


def test_skip_creates_nothing_for_late_fires(user, make_schedule, engine, db):
    s = make_schedule(user.headers, interval_seconds=100, misfire_policy="skip")
    due = make_due(db, s["id"], 250)  # latest missed fire: 50 s ago, beyond a 10 s grace
    fire(engine, grace=10)
    assert tasks_of(db, s["id"]) == []
    assert db.scalar("SELECT next_run_at FROM schedules WHERE id = :id", id=s["id"]) == due + timedelta(seconds=300)
    within = make_schedule(user.headers, interval_seconds=100, misfire_policy="skip")
    due = make_due(db, within["id"], 203)  # latest: 3 s ago, within the grace: it runs, once
    fire(engine, grace=10)
    assert [t.fire_at for t in tasks_of(db, within["id"])] == [due + timedelta(seconds=200)]


def test_paused_schedule_does_not_fire(client, user, make_schedule, engine, db):
    s = make_schedule(user.headers, interval_seconds=60)
    make_due(db, s["id"], 5)
    client.post(f"{SCHEDULES}/{s['id']}/pause/", headers=user.headers)
    fire(engine)
    assert tasks_of(db, s["id"]) == []


def test_concurrent_firers_create_one_task_per_fire(user, make_schedule, engine, db):
    """Several firers at once (the scheduler replicas' job): each due fire yields one task."""
    ids = [make_schedule(user.headers, interval_seconds=3600)["id"] for _ in range(5)]
    for schedule_id in ids:
        make_due(db, schedule_id, 2)
    start = threading.Barrier(4)
    errors: list = []

    def run():
        try:
            start.wait()
            fire(engine)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    for schedule_id in ids:
        assert len(tasks_of(db, schedule_id)) == 1


def test_a_recorded_fire_is_never_created_again(user, make_schedule, engine, db):
    """The second guard: even if next_run_at is moved back onto a fire already run (a lagging
    clock, a manual edit), the (schedule, fire_at) key stops a second task."""
    s = make_schedule(user.headers, interval_seconds=3600)
    due = make_due(db, s["id"], 1)
    fire(engine)
    db.execute("UPDATE schedules SET next_run_at = :due WHERE id = :id", due=due, id=s["id"])
    fire(engine)
    assert len(tasks_of(db, s["id"])) == 1
    assert db.scalar("SELECT count(*) FROM tasks WHERE owner_id = :o AND name LIKE :n", o=user.id,
                     n=f"{s['name']} @ %") == 1

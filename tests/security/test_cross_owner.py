"""Cross-owner probes on the REST API: user B, holding the ids of every kind of object user A
owns (task, webhook delivery, dead letter, schedule), gets the same 404 as for an id that does
not exist, learns no byte of A's objects, and changes nothing of them; B's lists and stats
never include A's objects; fields that name an owner or a privilege cannot be assigned.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from .helpers import SecUser, assert_json_error, assert_no_leak, marker, wait_for


@dataclass
class World:
    a: SecUser
    b: SecUser
    markers: list[str]
    done_task: dict  # success, with a delivered webhook
    failed_task: dict  # failure, dead-lettered
    waiting_task: dict  # scheduled far in the future (cancellable)
    delivery: dict
    dead_letter: dict
    schedule: dict
    b_task: dict
    b_delivery_path: str = ""
    snapshots: dict = field(default_factory=dict)


def _a_views(w: World) -> dict:
    """Everything A can read about its objects (compared before and after B's probes)."""
    t1, t2, t3 = (w.done_task["id"], w.failed_task["id"], w.waiting_task["id"])
    return {
        "tasks": [w.a.task(t) for t in (t1, t2, t3)],
        "deliveries": w.a.ok("GET", f"/tasks/{t1}/webhook-deliveries/"),
        "delivery": w.a.ok("GET", f"/tasks/{t1}/webhook-deliveries/{w.delivery['id']}/"),
        "dead_letter": w.a.ok("GET", f"/dead-letters/{w.dead_letter['id']}/"),
        "schedule": w.a.ok("GET", f"/schedules/{w.schedule['id']}/"),
        "stats": w.a.ok("GET", "/tasks/stats/"),
        "lists": [w.a.ok("GET", p)["count"] for p in ("/tasks/", "/dead-letters/", "/schedules/")],
    }


def _a_events(redis_client, task_ids) -> int:
    return sum(1 for _, f in redis_client.xrange("taskqueue:events") if f[b"task_id"].decode() in task_ids)


@pytest.fixture(scope="module")
def world(system, receiver):
    a, b = SecUser(system), SecUser(system)
    m = {k: marker(k) for k in ("name", "payload", "tag", "meta", "hook", "secret", "hdr", "sched", "dlname")}
    hook_path = f"/hooks/{m['hook']}"
    done = a.create_task(dev=True, name=m["name"], payload={"p": m["payload"]}, tags=[m["tag"]],
                         metadata={"m": m["meta"]}, callback_url=receiver.url(hook_path),
                         callback_secret=m["secret"], callback_headers={"X-Token": m["hdr"]})
    failed = a.create_task(name=m["dlname"], task_type="compute", payload={"operation": "nope", "p": m["payload"]},
                           max_retries=0, tags=[m["tag"]])
    waiting = a.create_task(name=m["name"] + "-later", payload={"p": m["payload"]}, scheduled_at="2030-01-01T00:00:00Z",
                            metadata={"m": m["meta"]})
    schedule = a.ok("POST", "/schedules/", 201, dev=True, json={
        "name": m["sched"], "interval_seconds": 86400, "task_type": "echo", "payload": {"p": m["payload"]},
        "tags": [m["tag"]], "metadata": {"m": m["meta"]}, "callback_url": receiver.url(hook_path),
        "callback_secret": m["secret"]})
    a.wait_task(done["id"], "success")
    a.wait_task(failed["id"], "failure")
    receiver.wait_for(hook_path)
    delivery = wait_for(lambda: [d for d in a.ok("GET", f"/tasks/{done['id']}/webhook-deliveries/")
                                 if d["status"] == "success"], 15, "the webhook delivery to succeed")[0]
    dead = wait_for(lambda: a.ok("GET", "/dead-letters/")["results"], 10, "the dead letter")[0]
    b_task = b.create_task(name=marker("b-"))
    w = World(a, b, [*m.values(), a.username, f"{a.username}@example.com", hook_path], a.wait_task(done["id"]),
              failed, waiting, delivery, dead, schedule, b_task)
    return w


def _probes(w: World) -> list[tuple[str, str, dict | None]]:
    t1, t2, t3 = w.done_task["id"], w.failed_task["id"], w.waiting_task["id"]
    d, dl, s = w.delivery["id"], w.dead_letter["id"], w.schedule["id"]
    put_body = {"name": "hijack", "interval_seconds": 60, "task_type": "echo", "payload": {}}
    return [
        ("GET", f"/tasks/{t1}/", None),
        ("GET", f"/tasks/{t2}/", None),
        ("POST", f"/tasks/{t3}/cancel/", None),
        ("POST", f"/tasks/{t1}/cancel/", None),
        ("POST", f"/tasks/{t2}/retry/", None),
        ("GET", f"/tasks/{t1}/webhook-deliveries/", None),
        ("GET", f"/tasks/{t1}/webhook-deliveries/{d}/", None),
        ("POST", f"/tasks/{t1}/webhook-deliveries/{d}/replay/", None),
        ("GET", f"/tasks/{w.b_task['id']}/webhook-deliveries/{d}/", None),  # B's task, A's delivery
        ("POST", f"/tasks/{w.b_task['id']}/webhook-deliveries/{d}/replay/", None),
        ("POST", f"/tasks/{t1}/trigger_webhook/", {}),
        ("POST", f"/tasks/{t1}/trigger_webhook/", {"event": "task.succeeded"}),
        ("POST", f"/tasks/{t3}/trigger_webhook/", {"event": "task.updated"}),
        ("GET", f"/dead-letters/{dl}/", None),
        ("POST", f"/dead-letters/{dl}/reprocess/", None),
        ("GET", f"/schedules/{s}/", None),
        ("PATCH", f"/schedules/{s}/", {"name": "hijack", "enabled": False}),
        ("PUT", f"/schedules/{s}/", put_body),
        ("POST", f"/schedules/{s}/pause/", None),
        ("POST", f"/schedules/{s}/resume/", None),
        ("DELETE", f"/schedules/{s}/", None),
    ]


def _unknown(path: str, w: World) -> str:
    """The same path with A's ids replaced by ids that exist nowhere."""
    for own in (w.done_task["id"], w.failed_task["id"], w.waiting_task["id"], w.delivery["id"],
                w.dead_letter["id"], w.schedule["id"]):
        path = path.replace(own, str(uuid.uuid4()))
    return path


def test_every_id_endpoint_is_404_for_another_user_and_changes_nothing(world, store):
    """B's call on each of A's objects is a 404 indistinguishable from an unknown id (same
    status and body), carries none of A's marker strings in its headers or body, and A's
    objects, lists, stats and events are exactly as before."""
    w = world
    a_ids = {w.done_task["id"], w.failed_task["id"], w.waiting_task["id"]}
    before, events_before = _a_views(w), _a_events(store.redis, a_ids)
    for method, path, body in _probes(w):
        r = w.b.call(method, path, json=body)
        assert_json_error(r, 404)
        assert_no_leak(r, w.markers)
        unknown = w.b.call(method, _unknown(path, w), json=body)
        assert (r.status_code, r.json()) == (unknown.status_code, unknown.json()), (method, path)
    # also through the dev gateway (private networks allowed: no other difference)
    for method, path, body in _probes(w)[:3]:
        r = w.b.call(method, path, json=body, dev=True)
        assert_json_error(r, 404)
        assert_no_leak(r, w.markers)
    assert _a_views(w) == before
    assert _a_events(store.redis, a_ids) == events_before


def test_owner_still_reaches_everything(world):
    """Positive control: the same calls by A succeed (so B's 404s are about ownership)."""
    w = world
    assert w.a.ok("GET", f"/tasks/{w.done_task['id']}/")["name"] in w.markers
    assert w.a.ok("GET", f"/tasks/{w.done_task['id']}/webhook-deliveries/{w.delivery['id']}/")["id"] == w.delivery["id"]
    assert w.a.ok("GET", f"/dead-letters/{w.dead_letter['id']}/")["task_name"] in w.markers
    assert w.a.ok("GET", f"/schedules/{w.schedule['id']}/")["name"] in w.markers


def test_lists_and_stats_of_another_user_never_include_a_objects(world):
    """B's task list (also searched by A's name and tag), stats, dead letters, schedules and
    deliveries contain only B's objects: none of A's ids or marker strings."""
    w = world
    a_ids = [w.done_task["id"], w.failed_task["id"], w.waiting_task["id"], w.delivery["id"],
             w.dead_letter["id"], w.schedule["id"]]
    name_marker = w.done_task["name"]
    for path, params in [("/tasks/", {}), ("/tasks/", {"search": name_marker}), ("/tasks/", {"search": w.markers[2]}),
                         ("/tasks/", {"page_size": 100, "status": "success"}), ("/tasks/", {"owner": w.a.id}),
                         ("/tasks/", {"owner_id": w.a.id}), ("/dead-letters/", {}), ("/dead-letters/", {"owner_id": w.a.id}),
                         ("/schedules/", {}), ("/tasks/stats/", {}), (f"/tasks/{w.b_task['id']}/webhook-deliveries/", {})]:
        r = w.b.get(path, params=params)
        assert r.status_code == 200, (path, r.text)
        assert_no_leak(r, w.markers + a_ids)
    tasks = w.b.ok("GET", "/tasks/", params={"page_size": 100})
    assert tasks["count"] == 1 and tasks["results"][0]["id"] == w.b_task["id"]
    stats = w.b.ok("GET", "/tasks/stats/")
    assert stats["total"] == 1 and stats["dead_letters"] == 0 and stats["failure"] == 0
    assert w.b.ok("GET", "/dead-letters/")["count"] == 0
    assert w.b.ok("GET", "/schedules/")["count"] == 0


def test_owner_and_privilege_fields_cannot_be_assigned(world):
    """A body naming another owner or asking for staff is ignored or refused: B's new task and
    schedule belong to B, B's profile stays non-staff, A's lists are unchanged."""
    w = world
    a_counts = [w.a.ok("GET", p)["count"] for p in ("/tasks/", "/schedules/")]
    r = w.b.post("/tasks/", json={"name": "mine", "task_type": "echo", "owner": w.a.id, "owner_id": w.a.id,
                                  "user": w.a.id, "user_id": w.a.id})
    assert r.status_code in (201, 400), r.text
    if r.status_code == 201:
        assert w.b.task(r.json()["id"])["id"] == r.json()["id"]
    r = w.b.post("/schedules/", json={"name": "mine", "interval_seconds": 3600, "task_type": "echo",
                                      "owner": w.a.id, "owner_id": w.a.id})
    assert r.status_code in (201, 400), r.text
    r = w.b.call("PATCH", "/auth/profile/", json={"is_staff": True, "is_superuser": True, "id": w.a.id,
                                                 "is_active": True, "first_name": "b"})
    assert r.status_code in (200, 400), r.text
    profile = w.b.ok("GET", "/auth/profile/")
    assert profile["id"] == w.b.id and profile["is_staff"] is False
    assert [w.a.ok("GET", p)["count"] for p in ("/tasks/", "/schedules/")] == a_counts
    assert w.a.ok("GET", "/auth/profile/")["first_name"] != "b"


def test_idempotency_key_is_per_user(world):
    """B reusing A's Idempotency-Key gets a task of its own (201, B's name), never A's task."""
    w = world
    key = f"order-{w.done_task['id']}"
    a_task = w.a.ok("POST", "/tasks/", 201, json={"name": w.markers[0] + "-idem", "task_type": "echo"},
                    headers={"Idempotency-Key": key})
    r = w.b.post("/tasks/", json={"name": "b-idem", "task_type": "echo"}, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    assert r.json()["id"] != a_task["id"] and r.json()["name"] == "b-idem"
    assert "Idempotent-Replayed" not in r.headers
    assert_no_leak(r, w.markers)
    again = w.a.ok("POST", "/tasks/", 201, json={"name": "other", "task_type": "echo"}, headers={"Idempotency-Key": key})
    assert again["id"] == a_task["id"]  # the key does work for its owner

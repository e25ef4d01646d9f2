"""Webhooks end to end: task finishes -> event stream -> dispatcher -> signed POST to a real
receiver, with retries, timeouts, Retry-After and the attempt history."""
from __future__ import annotations

import hashlib
import hmac
import json

import requests
from e2e.e2e_helpers import metric_value, wait_until
from standardwebhooks import Webhook

from .helpers import create_hooked, deliveries, delivery, settle, wait_deliveries, whsec
from .receiver import Reply


def test_signed_with_both_schemes_and_custom_headers_cannot_override(dispatcher, client, receiver):
    path = receiver.new_path("signed")
    secret = "receiver-shared-secret"
    task = create_hooked(client, receiver, path, callback_secret=secret, tags=["t1"], metadata={"k": "v"},
                         callback_headers={"X-Custom-Token": "abc", "Content-Type": "text/plain",
                                           "X-Taskqueue-Event": "forged", "webhook-id": "forged"})
    [req] = receiver.wait_for(path)
    [d] = wait_deliveries(client, task["id"], "success")

    # Standard Webhooks, verified with the stock library and the documented derived secret.
    payload = Webhook(whsec(secret)).verify(req.body, req.headers)
    assert req.header("webhook-id") == d["id"] == req.header("X-Taskqueue-Delivery-Id")
    # The reference's scheme: HMAC-SHA256 hex of the raw body.
    assert req.header("X-Taskqueue-Signature") == hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    assert d["signature"] == req.header("X-Taskqueue-Signature")

    assert req.header("X-Custom-Token") == "abc"
    assert req.header("Content-Type") == "application/json"
    assert req.header("X-Taskqueue-Event") == "task.succeeded"
    assert req.header("X-Taskqueue-Task-Id") == task["id"]
    assert req.header("User-Agent").startswith("TaskQueue")
    assert [name for name, _ in req.raw_headers].count("Content-Type") == 1

    assert payload["event"] == "task.succeeded" and payload["sent_at"]
    t = payload["task"]
    assert (t["id"], t["status"], t["result"], t["tags"], t["metadata"]) == (task["id"], "success", {"echoed": {"hello": "world"}},
                                                                             ["t1"], {"k": "v"})
    assert t["completed_at"] and t["queue"] == "default" and t["task_type"] == "echo"
    assert d["request_body"] == req.body.decode() and d["response_status_code"] == 200 and d["attempts"] == 1
    assert secret not in json.dumps(d) and secret not in json.dumps(client.task(task["id"]))


def test_without_secret_nothing_is_signed(dispatcher, client, receiver):
    path = receiver.new_path("unsigned")
    create_hooked(client, receiver, path)
    [req] = receiver.wait_for(path)
    assert req.header("X-Taskqueue-Signature") is None and req.header("webhook-signature") is None
    assert req.header("webhook-id") and req.header("X-Taskqueue-Delivery-Id") == req.header("webhook-id")


def test_only_subscribed_events_are_delivered(dispatcher, client, receiver, db):
    quiet, loud = receiver.new_path("quiet"), receiver.new_path("loud")
    skipped = create_hooked(client, receiver, quiet, callback_events=["task.failed"])
    client.wait_status(skipped["id"], "success")
    failing = create_hooked(client, receiver, loud, task_type="compute", payload={"operation": "nope"},
                            max_retries=0, callback_events=["task.failed"])
    [req] = receiver.wait_for(loud)  # events are handled in order: the skipped one was seen first
    assert json.loads(req.body)["event"] == "task.failed" and req.header("X-Taskqueue-Event") == "task.failed"
    assert json.loads(req.body)["task"]["status"] == "failure"
    assert receiver.requests(quiet) == [] and deliveries(client, skipped["id"]) == []
    assert client.task(skipped["id"])["callback_status"] == ""
    assert client.task(failing["id"])["callback_status"] == "success"


def test_500_500_200_makes_three_attempts_then_success(dispatcher, client, receiver):
    path = receiver.new_path("flaky")
    receiver.script(path, 500, Reply(500, body=b"try later"), 200)
    task = create_hooked(client, receiver, path, callback_secret="k")
    reqs = receiver.wait_for(path, 3)
    [d] = wait_deliveries(client, task["id"], "success")
    assert d["attempts"] == 3 and d["response_status_code"] == 200 and d["error_message"] == ""
    log = delivery(client, task["id"], d["id"])["attempt_log"]
    assert [(a["attempt"], a["status_code"]) for a in log] == [(1, 500), (2, 500), (3, 200)]
    assert log[0]["error"] == "Non-2xx response: 500" and all(a["duration_ms"] is not None for a in log)
    # One message, retried: same id and body; each send signed with its own timestamp.
    assert len({r.header("webhook-id") for r in reqs}) == 1 and len({r.body for r in reqs}) == 1
    for r in reqs:
        Webhook(whsec("k")).verify(r.body, r.headers)
    gaps = [b.at - a.at for a, b in zip(reqs, reqs[1:])]
    assert 0.3 <= gaps[0] and gaps[0] < gaps[1] + 0.3  # backoff from a 0.5 s base, growing
    t = client.task(task["id"])
    assert (t["callback_status"], t["callback_attempts"], t["callback_last_response_code"]) == ("success", 3, 200)
    assert t["callback_last_attempt_at"] and t["callback_last_error"] == ""


def test_a_receiver_that_never_answers_times_out_and_is_retried(dispatcher, client, receiver):
    path = receiver.new_path("slow")
    receiver.script(path, Reply(200, delay=4.0))  # read timeout is 2 s
    task = create_hooked(client, receiver, path)
    reqs = receiver.wait_for(path, 2, timeout=20)
    [d] = wait_deliveries(client, task["id"], "success")
    log = delivery(client, task["id"], d["id"])["attempt_log"]
    assert log[0]["status_code"] is None and "timed out" in log[0]["error"] and log[0]["duration_ms"] >= 1900
    assert log[1]["status_code"] == 200 and d["attempts"] == 2
    assert reqs[0].header("webhook-id") == reqs[1].header("webhook-id")


def test_retry_after_is_honoured(dispatcher, client, receiver):
    path = receiver.new_path("busy")
    receiver.script(path, Reply(429, headers={"Retry-After": "2"}), 200)
    task = create_hooked(client, receiver, path)
    first, second = receiver.wait_for(path, 2, timeout=20)
    assert second.at - first.at >= 1.9  # the backoff alone would have been ~0.5 s
    [d] = wait_deliveries(client, task["id"], "success")
    assert [a["status_code"] for a in delivery(client, task["id"], d["id"])["attempt_log"]] == [429, 200]


def test_gives_up_after_callback_max_attempts(dispatcher, client, receiver):
    path = receiver.new_path("down")
    receiver.script(path, *[Reply(503, body=b"x" * 10_000)] * 5)
    task = create_hooked(client, receiver, path, callback_max_attempts=2)
    [d] = wait_deliveries(client, task["id"], "failure")
    settle(1.0)
    assert len(receiver.requests(path)) == 2 and d["attempts"] == 2
    assert d["response_status_code"] == 503 and d["error_message"] == "Non-2xx response: 503"
    assert len(d["response_body"]) == 4096  # stored truncated to 4 KB
    t = client.task(task["id"])
    assert (t["callback_status"], t["callback_attempts"], t["callback_last_response_code"]) == ("failure", 2, 503)
    assert t["callback_last_error"] == "Non-2xx response: 503"


def test_dispatcher_health_and_metrics(dispatcher, client, receiver):
    svc = dispatcher.dispatchers[0]
    path = receiver.new_path("metrics")
    create_hooked(client, receiver, path)
    receiver.wait_for(path)
    assert requests.get(svc.health_url, timeout=2).json()["status"] == "ok"

    def scraped():
        text = requests.get(svc.metrics_url, timeout=2).text
        return text if metric_value(text, "taskqueue_dispatcher_deliveries_total", {"outcome": "success"}) >= 1 else None

    text = wait_until(scraped, 5, message="a success in the dispatcher's metrics")
    assert metric_value(text, "taskqueue_dispatcher_attempt_seconds_count") >= 1
    assert "taskqueue_dispatcher_pending_retries" in text

"""The dispatcher's and the gateway's webhook rules, in-process (no services, no database)."""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from dispatcher import signing
from dispatcher.deliverer import decide
from dispatcher.retry import MAX_RETRY_AFTER_SECONDS, next_delay, parse_retry_after
from dispatcher.sender import MAX_RESPONSE_BYTES, AttemptResult, Sender
from dispatcher.store import Claimed
from flask import Flask
from gateway.errors import ValidationError
from gateway.tasks.fields import read_task_fields
from standardwebhooks import Webhook, WebhookVerificationError

from shared import webhooks
from shared.settings import Settings

from .helpers import whsec
from .receiver import Receiver, Reply

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


# --- Retry-After and backoff ------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    ("7", 7.0), (" 0 ", 0.0), ("", None), (None, None), ("soon", None), ("-3", None), ("1.5", None),
    (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
    (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),  # a date in the past: now
    ("999999999", MAX_RETRY_AFTER_SECONDS),  # capped
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_retry_after_wins_over_backoff_and_backoff_grows():
    assert next_delay(10, 1, 3.0) == 3.0
    first, third = next_delay(10, 1, None), next_delay(10, 3, None)
    assert 8 <= first <= 10 and 32 <= third <= 40


def _claimed(attempt=1, max_attempts=3, **kw) -> Claimed:
    base = dict(id=uuid.uuid4(), task_id=uuid.uuid4(), event="task.succeeded", attempt=attempt,
                max_attempts=max_attempts, url="http://127.0.0.1:9/", headers={}, body="{}", secret="", interrupted=False)
    return Claimed(**{**base, **kw})


@pytest.mark.parametrize("result,attempt,status", [
    (AttemptResult(204, "", "", 0.01), 1, "success"),
    (AttemptResult(500, "Non-2xx response: 500", "", 0.01), 1, "pending"),
    (AttemptResult(500, "Non-2xx response: 500", "", 0.01), 3, "failure"),  # last attempt
    (AttemptResult(None, "Request timed out", "", 2.0), 2, "pending"),
    (AttemptResult(None, "Callback URL refused", "", 0.0, refused=True), 1, "failure"),  # never retried
])
def test_decide(result, attempt, status):
    outcome = decide(_claimed(attempt=attempt), result, retry_base=0.5)
    assert outcome.status == status
    assert (outcome.delay is not None) == (status == "pending")


def test_decide_honours_retry_after():
    outcome = decide(_claimed(), AttemptResult(429, "Non-2xx response: 429", "", 0.01, retry_after=42.0), 0.5)
    assert outcome.delay == 42.0


# --- signatures -------------------------------------------------------------------------------

def test_standard_webhooks_secret_is_derived_and_verifiable_with_the_stock_library():
    secret, body, msg_id = "s3cr3t-é", json.dumps({"a": 1}), str(uuid.uuid4())
    headers = signing.headers_for_send({"webhook-id": "stale"}, msg_id, body, secret)
    assert signing.standard_secret(secret) == whsec(secret)
    assert headers["webhook-id"] == headers["X-Taskqueue-Delivery-Id"] == msg_id
    assert Webhook(whsec(secret)).verify(body, headers) == {"a": 1}
    assert Webhook(secret.encode()).verify(body, headers) == {"a": 1}  # raw key bytes, same thing
    with pytest.raises(WebhookVerificationError):
        Webhook(whsec("other")).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(whsec(secret)).verify(body + " ", headers)


def test_no_secret_no_standard_signature():
    headers = signing.headers_for_send({}, "id-1", "{}", "")
    assert "webhook-signature" not in headers and "webhook-timestamp" not in headers
    assert headers["webhook-id"] == "id-1"


def _task(**kw) -> dict:
    base = {
        "id": uuid.uuid4(), "owner_id": 1, "name": "t", "task_type": "echo", "status": "success", "priority": 5,
        "queue": "default", "payload": {"x": 1}, "result": {"x": 1}, "error_message": "", "created_at": NOW,
        "started_at": NOW, "completed_at": NOW, "tags": ["a"], "metadata": {"m": 1},
        "callback_url": "http://127.0.0.1:9/h", "callback_headers": {}, "callback_secret": "",
        "callback_events": ["task.succeeded"], "callback_max_attempts": 5,
    }
    return {**base, **kw}


def test_delivery_body_and_reference_signature():
    task = _task(callback_secret="k")
    row = webhooks.new_delivery(task, "task.succeeded")
    body = json.loads(row["request_body"])
    assert set(body) == {"event", "sent_at", "task"} and body["event"] == "task.succeeded"
    assert set(body["task"]) == {"id", "name", "task_type", "status", "priority", "queue", "payload", "result",
                                 "error_message", "created_at", "started_at", "completed_at", "tags", "metadata"}
    expected = hmac.new(b"k", row["request_body"].encode(), hashlib.sha256).hexdigest()
    assert row["signature"] == row["request_headers"]["X-Taskqueue-Signature"] == expected
    assert row["request_headers"]["webhook-id"] == str(row["id"])


def test_custom_headers_are_added_but_never_replace_ours():
    task = _task(callback_headers={"X-Custom": "1", "content-type": "text/plain", "X-TASKQUEUE-EVENT": "forged",
                                   "Webhook-Id": "forged", "Host": "evil", "Bad Name": "x", "X-Nl": "a\r\nb"})
    headers = webhooks.new_delivery(task, "task.succeeded")["request_headers"]
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["x-custom"] == "1"
    assert lower["content-type"] == "application/json" and lower["x-taskqueue-event"] == "task.succeeded"
    assert "forged" not in headers.values() and "evil" not in headers.values()
    assert len(lower) == len(headers)  # never two spellings of one header
    assert "Bad Name" not in headers and "X-Nl" not in headers


def test_replay_keeps_body_and_gets_a_new_id():
    original = {**webhooks.new_delivery(_task(callback_secret="k"), "task.succeeded"), "id": uuid.uuid4()}
    copy = webhooks.replay(original)
    assert copy["request_body"] == original["request_body"] and copy["signature"] == original["signature"]
    assert copy["id"] != original["id"] and copy["replay_of_id"] == original["id"]
    assert copy["request_headers"]["webhook-id"] == str(copy["id"]) == copy["request_headers"]["X-Taskqueue-Delivery-Id"]
    assert copy["occurred_at"] is None and copy["event_id"] is None


def test_subscription_rules():
    assert webhooks.subscribed(_task(), "task.succeeded")
    assert not webhooks.subscribed(_task(), "task.failed")
    assert webhooks.subscribed(_task(callback_events=[]), "task.failed")  # the reference: empty = all
    assert not webhooks.subscribed(_task(callback_url=""), "task.succeeded")
    assert webhooks.event_for("success") == "task.succeeded" and webhooks.event_for("running") is None
    assert webhooks.event_for("queued", "task.updated") == "task.updated"


# --- the sender against a real local receiver -------------------------------------------------

@pytest.fixture(scope="module")
def local_receiver():
    r = Receiver()
    yield r
    r.close()


def _sender(allow_private=True, read_timeout=2.0) -> Sender:
    return Sender(dataclasses.replace(Settings.from_env(), webhook_allow_private_networks=allow_private,
                                      webhook_read_timeout=read_timeout, webhook_connect_timeout=2.0))


def test_sender_posts_signed_body_and_truncates_the_response(local_receiver):
    path = local_receiver.new_path()
    local_receiver.script(path, Reply(200, body=b"\x00" + b"x" * 10_000))
    body = json.dumps({"event": "task.succeeded"})
    result = _sender().send(_claimed(url=local_receiver.url(path), body=body, secret="k", headers={"X-A": "1"}))
    assert result.ok and result.status_code == 200 and result.error == ""
    assert len(result.response_body.encode()) <= MAX_RESPONSE_BYTES + 2 and "\x00" not in result.response_body
    [req] = local_receiver.requests(path)
    assert req.body == body.encode() and req.header("X-A") == "1"
    Webhook(whsec("k")).verify(req.body, req.headers)


def test_sender_reports_status_retry_after_and_does_not_follow_redirects(local_receiver):
    path, target = local_receiver.new_path(), local_receiver.new_path()
    local_receiver.script(path, Reply(503, headers={"Retry-After": "12"}), Reply(302, headers={"Location": target}))
    sender = _sender()
    first = sender.send(_claimed(url=local_receiver.url(path)))
    assert (first.status_code, first.retry_after, first.error) == (503, 12.0, "Non-2xx response: 503")
    second = sender.send(_claimed(url=local_receiver.url(path)))
    assert second.status_code == 302 and not second.ok
    assert local_receiver.requests(target) == []


def test_sender_times_out(local_receiver):
    path = local_receiver.new_path()
    local_receiver.script(path, Reply(200, delay=1.0))
    result = _sender(read_timeout=0.3).send(_claimed(url=local_receiver.url(path)))
    assert result.status_code is None and "timed out" in result.error and not result.refused


def test_sender_refuses_private_addresses_unless_allowed(local_receiver):
    path = local_receiver.new_path()
    result = _sender(allow_private=False).send(_claimed(url=local_receiver.url(path)))
    assert result.refused and "loopback" in result.error
    result = _sender(allow_private=True).send(_claimed(url="http://169.254.169.254/latest/meta-data/"))
    assert result.refused and "metadata" in result.error
    assert local_receiver.requests(path) == []


# --- the gateway's creation-time guard ---------------------------------------------------------

@pytest.fixture
def request_context():
    with Flask(__name__).test_request_context():
        yield


@pytest.mark.parametrize("url,reason", [
    ("http://127.0.0.1:8000/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://10.0.0.1/hook", "private"),
    ("http://192.168.1.10/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[::1]/hook", "loopback"),
    ("http://0x7f.1/hook", "loopback"),
    ("http://metadata.google.internal/", "metadata"),
    ("http://no-such-host.invalid/hook", "resolve"),
    ("ftp://example.com/", "http(s)"),
])
def test_callback_url_refused_at_creation(request_context, url, reason):
    with pytest.raises(ValidationError) as info:
        read_task_fields({"name": "n", "task_type": "echo", "callback_url": url}, allow_private_networks=False)
    assert "callback_url" in info.value.fields and reason in info.value.fields["callback_url"][0]


def test_callback_url_allowed_when_public_or_private_allowed(request_context):
    public = read_task_fields({"name": "n", "task_type": "echo", "callback_url": "https://93.184.215.14/h"})
    assert public["callback_url"] == "https://93.184.215.14/h"
    local = read_task_fields({"name": "n", "task_type": "echo", "callback_url": "http://127.0.0.1:9/h"},
                             allow_private_networks=True)
    assert local["callback_url"] == "http://127.0.0.1:9/h"
    with pytest.raises(ValidationError):  # metadata stays refused even then
        read_task_fields({"name": "n", "task_type": "echo", "callback_url": "http://169.254.169.254/"},
                         allow_private_networks=True)


def test_unsendable_custom_headers_are_refused_at_creation(request_context):
    with pytest.raises(ValidationError) as info:
        read_task_fields({"name": "n", "task_type": "echo", "callback_headers": {"X-A": "a\nb"}})
    assert "callback_headers" in info.value.fields


def test_sender_threads_keep_their_own_session():
    sender, sessions = _sender(), []
    threads = [threading.Thread(target=lambda: sessions.append(sender._session())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sessions[0] is not sessions[1]
